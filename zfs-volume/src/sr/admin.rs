//! SR lifecycle: open, attach, detach, stat, names, probe (SR.create and SR.destroy have files of
//! their own: sr_create.rs, sr_destroy.rs).
//!
//! Pool creation, import and destroy run `zpool` (rare administrative work, as every
//! mature peer does); everything else is in-process. A pool is destroyed only when
//! SR.create made it: its root dataset then carries `xapi-zvol:created-by-sr=<uuid>`,
//! set by `zpool create -O` in the same step that creates the pool (I8).

use super::layout::{self, Layout};
use super::names::sr_program;
use super::record::{num, string, user, Health, SrInfo};
use super::{meta, Sr};
use crate::error::{Error, Result};
use crate::lzc::{Compression, Limits, NvList, NvValue, PoolHealth, Program, Zfs};
use std::process::Command;

static SR_INFO: Program = sr_program!("sr_info");
pub(super) static FIND_SRS: Program = sr_program!("find_srs");
pub(super) static COUNT_CHILDREN: Program = sr_program!("count_children");

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

pub(super) fn zpool(args: &[&str]) -> Result<String> {
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

/// Import `pool` if it is not imported, searching the directories of `devices` too.
pub(super) fn ensure_imported(zfs: &Zfs, pool: &str, devices: &[String]) -> Result<()> {
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
        Sr::from_info(zfs, dataset, &out)
    }

    /// The SR at `dataset` from what `sr_info.lua` (or a program that embeds its check, as
    /// `cbt_pair.lua`) read of it: it must exist and carry our marker (I8).
    pub(super) fn from_info(zfs: &'static Zfs, dataset: &str, info: &NvValue) -> Result<Sr> {
        let NvValue::List(t) = info else {
            return Err(Error::SrNotFound(dataset.to_string()));
        };
        if !matches!(t.get("exists"), Some(NvValue::Bool(true))) {
            return Err(Error::SrNotFound(dataset.to_string()));
        }
        let u = user(t);
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
            .map_err(Error::from)
    }

    /// SR.set_description.
    pub fn set_description(&self, d: &str) -> Result<()> {
        meta::check_value("SR description", d)?;
        self.zfs
            .update_user_properties(self.dataset(), &[(meta::SR_DESCRIPTION, d)], &[])
            .map_err(Error::from)
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
