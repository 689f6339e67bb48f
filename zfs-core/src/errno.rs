//! Error numbers returned by libzfs_core: POSIX errnos plus the ZFS-specific codes
//! (`zfs_errno_t`, >= 1024). Kept as a number, never a closed enum, because a newer kernel
//! module may return codes our headers do not know.

use std::fmt;

/// An error number as returned by a libzfs_core call or the kernel.
///
/// ```
/// use libzfs_core::Errno;
/// assert_eq!(Errno(libc::EEXIST).name(), "EEXIST");
/// assert_eq!(Errno(1029).name(), "ZFS_ERR_IOC_CMD_UNAVAIL");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

/// ZFS-specific error names by value, as in OpenZFS 2.4's `zfs_errno_t` (a superset of
/// 2.1's). Hard-coded so that names are known whatever headers we were built against.
const ZFS_ERRNO_NAMES: &[&str] = &[
    "ZFS_ERR_CHECKPOINT_EXISTS",
    "ZFS_ERR_DISCARDING_CHECKPOINT",
    "ZFS_ERR_NO_CHECKPOINT",
    "ZFS_ERR_DEVRM_IN_PROGRESS",
    "ZFS_ERR_VDEV_TOO_BIG",
    "ZFS_ERR_IOC_CMD_UNAVAIL",
    "ZFS_ERR_IOC_ARG_UNAVAIL",
    "ZFS_ERR_IOC_ARG_REQUIRED",
    "ZFS_ERR_IOC_ARG_BADTYPE",
    "ZFS_ERR_WRONG_PARENT",
    "ZFS_ERR_FROM_IVSET_GUID_MISSING",
    "ZFS_ERR_FROM_IVSET_GUID_MISMATCH",
    "ZFS_ERR_SPILL_BLOCK_FLAG_MISSING",
    "ZFS_ERR_UNKNOWN_SEND_STREAM_FEATURE",
    "ZFS_ERR_EXPORT_IN_PROGRESS",
    "ZFS_ERR_BOOKMARK_SOURCE_NOT_ANCESTOR",
    "ZFS_ERR_STREAM_TRUNCATED",
    "ZFS_ERR_STREAM_LARGE_BLOCK_MISMATCH",
    "ZFS_ERR_RESILVER_IN_PROGRESS",
    "ZFS_ERR_REBUILD_IN_PROGRESS",
    "ZFS_ERR_BADPROP",
    "ZFS_ERR_VDEV_NOTSUP",
    "ZFS_ERR_NOT_USER_NAMESPACE",
    "ZFS_ERR_RESUME_EXISTS",
    "ZFS_ERR_CRYPTO_NOTSUP",
    "ZFS_ERR_RAIDZ_EXPAND_IN_PROGRESS",
    "ZFS_ERR_ASHIFT_MISMATCH",
    "ZFS_ERR_STREAM_LARGE_MICROZAP",
];

/// First ZFS-specific error number.
pub const ZFS_ERRNO_BASE: i32 = 1024;

impl Errno {
    /// True for the ZFS-specific codes (>= 1024).
    ///
    /// ```
    /// # use libzfs_core::Errno;
    /// assert!(Errno(1024).is_zfs_specific());
    /// assert!(!Errno(libc::ENOENT).is_zfs_specific());
    /// ```
    pub fn is_zfs_specific(self) -> bool {
        self.0 >= ZFS_ERRNO_BASE
    }

    /// The symbolic name (`EBUSY`, `ZFS_ERR_BADPROP`, or `errno 4242` when unknown).
    ///
    /// ```
    /// # use libzfs_core::Errno;
    /// assert_eq!(Errno(libc::EBUSY).name(), "EBUSY");
    /// assert_eq!(Errno(4242).name(), "errno 4242");
    /// ```
    pub fn name(self) -> String {
        if self.is_zfs_specific() {
            return match ZFS_ERRNO_NAMES.get((self.0 - ZFS_ERRNO_BASE) as usize) {
                Some(n) => (*n).to_string(),
                None => format!("errno {}", self.0),
            };
        }
        let n = match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::ESRCH => "ESRCH",
            libc::EINTR => "EINTR",
            libc::EIO => "EIO",
            libc::ENXIO => "ENXIO",
            libc::E2BIG => "E2BIG",
            libc::EBADF => "EBADF",
            libc::EAGAIN => "EAGAIN",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EFAULT => "EFAULT",
            libc::EBUSY => "EBUSY",
            libc::EEXIST => "EEXIST",
            libc::EXDEV => "EXDEV",
            libc::ENODEV => "ENODEV",
            libc::ENOTDIR => "ENOTDIR",
            libc::EINVAL => "EINVAL",
            libc::ENOSPC => "ENOSPC",
            libc::EROFS => "EROFS",
            libc::EPIPE => "EPIPE",
            libc::EDOM => "EDOM",
            libc::ERANGE => "ERANGE",
            libc::ENAMETOOLONG => "ENAMETOOLONG",
            libc::ENOTSUP => "ENOTSUP",
            libc::ENOTEMPTY => "ENOTEMPTY",
            libc::ECHRNG => "ECHRNG",
            libc::ETIME => "ETIME",
            libc::EDQUOT => "EDQUOT",
            libc::EBADE => "EBADE (checksum error)",
            libc::EOVERFLOW => "EOVERFLOW",
            libc::ECANCELED => "ECANCELED",
            libc::ENOLINK => "ENOLINK",
            _ => return format!("errno {}", self.0),
        };
        n.to_string()
    }

    /// A short human description of the number itself, independent of the operation.
    ///
    /// ```
    /// # use libzfs_core::Errno;
    /// assert_eq!(Errno(libc::ENOSPC).describe(), "out of space in the pool");
    /// ```
    pub fn describe(self) -> String {
        match self.0 {
            libc::ENOENT => "dataset does not exist".into(),
            libc::EEXIST => "dataset already exists".into(),
            libc::EBUSY => "dataset is busy".into(),
            libc::ENOSPC => "out of space in the pool".into(),
            libc::EDQUOT => "quota or snapshot limit exceeded".into(),
            libc::EPERM | libc::EACCES => "permission denied (libzfs_core needs root)".into(),
            libc::EINVAL => "invalid argument".into(),
            libc::EXDEV => "datasets are in different pools".into(),
            libc::ENAMETOOLONG => "name too long".into(),
            libc::EROFS => "pool or dataset is read-only".into(),
            libc::EIO => "I/O error (pool suspended or faulted?)".into(),
            libc::ENXIO => "pool is unavailable".into(),
            libc::ENOTSUP => "not supported by this pool or ZFS version".into(),
            libc::EDOM => "value out of range".into(),
            libc::ESRCH => "no such snapshot".into(),
            1029 => "the ZFS kernel module does not know this call: the module version is older than the userland (reboot or reload zfs)".into(),
            1030 => "the ZFS kernel module does not accept an argument (userland/module version skew?)".into(),
            1031 => "a required argument is missing".into(),
            1032 => "an argument has the wrong type".into(),
            1044 => "invalid property value".into(),
            _ => {
                if self.is_zfs_specific() {
                    self.name()
                } else {
                    std::io::Error::from_raw_os_error(self.0).to_string()
                }
            }
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.describe(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zfs_names_match_the_headers() {
        use libzfs_core_sys as sys;
        assert_eq!(
            Errno(sys::ZFS_ERR_CHECKPOINT_EXISTS as i32).name(),
            "ZFS_ERR_CHECKPOINT_EXISTS"
        );
        assert_eq!(
            Errno(sys::ZFS_ERR_IOC_ARG_BADTYPE as i32).name(),
            "ZFS_ERR_IOC_ARG_BADTYPE"
        );
        assert_eq!(Errno(sys::ZFS_ERR_BADPROP as i32).name(), "ZFS_ERR_BADPROP");
        assert_eq!(
            Errno(sys::ZFS_ERR_IOC_CMD_UNAVAIL as i32).name(),
            "ZFS_ERR_IOC_CMD_UNAVAIL"
        );
    }

    #[test]
    fn display_is_actionable() {
        assert_eq!(Errno(libc::EBUSY).to_string(), "dataset is busy (EBUSY)");
        assert!(Errno(1029).to_string().contains("version"));
        assert_eq!(Errno(9999).name(), "errno 9999");
    }
}
