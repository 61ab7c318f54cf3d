//! `cargo +nightly fuzz run stats`: see fuzz/README.md and [`harness::stats`].
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::stats(data));
