//! cargo-fuzz target `request`: see `xapi_zvol_fuzz::request`.
//!
//! With `XAPI_ZVOL_FUZZ_WRITE_SEEDS=<dir>` it writes its seed corpus there and exits instead
//! (`scripts/fuzz --write-seeds`), so the seeds come from the same entry table as the target.
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: xapi_zvol_fuzz::request::write_seeds_if_asked(),
    |data: &[u8]| xapi_zvol_fuzz::request::run(data)
);
