//! The kernel's `zfs_cmd_t` (x86_64 Linux), for the two legacy ioctls libzfs_core does not
//! wrap: `ZFS_IOC_SET_PROP` (zfs-volume's `set_properties`) and `ZFS_IOC_POOL_STATS`
//! (`pool_status`).
//!
//! OpenZFS does not install `sys/zfs_ioctl.h`, so bindgen cannot see this struct. The
//! offsets below were verified by compiling against the 2.1.11, 2.3.2 and 2.4.0 trees
//! (2.4 kept the size on purpose by making `zc_inject_record` a union); the callers check
//! the loaded module's version against that range before issuing either ioctl
//! (zfs-volume's `lzc::caps`). Only the fields the two ioctls use are exposed; every other
//! byte stays zero, which the kernel reads as "not set" for SET_PROP and POOL_STATS.
//!
//! # Why a heap buffer, not a `#[repr(C)]` struct
//!
//! The kernel's `zfsdev_ioctl` allocates `sizeof (zfs_cmd_t)` *of its own build*, copies
//! that many bytes in from the pointer we pass, runs the command, and copies that many
//! bytes back out, whatever size we meant. A fixed 13744-byte struct on our stack would
//! be overwritten past its end (stack corruption) by a module whose struct grew. So the
//! command is [`ZfsCmd`]: a zeroed heap buffer of [`ZFS_CMD_SIZE`] plus
//! [`ZFS_CMD_HEADROOM`] bytes, aligned for `u64`. A larger kernel struct then copies in
//! zeros for its new fields and copies out into memory we own; the fields are written
//! and read at the verified offsets only.

/// Size of `zfs_cmd_t` on x86_64 Linux, identical in OpenZFS 2.1 .. 2.4.
pub const ZFS_CMD_SIZE: usize = 13744;

/// Zeroed bytes allocated after [`ZFS_CMD_SIZE`] in every [`ZfsCmd`].
///
/// The kernel copies out `sizeof (zfs_cmd_t)` of its own build, so the buffer must be at
/// least that large for any module the binary could meet. The struct is a handful of
/// fixed arrays (`zc_name[MAXPATHLEN]`, `zc_value[2 * MAXPATHLEN]`, `zc_string`, the
/// inject record...) that new fields extend by bytes, not kilobytes; 64 KiB is more than
/// four times the whole current struct, so even every array doubling would fit. It costs
/// one ~78 KiB zeroed allocation per legacy ioctl (below glibc's mmap threshold; these
/// ioctls are not on any hot path), which is nothing next to the ioctl itself. The version
/// check in zfs-volume is the primary guard; this is the second line against a layout we
/// have not seen.
pub const ZFS_CMD_HEADROOM: usize = 64 * 1024;

/// Total size of a [`ZfsCmd`] buffer.
pub const ZFS_CMD_BUF_SIZE: usize = ZFS_CMD_SIZE + ZFS_CMD_HEADROOM;

/// Offset and size of `zc_name` (`char[MAXPATHLEN]`): the dataset or pool name,
/// NUL-terminated.
pub const ZFS_CMD_NAME_OFFSET: usize = 0;
/// Capacity of `zc_name`, NUL included.
pub const ZFS_CMD_NAME_LEN: usize = 4096;
/// Offset of `zc_nvlist_src` (u64 user pointer to a packed, native-encoded input nvlist).
pub const ZFS_CMD_NVLIST_SRC_OFFSET: usize = 4096;
/// Offset of `zc_nvlist_src_size` (u64).
pub const ZFS_CMD_NVLIST_SRC_SIZE_OFFSET: usize = 4104;
/// Offset of `zc_nvlist_dst` (u64 user pointer to a buffer for the packed output nvlist).
pub const ZFS_CMD_NVLIST_DST_OFFSET: usize = 4112;
/// Offset of `zc_nvlist_dst_size` (u64; updated by the kernel, e.g. to the size needed
/// when it returns ENOMEM).
pub const ZFS_CMD_NVLIST_DST_SIZE_OFFSET: usize = 4120;
/// Offset of `zc_nvlist_dst_filled` (`boolean_t`, 32 bits; set when an output nvlist was
/// written).
pub const ZFS_CMD_NVLIST_DST_FILLED_OFFSET: usize = 4128;
/// Offset of `zc_cookie` (u64): SET_PROP reads it (0 = a locally set value), POOL_STATS
/// writes the pool's load error into it.
pub const ZFS_CMD_COOKIE_OFFSET: usize = 12616;

// The layout, as the 2.1 .. 2.4 headers have it: zc_name[4096], then five 8-byte-aligned
// fields, zc_pad2, zc_history, zc_value[8192], zc_string[256], zc_guid, zc_nvlist_conf,
// zc_nvlist_conf_size, zc_cookie.
const _: () = assert!(ZFS_CMD_NAME_OFFSET + ZFS_CMD_NAME_LEN == ZFS_CMD_NVLIST_SRC_OFFSET);
const _: () = assert!(ZFS_CMD_NVLIST_SRC_SIZE_OFFSET == ZFS_CMD_NVLIST_SRC_OFFSET + 8);
const _: () = assert!(ZFS_CMD_NVLIST_DST_OFFSET == ZFS_CMD_NVLIST_SRC_SIZE_OFFSET + 8);
const _: () = assert!(ZFS_CMD_NVLIST_DST_SIZE_OFFSET == ZFS_CMD_NVLIST_DST_OFFSET + 8);
const _: () = assert!(ZFS_CMD_NVLIST_DST_FILLED_OFFSET == ZFS_CMD_NVLIST_DST_SIZE_OFFSET + 8);
// zc_pad2 (4), zc_history (8), zc_value (2 * 4096), zc_string (256), zc_guid,
// zc_nvlist_conf, zc_nvlist_conf_size (3 * 8).
const _: () = assert!(
    ZFS_CMD_COOKIE_OFFSET == ZFS_CMD_NVLIST_DST_FILLED_OFFSET + 4 + 4 + 8 + 8192 + 256 + 24
);
const _: () = assert!(ZFS_CMD_COOKIE_OFFSET + 8 <= ZFS_CMD_SIZE);
const _: () = assert!(ZFS_CMD_SIZE % 8 == 0 && ZFS_CMD_BUF_SIZE % 8 == 0);
const _: () = assert!(ZFS_CMD_HEADROOM >= 4 * ZFS_CMD_SIZE);

/// The name given to [`ZfsCmd::set_name`] does not fit in `zc_name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameTooLong {
    /// Its length in bytes, NUL included.
    pub len: usize,
}

impl std::fmt::Display for NameTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "name of {} bytes (with its NUL) does not fit in zc_name ({} bytes)",
            self.len, ZFS_CMD_NAME_LEN
        )
    }
}

impl std::error::Error for NameTooLong {}

/// A `zfs_cmd_t` for a legacy ioctl: a zeroed, `u64`-aligned heap buffer of
/// [`ZFS_CMD_BUF_SIZE`] bytes (see the module documentation), with accessors for the fields
/// SET_PROP and POOL_STATS use at their verified offsets. Building and reading it is safe;
/// passing [`ZfsCmd::as_mut_ptr`] to `ioctl(2)` is the caller's `unsafe`.
///
/// ```
/// use libzfs_core_sys::{ZfsCmd, ZFS_CMD_BUF_SIZE};
/// let mut zc = ZfsCmd::new();
/// zc.set_name(c"tank/vol").unwrap();
/// zc.set_cookie(0);
/// assert_eq!(zc.len(), ZFS_CMD_BUF_SIZE);
/// assert_eq!(&zc.to_bytes()[..9], b"tank/vol\0");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ZfsCmd {
    /// `u64` words: the allocation is 8-byte aligned, and every u64 field of the struct is
    /// at a multiple of 8.
    words: Box<[u64]>,
}

impl Default for ZfsCmd {
    fn default() -> Self {
        ZfsCmd::new()
    }
}

impl std::fmt::Debug for ZfsCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.to_bytes();
        let end = name[..ZFS_CMD_NAME_LEN]
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(ZFS_CMD_NAME_LEN);
        f.debug_struct("ZfsCmd")
            .field("zc_name", &String::from_utf8_lossy(&name[..end]))
            .field("zc_nvlist_src", &self.nvlist_src())
            .field("zc_nvlist_src_size", &self.nvlist_src_size())
            .field("zc_nvlist_dst", &self.nvlist_dst())
            .field("zc_nvlist_dst_size", &self.nvlist_dst_size())
            .field("zc_nvlist_dst_filled", &self.nvlist_dst_filled())
            .field("zc_cookie", &self.cookie())
            .finish_non_exhaustive()
    }
}

impl ZfsCmd {
    /// An all-zero command buffer of [`ZFS_CMD_BUF_SIZE`] bytes.
    pub fn new() -> ZfsCmd {
        ZfsCmd {
            words: vec![0u64; ZFS_CMD_BUF_SIZE / 8].into_boxed_slice(),
        }
    }

    /// Size of the buffer in bytes ([`ZFS_CMD_BUF_SIZE`]), headroom included.
    pub fn len(&self) -> usize {
        self.words.len() * 8
    }

    /// Never empty; for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The pointer to give `ioctl(2)`: [`ZfsCmd::len`] writable bytes, 8-byte aligned, valid
    /// while `self` is borrowed.
    pub fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.words.as_mut_ptr().cast()
    }

    /// A copy of the whole buffer as bytes (native byte order), for checks and tests.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    /// The u64 at byte offset `off` (a multiple of 8).
    pub fn u64_at(&self, off: usize) -> u64 {
        assert!(
            off % 8 == 0 && off + 8 <= ZFS_CMD_SIZE,
            "u64 field at {off}"
        );
        self.words[off / 8]
    }

    /// Store `v` at byte offset `off` (a multiple of 8).
    pub fn set_u64_at(&mut self, off: usize, v: u64) {
        assert!(
            off % 8 == 0 && off + 8 <= ZFS_CMD_SIZE,
            "u64 field at {off}"
        );
        self.words[off / 8] = v;
    }

    /// The u32 at byte offset `off` (a multiple of 4).
    pub fn u32_at(&self, off: usize) -> u32 {
        assert!(
            off % 4 == 0 && off + 4 <= ZFS_CMD_SIZE,
            "u32 field at {off}"
        );
        let b = self.words[off / 8].to_ne_bytes();
        let i = off % 8;
        u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
    }

    /// Write `zc_name`: the bytes of `name` and its NUL, the rest of the field zeroed.
    /// Refuses (changing nothing) a name whose length with the NUL exceeds
    /// [`ZFS_CMD_NAME_LEN`]; never truncates.
    pub fn set_name(&mut self, name: &std::ffi::CStr) -> Result<(), NameTooLong> {
        let bytes = name.to_bytes_with_nul();
        if bytes.len() > ZFS_CMD_NAME_LEN {
            return Err(NameTooLong { len: bytes.len() });
        }
        let first = ZFS_CMD_NAME_OFFSET / 8;
        for (i, w) in self.words[first..first + ZFS_CMD_NAME_LEN / 8]
            .iter_mut()
            .enumerate()
        {
            let mut b = [0u8; 8];
            let start = (i * 8).min(bytes.len());
            let end = (i * 8 + 8).min(bytes.len());
            b[..end - start].copy_from_slice(&bytes[start..end]);
            *w = u64::from_ne_bytes(b);
        }
        Ok(())
    }

    /// Set `zc_nvlist_src` and `zc_nvlist_src_size` (user pointer and length of a packed
    /// nvlist; the kernel reads that many bytes from it).
    pub fn set_nvlist_src(&mut self, ptr: u64, size: u64) {
        self.set_u64_at(ZFS_CMD_NVLIST_SRC_OFFSET, ptr);
        self.set_u64_at(ZFS_CMD_NVLIST_SRC_SIZE_OFFSET, size);
    }

    /// Set `zc_nvlist_dst` and `zc_nvlist_dst_size` (user pointer and size of the buffer the
    /// kernel may write a packed nvlist into).
    pub fn set_nvlist_dst(&mut self, ptr: u64, size: u64) {
        self.set_u64_at(ZFS_CMD_NVLIST_DST_OFFSET, ptr);
        self.set_u64_at(ZFS_CMD_NVLIST_DST_SIZE_OFFSET, size);
    }

    /// `zc_nvlist_src`.
    pub fn nvlist_src(&self) -> u64 {
        self.u64_at(ZFS_CMD_NVLIST_SRC_OFFSET)
    }

    /// `zc_nvlist_src_size`.
    pub fn nvlist_src_size(&self) -> u64 {
        self.u64_at(ZFS_CMD_NVLIST_SRC_SIZE_OFFSET)
    }

    /// `zc_nvlist_dst`.
    pub fn nvlist_dst(&self) -> u64 {
        self.u64_at(ZFS_CMD_NVLIST_DST_OFFSET)
    }

    /// `zc_nvlist_dst_size`: after the ioctl, the size of the packed output (or the size
    /// needed, with ENOMEM).
    pub fn nvlist_dst_size(&self) -> u64 {
        self.u64_at(ZFS_CMD_NVLIST_DST_SIZE_OFFSET)
    }

    /// `zc_nvlist_dst_filled`: the kernel wrote an output nvlist.
    pub fn nvlist_dst_filled(&self) -> bool {
        self.u32_at(ZFS_CMD_NVLIST_DST_FILLED_OFFSET) != 0
    }

    /// `zc_cookie`.
    pub fn cookie(&self) -> u64 {
        self.u64_at(ZFS_CMD_COOKIE_OFFSET)
    }

    /// Set `zc_cookie`.
    pub fn set_cookie(&mut self, v: u64) {
        self.set_u64_at(ZFS_CMD_COOKIE_OFFSET, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ne_u64(b: &[u8], off: usize) -> u64 {
        u64::from_ne_bytes(b[off..off + 8].try_into().unwrap())
    }

    #[test]
    fn new_is_zeroed_aligned_and_has_headroom() {
        let mut zc = ZfsCmd::new();
        assert_eq!(zc.len(), ZFS_CMD_SIZE + ZFS_CMD_HEADROOM);
        assert!(zc.len() >= 5 * ZFS_CMD_SIZE);
        assert!(!zc.is_empty());
        assert!(zc.to_bytes().iter().all(|&b| b == 0));
        assert_eq!(zc.as_mut_ptr() as usize % std::mem::align_of::<u64>(), 0);
        assert_eq!(ZfsCmd::default(), zc);
    }

    #[test]
    fn fields_land_at_the_verified_offsets_and_nowhere_else() {
        let mut zc = ZfsCmd::new();
        zc.set_nvlist_src(0x1111_2222_3333_4444, 17);
        zc.set_nvlist_dst(0x5555_6666_7777_8888, 16384);
        zc.set_cookie(0xc00c1e);
        let b = zc.to_bytes();
        assert_eq!(ne_u64(&b, 4096), 0x1111_2222_3333_4444);
        assert_eq!(ne_u64(&b, 4104), 17);
        assert_eq!(ne_u64(&b, 4112), 0x5555_6666_7777_8888);
        assert_eq!(ne_u64(&b, 4120), 16384);
        assert_eq!(ne_u64(&b, 12616), 0xc00c1e);
        let touched = |i: usize| (4096..4128).contains(&i) || (12616..12624).contains(&i);
        for (i, &x) in b.iter().enumerate() {
            if !touched(i) {
                assert_eq!(x, 0, "byte {i} changed");
            }
        }
        assert_eq!(zc.nvlist_src(), 0x1111_2222_3333_4444);
        assert_eq!(zc.nvlist_src_size(), 17);
        assert_eq!(zc.nvlist_dst(), 0x5555_6666_7777_8888);
        assert_eq!(zc.nvlist_dst_size(), 16384);
        assert_eq!(zc.cookie(), 0xc00c1e);
        assert!(!zc.nvlist_dst_filled());
    }

    #[test]
    fn dst_filled_is_the_u32_at_4128_not_its_neighbour() {
        let mut zc = ZfsCmd::new();
        // zc_pad2, the next 4 bytes, must not read as "filled".
        let mut w = [0u8; 8];
        w[4] = 1;
        zc.words[4128 / 8] = u64::from_ne_bytes(w);
        assert!(!zc.nvlist_dst_filled());
        let mut w = [0u8; 8];
        w[0] = 1;
        zc.words[4128 / 8] = u64::from_ne_bytes(w);
        assert!(zc.nvlist_dst_filled());
        assert_eq!(zc.u32_at(4128), 1);
    }

    #[test]
    fn name_is_copied_with_its_nul_and_the_rest_zeroed() {
        let mut zc = ZfsCmd::new();
        let long = std::ffi::CString::new(vec![b'x'; 300]).unwrap();
        zc.set_name(&long).unwrap();
        zc.set_name(c"tank/a@s").unwrap();
        let b = zc.to_bytes();
        assert_eq!(&b[..9], b"tank/a@s\0");
        // The longer previous name is gone, not left behind the new NUL.
        assert!(b[9..ZFS_CMD_NAME_LEN].iter().all(|&x| x == 0));
        assert!(b[ZFS_CMD_NAME_LEN..].iter().all(|&x| x == 0));
    }

    #[test]
    fn name_length_is_checked_never_truncated() {
        let mut zc = ZfsCmd::new();
        // 4095 bytes + NUL fill zc_name exactly.
        let fits = std::ffi::CString::new(vec![b'a'; ZFS_CMD_NAME_LEN - 1]).unwrap();
        zc.set_name(&fits).unwrap();
        let b = zc.to_bytes();
        assert!(b[..ZFS_CMD_NAME_LEN - 1].iter().all(|&x| x == b'a'));
        assert_eq!(b[ZFS_CMD_NAME_LEN - 1], 0);
        assert_eq!(ne_u64(&b, ZFS_CMD_NVLIST_SRC_OFFSET), 0);
        // One more byte does not fit: refused, the buffer unchanged.
        let before = zc.clone();
        let too_long = std::ffi::CString::new(vec![b'b'; ZFS_CMD_NAME_LEN]).unwrap();
        let e = zc.set_name(&too_long).unwrap_err();
        assert_eq!(
            e,
            NameTooLong {
                len: ZFS_CMD_NAME_LEN + 1
            }
        );
        assert!(e.to_string().contains("4097 bytes"), "{e}");
        assert_eq!(zc, before);
        zc.set_name(c"").unwrap();
        assert!(zc.to_bytes()[..ZFS_CMD_NAME_LEN].iter().all(|&x| x == 0));
    }

    #[test]
    #[should_panic(expected = "u64 field at 4100")]
    fn misaligned_field_access_panics() {
        ZfsCmd::new().set_u64_at(4100, 1);
    }

    #[test]
    #[should_panic(expected = "u64 field at 13744")]
    fn field_access_stays_inside_the_verified_struct() {
        ZfsCmd::new().u64_at(ZFS_CMD_SIZE);
    }
}
