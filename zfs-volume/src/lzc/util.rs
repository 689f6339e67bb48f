//! Small helpers shared by the lzc wrappers: C strings, errlists, checked names.

use super::nvlist::NvList;
use super::Errno;
use crate::error::{Error, Result};
use std::ffi::CString;
use zfs_core_sys as sys;

/// Longest dataset/snapshot name ZFS accepts (ZFS_MAX_DATASET_NAME_LEN - 1).
pub const MAX_NAME: usize = sys::ZFS_MAX_DATASET_NAME_LEN as usize - 1;

/// A C string for `what`, refusing interior NULs (never truncating).
pub(crate) fn cstring(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(what, format!("{s:?} contains a NUL character")))
}

/// A dataset or snapshot name as a C string, length-checked.
pub(crate) fn name(s: &str) -> Result<CString> {
    if s.is_empty() {
        return Err(Error::invalid("dataset name", "empty name"));
    }
    if s.len() > MAX_NAME {
        return Err(Error::invalid(
            "dataset name",
            format!("{s:?} is longer than {MAX_NAME} bytes"),
        ));
    }
    cstring("dataset name", s)
}

/// Turn an lzc output errlist (`{name: int32 errno}`) into a vector. Takes ownership of
/// the pointer (frees it); NULL means no list.
pub(crate) fn take_errlist(p: *mut sys::nvlist_t) -> Vec<(String, Errno)> {
    if p.is_null() {
        return vec![];
    }
    // SAFETY: lzc hands us a freshly unpacked list that we own.
    let list = unsafe { NvList::from_raw_owned(p) };
    let mut out = vec![];
    for (k, v) in list.to_tree() {
        if let super::nvlist::NvValue::I32(e) = v {
            out.push((k, Errno(e)));
        }
    }
    out
}

/// Map an lzc return code to a Result.
pub(crate) fn check(rc: i32, op: crate::error::Op, target: &str) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::zfs(op, target, Errno(rc)))
    }
}

/// Try to take an exclusive `flock` on `fd` without blocking (the SR lock). Lives here
/// because this module is the crate's one home of `unsafe`.
pub(crate) fn flock_exclusive_nb(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: flock has no memory-safety preconditions; an invalid fd just fails.
    unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Drop the page cache of a block device (`BLKFLSBUF`), so that readers of a zvol whose
/// content changed underneath (rollback) see the new data, not stale cached pages.
pub(crate) fn flush_block_device(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    /// `_IO(0x12, 97)` from linux/fs.h.
    const BLKFLSBUF: libc::c_ulong = 0x1261;
    let f = std::fs::File::open(path)?;
    // SAFETY: BLKFLSBUF takes no argument; the descriptor is open for the call.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), BLKFLSBUF, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `BLKZNAME` from OpenZFS's `sys/fs/zfs.h`: `_IOR(0x12, 125, char[ZFS_MAX_DATASET_NAME_LEN])`,
/// the ioctl udev's `zvol_id` names `/dev/zvol` links with. A C macro, so bindgen cannot
/// see it: `_IOR(t, nr, size)` is `(2 << 30) | (size << 16) | (t << 8) | nr` on x86_64.
pub(crate) const BLKZNAME: libc::c_ulong =
    (2 << 30) | ((sys::ZFS_MAX_DATASET_NAME_LEN as libc::c_ulong) << 16) | (0x12 << 8) | 125;

/// The dataset name of the zvol behind block device `dev` (`/dev/zdN`), asked of the zvol
/// itself (`BLKZNAME`): unlike a `/dev/zvol` link, it cannot be stale or missing while
/// udev catches up. Errors: ENOTTY for a device that is not a zvol.
pub(crate) fn zvol_name(dev: &std::path::Path) -> std::io::Result<String> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(dev)?;
    let mut buf = [0u8; sys::ZFS_MAX_DATASET_NAME_LEN as usize];
    // SAFETY: BLKZNAME writes at most ZFS_MAX_DATASET_NAME_LEN bytes into the
    // buffer, which is that long and alive for the call; the descriptor is open.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), BLKZNAME, buf.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// Mount ZFS filesystem `dataset` read-only (and nosuid, nodev, noexec) at `dir` with
/// mount(2) itself: no `mount.zfs` helper, which refuses datasets whose `mountpoint` is
/// `none`. Used only to keep an SR container resident in the kernel (sr/mounts.rs).
pub(crate) fn mount_zfs_readonly(dataset: &str, dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let invalid = |_| std::io::Error::from(std::io::ErrorKind::InvalidInput);
    let src = CString::new(dataset).map_err(invalid)?;
    let target = CString::new(dir.as_os_str().as_bytes()).map_err(invalid)?;
    let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: all pointers are NUL-terminated strings alive for the call; no data argument.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            c"zfs".as_ptr(),
            flags,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Unmount what is mounted at `dir` (umount2(2)); `lazy` detaches it even while busy.
pub(crate) fn unmount(dir: &std::path::Path, lazy: bool) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let target = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: a NUL-terminated path alive for the call.
    let rc = unsafe { libc::umount2(target.as_ptr(), if lazy { libc::MNT_DETACH } else { 0 }) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn blkzname_is_ior_0x12_125_of_256_bytes() {
        // _IOR(0x12, 125, char[256]) as linux/ioctl.h computes it on x86_64.
        assert_eq!(super::BLKZNAME, 0x8100_127d);
    }
}
