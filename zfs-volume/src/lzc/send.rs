//! Send streams (full or incremental) to a file descriptor, and their size estimates.

use super::util::name;
use super::{Errno, Zfs};
use crate::error::{Error, Op, Result};
use std::os::fd::RawFd;
use std::ptr;
use zfs_core_sys as sys;

/// Flags for [`Zfs::send`] (`lzc_send_flags`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendFlags {
    /// Embed small blocks in block pointers (`LZC_SEND_FLAG_EMBED_DATA`).
    pub embed_data: bool,
    /// Allow blocks over 128 KiB (`LZC_SEND_FLAG_LARGE_BLOCK`).
    pub large_block: bool,
    /// Send compressed blocks as they are on disk (`LZC_SEND_FLAG_COMPRESS`).
    pub compress: bool,
    /// Raw (encrypted) send (`LZC_SEND_FLAG_RAW`).
    pub raw: bool,
}

impl SendFlags {
    fn bits(self) -> sys::lzc_send_flags {
        let mut f = 0;
        if self.embed_data {
            f |= sys::LZC_SEND_FLAG_EMBED_DATA;
        }
        if self.large_block {
            f |= sys::LZC_SEND_FLAG_LARGE_BLOCK;
        }
        if self.compress {
            f |= sys::LZC_SEND_FLAG_COMPRESS;
        }
        if self.raw {
            f |= sys::LZC_SEND_FLAG_RAW;
        }
        f
    }
}

impl Zfs {
    /// Write the send stream of `snapshot` (incremental from `from`, a snapshot or
    /// `#bookmark`, when given) to `fd`. On OpenZFS 2.1 the descriptor must be a pipe,
    /// socket or regular file (2.1's libzfs_core has no splice helper for /dev/null and
    /// friends).
    ///
    /// ```no_run
    /// use std::os::fd::AsRawFd;
    /// let f = std::fs::File::create("/tmp/s.zstream").unwrap();
    /// zfs_volume::Zfs::get()?.send("tank/a@s1", None, f.as_raw_fd(), Default::default())?;
    /// # Ok::<(), zfs_volume::Error>(())
    /// ```
    pub fn send(
        &self,
        snapshot: &str,
        from: Option<&str>,
        fd: RawFd,
        flags: SendFlags,
    ) -> Result<()> {
        let s = name(snapshot)?;
        let f = from.map(name).transpose()?;
        let fp = f.as_ref().map_or(ptr::null(), |c| c.as_ptr());
        // SAFETY: valid strings (or NULL for a full send); fd is the caller's.
        let rc = unsafe { sys::lzc_send(s.as_ptr(), fp, fd, flags.bits()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::zfs(Op::Send, snapshot, Errno(rc)))
        }
    }

    /// Estimated size in bytes of the stream [`Zfs::send`] would write.
    ///
    /// ```no_run
    /// let n = zfs_volume::Zfs::get()?.send_space("tank/a@s1", None, Default::default())?;
    /// # Ok::<(), zfs_volume::Error>(())
    /// ```
    pub fn send_space(&self, snapshot: &str, from: Option<&str>, flags: SendFlags) -> Result<u64> {
        let s = name(snapshot)?;
        let f = from.map(name).transpose()?;
        let fp = f.as_ref().map_or(ptr::null(), |c| c.as_ptr());
        let mut space = 0u64;
        // SAFETY: valid strings; space is a valid out-pointer.
        let rc = unsafe { sys::lzc_send_space(s.as_ptr(), fp, flags.bits(), &mut space) };
        if rc == 0 {
            Ok(space)
        } else {
            Err(Error::zfs(Op::SendSpace, snapshot, Errno(rc)))
        }
    }
}
