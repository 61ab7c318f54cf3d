//! `cargo +nightly fuzz run snapshot`: see fuzz/README.md and [`harness::snapshot`].
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::snapshot(data));
