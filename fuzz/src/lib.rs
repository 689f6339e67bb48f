//! Fuzzing harnesses of xapi-zvol (issue 7), shared by the cargo-fuzz targets in
//! `fuzz_targets/` and by the seed writer (`scripts/fuzz --write-seeds`).
//!
//! * [`request`]: one plugin invocation exactly as the binary runs it
//!   ([`smapi_plugin::dispatch::run`]), for every entry point either plugin installs, with
//!   arbitrary stdin bytes, up to the point where a call would reach ZFS; the output is checked
//!   against the wire contract with the validators the integration tests use.
//! * [`keys`]: the pure name and key functions of `zfs_volume::sr::{meta, layout}`, with the
//!   invariants their callers rely on.
//!
//! Panics are the failure signal: libFuzzer's panic hook aborts on any panic, including one
//! `dispatch` would have contained, since a contained panic is still a bug.

#![warn(missing_docs)]

#[path = "../../smapi-plugin/tests/support/contract.rs"]
#[allow(missing_docs, clippy::all)]
mod contract;

pub mod keys;
pub mod request;
