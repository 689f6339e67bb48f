//! Run-time capability detection: the loaded kernel module's version, and what its
//! channel programs can do. One binary runs on OpenZFS 2.1.11 .. 2.4.x, so callers pick
//! the atomic path (e.g. `zfs.sync.clone`, 2.4+) only where it exists.

use super::nvlist::{NvList, NvValue};
use super::program::{program, Limits, Program};
use super::Zfs;
use crate::error::{Error, Result};
use std::sync::OnceLock;

/// What the running kernel module offers.
///
/// ```no_run
/// let caps = zfs_volume::Zfs::get()?.capabilities("tank")?;
/// if caps.sync_clone { println!("one-txg snapshot+clone available"); }
/// # Ok::<(), zfs_volume::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
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
/// assert_eq!(zfs_volume::lzc::parse_version("2.4.4-1~bpo13+1"), (2, 4, 4));
/// assert_eq!(zfs_volume::lzc::parse_version("zfs-2.2.0-rc1"), (2, 2, 0));
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
/// println!("{}", zfs_volume::lzc::module_version()?);
/// # Ok::<(), zfs_volume::Error>(())
/// ```
pub fn module_version() -> Result<String> {
    std::fs::read_to_string("/sys/module/zfs/version")
        .map(|s| s.trim().to_string())
        .map_err(|source| Error::Io {
            what: "read /sys/module/zfs/version (is the zfs module loaded?)".into(),
            source,
        })
}

impl Zfs {
    /// The module's capabilities, from its version: no ioctl, so every plugin call can ask.
    /// The table (`zfs.sync.clone` from 2.4, `zfs.sync.rename_snapshot` from 2.2) is checked
    /// against the running kernel by [`Zfs::probe_capabilities`] in the VM tests.
    pub fn capabilities(&self, _pool: &str) -> Result<&'static Capabilities> {
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
