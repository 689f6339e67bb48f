//! xapi-zvol's ZFS layer, in two parts:
//!
//! * [`lzc`]: the `libzfs-core` crate (a safe, in-process API over libzfs_core and
//!   libnvpair: nvlists, every lzc call we use, channel programs, properties without
//!   fork/exec), re-exported; other Rust storage tools depend on that crate directly.
//! * [`sr`]: the SR/Volume semantics of the xapi-zvol SMAPIv3 plugin on top of it
//!   (clone-on-snapshot, promote-on-revert, destroy in any order, garbage collection).
//! * [`host`]: what the SR layer does to the host besides ZFS (locks and files under /run,
//!   mounts, zvol block devices), on rustix.
//!
//! Errors from both are one type, [`Error`].
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod host;
pub mod sr;

// The build script's program minifier, tested with the crate.
#[cfg(test)]
#[path = "../lua_min.rs"]
mod lua_min;

pub use libzfs_core as lzc;

pub use error::{Error, Op, Result};
pub use lzc::{Errno, Zfs};
