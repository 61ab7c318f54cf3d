//! `cargo +nightly fuzz run tls_check`: see fuzz/README.md and [`harness::tls_check`].
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::tls_check(data));
