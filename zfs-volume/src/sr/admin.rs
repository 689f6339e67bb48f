//! SR lifecycle: create, attach, detach, destroy, stat, probe.
//!
//! Pool creation, import and destroy run `zpool` (rare administrative work, as every
//! mature peer does); everything else is in-process. A pool is destroyed only when
//! SR.create made it: its root dataset then carries `xapi-zvol:created-by-sr=<uuid>`,
//! set by `zpool create -O` in the same step that creates the pool (I8).

use super::layout::{self, Layout, GC, SNAP, VOL};
use super::record::{num, string, user, Health, SrInfo};
use super::{fault, lock, meta, Sr};
use crate::error::{Error, Result};
use crate::lzc::{
    program, Compression, Limits, NvList, NvValue, PoolHealth, Program, Props, VolMode, Zfs,
};
use std::process::Command;

static SR_INFO: Program = program!("sr_info");
static FIND_SRS: Program = program!("find_srs");
static COUNT_CHILDREN: Program = program!("count_children");

/// On the root dataset of a pool SR.create made: the SR uuid that owns the pool.
pub const POOL_OWNER: &str = "xapi-zvol:created-by-sr";

/// Thin (sparse) or thick (refreservation) volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioning {
    /// Sparse zvols: space is taken as data is written.
    Thin,
    /// Reserved zvols: the whole size (plus metadata) is set aside at create/resize.
    Thick,
}

impl Provisioning {
    /// Parse `thin`/`thick`.
    ///
    /// ```
    /// use zfs_volume::sr::Provisioning;
    /// assert_eq!(Provisioning::parse("thick"), Some(Provisioning::Thick));
    /// assert_eq!(Provisioning::parse("fat"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Provisioning> {
        match s {
            "thin" => Some(Provisioning::Thin),
            "thick" => Some(Provisioning::Thick),
            _ => None,
        }
    }
    /// `thin` or `thick`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provisioning::Thin => "thin",
            Provisioning::Thick => "thick",
        }
    }
}

/// Where SR.create puts the SR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolSource {
    /// A new pool striped over these devices or files (absolute paths).
    Devices(Vec<String>),
    /// A new pool from a `zpool create` vdev specification (`mirror /dev/a /dev/b`).
    Vdev(String),
    /// An existing pool or dataset: the SR becomes a dataset under it.
    Existing(String),
}

/// SR.create's parsed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrConfig {
    /// Where.
    pub source: PoolSource,
    /// Thin or thick.
    pub provisioning: Provisioning,
    /// volblocksize of new volumes (power of two, 4 KiB .. 128 KiB).
    pub volblocksize: u64,
    /// compression of the SR (inherited by every volume); `None` keeps the pool's.
    pub compression: Option<Compression>,
}

/// An SR found by [`Sr::probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrFound {
    /// The pool, or parent dataset, it lives in (configuration `pool`).
    pub parent: String,
    /// The SR dataset.
    pub dataset: String,
    /// SR uuid.
    pub uuid: String,
    /// name-label.
    pub name: String,
    /// name-description.
    pub description: String,
}

/// Default volblocksize of new volumes: 16 KiB, OpenZFS's default from 2.2, set
/// explicitly so that 2.1 (8 KiB default) and 2.4 hosts make identical volumes.
pub const DEFAULT_VOLBLOCKSIZE: u64 = 16384;

fn zpool(args: &[&str]) -> Result<String> {
    let out = Command::new("zpool")
        .args(args)
        .output()
        .map_err(|source| Error::Io {
            what: "run zpool (is zfsutils installed?)".into(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command {
            command: format!("zpool {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn imported_pools() -> Result<Vec<String>> {
    Ok(zpool(&["list", "-H", "-o", "name"])?
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

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
    for c in [VOL, SNAP, GC] {
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
        for c in [VOL, SNAP, GC] {
            let d = l.container(c);
            if zfs.exists(&d) {
                zfs.destroy(&d)?;
            }
        }
        zfs.destroy(&ds)?;
    }
    Ok(())
}

/// Import `pool` if it is not imported, searching the directories of `devices` too.
fn ensure_imported(zfs: &Zfs, pool: &str, devices: &[String]) -> Result<()> {
    if zfs.exists(pool) {
        return Ok(());
    }
    let mut args = vec!["import", "-N"];
    let dirs: Vec<String> = devices
        .iter()
        .filter_map(|d| {
            std::path::Path::new(d)
                .parent()
                .map(|p| p.display().to_string())
        })
        .collect();
    for d in &dirs {
        args.push("-d");
        args.push(d);
    }
    args.push(pool);
    match zpool(&args) {
        Ok(_) => Ok(()),
        Err(e) if zfs.exists(pool) => {
            let _ = e; // imported concurrently by another call
            Ok(())
        }
        Err(_) if !dirs.is_empty() => zpool(&["import", "-N", pool]).map(|_| ()),
        Err(e) => Err(e),
    }
}

impl Sr {
    /// Open an attached SR by its dataset (the `sr` string), checking our marker (I8).
    ///
    /// ```no_run
    /// let sr = zfs_volume::sr::Sr::open("tank/zvol-sr-1")?;
    /// # Ok::<(), zfs_volume::Error>(())
    /// ```
    pub fn open(dataset: &str) -> Result<Sr> {
        layout::check_dataset_name(dataset).map_err(|_| Error::SrNotFound(dataset.to_string()))?;
        let zfs = Zfs::get()?;
        let pool = dataset.split('/').next().unwrap_or(dataset);
        let mut args = NvList::new()?;
        args.add_string("root", dataset)?;
        // One ioctl: the program says whether the dataset exists, and a missing pool fails
        // it with ENOENT.
        let out = match zfs.program_nosync(pool, &SR_INFO, &args, Limits::default()) {
            Err(e) if e.is_errno(libc::ENOENT) => {
                return Err(Error::SrNotFound(dataset.to_string()))
            }
            r => r?,
        };
        let NvValue::List(t) = out else {
            return Err(Error::SrNotFound(dataset.to_string()));
        };
        if !matches!(t.get("exists"), Some(NvValue::Bool(true))) {
            return Err(Error::SrNotFound(dataset.to_string()));
        }
        let u = user(&t);
        let Some(uuid) = u.get(meta::SR_MARKER).cloned() else {
            return Err(Error::NotOurs(dataset.to_string()));
        };
        let provisioning = u
            .get(meta::SR_PROVISIONING)
            .and_then(|p| Provisioning::parse(p))
            .unwrap_or(Provisioning::Thin);
        let volblocksize = u
            .get(meta::SR_VOLBLOCKSIZE)
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_VOLBLOCKSIZE);
        Ok(Sr {
            zfs,
            layout: Layout::new(dataset),
            uuid,
            provisioning,
            volblocksize,
        })
    }

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
        Sr::open(&root)
    }

    /// Attach an SR from the configuration SR.create returned: import its pool when
    /// needed, check the marker, and finish anything a crash interrupted (I9).
    ///
    /// ```no_run
    /// let sr = zfs_volume::sr::Sr::attach("zvol-5e0a", "5e0a", &[])?;
    /// # Ok::<(), zfs_volume::Error>(())
    /// ```
    pub fn attach(parent: &str, uuid: &str, devices: &[String]) -> Result<Sr> {
        layout::check_sr_uuid(uuid)?;
        layout::check_dataset_name(parent).map_err(|e| Error::Config {
            key: "pool".into(),
            reason: e.to_string(),
        })?;
        let zfs = Zfs::get()?;
        let pool = parent.split('/').next().unwrap_or(parent);
        ensure_imported(zfs, pool, devices)?;
        let root = layout::sr_dataset(parent, uuid);
        let sr = Sr::open(&root)?;
        if sr.uuid != uuid {
            return Err(Error::NotOurs(root));
        }
        let _l = sr.lock()?;
        sr.recover_all()?;
        sr.hold_containers();
        Ok(sr)
    }

    /// Detach: unmount the containers attach mounted to keep them resident (mounts.rs);
    /// the pool stays imported for other SRs and for the next attach.
    pub fn detach(&self) -> Result<()> {
        self.release_containers();
        Ok(())
    }

    /// Destroy the SR: every VDI left (through the same path as Volume.destroy), the
    /// containers, the SR dataset, and the pool if SR.create made it and nothing else
    /// lives in it. Destroying an SR that is already gone succeeds.
    ///
    /// ```no_run
    /// zfs_volume::sr::Sr::destroy_dataset("zvol-5e0a/zvol-sr-5e0a")?;
    /// # Ok::<(), zfs_volume::Error>(())
    /// ```
    pub fn destroy_dataset(dataset: &str) -> Result<()> {
        // Only a name of our SR shape can be an SR of ours: anything else (a pool's root, a
        // foreign dataset, a bare uuid) is refused before anything looks at the pool, so a
        // wrong device-config never "destroys" nothing and reports success. An SR dataset
        // that exists must also carry our marker (Sr::open); one that is gone is destroyed
        // already (xapi retries SR.destroy after a failure).
        let Some(uuid) = layout::sr_uuid_of(dataset) else {
            return Err(Error::SrNotFound(dataset.to_string()));
        };
        let uuid_from_name = Some(uuid);
        let zfs = Zfs::get()?;
        let pool = dataset.split('/').next().unwrap_or(dataset).to_string();
        if zfs.exists(dataset) {
            let sr = Sr::open(dataset)?;
            let _l = sr.lock()?;
            sr.recover_all()?;
            for v in sr.ls_with_tombstones()?.0 {
                sr.destroy_locked(&v.key)?;
            }
            sr.recover_all()?;
            fault::point("sr-destroy:after-volumes");
            // A mounted container cannot be destroyed.
            sr.release_containers();
            for c in [VOL, SNAP, GC] {
                let d = sr.layout.container(c);
                if zfs.exists(&d) {
                    zfs.destroy(&d)?;
                }
            }
            zfs.destroy(dataset)?;
            fault::point("sr-destroy:after-root");
        }
        // The pool goes only if we made it for this SR and it is now empty.
        if let Some(uuid) = uuid_from_name {
            if zfs.exists(&pool) && dataset.matches('/').count() == 1 {
                let owner = zfs.user_properties(&pool)?;
                let ours = owner
                    .get(POOL_OWNER)
                    .map(|p| p.as_str() == Some(uuid) && p.source == pool)
                    .unwrap_or(false);
                if ours && pool == format!("{}{uuid}", layout::POOL_PREFIX) {
                    let mut a = NvList::new()?;
                    a.add_string("parent", &pool)?;
                    let empty = matches!(
                        zfs.program_nosync(&pool, &COUNT_CHILDREN, &a, Limits::default())?,
                        NvValue::I64(0)
                    );
                    if empty {
                        zpool(&["destroy", &pool])?;
                    }
                }
            }
        }
        Ok(())
    }

    /// SR.stat: space and health.
    pub fn stat(&self) -> Result<SrInfo> {
        let mut args = NvList::new()?;
        args.add_string("root", self.dataset())?;
        args.add_boolean_value("space", true)?;
        let out = self
            .zfs
            .program_nosync(self.pool(), &SR_INFO, &args, Limits::default())?;
        let NvValue::List(t) = out else {
            return Err(Error::SrNotFound(self.dataset().into()));
        };
        let u = user(&t);
        // Health only: on a zfs module whose legacy ioctl layout was not verified, read
        // from the pool's kstat instead of failing (`partial` says so).
        let st = self.zfs.pool_health(self.pool())?;
        let health = match st.health {
            PoolHealth::Online if st.resilvering => {
                Health::Recovering("pool is resilvering".into())
            }
            PoolHealth::Online => Health::Healthy(st.partial.clone().unwrap_or_default()),
            PoolHealth::Degraded => Health::Healthy(format!(
                "pool {} is DEGRADED (reduced redundancy): run 'zpool status {}'",
                self.pool(),
                self.pool()
            )),
            PoolHealth::Faulted => {
                Health::Unavailable(format!("pool {} is FAULTED or suspended", self.pool()))
            }
            PoolHealth::Unknown(s) => Health::Unavailable(match &st.partial {
                Some(why) => format!("pool {} health unknown: {why}", self.pool()),
                None => format!("pool {} is in unknown state {s}", self.pool()),
            }),
        };
        let free = num(&t, "available");
        Ok(SrInfo {
            dataset: self.dataset().to_string(),
            uuid: self.uuid.clone(),
            name: u.get(meta::SR_NAME).cloned().unwrap_or_default(),
            description: u.get(meta::SR_DESCRIPTION).cloned().unwrap_or_default(),
            free_space: free,
            total_space: num(&t, "pool_used") + num(&t, "pool_available"),
            health,
        })
    }

    /// SR.set_name.
    pub fn set_name(&self, name: &str) -> Result<()> {
        meta::check_value("SR name", name)?;
        self.zfs
            .update_user_properties(self.dataset(), &[(meta::SR_NAME, name)], &[])
    }

    /// SR.set_description.
    pub fn set_description(&self, d: &str) -> Result<()> {
        meta::check_value("SR description", d)?;
        self.zfs
            .update_user_properties(self.dataset(), &[(meta::SR_DESCRIPTION, d)], &[])
    }

    /// SR.probe: our SRs in `pool` (a pool or dataset) if given, else in every imported
    /// pool.
    ///
    /// ```no_run
    /// for f in zfs_volume::sr::Sr::probe(Some("tank"))? { println!("{}", f.uuid); }
    /// # Ok::<(), zfs_volume::Error>(())
    /// ```
    pub fn probe(pool: Option<&str>) -> Result<Vec<SrFound>> {
        let zfs = Zfs::get()?;
        let parents = match pool {
            Some(p) => {
                layout::check_dataset_name(p).map_err(|e| Error::Config {
                    key: "pool".into(),
                    reason: e.to_string(),
                })?;
                vec![p.to_string()]
            }
            None => imported_pools()?,
        };
        let mut found = vec![];
        for parent in parents {
            if !zfs.exists(&parent) {
                continue;
            }
            let mut a = NvList::new()?;
            a.add_string("parent", &parent)?;
            let pool = parent.split('/').next().unwrap_or(&parent);
            if let NvValue::List(t) = zfs.program_nosync(pool, &FIND_SRS, &a, Limits::large())? {
                for (_, v) in t {
                    let NvValue::List(r) = v else { continue };
                    let u = user(&r);
                    let Some(ds) = string(&r, "dataset") else {
                        continue;
                    };
                    found.push(SrFound {
                        parent: parent.clone(),
                        dataset: ds,
                        uuid: u.get(meta::SR_MARKER).cloned().unwrap_or_default(),
                        name: u.get(meta::SR_NAME).cloned().unwrap_or_default(),
                        description: u.get(meta::SR_DESCRIPTION).cloned().unwrap_or_default(),
                    });
                }
            }
        }
        Ok(found)
    }
}
