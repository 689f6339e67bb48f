//! The crate's one error type.
//!
//! Every variant renders as a sentence an operator can act on ("cannot destroy
//! tank/x@s: it has dependent clones (EEXIST)"): the operation, what it was done to, and the
//! errno read in the light of the operation.

use crate::nvlist::NvListError;
use crate::Errno;
use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The libzfs_core (or raw ioctl) operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `libzfs_core_init` / opening `/dev/zfs`.
    Init,
    /// `lzc_create`.
    Create,
    /// `lzc_clone`.
    Clone,
    /// `lzc_snapshot`.
    Snapshot,
    /// `lzc_destroy` of a dataset (or one snapshot).
    Destroy,
    /// `lzc_destroy_snaps`.
    DestroySnapshots,
    /// `lzc_promote`.
    Promote,
    /// `lzc_rename`.
    Rename,
    /// `lzc_rollback_to`.
    Rollback,
    /// `lzc_hold`.
    Hold,
    /// `lzc_release`.
    Release,
    /// `lzc_get_holds`.
    GetHolds,
    /// `lzc_bookmark`.
    Bookmark,
    /// `lzc_get_bookmarks`.
    GetBookmarks,
    /// `lzc_destroy_bookmarks`.
    DestroyBookmarks,
    /// `lzc_send`.
    Send,
    /// `lzc_send_space`.
    SendSpace,
    /// `lzc_sync`.
    Sync,
    /// `lzc_channel_program` / `lzc_channel_program_nosync`.
    ChannelProgram,
    /// The `ZFS_IOC_SET_PROP` ioctl.
    SetProperties,
    /// The `ZFS_IOC_POOL_STATS` ioctl.
    PoolStats,
    /// Reading dataset properties (a nosync channel program).
    GetProperties,
    /// `lzc_snaprange_space`.
    SnaprangeSpace,
    /// `lzc_send` of an incremental stream read for its changed blocks
    /// ([`crate::Zfs::changed_blocks`]).
    ChangedBlocks,
    /// Listing a dataset's children, snapshots or bookmarks ([`crate::Zfs::list`], a
    /// nosync channel program).
    List,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Op::Init => "initialise libzfs_core for",
            Op::Create => "create",
            Op::Clone => "clone into",
            Op::Snapshot => "snapshot",
            Op::Destroy => "destroy",
            Op::DestroySnapshots => "destroy snapshots",
            Op::Promote => "promote",
            Op::Rename => "rename",
            Op::Rollback => "roll back",
            Op::Hold => "hold",
            Op::Release => "release",
            Op::GetHolds => "list holds of",
            Op::Bookmark => "bookmark",
            Op::GetBookmarks => "list bookmarks of",
            Op::DestroyBookmarks => "destroy bookmarks",
            Op::Send => "send",
            Op::SendSpace => "estimate the send size of",
            Op::Sync => "sync pool",
            Op::ChannelProgram => "run a channel program on pool",
            Op::SetProperties => "set properties of",
            Op::PoolStats => "read the configuration of pool",
            Op::GetProperties => "read properties of",
            Op::SnaprangeSpace => "compute the space used by snapshots",
            Op::ChangedBlocks => "list the changed blocks of",
            Op::List => "list",
        };
        f.write_str(s)
    }
}

/// Why an operation failed, in words: the errno read in the light of the operation.
pub fn reason(op: Op, errno: Errno) -> String {
    use libc::*;
    let r = match (op, errno.0) {
        (Op::Init, ENOENT) => "/dev/zfs is missing: is the zfs kernel module loaded (modprobe zfs)?",
        (Op::DestroySnapshots, EEXIST) => "it has dependent clones",
        (Op::Destroy, EEXIST) => "it has children or dependent clones",
        (Op::Destroy, EBUSY) => "it has snapshots, holds, or is open (in use)",
        (Op::DestroySnapshots, EBUSY) => "a snapshot has user holds or is in use",
        (Op::Promote, EEXIST) => "a snapshot of the same name already exists in the clone",
        (Op::Promote, EINVAL) => "it is not a clone",
        (Op::Promote, EBUSY) => "a snapshot that would move is held or in use",
        (Op::Rollback, EEXIST) => "a more recent snapshot or bookmark exists",
        (Op::Rollback, ESRCH) => "the target is not a snapshot of this dataset",
        (Op::Rollback, EINVAL) => "only a filesystem or volume can be rolled back",
        (Op::Snapshot, EXDEV) => "all snapshots of one call must be in one pool, one per dataset",
        (Op::Snapshot, EEXIST) => "snapshot already exists",
        (Op::Clone, ENOENT) => "the origin snapshot or the parent dataset does not exist",
        (Op::Create, ENOENT) | (Op::Clone, ENOTDIR) => "the parent dataset does not exist",
        (Op::Create, EINVAL) => "invalid properties (volsize must be > 0 and a multiple of volblocksize)",
        (Op::Create, EDOM) => "volblocksize must be a power of 2 from 512 bytes to 128 KiB (16 MiB with large_blocks)",
        (Op::Create, EEXIST) | (Op::Clone, EEXIST) => "a dataset of this name already exists",
        (Op::Create, ENOSPC) | (Op::SetProperties, ENOSPC) => {
            "not enough free space in the pool for the reservation (use a thin volume or free space)"
        }
        (Op::Hold, EEXIST) => "the snapshot already has a hold with this tag",
        (Op::Hold, ENOENT) | (Op::GetHolds, ENOENT) => "no such snapshot",
        (Op::Release, ENOENT) => "no such snapshot",
        (Op::Destroy, ENOENT) | (Op::Rename, ENOENT) | (Op::Promote, ENOENT) => "dataset does not exist",
        (Op::Rename, EEXIST) => "the new name is already taken",
        (Op::Rollback, ENOENT) => "the dataset does not exist",
        (Op::Bookmark, EEXIST) => "a bookmark of this name already exists",
        (Op::Bookmark, ENOENT) => "the source snapshot does not exist",
        (Op::Send, EXDEV) | (Op::SendSpace, EXDEV) => "the incremental source is not an earlier snapshot of the same dataset",
        (Op::ChangedBlocks, EXDEV) => "the source is not an earlier snapshot or bookmark of the same volume (or of the snapshot it was cloned from)",
        (Op::ChangedBlocks, ENOENT) => "no such snapshot or bookmark",
        (Op::ChangedBlocks, ESRCH) => "no such bookmark",
        (Op::Send, EBADF) => "the output file descriptor is not open for writing",
        (Op::Send, ENOENT) | (Op::SendSpace, ENOENT) | (Op::SnaprangeSpace, ENOENT) => "no such snapshot or bookmark",
        (Op::GetProperties, ENOENT) | (Op::List, ENOENT) => "dataset does not exist",
        (Op::Rename, EXDEV) => "a snapshot can only be renamed within its dataset",
        (Op::SetProperties, EINVAL) => "invalid property or value",
        (Op::ChannelProgram, EINVAL) => "the program did not compile or its limits/arguments are invalid",
        (Op::ChannelProgram, ETIME) => "the program hit its instruction limit",
        (Op::ChannelProgram, ENOSPC) => "the program hit its memory limit",
        (Op::ChannelProgram, ENOMEM) => "the program's output did not fit in its memory limit",
        (Op::ChannelProgram, ECHRNG) => "the program failed at run time",
        _ => return errno.describe(),
    };
    r.to_string()
}

/// The crate's error type.
///
/// ```
/// use libzfs_core::{Error, Errno, Op};
/// let e = Error::zfs(Op::DestroySnapshots, "tank/x@s", Errno(libc::EEXIST));
/// assert_eq!(e.to_string(), "cannot destroy snapshots tank/x@s: it has dependent clones (EEXIST)");
/// assert_eq!(e.errno(), Some(Errno(libc::EEXIST)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A libzfs_core call or ZFS ioctl failed.
    #[error("cannot {op} {target}: {reason} ({}){}", errno.name(), fmt_items(*op, target, *errno, items))]
    Zfs {
        /// What was attempted.
        op: Op,
        /// The dataset, snapshot or pool it was attempted on.
        target: String,
        /// The error number returned.
        errno: Errno,
        /// [`reason`] of `op` and `errno`, or a more precise one.
        reason: String,
        /// Per-item errors (lzc_snapshot, lzc_destroy_snaps, holds, ...): name → errno,
        /// for the items that failed only. A batch call's `target` names these items, not
        /// the whole batch.
        items: Vec<(String, Errno)>,
    },
    /// A channel program ran but reported an error (Lua error or a failed step).
    #[error("channel program {program} on pool {pool} failed ({}): {message}", errno.name())]
    Program {
        /// Program name (the .lua file).
        program: String,
        /// Pool it ran on.
        pool: String,
        /// The ioctl's errno (ECHRNG for a Lua runtime error).
        errno: Errno,
        /// The message from the program's output.
        message: String,
    },
    /// Building or reading an nvlist failed.
    #[error(transparent)]
    NvList(#[from] NvListError),
    /// An argument was rejected before reaching ZFS.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid ("dataset name", "volblocksize", ...).
        what: String,
        /// Why.
        reason: String,
    },
    /// A filesystem or device operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A ZFS send stream broke the stream format, or ended early. Nothing is derived from
    /// such a stream: a changed-block list read from a misread stream could miss blocks.
    #[error(
        "cannot use the send stream{}: {reason} (at byte {offset} of the stream)",
        fmt_of(target)
    )]
    Stream {
        /// What the stream was sent from ("tank/v@s2 since tank/v#b1"), or empty.
        target: String,
        /// Where in the stream the problem is, in bytes from its start.
        offset: u64,
        /// What is wrong, and what it likely means.
        reason: String,
    },
}

fn fmt_of(target: &str) -> String {
    if target.is_empty() {
        String::new()
    } else {
        format!(" of {target}")
    }
}

fn fmt_items(op: Op, target: &str, errno: Errno, items: &[(String, Errno)]) -> String {
    // The one failed item the sentence is already about is not repeated.
    if let [(n, e)] = items {
        if n == target && *e == errno {
            return String::new();
        }
    }
    if items.is_empty() {
        return String::new();
    }
    // Each item's errno read in the light of the operation ("has dependent clones", not
    // the generic "dataset already exists").
    let list: Vec<String> = items
        .iter()
        .map(|(n, e)| format!("{n}: {}", reason(op, *e)))
        .collect();
    format!(" [{}]", list.join("; "))
}

impl Error {
    /// A failed ZFS call, with the standard reason for `op` and `errno`.
    pub fn zfs(op: Op, target: impl Into<String>, errno: Errno) -> Error {
        Error::Zfs {
            op,
            target: target.into(),
            errno,
            reason: reason(op, errno),
            items: vec![],
        }
    }

    /// A failed ZFS call with per-item errors (e.g. lzc_snapshot's errlist).
    pub fn zfs_items(
        op: Op,
        target: impl Into<String>,
        errno: Errno,
        items: Vec<(String, Errno)>,
    ) -> Error {
        Error::Zfs {
            op,
            target: target.into(),
            errno,
            reason: reason(op, errno),
            items,
        }
    }

    /// An invalid argument.
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// A malformed or truncated send stream (`offset` bytes from its start); the caller
    /// names the stream's snapshots with [`Error::of_stream`].
    pub fn stream(offset: u64, reason: impl Into<String>) -> Error {
        Error::Stream {
            target: String::new(),
            offset,
            reason: reason.into(),
        }
    }

    /// The same error, a [`Error::Stream`] now naming what the stream was sent from; any
    /// other error unchanged.
    pub fn of_stream(self, what: impl Into<String>) -> Error {
        match self {
            Error::Stream { offset, reason, .. } => Error::Stream {
                target: what.into(),
                offset,
                reason,
            },
            e => e,
        }
    }

    /// The errno behind a ZFS or channel-program failure.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Zfs { errno, .. } | Error::Program { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// The pool a ZFS or channel-program failure happened in.
    pub fn pool(&self) -> Option<&str> {
        match self {
            Error::Zfs { target, .. } => target
                .split(['/', '@', '#'])
                .next()
                .filter(|p| !p.is_empty()),
            Error::Program { pool, .. } => Some(pool),
            _ => None,
        }
    }

    /// True when the failure is this errno.
    pub fn is_errno(&self, e: i32) -> bool {
        self.errno() == Some(Errno(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_problem() {
        let e = Error::zfs(Op::Destroy, "tank/x", Errno(libc::EBUSY));
        assert_eq!(
            e.to_string(),
            "cannot destroy tank/x: it has snapshots, holds, or is open (in use) (EBUSY)"
        );
        let e = Error::zfs_items(
            Op::Snapshot,
            "tank/a@s, tank/b@s",
            Errno(libc::ENOENT),
            vec![
                ("tank/a@s".into(), Errno(libc::ENOENT)),
                ("tank/b@s".into(), Errno(libc::ENOENT)),
            ],
        );
        assert!(
            e.to_string()
                .ends_with("[tank/a@s: dataset does not exist; tank/b@s: dataset does not exist]"),
            "{e}"
        );
        // One failed item that is the target: not said twice.
        let e = Error::zfs_items(
            Op::Snapshot,
            "tank/a@s",
            Errno(libc::ENOENT),
            vec![("tank/a@s".into(), Errno(libc::ENOENT))],
        );
        assert!(!e.to_string().contains('['), "{e}");
        let e = Error::zfs(Op::Init, "/dev/zfs", Errno(libc::ENOENT));
        assert!(e.to_string().contains("modprobe zfs"));
        assert!(Error::zfs(Op::Create, "p/x", Errno(1029))
            .to_string()
            .contains("ZFS_ERR_IOC_CMD_UNAVAIL"));
    }
}
