//! A safe, in-process Rust API over OpenZFS `libzfs_core` and `libnvpair`: one module per
//! ZFS concept, every call in-process (no fork/exec of the `zfs` CLI), every failure one
//! [`Error`] naming the operation, its target and the reason, as a sentence an operator can
//! act on ("cannot destroy tank/x@s: it has dependent clones (EEXIST)"; a batch call names
//! the items that failed).
//!
//! ```no_run
//! use libzfs_core::{DatasetKind, ListOptions, Zfs};
//!
//! let zfs = Zfs::get()?;
//! // Every volume under tank/vms with its size, in one channel program.
//! let opts = ListOptions::new().children(true).recursive(true).props(["volsize"]);
//! let vols: Vec<_> = zfs
//!     .list("tank/vms", &opts)?
//!     .into_iter()
//!     .filter(|e| e.kind == DatasetKind::Volume)
//!     .collect();
//! // One atomic snapshot of all of them.
//! zfs.snapshot(vols.iter().map(|v| format!("{}@backup", v.name)), &[])?;
//! # Ok::<(), libzfs_core::Error>(())
//! ```
//!
//! Everything is reached through the process-wide handle [`Zfs::get`], which is
//! `Send + Sync` (libzfs_core is thread-safe). Its conventions:
//!
//! * **Names** are full ZFS names (`pool/ds`, `pool/ds@snap`, `pool/ds#bookmark`); lists of
//!   names are any `IntoIterator` of string-likes, pairs any [`StrPair`].
//! * **Descriptors** are borrowed ([`std::os::fd::AsFd`], [`std::os::fd::BorrowedFd`]).
//! * **Properties** are read typed ([`Zfs::get_u64`], [`Zfs::get_string`],
//!   [`Zfs::get_properties`], [`Zfs::list`]) and set with [`Props`].
//! * **Channel programs** ([`Program`], [`Zfs::program_nosync`]) take their arguments as
//!   one table through `...`; [`Program`] documents the argument, result and error
//!   conventions.
//! * **Global state** is the handle and the module's version, kept once they could be had;
//!   a failure is never kept (the next call tries again).
//!
//! The `unsafe` code is the FFI calls into libzfs_core/libnvpair (the raw declarations are
//! [`ffi`], the `libzfs-core-sys` crate) and the legacy ioctls libzfs_core does not wrap
//! (`SET_PROP`, `POOL_STATS`, `OBJSET_STATS`: their `zfs_cmd_t` is a zeroed heap buffer with
//! headroom, issued only to a module whose layout was verified, 2.1.x .. 2.4.x).
//!
//! Only calls present in OpenZFS 2.1.11 are linked, so one binary loads on 2.1 .. 2.4;
//! newer abilities are detected at run time ([`Zfs::capabilities`]).
//!
//! Features: `serde` (off by default) makes nvlists serialisable and adds their `to_json`.
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

/// The README's examples, compiled as doc tests so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
