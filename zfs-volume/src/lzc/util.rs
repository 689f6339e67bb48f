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

/// Mount ZFS filesystem `dataset` read-only (and nosuid, nodev, noexec) at `dir` with
/// mount(2) itself: no `mount.zfs` helper, which refuses datasets whose `mountpoint` is
/// `none`. Used only to keep an SR container resident in the kernel (sr/hold.rs).
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
