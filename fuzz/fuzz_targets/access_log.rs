//! `cargo +nightly fuzz run access_log`: see fuzz/README.md and [`harness::access_log`].
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::access_log(data));
