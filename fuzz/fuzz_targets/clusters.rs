//! `cargo +nightly fuzz run clusters`: see fuzz/README.md and [`harness::clusters`].
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::clusters(data));
