//! The safe libzfs_core layer: one module per ZFS concept, all calls in-process (no
//! fork/exec), all failures as [`crate::Error`].
//!
//! This is the only module of the crate with `unsafe` code: the FFI calls into
//! libzfs_core/libnvpair, two legacy ioctls (`SET_PROP`, `POOL_STATS`) that
//! libzfs_core does not wrap (their `zfs_cmd_t` is a zeroed heap buffer with headroom,
//! issued only to a module whose layout was verified, 2.1.x .. 2.4.x). The host's own system
//! calls (flock, mount, block-device ioctls) are in [`crate::host`]. Everything is reached
//! through the process-wide handle
//! [`Zfs::get`], which is `Send + Sync` (libzfs_core is thread-safe).
//!
//! Only calls present in OpenZFS 2.1.11 are linked, so one binary loads on 2.1 .. 2.4;
//! newer abilities are detected at run time ([`Zfs::capabilities`]).
#![allow(unsafe_code)]

pub mod nvlist;
pub mod reservation;

mod bookmark;
mod caps;
mod dataset;
mod errno;
mod handle;
mod holds;
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
pub use handle::Zfs;
pub use nvlist::{NvList, NvListError, NvListRef, NvTree, NvValue};
pub use pool::{PoolHealth, PoolStatus, TopVdev};
pub(crate) use program::{check_step, program};
pub use program::{Limits, Program};
pub use props::{pool_of, Compression, PropRead, PropValue, Props, VolMode};
pub use send::SendFlags;
pub use send_stream::{BlockBitmap, StreamStats};
pub use util::MAX_NAME;
