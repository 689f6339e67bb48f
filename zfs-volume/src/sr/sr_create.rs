//! SR.create: the pool (when the SR gets a pool of its own: `zpool create`, the one process
//! xapi-zvol starts besides import and destroy), the SR dataset with our marker and the SR's
//! settings, then the three containers (`vol`, `snap` with readonly=on, `gc`). Idempotent for
//! one uuid: a call interrupted half-way is completed by calling again.
//!
//! xapi retries a failed `sr-create` with a **new** uuid, so what an unfinished create left
//! for another uuid is removed first when it is provably ours and unfinished (its pool or SR
//! dataset carries our mark, not all three containers exist, nothing else is in it); a
//! complete SR is never touched. One SR.create runs at a time on a host, so a create in
//! progress never looks unfinished to another.

use super::admin::{ensure_imported, zpool, COUNT_CHILDREN, FIND_SRS, POOL_OWNER};
use super::journal::Journal;
use super::layout::{self, Layout, CBT, GC, SNAP, VOL};
use super::record::{string, user};
use super::{fault, lock, meta, PoolSource, Sr, SrConfig};
use crate::error::{Error, Result};
use crate::lzc::{Limits, NvList, NvValue, Props, VolMode, Zfs};

/// Whether vdev path `vdev` (as `zpool list -P` prints it) is device `dev`, or a partition
/// `zpool create` made on it (a whole disk gets partition 1: `sdb1`, `nvme0n1p1`,
/// `...-part1`). Both sides are compared canonical (by-id links resolved).
fn vdev_is_on(vdev: &str, dev: &str) -> bool {
    let canon = |p: &str| {
        std::fs::canonicalize(p)
            .map(|c| c.display().to_string())
            .unwrap_or_else(|_| p.to_string())
    };
    let (v, d) = (canon(vdev), canon(dev));
    if v == d || vdev == dev {
        return true;
    }
    let Some(rest) = v.strip_prefix(&d) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(rest)
        || rest.strip_prefix('p').is_some_and(digits)
        || rest.strip_prefix("-part").is_some_and(digits)
}

/// The imported pools whose vdevs include one of `devices`, from `zpool list -v -H -P`
/// (pool lines start in the first column; vdev lines are indented, devices as full paths).
fn pools_on(devices: &[String]) -> Result<Vec<String>> {
    let text = zpool(&["list", "-v", "-H", "-P", "-o", "name"])?;
    let mut out: Vec<String> = vec![];
    let mut current = String::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            current = line.trim().to_string();
            continue;
        }
        let word = line.split_whitespace().next().unwrap_or("");
        if word.starts_with('/')
            && devices.iter().any(|d| vdev_is_on(word, d))
            && !out.contains(&current)
        {
            out.push(current.clone());
        }
    }
    Ok(out)
}

/// What SR.create left in a pool or dataset: an SR dataset with all three containers is
/// complete (its creator got that far; only the answer may be lost); anything less is an
/// unfinished create.
fn sr_complete(zfs: &Zfs, sr_dataset: &str) -> bool {
    let l = Layout::new(sr_dataset);
    [VOL, SNAP, GC].iter().all(|c| zfs.exists(&l.container(c)))
}

/// Whether an SR dataset holds any VDI or tombstone (then it is never removed here).
fn has_vdis(zfs: &Zfs, sr_dataset: &str) -> Result<bool> {
    let l = Layout::new(sr_dataset);
    for c in [VOL, SNAP, CBT, GC] {
        let d = l.container(c);
        if !zfs.exists(&d) {
            continue;
        }
        let mut a = NvList::new()?;
        a.add_string("parent", &d)?;
        let pool = d.split('/').next().unwrap_or(&d);
        if !matches!(
            zfs.program_nosync(pool, &COUNT_CHILDREN, &a, Limits::default())?,
            NvValue::I64(0)
        ) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// xapi retries a failed `sr-create` with a **new** uuid. Before SR.create makes a pool on
/// `devices`, a pool that a killed SR.create made on them for another uuid would make
/// `zpool create` fail ("device is part of active pool"). Such a pool is removed when it is
/// provably ours and unfinished: named `zvol-<u>`, marked created-by-sr=`<u>` on its root by
/// that create, its SR dataset missing or without all its containers, and no VDI in it. A
/// complete SR is never touched: the error names its pool and what frees the device.
fn free_devices_of_unfinished_creates(zfs: &Zfs, uuid: &str, devices: &[String]) -> Result<()> {
    for pool in pools_on(devices)? {
        let Some(owner) = pool.strip_prefix(layout::POOL_PREFIX) else {
            continue; // not a pool SR.create makes: zpool create explains
        };
        if owner == uuid || layout::check_sr_uuid(owner).is_err() {
            continue;
        }
        let marked = zfs
            .user_properties(&pool)?
            .get(POOL_OWNER)
            .is_some_and(|p| p.as_str() == Some(owner) && p.source == pool);
        if !marked {
            continue;
        }
        let sr = layout::sr_dataset(&pool, owner);
        let sr_exists = zfs.exists(&sr);
        // Anything else in the pool (an admin's dataset) keeps it: then it is not only ours.
        let mut a = NvList::new()?;
        a.add_string("parent", &pool)?;
        let children = match zfs.program_nosync(&pool, &COUNT_CHILDREN, &a, Limits::default())? {
            NvValue::I64(n) => n,
            _ => i64::MAX,
        };
        if sr_exists && (sr_complete(zfs, &sr) || has_vdis(zfs, &sr)?)
            || children > i64::from(sr_exists)
        {
            return Err(Error::Config {
                key: "device".into(),
                reason: format!(
                    "a device is in pool {pool}, which holds the xapi-zvol SR {owner} or other data; \
                     to use it again, introduce that SR (xe sr-probe type=zvol device-config:pool={pool}) \
                     or, if its data is not needed, free the device with 'zpool destroy {pool}'"
                ),
            });
        }
        log::warn!(
            "SR.create {uuid}: destroying pool {pool}, left by an unfinished SR.create of {owner} on the same device"
        );
        zpool(&["destroy", &pool])?;
    }
    Ok(())
}

/// xapi retries a failed `sr-create` with a new uuid: an SR dataset a killed SR.create left
/// under `parent` for another uuid (our marker, not all containers, no VDI) is removed, so it
/// does not linger beside the new one. Complete SRs are never touched.
fn remove_unfinished_siblings(zfs: &Zfs, uuid: &str, parent: &str) -> Result<()> {
    let mut a = NvList::new()?;
    a.add_string("parent", parent)?;
    let pool = parent.split('/').next().unwrap_or(parent);
    let NvValue::List(t) = zfs.program_nosync(pool, &FIND_SRS, &a, Limits::large())? else {
        return Ok(());
    };
    for (_, v) in t {
        let NvValue::List(r) = v else { continue };
        let (Some(ds), Some(owner)) = (
            string(&r, "dataset"),
            user(&r).get(meta::SR_MARKER).cloned(),
        ) else {
            continue;
        };
        if owner == uuid
            || layout::sr_uuid_of(&ds) != Some(owner.as_str())
            || sr_complete(zfs, &ds)
            || has_vdis(zfs, &ds)?
        {
            continue;
        }
        log::warn!("SR.create {uuid}: removing {ds}, left by an unfinished SR.create of {owner}");
        let l = Layout::new(&ds);
        for c in [VOL, SNAP, CBT, GC] {
            let d = l.container(c);
            if zfs.exists(&d) {
                zfs.destroy(&d)?;
            }
        }
        zfs.destroy(&ds)?;
    }
    Ok(())
}

impl Sr {
    /// Create an SR (idempotent for the same uuid: a call interrupted half-way is
    /// completed by calling again). Returns the attached SR.
    ///
    /// ```no_run
    /// use zfs_volume::sr::{Sr, SrConfig, PoolSource, Provisioning};
    /// let cfg = SrConfig { source: PoolSource::Devices(vec!["/dev/sdb".into()]),
    ///     provisioning: Provisioning::Thin, volblocksize: 16384, compression: None };
    /// let sr = Sr::create("5e0a3e4c-1f7b-4c1e-8f1a-0d3c2b1a0f9e", &cfg, "VMs", "")?;
    /// # Ok::<(), zfs_volume::Error>(())
    /// ```
    pub fn create(uuid: &str, cfg: &SrConfig, name: &str, description: &str) -> Result<Sr> {
        layout::check_sr_uuid(uuid)?;
        meta::check_value("SR name", name)?;
        meta::check_value("SR description", description)?;
        let vbs = cfg.volblocksize;
        if !(4096..=131072).contains(&vbs) || !vbs.is_power_of_two() {
            return Err(Error::Config {
                key: "volblocksize".into(),
                reason: format!("{vbs} is not a power of two from 4096 to 131072"),
            });
        }
        let zfs = Zfs::get()?;
        // One SR.create at a time on this host: what an unfinished create left is removed
        // below, and a create in progress must not look like one.
        let _creating = lock::SrLock::acquire("sr-create", lock::wait_limit())?;
        // What this call makes is undone if it fails (a kill leaves it for the retry: the same
        // uuid completes it, a new one removes it, above and below).
        let mut j = Journal::begin(&format!("SR.create {uuid}"));
        let parent = match &cfg.source {
            PoolSource::Existing(p) => {
                layout::check_dataset_name(p).map_err(|e| Error::Config {
                    key: "pool".into(),
                    reason: e.to_string(),
                })?;
                let pool = p.split('/').next().unwrap_or(p);
                ensure_imported(zfs, pool, &[]).map_err(|e| Error::Config {
                    key: "pool".into(),
                    reason: format!("pool {pool} is not available: {e}"),
                })?;
                if !zfs.exists(p) {
                    return Err(Error::Config {
                        key: "pool".into(),
                        reason: format!("{p} does not exist"),
                    });
                }
                remove_unfinished_siblings(zfs, uuid, p)?;
                p.clone()
            }
            PoolSource::Devices(_) | PoolSource::Vdev(_) => {
                let pool = format!("{}{uuid}", layout::POOL_PREFIX);
                if !zfs.exists(&pool) {
                    let devices: Vec<String> = match &cfg.source {
                        PoolSource::Devices(d) => d.clone(),
                        PoolSource::Vdev(spec) => spec
                            .split_whitespace()
                            .filter(|w| w.starts_with('/'))
                            .map(String::from)
                            .collect(),
                        PoolSource::Existing(_) => unreachable!("handled above"),
                    };
                    free_devices_of_unfinished_creates(zfs, uuid, &devices).map_err(
                        |e| match e {
                            Error::Config { reason, .. } => Error::Config {
                                key: if matches!(cfg.source, PoolSource::Vdev(_)) {
                                    "vdev"
                                } else {
                                    "device"
                                }
                                .into(),
                                reason,
                            },
                            e => e,
                        },
                    )?;
                    let owner = format!("{POOL_OWNER}={uuid}");
                    let mut args: Vec<String> = ["create", "-m", "none", "-O", &owner]
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                    args.push(pool.clone());
                    match &cfg.source {
                        PoolSource::Devices(d) => args.extend(d.iter().cloned()),
                        PoolSource::Vdev(spec) => {
                            args.extend(spec.split_whitespace().map(String::from))
                        }
                        PoolSource::Existing(_) => unreachable!("handled above"),
                    }
                    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
                    zpool(&argv).map_err(|e| Error::Config {
                        key: if matches!(cfg.source, PoolSource::Vdev(_)) {
                            "vdev"
                        } else {
                            "device"
                        }
                        .into(),
                        reason: format!("cannot create the pool: {e}"),
                    })?;
                    let made = pool.clone();
                    j.on_undo("destroy the pool this SR.create made", move || {
                        zpool(&["destroy", &made]).map(drop)
                    });
                }
                fault::point("sr-create:after-pool");
                pool
            }
        };
        let root = layout::sr_dataset(&parent, uuid);
        let l = Layout::new(&root);
        if !zfs.exists(&root) {
            let mut props = Props::new()
                .string("mountpoint", "none")
                .u64("canmount", 0)
                .volmode(VolMode::Dev)
                .user(meta::SR_MARKER, uuid)
                .user(meta::SR_NAME, name)
                .user(meta::SR_DESCRIPTION, description)
                .user(meta::SR_PROVISIONING, cfg.provisioning.as_str())
                .user(meta::SR_VOLBLOCKSIZE, &vbs.to_string())
                .user(meta::SR_FORMAT, "1");
            if let Some(c) = cfg.compression {
                props = props.compression(c);
            }
            zfs.create_filesystem(&root, &props)?;
            let made = root.clone();
            j.on_undo("destroy the SR dataset this SR.create made", move || {
                let l = Layout::new(&made);
                for c in [GC, CBT, SNAP, VOL] {
                    let d = l.container(c);
                    if zfs.exists(&d) {
                        zfs.destroy(&d)?;
                    }
                }
                zfs.destroy(&made).map_err(Error::from)
            });
        } else {
            let existing = Sr::open(&root)?;
            if existing.uuid != uuid {
                return Err(Error::NotOurs(root));
            }
        }
        fault::point("sr-create:after-root");
        for (c, ro) in [(VOL, false), (SNAP, true), (GC, false)] {
            let d = l.container(c);
            if !zfs.exists(&d) {
                let mut p = Props::new();
                if ro {
                    // Snapshot VDIs inherit readonly=on in the txg that creates them (I5).
                    p = p.readonly(true);
                }
                zfs.create_filesystem(&d, &p)?;
            }
        }
        fault::point("sr-create:after-containers");
        let sr = Sr::open(&root)?;
        j.commit();
        Ok(sr)
    }
}
