//! `cargo +nightly fuzz run duration`: see fuzz/README.md and [`harness::duration`].
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::duration(data));
