//! Pool-level calls: txg sync, and the pool configuration (vdev tree, health) read with
//! the legacy `ZFS_IOC_POOL_STATS` ioctl, which libzfs_core does not wrap.

use super::nvlist::{NvList, NvTree, NvValue};
use super::util::name;
use super::{Errno, Zfs};
use crate::error::{Error, Op, Result};
use std::ptr;
use zfs_core_sys as sys;

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
pub struct PoolStatus {
    /// Health of the root vdev.
    pub health: PoolHealth,
    /// The pool's load error (`zc_cookie` of POOL_STATS), 0 when fine.
    pub load_error: Errno,
    /// The pool configuration (`vdev_tree`, `name`, `pool_guid`, ...).
    pub config: NvTree,
    /// A resilver or rebuild is running.
    pub resilvering: bool,
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
    /// zfs_volume::Zfs::get()?.sync("tank", true)?;
    /// # Ok::<(), zfs_volume::Error>(())
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
    /// ```no_run
    /// let st = zfs_volume::Zfs::get()?.pool_status("tank")?;
    /// println!("{:?}", st.health);
    /// # Ok::<(), zfs_volume::Error>(())
    /// ```
    pub fn pool_status(&self, pool: &str) -> Result<PoolStatus> {
        let c = name(pool)?;
        if pool.contains(['/', '@', '#']) {
            return Err(Error::invalid(
                "pool name",
                format!("{pool:?} is a dataset name, not a pool"),
            ));
        }
        let mut size = 64 * 1024usize;
        loop {
            let mut buf = vec![0u8; size];
            let mut zc = sys::zfs_cmd_t::default();
            let bytes = c.as_bytes_with_nul();
            zc.zc_name[..bytes.len()].copy_from_slice(bytes);
            zc.zc_nvlist_dst = buf.as_mut_ptr() as u64;
            zc.zc_nvlist_dst_size = buf.len() as u64;
            // SAFETY: full zfs_cmd_t; the output pointer is `buf`, alive across the call,
            // with its exact size.
            let r = unsafe { self.ioctl(sys::ZFS_IOC_POOL_STATS, &mut zc) };
            match r {
                Err(Errno(libc::ENOMEM))
                    if (zc.zc_nvlist_dst_size as usize) > size && size < (64 << 20) =>
                {
                    // The kernel tells us how big the packed config is.
                    size = zc.zc_nvlist_dst_size as usize + 4096;
                    continue;
                }
                // A faulted pool still returns its config, with the error in zc_cookie.
                Err(e) if zc.zc_nvlist_dst_filled == 0 => {
                    return Err(Error::zfs(Op::PoolStats, pool, e))
                }
                _ => {}
            }
            let n = (zc.zc_nvlist_dst_size as usize).min(buf.len());
            let config = NvList::unpack(&buf[..n])?.to_tree();
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
            let load_error = Errno(zc.zc_cookie as i32);
            // A suspended pool (I/O failures, failmode wait/continue) keeps an ONLINE root
            // vdev; spa_get_stats flags it with ZPOOL_CONFIG_SUSPENDED instead.
            let suspended = config.get("suspended").is_some();
            let health = if load_error.0 != 0 || suspended {
                PoolHealth::Faulted
            } else {
                health
            };
            return Ok(PoolStatus {
                health,
                load_error,
                config,
                resilvering,
            });
        }
    }
}

impl PoolStatus {
    /// True when the pool's I/O is suspended (after device failures; `zpool clear` resumes).
    pub fn is_suspended(&self) -> bool {
        self.config.get("suspended").is_some()
    }

    /// The top-level vdevs (data vdevs only: log, cache and spare devices are not in
    /// `children` of the root, or are flagged `is_log` and skipped).
    ///
    /// ```
    /// use zfs_volume::lzc::{PoolStatus, PoolHealth, Errno, NvTree};
    /// let st = PoolStatus { health: PoolHealth::Online, load_error: Errno(0), config: NvTree::default(), resilvering: false };
    /// assert!(st.top_vdevs().is_empty());
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
    /// error path only (one extra ioctl), to say what went wrong in words the admin can act
    /// on instead of the errno of whichever step hit it.
    pub fn pool_problem(&self, pool: &str) -> Option<String> {
        match self.pool_status(pool) {
            Err(e) if e.is_errno(libc::ENOENT) => Some(format!(
                "pool {pool} is not imported (it was exported or its devices are missing): import it ('zpool import {pool}') and retry"
            )),
            Ok(st) if st.is_suspended() => Some(format!(
                "pool {pool} is suspended after I/O failures on its devices: fix them, run 'zpool clear {pool}' and retry"
            )),
            _ => None,
        }
    }
}
