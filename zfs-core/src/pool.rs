//! Pool-level calls: txg sync, and the pool configuration (vdev tree, health) read with
//! the legacy `ZFS_IOC_POOL_STATS` ioctl, which libzfs_core does not wrap. That ioctl takes
//! the hand-laid-out `zfs_cmd_t` (zfs-core-sys's `ZfsCmd`, a zeroed heap buffer with
//! headroom), so it is only issued to a module whose layout was verified (2.1.x .. 2.4.x);
//! on another, [`Zfs::pool_status`] refuses and [`Zfs::pool_health`] falls back to the
//! pool's kstat `state` file, which needs no ioctl.

use super::nvlist::{NvList, NvTree, NvValue};
use super::util::name;
use super::{Errno, Zfs};
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;
use std::path::Path;
use std::ptr;

/// Where the SPL publishes one directory per imported pool, with a `state` file holding
/// `spa_state_to_name()` (`ONLINE`, `DEGRADED`, `SUSPENDED`, ...; OpenZFS 0.8 and later).
const KSTAT_ROOT: &str = "/proc/spl/kstat/zfs";

/// Key of the kstat state word in the configuration of a fallback [`PoolStatus`] (not a
/// kernel config key).
const KSTAT_STATE: &str = "kstat_state";

/// Health of a pool, from the state of its root vdev (`vdev_state_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolHealth {
    /// All devices online.
    Online,
    /// Working with reduced redundancy (a device is missing or faulted).
    Degraded,
    /// Not usable (faulted, unavailable, or I/O suspended).
    Faulted,
    /// A state this crate does not know (newer kernel).
    Unknown(u64),
}

/// What [`Zfs::pool_status`] returns.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PoolStatus {
    /// Health of the root vdev.
    pub health: PoolHealth,
    /// The pool's load error (`zc_cookie` of POOL_STATS), 0 when fine.
    pub load_error: Errno,
    /// The pool configuration (`vdev_tree`, `name`, `pool_guid`, ...).
    pub config: NvTree,
    /// A resilver or rebuild is running.
    pub resilvering: bool,
    /// `None` when the status comes from `ZFS_IOC_POOL_STATS` (everything above is read).
    /// `Some(why)` for the fallback of [`Zfs::pool_health`]: only the health was read
    /// (from the pool's kstat `state`), `config` holds just `name`, `resilvering` is
    /// unknown (false) and `load_error` is 0; `why` says why the ioctl was not issued.
    pub partial: Option<String>,
}

/// One top-level vdev, as far as space accounting cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopVdev {
    /// RAID-Z parity (0 for a disk, file or mirror).
    pub nparity: u64,
    /// Number of children (disks in a raidz/mirror; 0 for a leaf).
    pub children: u64,
    /// log2 of the sector size.
    pub ashift: u64,
    /// True for a raidz vdev.
    pub raidz: bool,
}

impl Zfs {
    /// Wait for the pool's open transaction group to sync (`lzc_sync`). With `force`, a
    /// new txg is started first so that everything done so far is on disk when it returns.
    ///
    /// ```no_run
    /// libzfs_core::Zfs::get()?.sync("tank", true)?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn sync(&self, pool: &str, force: bool) -> Result<()> {
        let p = name(pool)?;
        let mut args = NvList::new()?;
        args.add_boolean_value("force", force)?;
        // SAFETY: valid string and nvlist; no output list is requested.
        let rc = unsafe { sys::lzc_sync(p.as_ptr(), args.as_mut_ptr(), ptr::null_mut()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::zfs(Op::Sync, pool, Errno(rc)))
        }
    }

    /// Configuration and health of an imported pool (`ZFS_IOC_POOL_STATS`).
    ///
    /// Errors: `ENOENT` (no such imported pool); `ENOTSUP`, without issuing the ioctl,
    /// when the loaded zfs module is outside the versions whose `zfs_cmd_t` layout was
    /// verified (2.1.x .. 2.4.x), the message naming the module version. Callers that only
    /// need the health should use [`Zfs::pool_health`], which falls back instead.
    ///
    /// ```no_run
    /// let st = libzfs_core::Zfs::get()?.pool_status("tank")?;
    /// println!("{:?}", st.health);
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn pool_status(&self, pool: &str) -> Result<PoolStatus> {
        let c = pool_name(pool)?;
        let checked = self.legacy_layout(Op::PoolStats, pool, "ZFS_IOC_POOL_STATS")?;
        let (r, zc, config) = self.ioctl_nvlist_out(&checked, sys::ZFS_IOC_POOL_STATS, &c)?;
        // A faulted pool still returns its config, with the error in zc_cookie.
        let config = match (r, config) {
            (_, Some(config)) => config,
            (Err(e), None) => return Err(Error::zfs(Op::PoolStats, pool, e)),
            (Ok(()), None) => NvList::new()?.to_tree(),
        };
        let tree = match config.get("vdev_tree") {
            Some(NvValue::List(t)) => Some(t),
            _ => None,
        };
        let stats = match tree.and_then(|t| t.get("vdev_stats")) {
            Some(NvValue::U64Array(v)) => v.clone(),
            _ => vec![],
        };
        // vdev_stat_t: [0] timestamp, [1] state, [2] aux.
        let health = match stats.get(1) {
            Some(7) => PoolHealth::Online,
            Some(6) => PoolHealth::Degraded,
            Some(0..=5) => PoolHealth::Faulted,
            Some(s) => PoolHealth::Unknown(*s),
            None => PoolHealth::Unknown(u64::MAX),
        };
        // pool_scan_stat_t: [1] state, 1 = DSS_SCANNING; [0] func, 2 = resilver.
        let resilvering = match tree.and_then(|t| t.get("scan_stats")) {
            Some(NvValue::U64Array(v)) => v.first() == Some(&2) && v.get(1) == Some(&1),
            _ => false,
        };
        let load_error = Errno(zc.cookie() as i32);
        // A suspended pool (I/O failures, failmode wait/continue) keeps an ONLINE root
        // vdev; spa_get_stats flags it with ZPOOL_CONFIG_SUSPENDED instead.
        let suspended = config.get("suspended").is_some();
        let health = if load_error.0 != 0 || suspended {
            PoolHealth::Faulted
        } else {
            health
        };
        Ok(PoolStatus {
            health,
            load_error,
            config,
            resilvering,
            partial: None,
        })
    }

    /// The health of an imported pool, for callers that need nothing else (SR health):
    /// [`Zfs::pool_status`] where the module's `zfs_cmd_t` layout was verified; on any
    /// other module, instead of failing, the health read from the pool's kstat `state`
    /// (no ioctl), with [`PoolStatus::partial`] saying so and why. Do not use its
    /// `top_vdevs()` (empty in the fallback).
    ///
    /// Errors: `ENOENT` (no such imported pool), as [`Zfs::pool_status`].
    ///
    /// ```no_run
    /// let st = libzfs_core::Zfs::get()?.pool_health("tank")?;
    /// if let Some(why) = &st.partial { println!("health only: {why}"); }
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn pool_health(&self, pool: &str) -> Result<PoolStatus> {
        pool_name(pool)?;
        match self.legacy_layout(Op::PoolStats, pool, "ZFS_IOC_POOL_STATS") {
            Ok(_) => self.pool_status(pool),
            Err(e) => status_from_kstat(Path::new(KSTAT_ROOT), pool, &e.to_string()),
        }
    }
}

/// `pool` as a C string, refused when it is a dataset, snapshot or bookmark name.
fn pool_name(pool: &str) -> Result<std::ffi::CString> {
    let c = name(pool)?;
    if pool.contains(['/', '@', '#']) {
        return Err(Error::invalid(
            "pool name",
            format!("{pool:?} is a dataset name, not a pool"),
        ));
    }
    Ok(c)
}

/// The health `spa_state_to_name()` reports (the kstat `state` file), mapped as
/// [`Zfs::pool_status`] maps the root vdev state: suspended and unusable pools are
/// Faulted; `TRANSITIONING` (import/export under way), `UNKNOWN` and anything newer are
/// Unknown.
fn health_from_state(state: &str) -> PoolHealth {
    match state {
        "ONLINE" => PoolHealth::Online,
        "DEGRADED" => PoolHealth::Degraded,
        "SUSPENDED" | "FAULTED" | "OFFLINE" | "REMOVED" | "UNAVAIL" | "SPLIT" => {
            PoolHealth::Faulted
        }
        _ => PoolHealth::Unknown(u64::MAX),
    }
}

/// The fallback [`PoolStatus`] of `pool` from `<root>/<pool>/state`; `why` is the reason
/// POOL_STATS was not used. A missing pool directory (under an existing root) is ENOENT,
/// as POOL_STATS says for a pool that is not imported; an unreadable state is health
/// Unknown, with the reason.
fn status_from_kstat(root: &Path, pool: &str, why: &str) -> Result<PoolStatus> {
    let file = root.join(pool).join("state");
    let mut config = NvTree::new();
    config.push("name", NvValue::Str(pool.to_string()));
    let (health, partial) = match std::fs::read_to_string(&file) {
        Ok(s) => {
            let state = s.trim().to_string();
            config.push(KSTAT_STATE, NvValue::Str(state.clone()));
            (
                health_from_state(&state),
                format!(
                    "only the health of pool {pool} was read ({} says {state}), not its \
                     configuration or resilver progress: {why}",
                    file.display()
                ),
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && root.is_dir() => {
            if !root.join(pool).exists() {
                return Err(Error::zfs(Op::PoolStats, pool, Errno(libc::ENOENT)));
            }
            (
                PoolHealth::Unknown(u64::MAX),
                format!(
                    "health of pool {pool} unknown ({} is missing): {why}",
                    file.display()
                ),
            )
        }
        Err(e) => (
            PoolHealth::Unknown(u64::MAX),
            format!(
                "health of pool {pool} unknown (cannot read {}: {e}): {why}",
                file.display()
            ),
        ),
    };
    Ok(PoolStatus {
        health,
        load_error: Errno(0),
        config,
        resilvering: false,
        partial: Some(partial),
    })
}

impl PoolStatus {
    /// True when the pool's I/O is suspended (after device failures; `zpool clear` resumes).
    pub fn is_suspended(&self) -> bool {
        self.config.get("suspended").is_some()
            || matches!(self.config.get(KSTAT_STATE), Some(NvValue::Str(s)) if s == "SUSPENDED")
    }

    /// The top-level vdevs (data vdevs only: log, cache and spare devices are not in
    /// `children` of the root, or are flagged `is_log` and skipped).
    ///
    /// ```no_run
    /// let st = libzfs_core::Zfs::get()?.pool_status("tank")?;
    /// let disks: u64 = st.top_vdevs().iter().map(|v| v.children.max(1)).sum();
    /// println!("{} top-level vdevs, {disks} disks", st.top_vdevs().len());
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn top_vdevs(&self) -> Vec<TopVdev> {
        let Some(NvValue::List(root)) = self.config.get("vdev_tree") else {
            return vec![];
        };
        let Some(NvValue::ListArray(children)) = root.get("children") else {
            return vec![];
        };
        let mut out = vec![];
        for c in children {
            if let Some(NvValue::U64(1)) = c.get("is_log") {
                continue;
            }
            let ty = match c.get("type") {
                Some(NvValue::Str(s)) => s.as_str(),
                _ => "",
            };
            let num = |k: &str| match c.get(k) {
                Some(NvValue::U64(n)) => *n,
                _ => 0,
            };
            let nchildren = match c.get("children") {
                Some(NvValue::ListArray(v)) => v.len() as u64,
                _ => 0,
            };
            out.push(TopVdev {
                nparity: num("nparity"),
                children: nchildren,
                ashift: num("ashift"),
                raidz: ty == "raidz",
            });
        }
        out
    }
}

impl Zfs {
    /// Why `pool` cannot serve a ZFS call, if it is not imported or is suspended: for the
    /// error path only (one extra ioctl, or a kstat read where the legacy ioctl is not
    /// issued), to say what went wrong in words the admin can act on instead of the errno
    /// of whichever step hit it. `None` when the pool looks able to serve.
    ///
    /// The kernel only knows imported pools: a name it does not know may be a pool that was
    /// exported, or one that never existed (a typo), so the text asks to check the name
    /// and says how to find an importable pool, rather than telling to import it.
    ///
    /// ```no_run
    /// if let Some(why) = libzfs_core::Zfs::get()?.pool_problem("tank") {
    ///     eprintln!("{why}");
    /// }
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn pool_problem(&self, pool: &str) -> Option<String> {
        match self.pool_health(pool) {
            Err(e) if e.is_errno(libc::ENOENT) => Some(not_imported(pool)),
            Ok(st) if st.is_suspended() => Some(suspended(pool)),
            _ => None,
        }
    }
}

/// [`Zfs::pool_problem`]'s words for a pool the kernel does not know.
fn not_imported(pool: &str) -> String {
    format!(
        "pool {pool} is not imported: check the name ('zpool list' shows the imported \
         pools); if it was exported, 'zpool import' lists the pools that can be imported"
    )
}

/// [`Zfs::pool_problem`]'s words for a suspended pool.
fn suspended(pool: &str) -> String {
    format!(
        "pool {pool} is suspended after I/O failures on its devices: fix them, run \
         'zpool clear {pool}' and retry"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A throw-away kstat root with one pool directory per (name, state) (state `None`: a
    /// directory without a state file).
    fn kstat_root(tag: &str, pools: &[(&str, Option<&str>)]) -> PathBuf {
        let root = std::env::temp_dir().join(format!("xzvol-kstat-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        for (p, state) in pools {
            std::fs::create_dir_all(root.join(p)).unwrap();
            if let Some(s) = state {
                std::fs::write(root.join(p).join("state"), format!("{s}\n")).unwrap();
            }
        }
        root
    }

    #[test]
    fn kstat_states_map_like_the_root_vdev_state() {
        assert_eq!(health_from_state("ONLINE"), PoolHealth::Online);
        assert_eq!(health_from_state("DEGRADED"), PoolHealth::Degraded);
        for s in [
            "SUSPENDED",
            "FAULTED",
            "OFFLINE",
            "REMOVED",
            "UNAVAIL",
            "SPLIT",
        ] {
            assert_eq!(health_from_state(s), PoolHealth::Faulted, "{s}");
        }
        for s in ["TRANSITIONING", "UNKNOWN", "", "online", "NEWSTATE"] {
            assert_eq!(health_from_state(s), PoolHealth::Unknown(u64::MAX), "{s}");
        }
    }

    #[test]
    fn kstat_fallback_reads_health_and_says_it_is_partial() {
        let root = kstat_root(
            "fb",
            &[
                ("good", Some("ONLINE")),
                ("deg", Some("DEGRADED")),
                ("susp", Some("SUSPENDED")),
                ("nostate", None),
            ],
        );
        let why = "cannot read the configuration of pool good: the loaded zfs kernel module is version 2.5.0";
        let st = status_from_kstat(&root, "good", why).unwrap();
        assert_eq!(st.health, PoolHealth::Online);
        assert!(!st.is_suspended() && !st.resilvering);
        assert_eq!(st.load_error, Errno(0));
        assert!(st.top_vdevs().is_empty());
        assert!(matches!(st.config.get("name"), Some(NvValue::Str(s)) if s == "good"));
        let p = st.partial.unwrap();
        assert!(
            p.contains("only the health of pool good") && p.contains("says ONLINE"),
            "{p}"
        );
        assert!(p.ends_with(why), "{p}");

        let st = status_from_kstat(&root, "deg", why).unwrap();
        assert_eq!(st.health, PoolHealth::Degraded);
        let st = status_from_kstat(&root, "susp", why).unwrap();
        assert_eq!(st.health, PoolHealth::Faulted);
        assert!(st.is_suspended());

        // Not imported: ENOENT, like POOL_STATS (pool_problem relies on it).
        let e = status_from_kstat(&root, "gone", why).unwrap_err();
        assert!(e.is_errno(libc::ENOENT), "{e}");
        assert!(e.to_string().contains("gone"), "{e}");

        // A pool directory without a state file, or no kstat root at all: unknown, with
        // the reason.
        let st = status_from_kstat(&root, "nostate", why).unwrap();
        assert_eq!(st.health, PoolHealth::Unknown(u64::MAX));
        assert!(st.partial.unwrap().contains("is missing"));
        let st = status_from_kstat(&root.join("nope"), "good", why).unwrap();
        assert_eq!(st.health, PoolHealth::Unknown(u64::MAX));
        let p = st.partial.unwrap();
        assert!(
            p.contains("unknown (cannot read") && p.ends_with(why),
            "{p}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn problems_say_what_to_do_without_presuming_the_pool_exists() {
        let s = not_imported("tnak");
        assert!(s.contains("pool tnak is not imported"), "{s}");
        assert!(s.contains("check the name"), "{s}");
        assert!(!s.contains("zpool import tnak"), "{s}");
        let s = suspended("tank");
        assert!(s.contains("'zpool clear tank'"), "{s}");
    }

    #[test]
    fn pool_names_are_checked_before_any_ioctl() {
        assert!(matches!(pool_name("tank/vol"), Err(Error::Invalid { .. })));
        assert!(matches!(pool_name(""), Err(Error::Invalid { .. })));
        assert!(matches!(pool_name("a\0b"), Err(Error::Invalid { .. })));
        assert_eq!(pool_name("tank").unwrap().as_bytes(), b"tank");
    }

    /// A pool on sparse file vdevs, destroyed with its files on drop (for the VM test).
    struct FilePool {
        name: String,
        files: Vec<String>,
    }

    impl FilePool {
        fn new(tag: &str, kind: &[&str], n: usize) -> FilePool {
            let name = format!("xzu{tag}{}", std::process::id());
            let files: Vec<String> = (0..n)
                .map(|i| format!("/var/tmp/{name}-{i}.vdev"))
                .collect();
            for f in &files {
                std::fs::File::create(f)
                    .unwrap()
                    .set_len(128 << 20)
                    .unwrap();
            }
            let mut args = vec!["create", "-f", "-O", "mountpoint=none", name.as_str()];
            args.extend_from_slice(kind);
            args.extend(files.iter().map(|s| s.as_str()));
            let out = std::process::Command::new("zpool")
                .args(&args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "zpool {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            FilePool { name, files }
        }
    }

    impl Drop for FilePool {
        fn drop(&mut self) {
            let _ = std::process::Command::new("zpool")
                .args(["destroy", "-f", &self.name])
                .status();
            for f in &self.files {
                let _ = std::fs::remove_file(f);
            }
        }
    }

    /// The kstat fallback agrees with POOL_STATS on a real module, and pool_health is
    /// pool_status on a verified one.
    #[test]
    #[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
    fn pool_status_kstat_fallback_agrees_with_pool_stats() {
        let z = Zfs::get().unwrap();
        let root = Path::new(KSTAT_ROOT);
        let p = FilePool::new("kst", &["mirror"], 2);
        let st = z.pool_status(&p.name).unwrap();
        assert_eq!(st.health, PoolHealth::Online);
        assert_eq!(st.partial, None);
        // Not compared whole: the config's vdev stats carry timestamps.
        let h = z.pool_health(&p.name).unwrap();
        assert_eq!(
            (h.health, h.partial.clone(), h.top_vdevs()),
            (st.health, None, st.top_vdevs())
        );
        let fb = status_from_kstat(root, &p.name, "test").unwrap();
        assert_eq!(fb.health, st.health, "{:?}", fb.partial);
        let out = std::process::Command::new("zpool")
            .args(["offline", &p.name, &p.files[1]])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(z.pool_status(&p.name).unwrap().health, PoolHealth::Degraded);
        let fb = status_from_kstat(root, &p.name, "test").unwrap();
        assert_eq!(fb.health, PoolHealth::Degraded, "{:?}", fb.partial);
        assert!(!fb.is_suspended());
        // Not imported: both say ENOENT.
        assert!(z
            .pool_status("xzunosuchpool")
            .unwrap_err()
            .is_errno(libc::ENOENT));
        assert!(status_from_kstat(root, "xzunosuchpool", "test")
            .unwrap_err()
            .is_errno(libc::ENOENT));
        assert_eq!(z.pool_problem(&p.name), None);
        assert!(z
            .pool_problem("xzunosuchpool")
            .unwrap()
            .contains("not imported"));
    }
}
