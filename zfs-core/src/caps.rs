//! Run-time capability detection: the loaded kernel module's version, and what its
//! channel programs can do. One binary runs on OpenZFS 2.1.11 .. 2.4.x, so callers pick
//! the atomic path (e.g. `zfs.sync.clone`, 2.4+) only where it exists.
//!
//! Also the version gate of the two legacy ioctls (`ZFS_IOC_SET_PROP`,
//! `ZFS_IOC_POOL_STATS`): their `zfs_cmd_t` argument is laid out by hand (zfs-core-sys's
//! `ZfsCmd`), verified for OpenZFS 2.1.x .. 2.4.x only, so on any other module version
//! they are not issued ([`Zfs::legacy_layout`]).

use super::nvlist::{NvList, NvValue};
use super::program::{program, Limits, Program};
use super::{Errno, Zfs};
use crate::error::{Error, Op, Result};
use std::sync::OnceLock;

/// What the running kernel module offers.
///
/// ```no_run
/// let caps = libzfs_core::Zfs::get()?.capabilities()?;
/// if caps.sync_clone { println!("one-txg snapshot+clone available"); }
/// # Ok::<(), libzfs_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The module version string (`/sys/module/zfs/version`, e.g. `2.1.11-1+deb12u1`).
    pub version: String,
    /// (major, minor, patch) parsed from it.
    pub numeric: (u32, u32, u32),
    /// Channel programs have `zfs.sync.clone` (2.4+).
    pub sync_clone: bool,
    /// Channel programs have `zfs.sync.rename_snapshot` (2.2+).
    pub sync_rename_snapshot: bool,
}

static PROBE: Program = program!("capabilities");
static CAPS: OnceLock<Capabilities> = OnceLock::new();

/// Parse `2.1.11-1+deb12u1` into (2, 1, 11).
///
/// ```
/// assert_eq!(libzfs_core::parse_version("2.4.4-1~bpo13+1"), (2, 4, 4));
/// assert_eq!(libzfs_core::parse_version("zfs-2.2.0-rc1"), (2, 2, 0));
/// ```
pub fn parse_version(v: &str) -> (u32, u32, u32) {
    let start = v.find(|c: char| c.is_ascii_digit()).unwrap_or(v.len());
    let mut it = v[start..]
        .split(|c: char| !c.is_ascii_digit())
        .map(|s| s.parse().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

/// The loaded module's version string.
///
/// ```no_run
/// println!("{}", libzfs_core::module_version()?);
/// # Ok::<(), libzfs_core::Error>(())
/// ```
pub fn module_version() -> Result<String> {
    std::fs::read_to_string("/sys/module/zfs/version")
        .map(|s| s.trim().to_string())
        .map_err(|source| Error::Io {
            what: "read /sys/module/zfs/version (is the zfs module loaded?)".into(),
            source,
        })
}

/// First module version whose `zfs_cmd_t` layout (size 13744, the offsets of zfs-core-sys's
/// `ioctl_cmd`) was verified.
pub(crate) const LEGACY_LAYOUT_FROM: (u32, u32, u32) = (2, 1, 0);
/// First module version *not* verified. Not (2, 5, 0): OpenZFS's development tree calls
/// itself x.y.99 once x.y is branched (`META`), so a 2.4.99 module is a 2.5 pre-release
/// whose struct may already have changed.
pub(crate) const LEGACY_LAYOUT_BEFORE: (u32, u32, u32) = (2, 4, 99);
/// [`LEGACY_LAYOUT_FROM`] .. [`LEGACY_LAYOUT_BEFORE`], in words.
pub(crate) const LEGACY_LAYOUT_RANGE: &str = "OpenZFS 2.1.x to 2.4.x";

/// Whether the legacy ioctl `ioctl` may be issued to a module of this version (`version`
/// as the module reports it, `numeric` as [`parse_version`] reads it): `Ok` inside the
/// verified range, otherwise why not, naming the version and the range.
pub(crate) fn check_legacy_layout(
    version: &str,
    numeric: (u32, u32, u32),
    ioctl: &str,
) -> std::result::Result<(), String> {
    if (LEGACY_LAYOUT_FROM..LEGACY_LAYOUT_BEFORE).contains(&numeric) {
        return Ok(());
    }
    let dev = if numeric.2 >= 99 {
        format!(
            " ({}.{}.{} is a development build of the release after {}.{})",
            numeric.0, numeric.1, numeric.2, numeric.0, numeric.1
        )
    } else {
        String::new()
    };
    Err(format!(
        "the loaded zfs kernel module is version {version}{dev}, but the layout of the \
         zfs_cmd_t argument of {ioctl} was verified only for {LEGACY_LAYOUT_RANGE}; refusing \
         to issue the ioctl with a layout the module may not share (use an xapi-zvol \
         release that supports this OpenZFS version)"
    ))
}

/// The error of a refused legacy ioctl: `op` on `target`, ENOTSUP, with `reason` as the
/// text.
fn legacy_layout_error(op: Op, target: &str, reason: String) -> Error {
    Error::Zfs {
        op,
        target: target.to_string(),
        errno: Errno(libc::ENOTSUP),
        reason,
        items: vec![],
    }
}

/// Proof that [`Zfs::legacy_layout`] accepted the loaded module: `Zfs::ioctl` takes one,
/// so no legacy ioctl can be issued without the version check. Only this module can make
/// one.
#[derive(Debug)]
pub(crate) struct LegacyLayout {
    _checked: (),
}

impl Zfs {
    /// Check the loaded module's version against the range whose `zfs_cmd_t` layout was
    /// verified, before the legacy ioctl `ioctl` (`"ZFS_IOC_SET_PROP"`, ...) is issued for
    /// `op` on `target`. Outside it (or when the version cannot be read), an
    /// [`Error::Zfs`] with ENOTSUP whose message names the module version and the verified
    /// range. The version is read once per process (cached with [`Zfs::capabilities`]).
    pub(crate) fn legacy_layout(&self, op: Op, target: &str, ioctl: &str) -> Result<LegacyLayout> {
        let caps = self.capabilities().map_err(|e| {
            legacy_layout_error(
                op,
                target,
                format!(
                    "cannot check the zfs module version against the {LEGACY_LAYOUT_RANGE} \
                     layout of {ioctl}'s zfs_cmd_t ({e}); refusing to issue the ioctl blind"
                ),
            )
        })?;
        check_legacy_layout(&caps.version, caps.numeric, ioctl)
            .map_err(|reason| legacy_layout_error(op, target, reason))?;
        Ok(LegacyLayout { _checked: () })
    }

    /// The module's capabilities, from its version: no ioctl, so every plugin call can ask.
    /// The table (`zfs.sync.clone` from 2.4, `zfs.sync.rename_snapshot` from 2.2) is checked
    /// against the running kernel by [`Zfs::probe_capabilities`] in the VM tests.
    ///
    /// Read once and kept: the module cannot be unloaded (nor replaced) while this handle
    /// holds `/dev/zfs` open. A failure to read the version is not kept; the next call
    /// reads again.
    pub fn capabilities(&self) -> Result<&'static Capabilities> {
        if let Some(c) = CAPS.get() {
            return Ok(c);
        }
        let version = module_version()?;
        let numeric = parse_version(&version);
        let caps = Capabilities {
            numeric,
            version,
            sync_clone: numeric >= (2, 4, 0),
            sync_rename_snapshot: numeric >= (2, 2, 0),
        };
        Ok(CAPS.get_or_init(|| caps))
    }

    /// The capabilities as the kernel shows them: a nosync channel program on `pool` (any
    /// imported pool: the answer is the module's) that looks the functions up.
    pub fn probe_capabilities(&self, pool: &str) -> Result<Capabilities> {
        let version = module_version()?;
        let out = self.program_nosync(pool, &PROBE, &NvList::new()?, Limits::default())?;
        let flag = |k: &str| match &out {
            NvValue::List(t) => matches!(t.get(k), Some(NvValue::Bool(true))),
            _ => false,
        };
        Ok(Capabilities {
            numeric: parse_version(&version),
            version,
            sync_clone: flag("sync_clone"),
            sync_rename_snapshot: flag("sync_rename_snapshot"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: &str) -> std::result::Result<(), String> {
        check_legacy_layout(v, parse_version(v), "ZFS_IOC_SET_PROP")
    }

    #[test]
    fn legacy_layout_allows_the_verified_versions() {
        for v in [
            "2.1.0",
            "2.1.5-1ubuntu6~22.04.1",
            "2.1.11-1+deb12u1",
            "2.2.0-rc1",
            "2.2.7-1",
            "2.3.2-2~bpo12+1",
            "2.4.0",
            "zfs-2.4.4-1~bpo13+1",
            "2.4.98",
        ] {
            assert_eq!(check(v), Ok(()), "{v}");
        }
    }

    #[test]
    fn legacy_layout_refuses_other_versions_naming_them_and_the_range() {
        for v in [
            "2.5.0",
            "2.5.0-rc1",
            "2.4.99-1",
            "3.0.0",
            "2.0.7-1",
            "0.8.6",
            "garbage",
            "",
        ] {
            let e = check(v).unwrap_err();
            assert!(e.contains(&format!("version {v}")), "{v}: {e}");
            assert!(e.contains("2.1.x to 2.4.x"), "{e}");
            assert!(e.contains("ZFS_IOC_SET_PROP"), "{e}");
            assert!(e.contains("refusing"), "{e}");
        }
        let e = check("2.4.99-1").unwrap_err();
        assert!(
            e.contains("development build of the release after 2.4"),
            "{e}"
        );
        assert!(!check("2.5.0").unwrap_err().contains("development"));
    }

    #[test]
    fn legacy_layout_bounds_are_the_documented_range() {
        assert!(check_legacy_layout("x", (2, 0, 99), "X").is_err());
        assert_eq!(check_legacy_layout("x", (2, 1, 0), "X"), Ok(()));
        assert_eq!(check_legacy_layout("x", (2, 4, 98), "X"), Ok(()));
        assert!(check_legacy_layout("x", (2, 4, 99), "X").is_err());
        assert!(check_legacy_layout("x", (2, 5, 0), "X").is_err());
    }

    #[test]
    fn refused_ioctl_error_reads_as_a_sentence() {
        let reason = check("2.5.1-1").unwrap_err();
        let e = legacy_layout_error(Op::SetProperties, "tank/vol", reason);
        let s = e.to_string();
        assert!(
            s.starts_with("cannot set properties of tank/vol: the loaded zfs kernel module is version 2.5.1-1"),
            "{s}"
        );
        assert!(s.ends_with("(ENOTSUP)"), "{s}");
        assert!(e.is_errno(libc::ENOTSUP));
        // Not ENOENT: pool_problem must not read a refusal as "pool not imported".
        assert!(!e.is_errno(libc::ENOENT));
    }
}
