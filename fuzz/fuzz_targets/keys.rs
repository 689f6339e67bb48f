//! cargo-fuzz target `keys`: see `xapi_zvol_fuzz::keys`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xapi_zvol_fuzz::keys::run(data));
