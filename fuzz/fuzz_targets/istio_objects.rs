//! `cargo +nightly fuzz run istio_objects`: see fuzz/README.md and [`harness::istio_objects`].
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::istio_objects(data));
