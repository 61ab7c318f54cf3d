//! `cargo +nightly fuzz run target`: see fuzz/README.md and [`harness::target`].
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::target(data));
