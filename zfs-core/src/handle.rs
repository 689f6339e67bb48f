//! The process-wide libzfs_core handle.

use super::util::cstring;
use super::Errno;
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::sync::{Mutex, OnceLock};

/// A handle to libzfs_core, initialised once per process and never torn down.
///
/// libzfs_core keeps one refcounted `/dev/zfs` descriptor and is documented thread-safe, so
/// the handle is `Send + Sync` and shared as `&'static`. It also holds a descriptor of its
/// own for the legacy ioctls libzfs_core does not wrap (SET_PROP, POOL_STATS, OBJSET_STATS).
///
/// ```no_run
/// let zfs = libzfs_core::Zfs::get()?;
/// assert!(zfs.exists("tank") || !zfs.exists("tank"));
/// # Ok::<(), libzfs_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Zfs {
    dev: File,
}

/// The handle, once initialised. Only a success is kept: a failure is returned to the caller
/// and the next [`Zfs::get`] tries again.
static HANDLE: OnceLock<Zfs> = OnceLock::new();
/// Serialises first-time initialisation, so that racing first calls run
/// `libzfs_core_init` once (each success takes a reference that is never released).
static INIT: Mutex<()> = Mutex::new(());

impl Zfs {
    /// The handle; the first successful call runs `libzfs_core_init()` and opens `/dev/zfs`.
    ///
    /// Fails with an actionable message when the zfs kernel module is not loaded. A failure
    /// is not remembered: a later call (after `modprobe zfs`, say) initialises again, so a
    /// long-running process need not restart. A success is kept for the life of the
    /// process, and while it is, the module cannot be unloaded (the handle holds
    /// `/dev/zfs` open).
    pub fn get() -> Result<&'static Zfs> {
        if let Some(z) = HANDLE.get() {
            return Ok(z);
        }
        // A panic while holding the lock leaves nothing half-done: ignore the poison.
        let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(z) = HANDLE.get() {
            return Ok(z);
        }
        let z = Zfs::open().map_err(|e| Error::zfs(Op::Init, "/dev/zfs", Errno(e)))?;
        Ok(HANDLE.get_or_init(|| z))
    }

    /// `libzfs_core_init()` and our own `/dev/zfs` descriptor; on failure, the errno, with
    /// libzfs_core's reference released again.
    fn open() -> std::result::Result<Zfs, i32> {
        // SAFETY: libzfs_core_init has no preconditions; it is refcounted and internally
        // locked, and takes no reference when it fails. On success we never call fini: the
        // handle lives as long as the process.
        let rc = unsafe { sys::libzfs_core_init() };
        if rc != 0 {
            return Err(rc);
        }
        match OpenOptions::new().read(true).write(true).open("/dev/zfs") {
            Ok(dev) => Ok(Zfs { dev }),
            Err(e) => {
                // SAFETY: balances the successful init above; nothing uses it since.
                unsafe { sys::libzfs_core_fini() };
                Err(e.raw_os_error().unwrap_or(libc::EIO))
            }
        }
    }

    /// True if a dataset, snapshot or bookmark of this name exists (one cheap ioctl).
    ///
    /// ```no_run
    /// # let zfs = libzfs_core::Zfs::get()?;
    /// if !zfs.exists("tank/vol") { println!("no such volume"); }
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn exists(&self, name: &str) -> bool {
        let Ok(c) = cstring("dataset name", name) else {
            return false;
        };
        if name.contains('#') {
            // lzc_exists (OBJSET_STATS) only knows datasets and snapshots.
            let mut props: *mut sys::nvlist_t = std::ptr::null_mut();
            // SAFETY: a valid string; `props` is an out-pointer we own afterwards.
            let rc = unsafe { sys::lzc_get_bookmark_props(c.as_ptr(), &mut props) };
            if !props.is_null() {
                // SAFETY: lzc allocated it for us.
                drop(unsafe { super::NvList::from_raw_owned(props) });
            }
            return rc == 0;
        }
        // SAFETY: a valid NUL-terminated string.
        unsafe { sys::lzc_exists(c.as_ptr()) != 0 }
    }

    /// A legacy ioctl that answers with a packed nvlist (`ZFS_IOC_POOL_STATS`,
    /// `ZFS_IOC_OBJSET_STATS`) on `name`: the output buffer starts at 64 KiB and grows to what
    /// the kernel asks for (ENOMEM with the size it needs). Returns the ioctl's own result,
    /// the command as the kernel left it (`zc_cookie`, ...) and the list when the kernel
    /// filled one (a faulted pool fails POOL_STATS and still returns its config).
    pub(crate) fn ioctl_nvlist_out(
        &self,
        checked: &super::caps::LegacyLayout,
        request: u32,
        name: &std::ffi::CStr,
    ) -> Result<(
        std::result::Result<(), Errno>,
        sys::ZfsCmd,
        Option<super::NvTree>,
    )> {
        let mut size = 64 * 1024usize;
        loop {
            let mut buf = vec![0u8; size];
            let mut zc = sys::ZfsCmd::new();
            zc.set_name(name)
                .map_err(|e| Error::invalid("name", e.to_string()))?;
            zc.set_nvlist_dst(buf.as_mut_ptr() as u64, buf.len() as u64);
            // SAFETY: the only nvlist pointer in `zc` is `buf` (written), alive across the
            // call, with its exact length.
            let r = unsafe { self.ioctl(checked, request, &mut zc) };
            if matches!(r, Err(Errno(libc::ENOMEM)))
                && (zc.nvlist_dst_size() as usize) > size
                && size < (64 << 20)
            {
                size = zc.nvlist_dst_size() as usize + 4096;
                continue;
            }
            let list = if zc.nvlist_dst_filled() {
                let n = (zc.nvlist_dst_size() as usize).min(buf.len());
                Some(super::NvList::unpack(&buf[..n])?.to_tree())
            } else {
                None
            };
            return Ok((r, zc, list));
        }
    }

    /// Raw legacy ioctl (`ZFS_IOC_SET_PROP`, `ZFS_IOC_POOL_STATS`, `ZFS_IOC_OBJSET_STATS`) on our own `/dev/zfs`
    /// descriptor. `_checked` proves the loaded module's version is one whose `zfs_cmd_t`
    /// layout was verified ([`Zfs::legacy_layout`]); `zc` is the heap command buffer with
    /// headroom that the kernel copies its own `sizeof (zfs_cmd_t)` in from and back out to.
    ///
    /// # Safety
    /// The nvlist pointers set in `zc` (if any) must point to live buffers of at least the
    /// sizes set beside them, readable (`src`) or writable (`dst`), until this returns.
    pub(crate) unsafe fn ioctl(
        &self,
        _checked: &super::caps::LegacyLayout,
        request: u32,
        zc: &mut sys::ZfsCmd,
    ) -> std::result::Result<(), Errno> {
        // SAFETY: `zc.as_mut_ptr()` is `zc.len()` (ZFS_CMD_BUF_SIZE = 13744 + 64 KiB)
        // writable, 8-byte-aligned bytes, exclusively borrowed for the call. The kernel
        // copies in and back out `sizeof (zfs_cmd_t)` of its build: 13744 on every version
        // `_checked` admits, and far below the buffer for any plausible newer struct, so it
        // never writes past memory we own. The embedded nvlist pointers are the caller's
        // contract (above); ZfsCmd starts all zero, so every field the caller did not set
        // reads as "not set" to SET_PROP and POOL_STATS.
        let rc = unsafe {
            libc::ioctl(
                self.dev.as_raw_fd(),
                request as libc::c_ulong,
                zc.as_mut_ptr(),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(Errno(
                std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the module every call tries again and fails the same way (a cached failure
    /// would also fail, but here `HANDLE` must stay empty); on a host with it, the handle
    /// is kept.
    #[test]
    fn a_failed_init_is_not_kept() {
        if std::path::Path::new("/dev/zfs").exists() {
            let a = Zfs::get().unwrap() as *const Zfs;
            assert_eq!(a, Zfs::get().unwrap() as *const Zfs);
            return;
        }
        for _ in 0..2 {
            let e = Zfs::get().unwrap_err();
            assert!(e.is_errno(libc::ENOENT), "{e}");
            assert!(e.to_string().contains("modprobe zfs"), "{e}");
            assert!(HANDLE.get().is_none());
        }
    }
}
