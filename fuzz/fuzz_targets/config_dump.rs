//! `cargo +nightly fuzz run config_dump`: see fuzz/README.md and [`harness::config_dump`].
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::config_dump(data));
