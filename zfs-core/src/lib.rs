//! A safe, in-process Rust API over OpenZFS `libzfs_core` and `libnvpair`: one module per
//! ZFS concept, every call in-process (no fork/exec of the `zfs` CLI), every failure one
//! [`Error`] naming the operation, its target and the reason.
//!
//! The `unsafe` code is the FFI calls into libzfs_core/libnvpair (the raw declarations are
//! [`ffi`], the `libzfs-core-sys` crate) and two legacy ioctls (`SET_PROP`, `POOL_STATS`) that
//! libzfs_core does not wrap (their `zfs_cmd_t` is a zeroed heap buffer with headroom, issued
//! only to a module whose layout was verified, 2.1.x .. 2.4.x). Everything is reached through
//! the process-wide handle [`Zfs::get`], which is `Send + Sync` (libzfs_core is thread-safe).
//!
//! Only calls present in OpenZFS 2.1.11 are linked, so one binary loads on 2.1 .. 2.4;
//! newer abilities are detected at run time ([`Zfs::capabilities`]).
#![warn(missing_docs)]

pub use libzfs_core_sys as ffi;

pub mod error;

pub mod nvlist;
pub mod reservation;

mod bookmark;
mod caps;
mod dataset;
mod errno;
mod handle;
mod holds;
mod list;
mod objset;
mod pool;
mod program;
mod props;
mod send;
mod send_stream;
mod snapshot;
mod util;

pub use caps::{module_version, parse_version, Capabilities};
pub use dataset::VolumeSpec;
pub use errno::Errno;
pub use error::{reason, Error, Op, Result};
pub use handle::Zfs;
pub use list::{DatasetKind, ListEntry, ListOptions};
pub use nvlist::{NvList, NvListError, NvListRef, NvTree, NvValue};
pub use pool::{PoolHealth, PoolStatus, TopVdev};
pub use program::check_step;
pub(crate) use program::program;
pub use program::{Limits, Program};
pub use props::{pool_of, Compression, PropRead, PropValue, Props, VolMode};
pub use send::SendFlags;
pub use send_stream::{BlockBitmap, StreamStats};
pub use util::{StrPair, MAX_NAME};
