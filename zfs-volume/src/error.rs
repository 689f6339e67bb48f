//! The crate's one error type, for the safe ZFS layer and the SR/Volume semantics alike.
//!
//! Every variant renders as a sentence an operator can act on ("cannot destroy
//! tank/x@s: it has dependent clones"). The SMAPI adapter maps variants to xapi error
//! codes in one place (smapi-plugin's error module).

use crate::lzc::nvlist::NvListError;
use crate::lzc::Errno;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use libzfs_core::{reason, Op};

/// The crate's error type.
///
/// ```
/// use zfs_volume::{Error, Errno, Op};
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
        /// Per-item errors (lzc_snapshot, lzc_destroy_snaps, holds, ...): name → errno.
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
    /// No VDI with this key in the SR.
    #[error("volume {0} does not exist in this SR")]
    VolumeNotFound(String),
    /// The SR dataset is missing or its pool is not imported.
    #[error("SR {0} does not exist (is its pool imported?)")]
    SrNotFound(String),
    /// A dataset lacks our SR marker: we never touch it.
    #[error(
        "{0} is not an xapi-zvol SR dataset (no xapi-zvol marker property); refusing to touch it"
    )]
    NotOurs(String),
    /// Shrinking a volume was requested.
    #[error("cannot shrink volume {key} from {current} to {requested} bytes: zvols only grow (shrinking would destroy data)")]
    Shrink {
        /// Volume key.
        key: String,
        /// Current size in bytes.
        current: u64,
        /// Requested size in bytes.
        requested: u64,
    },
    /// The operation is refused because the volume is in a state that forbids it.
    #[error("volume {key} cannot be changed: {reason}")]
    Refused {
        /// Volume key.
        key: String,
        /// Why.
        reason: String,
    },
    /// `Volume.list_changed_blocks` cannot compare the two VDIs as asked.
    #[error("cannot list the blocks changed from VDI {from} to VDI {to}: {reason}")]
    Cbt {
        /// The earlier VDI.
        from: String,
        /// The later VDI.
        to: String,
        /// Why, and what to pass instead.
        reason: String,
    },
    /// The volume (its zvol) is open, e.g. attached to a running VM.
    #[error("volume {key} is in use: {detail}")]
    InUse {
        /// Volume key.
        key: String,
        /// What ZFS said.
        detail: String,
    },
    /// Another call holds the SR lock for longer than the bounded wait.
    #[error("SR {sr} is busy: another operation held its lock for more than {waited_secs} s; retry later")]
    Busy {
        /// SR dataset.
        sr: String,
        /// How long we waited.
        waited_secs: u64,
    },
    /// A bad or missing SR configuration key.
    #[error("SR configuration key '{key}': {reason}")]
    Config {
        /// The configuration key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An administrative command (`zpool ...`) failed.
    #[error("{command} failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// The pool has no room for the operation.
    #[error("not enough free space in the pool to {what}: free some space, or use thin provisioning ({detail})")]
    NoSpace {
        /// The operation and size.
        what: String,
        /// What ZFS said.
        detail: String,
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
    /// Persistent state under the SR does not make sense (should not happen; run
    /// `xapi-zvol check`).
    #[error("inconsistent SR state: {0}")]
    Corrupt(String),
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

/// The safe layer's errors become this crate's, variant for variant (the SR layer adds its
/// own variants beside them).
impl From<libzfs_core::Error> for Error {
    fn from(e: libzfs_core::Error) -> Error {
        use libzfs_core::Error as L;
        match e {
            L::Zfs {
                op,
                target,
                errno,
                reason,
                items,
                ..
            } => Error::Zfs {
                op,
                target,
                errno,
                reason,
                items,
            },
            L::Program {
                program,
                pool,
                errno,
                message,
                ..
            } => Error::Program {
                program,
                pool,
                errno,
                message,
            },
            L::NvList(e) => Error::NvList(e),
            L::Invalid { what, reason, .. } => Error::Invalid { what, reason },
            L::Io { what, source, .. } => Error::Io { what, source },
            L::Stream {
                target,
                offset,
                reason,
                ..
            } => Error::Stream {
                target,
                offset,
                reason,
            },
            other => Error::Corrupt(other.to_string()),
        }
    }
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
