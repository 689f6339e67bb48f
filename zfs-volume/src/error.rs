//! The SR/Volume layer's error type: the safe ZFS layer's errors (wrapped, one variant) and the
//! SR's own conditions.
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
    /// A call of the safe ZFS layer failed: a libzfs_core call or ioctl, a channel program,
    /// an nvlist, an argument it refused, a send stream (its message says which, and why).
    #[error(transparent)]
    Zfs(#[from] libzfs_core::Error),
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
    /// Persistent state under the SR does not make sense (should not happen; run
    /// `xapi-zvol check`).
    #[error("inconsistent SR state: {0}")]
    Corrupt(String),
}

impl From<NvListError> for Error {
    fn from(e: NvListError) -> Error {
        Error::Zfs(e.into())
    }
}

impl Error {
    /// A failed ZFS call, with the standard reason for `op` and `errno`.
    pub fn zfs(op: Op, target: impl Into<String>, errno: Errno) -> Error {
        Error::Zfs(libzfs_core::Error::zfs(op, target, errno))
    }

    /// A failed ZFS call with per-item errors (e.g. lzc_snapshot's errlist).
    pub fn zfs_items(
        op: Op,
        target: impl Into<String>,
        errno: Errno,
        items: Vec<(String, Errno)>,
    ) -> Error {
        Error::Zfs(libzfs_core::Error::zfs_items(op, target, errno, items))
    }

    /// An invalid argument.
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// The safe layer's error, when this is one.
    pub fn zfs_error(&self) -> Option<&libzfs_core::Error> {
        match self {
            Error::Zfs(e) => Some(e),
            _ => None,
        }
    }

    /// The errno behind a ZFS or channel-program failure.
    pub fn errno(&self) -> Option<Errno> {
        self.zfs_error().and_then(libzfs_core::Error::errno)
    }

    /// The pool a ZFS or channel-program failure happened in.
    pub fn pool(&self) -> Option<&str> {
        self.zfs_error().and_then(libzfs_core::Error::pool)
    }

    /// True when the failure is this errno.
    pub fn is_errno(&self, e: i32) -> bool {
        self.errno() == Some(Errno(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrapped error renders as the library's (whose own tests check the sentences), and
    /// its errno and pool are read through.
    #[test]
    fn the_safe_layer_error_shows_through() {
        let inner = libzfs_core::Error::zfs(Op::Destroy, "tank/x", Errno(libc::EBUSY));
        let text = inner.to_string();
        let e = Error::from(inner);
        assert_eq!(e.to_string(), text);
        assert!(e.is_errno(libc::EBUSY));
        assert_eq!(e.pool(), Some("tank"));
        let e = Error::invalid("key", "empty");
        assert_eq!((e.errno(), e.pool()), (None, None));
    }
}
