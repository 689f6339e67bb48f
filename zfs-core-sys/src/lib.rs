//! Raw FFI declarations for OpenZFS `libzfs_core` and `libnvpair`.
//!
//! With the default `bindgen` feature the bindings are generated at build time from the
//! headers that pkg-config (`libzfs_core`) points at, so they match the OpenZFS installed on
//! the build machine (2.1.11 up to 2.4.x). Without it, and on docs.rs, they are the ones
//! pre-generated from OpenZFS 2.1.11's headers (`src/bindings/`), which every later version
//! keeps. Nothing here is safe to call directly; the safe layer is the `zfs-volume` crate.
//!
//! Compatibility rules:
//! * C enums are plain integer constants: the kernel may return values newer than the
//!   headers.
//! * `lzc_send_progress` is declared by the headers but defined by no library, so it is
//!   left out.
//! * Functions added after 2.1 are declared when the headers have them, but a binary that
//!   must load on 2.1 must not call them (`scripts/check-zfs-abi` checks the binary's
//!   undefined symbols against 2.1.11's libraries).
//! * `zfs_cmd_t` is hand-described (OpenZFS does not ship `sys/zfs_ioctl.h`) as
//!   [`ZfsCmd`], a zeroed heap buffer with headroom and accessors at the verified offsets,
//!   for the two legacy ioctls libzfs_core does not wrap: `ZFS_IOC_SET_PROP` and
//!   `ZFS_IOC_POOL_STATS`. It is not a fixed-size struct because the kernel copies its own
//!   `sizeof (zfs_cmd_t)` in and back out (see the `ioctl_cmd` module).

#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code
)]
#![allow(clippy::all)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

mod ioctl_cmd;
pub use ioctl_cmd::*;

/// Version of the OpenZFS headers these bindings were generated from (pkg-config
/// `libzfs_core` version at build time, or 2.1.11 for the pre-generated ones).
pub const HEADER_VERSION: &str = env!("ZFS_CORE_SYS_HEADER_VERSION");
