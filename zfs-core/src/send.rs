//! Send streams (full or incremental) to a file descriptor, and their size estimates.

use super::send_stream::{mark_changes, BlockBitmap, StreamStats};
use super::util::name;
use super::{Errno, Zfs};
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr;

/// Flags for [`Zfs::send`] (`lzc_send_flags`). Non-exhaustive (libzfs_core has more flags
/// than these): start from [`SendFlags::default`] (a plain stream) and switch on what you
/// need.
///
/// ```
/// let f = libzfs_core::SendFlags::default().compress(true).large_block(true);
/// assert!(f.compress && f.large_block && !f.raw);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Embed small blocks in block pointers.
    pub fn embed_data(mut self, on: bool) -> SendFlags {
        self.embed_data = on;
        self
    }
    /// Allow blocks over 128 KiB.
    pub fn large_block(mut self, on: bool) -> SendFlags {
        self.large_block = on;
        self
    }
    /// Send compressed blocks as they are on disk.
    pub fn compress(mut self, on: bool) -> SendFlags {
        self.compress = on;
        self
    }
    /// Raw (encrypted) send.
    pub fn raw(mut self, on: bool) -> SendFlags {
        self.raw = on;
        self
    }

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
    /// `#bookmark`, when given) to `fd` (a `File`, a pipe end, a socket: anything
    /// [`AsFd`], borrowed for the call). On OpenZFS 2.1 the descriptor must be a pipe,
    /// socket or regular file (2.1's libzfs_core has no splice helper for /dev/null and
    /// friends).
    ///
    /// Errors: `ENOENT` (no such snapshot or bookmark), `EXDEV` (`from` is not an earlier
    /// snapshot of the same dataset), `EBADF` (`fd` is not open for writing), `EPIPE` (the
    /// reader went away).
    ///
    /// ```no_run
    /// let f = std::fs::File::create("/tmp/s.zstream").unwrap();
    /// libzfs_core::Zfs::get()?.send("tank/a@s1", None, &f, Default::default())?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn send(
        &self,
        snapshot: &str,
        from: Option<&str>,
        fd: impl AsFd,
        flags: SendFlags,
    ) -> Result<()> {
        let s = name(snapshot)?;
        let f = from.map(name).transpose()?;
        let fp = f.as_ref().map_or(ptr::null(), |c| c.as_ptr());
        let fd = fd.as_fd();
        // SAFETY: valid strings (or NULL for a full send); `fd` is an open descriptor,
        // borrowed until the call returns.
        let rc = unsafe { sys::lzc_send(s.as_ptr(), fp, fd.as_raw_fd(), flags.bits()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::zfs(Op::Send, snapshot, Errno(rc)))
        }
    }

    /// Estimated size in bytes of the stream [`Zfs::send`] would write.
    ///
    /// ```no_run
    /// let n = libzfs_core::Zfs::get()?.send_space("tank/a@s1", None, Default::default())?;
    /// # Ok::<(), libzfs_core::Error>(())
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

    /// Mark in `bitmap` every block of the zvol that may differ between `from` (a snapshot
    /// `vol@s` or a bookmark `vol#b`, an earlier point of `to`'s lineage) and the snapshot
    /// `to`: every block the incremental send stream from `from` to `to` writes or frees
    /// (`docs/zfs-facts.md` §1.10). Size `bitmap` for `to`'s volsize; bits already set
    /// stay set. No block that differs is left unmarked. Unchanged blocks may be marked too:
    /// whole ZFS blocks (volblocksize) are marked, and FREE records also cover holes that
    /// were holes at both points (past the last written block, and never-written ranges
    /// under a changed indirect block). On a thin volume these can be most of the bitmap.
    /// A volume grown since `from` has its new part marked (a resize frees the data past
    /// the new size, which the stream sends as a FREE from the old end).
    ///
    /// The stream is sent in-process into a pipe and read on the calling thread as it is
    /// written, never stored: memory is the bitmap plus a fixed buffer.
    ///
    /// Errors: the send's, as [`Op::ChangedBlocks`] (`ENOENT`: no such snapshot; `ESRCH`:
    /// no such bookmark; `EXDEV`: `from` is not an earlier point of `to`'s lineage), else
    /// [`Error::Stream`] for a stream that does not read as one. On any error every bit of
    /// `bitmap` is set (a caller that ignored the error would copy everything rather than
    /// miss a block).
    ///
    /// ```no_run
    /// use libzfs_core::BlockBitmap;
    /// let mut changed = BlockBitmap::new(64 << 10, 64 << 30);
    /// let stats = libzfs_core::Zfs::get()?.changed_blocks("tank/v@s2", "tank/v#s1", &mut changed)?;
    /// println!("{} of {} blocks changed, {} stream bytes", changed.count(), changed.blocks(), stats.bytes);
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn changed_blocks(
        &self,
        to: &str,
        from: &str,
        bitmap: &mut BlockBitmap,
    ) -> Result<StreamStats> {
        let r = self.changed_blocks_inner(to, from, bitmap);
        if r.is_err() {
            bitmap.mark_all();
        }
        r
    }

    fn changed_blocks_inner(
        &self,
        to: &str,
        from: &str,
        bitmap: &mut BlockBitmap,
    ) -> Result<StreamStats> {
        // lzc_send given a dataset rather than a snapshot sends the live dataset, a moving
        // point; the kernel checks only that `from` has a '@' or '#'.
        if !to.contains('@') {
            return Err(Error::invalid(
                "snapshot name",
                format!("{to:?} is not a snapshot (dataset@snapshot)"),
            ));
        }
        if !from.contains(['@', '#']) {
            return Err(Error::invalid(
                "snapshot or bookmark name",
                format!("{from:?} is neither a snapshot (dataset@snapshot) nor a bookmark (dataset#bookmark)"),
            ));
        }
        let what = format!("{to} since {from}");
        // The stream as ZFS stores it is the cheapest to send: compressed blocks stay
        // compressed (COMPRESS), large blocks whole (LARGE_BLOCK), and blocks embedded in
        // their block pointers are sent as such (EMBED_DATA). Every kind is read.
        let flags = SendFlags {
            compress: true,
            large_block: true,
            embed_data: true,
            raw: false,
        };
        let (sent, parsed) = through_pipe(
            &what,
            |fd| self.send(to, Some(from), fd, flags),
            // A zvol's data is object 1 (ZVOL_OBJ).
            |stream| mark_changes(stream, 1, bitmap),
        )?;
        match (sent, parsed) {
            (Ok(()), parsed) => parsed.map_err(|e| e.of_stream(what)),
            // The sender stopped because the reader did: the reader's error says why.
            (Err(e), Err(p)) if e.is_errno(libc::EPIPE) => Err(p.of_stream(what)),
            // The send failed (ENOENT, EXDEV...): its error, not that the stream was
            // empty or cut short.
            (Err(e), _) => Err(match e.errno() {
                Some(errno) => Error::zfs(Op::ChangedBlocks, what, errno),
                None => e,
            }),
        }
    }
}

/// Run `send` on a new thread, writing into a pipe, and `read` on the calling thread,
/// reading the pipe's other end as it is written; both have returned when this returns.
///
/// The write end is closed as soon as `send` returns, so the reader then sees the end of
/// the stream. The read end is given to `read`, so a reader that stops early closes it,
/// and the sender's next write fails with EPIPE instead of blocking for ever. The outer
/// error is a pipe or thread that could not be made.
fn through_pipe<T>(
    what: &str,
    send: impl FnOnce(BorrowedFd<'_>) -> Result<()> + Send,
    read: impl FnOnce(File) -> Result<T>,
) -> Result<(Result<()>, Result<T>)> {
    let (read_end, write_end) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::Io {
            what: format!("creating a pipe for the send stream of {what}"),
            source: e.into(),
        })?;
    // A larger pipe wakes the reader less often. 2.2+'s lzc_send grows it to the system's
    // maximum itself; 2.1's does not. The default (64 KiB) works too.
    let _ = rustix::pipe::fcntl_setpipe_size(&write_end, 1 << 20);
    std::thread::scope(|s| {
        let sender = std::thread::Builder::new()
            .name("zfs-send".into())
            .spawn_scoped(s, move || {
                ignore_sigpipe_in_this_thread();
                let r = send(write_end.as_fd());
                drop(write_end);
                r
            })
            .map_err(|e| Error::Io {
                what: format!("starting the thread that sends {what}"),
                source: e,
            })?;
        let read = read(File::from(read_end));
        let sent = sender
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        Ok((sent, read))
    })
}

/// Block SIGPIPE in the calling thread. lzc_send writes into the pipe from the ioctl,
/// and a write to a pipe whose reader closed raises SIGPIPE in the writing thread, which
/// kills the process unless SIGPIPE is ignored (Rust programs ignore it, other hosts of
/// this library may not). Blocked, the signal stays pending on this thread and goes with
/// it; the write still fails with EPIPE. Used only by the sender thread, which ends right
/// after. (2.2+'s libzfs_core writes from a helper thread of its own only when the
/// descriptor is not a pipe; such a thread would inherit this mask.)
fn ignore_sigpipe_in_this_thread() {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use;
    // pthread_sigmask changes only this thread's mask and accepts a null old-set pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Write `total` bytes into `fd` as a sender would; a failed write is the errno.
    fn writer(fd: BorrowedFd<'_>, total: usize) -> Result<()> {
        let chunk = [7u8; 65536];
        let mut left = total;
        while left > 0 {
            match rustix::io::write(fd, &chunk[..left.min(chunk.len())]) {
                Ok(n) => left -= n,
                Err(e) => return Err(Error::zfs(Op::Send, "test", Errno(e.raw_os_error()))),
            }
        }
        Ok(())
    }

    #[test]
    fn the_reader_sees_the_end_when_the_sender_returns() {
        let (sent, read) = through_pipe(
            "test",
            |fd| writer(fd, 3 << 20),
            |mut f| {
                let mut n = 0u64;
                let mut buf = [0u8; 4096];
                loop {
                    match f.read(&mut buf) {
                        Ok(0) => return Ok(n),
                        Ok(k) => n += k as u64,
                        Err(e) => panic!("{e}"),
                    }
                }
            },
        )
        .unwrap();
        sent.unwrap();
        assert_eq!(read.unwrap(), 3 << 20);
    }

    /// The reader gives up after a few bytes of a stream far larger than the pipe: the
    /// sender must end with EPIPE rather than block, and both errors come back.
    fn reader_stops_early() -> (Result<()>, Result<()>) {
        through_pipe(
            "test",
            |fd| writer(fd, 64 << 20),
            |mut f| {
                let mut buf = [0u8; 1000];
                f.read_exact(&mut buf).unwrap();
                Err(Error::stream(1000, "stopped here"))
            },
        )
        .unwrap()
    }

    #[test]
    fn a_reader_that_stops_early_ends_the_sender_with_epipe() {
        let (sent, read) = reader_stops_early();
        assert!(sent.unwrap_err().is_errno(libc::EPIPE));
        assert!(matches!(read, Err(Error::Stream { offset: 1000, .. })));
    }

    const CHILD: &str = "XZVOL_SIGPIPE_DEFAULT_CHILD";

    #[test]
    fn sigpipe_does_not_kill_a_host_that_keeps_its_default_action() {
        if std::env::var_os(CHILD).is_some() {
            // In the child: SIGPIPE as a C program has it (terminate). The sender's EPIPE
            // must not take the process down.
            // SAFETY: restores a standard disposition; this process runs only this test.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            let (sent, _) = reader_stops_early();
            assert!(sent.unwrap_err().is_errno(libc::EPIPE));
            return;
        }
        // The test harness ignores SIGPIPE for every test in the process: check in a
        // process of its own, this same test run alone.
        let name = format!(
            "{}::sigpipe_does_not_kill_a_host_that_keeps_its_default_action",
            module_path!().split_once("::").unwrap().1
        );
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &name, "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "the child ({:?}): {text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
