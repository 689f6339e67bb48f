//! Hand-written layout of the kernel's `zfs_cmd_t` (x86_64 Linux), for the legacy
//! ioctls libzfs_core does not wrap (we use `ZFS_IOC_SET_PROP` only).
//!
//! OpenZFS does not install `sys/zfs_ioctl.h`, so bindgen cannot see this struct. The
//! offsets below were verified by compiling against the 2.1.11, 2.3.2 and 2.4.0 trees
//! (2.4 kept the size on purpose by making `zc_inject_record` a union). Only the fields we
//! use are named; the rest is padding that the kernel reads and ignores for SET_PROP.

/// Size of `zfs_cmd_t` on x86_64 Linux, identical in OpenZFS 2.1 .. 2.4.
pub const ZFS_CMD_SIZE: usize = 13744;
/// Offset of `zc_nvlist_src` (u64 user pointer).
pub const ZFS_CMD_NVLIST_SRC_OFFSET: usize = 4096;
/// Offset of `zc_cookie`.
pub const ZFS_CMD_COOKIE_OFFSET: usize = 12616;

/// `zfs_cmd_t`, with the fields the SET_PROP ioctl reads or writes.
#[repr(C)]
#[derive(Clone)]
pub struct zfs_cmd_t {
    /// `zc_name`: the dataset name, NUL-terminated.
    pub zc_name: [u8; 4096],
    /// `zc_nvlist_src`: user pointer to a packed (native encoding) input nvlist.
    pub zc_nvlist_src: u64,
    /// `zc_nvlist_src_size`: its size in bytes.
    pub zc_nvlist_src_size: u64,
    /// `zc_nvlist_dst`: user pointer to a buffer for the packed output nvlist.
    pub zc_nvlist_dst: u64,
    /// `zc_nvlist_dst_size`: size of that buffer (updated by the kernel).
    pub zc_nvlist_dst_size: u64,
    /// `zc_nvlist_dst_filled`: set by the kernel when it wrote an output nvlist.
    pub zc_nvlist_dst_filled: u32,
    /// `zc_pad2` and everything up to `zc_cookie`.
    pub _pad_to_cookie: [u8; ZFS_CMD_COOKIE_OFFSET - 4132],
    /// `zc_cookie`: for SET_PROP, 0 means a locally set value.
    pub zc_cookie: u64,
    /// The tail of the struct.
    pub _tail: [u8; ZFS_CMD_SIZE - ZFS_CMD_COOKIE_OFFSET - 8],
}

impl Default for zfs_cmd_t {
    fn default() -> Self {
        zfs_cmd_t {
            zc_name: [0; 4096],
            zc_nvlist_src: 0,
            zc_nvlist_src_size: 0,
            zc_nvlist_dst: 0,
            zc_nvlist_dst_size: 0,
            zc_nvlist_dst_filled: 0,
            _pad_to_cookie: [0; ZFS_CMD_COOKIE_OFFSET - 4132],
            zc_cookie: 0,
            _tail: [0; ZFS_CMD_SIZE - ZFS_CMD_COOKIE_OFFSET - 8],
        }
    }
}

const _: () = assert!(std::mem::size_of::<zfs_cmd_t>() == ZFS_CMD_SIZE);
const _: () = assert!(std::mem::offset_of!(zfs_cmd_t, zc_nvlist_src) == ZFS_CMD_NVLIST_SRC_OFFSET);
const _: () = assert!(std::mem::offset_of!(zfs_cmd_t, zc_cookie) == ZFS_CMD_COOKIE_OFFSET);
const _: () = assert!(std::mem::offset_of!(zfs_cmd_t, zc_nvlist_dst_filled) == 4128);
