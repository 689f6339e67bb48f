//! The `SR.*` methods of the volume plugin (contract §4.3).
//!
//! The opaque `sr` string is the SR **dataset** (`zvol-<uuid>/zvol-sr-<uuid>` when SR.create
//! made the pool, `<pool or dataset>/zvol-sr-<uuid>` otherwise); every call reopens it with
//! [`Sr::open`], which checks our marker: nothing else is ever touched. The device-config rules
//! are in [`super::sr_config`].

use zfs_volume::sr::{self, PoolSource, Sr};

use super::context::Context;
use super::sr_config::{
    non_empty, not_ours_is_config, parse_devices, parse_sr_config, refuse_parent_inside_an_sr,
    required, CONFIG_SR_UUID,
};
use crate::error::PluginError;
use crate::logging;
use crate::query::{CONFIG_DEVICE, CONFIG_POOL};
use crate::types::{Configuration, Health, ProbeResult, SrStat, Volume};

crate::request! {
    /// `SR.probe`, `SR.attach`: a device-config.
    ConfigArgs { dbg: String, configuration: Configuration }
}

crate::request! {
    /// `SR.create`.
    CreateArgs { dbg: String, uuid: String, configuration: Configuration, name: String, description: String }
}

crate::request! {
    /// `SR.detach`, `SR.destroy`, `SR.stat`, `SR.ls`: an SR.
    SrArgs { dbg: String, sr: String }
}

crate::request! {
    /// `SR.set_name`.
    SetNameArgs { dbg: String, sr: String, new_name: String }
}

crate::request! {
    /// `SR.set_description`.
    SetDescriptionArgs { dbg: String, sr: String, new_description: String }
}

/// `SR.probe`: the SRs of ours in `pool` (or in every imported pool), each complete (it has its
/// `sr_uuid`); one that cannot be stat'ed (a faulted pool) is still reported, without `sr`.
pub fn probe(_: &Context, a: ConfigArgs) -> Result<Vec<ProbeResult>, PluginError> {
    let device = non_empty(&a.configuration, CONFIG_DEVICE);
    let mut out = Vec::new();
    for found in Sr::probe(non_empty(&a.configuration, CONFIG_POOL))? {
        let mut conf = Configuration::new();
        conf.insert(CONFIG_POOL.into(), found.parent.clone());
        conf.insert(CONFIG_SR_UUID.into(), found.uuid.clone());
        if let Some(d) = device {
            conf.insert(CONFIG_DEVICE.into(), d.to_string());
        }
        let stat = Sr::open(&found.dataset).and_then(|s| s.stat());
        if let Err(e) = &stat {
            logging::warn(&format!("SR.probe: cannot stat {}: {e}", found.dataset));
        }
        out.push(ProbeResult {
            configuration: conf,
            complete: true,
            sr: stat.ok().map(SrStat::from),
            extra_info: Default::default(),
        });
    }
    Ok(out)
}

/// `SR.create`: the SR (and its pool, for `device`/`vdev`); returns the configuration xapi
/// stores as device-config, with `sr_uuid` and `pool` added.
pub fn create(_: &Context, a: CreateArgs) -> Result<Configuration, PluginError> {
    let cfg = parse_sr_config(&a.configuration)?;
    if let PoolSource::Existing(parent) = &cfg.source {
        refuse_parent_inside_an_sr(parent)?;
    }
    let sr = Sr::create(&a.uuid, &cfg, &a.name, &a.description).map_err(not_ours_is_config)?;
    let parent = match sr.dataset().rsplit_once('/') {
        Some((p, _)) => p.to_string(),
        None => sr.pool().to_string(),
    };
    let mut out = a.configuration;
    out.insert(CONFIG_SR_UUID.into(), sr.uuid().to_string());
    out.insert(CONFIG_POOL.into(), parent);
    Ok(out)
}

/// `SR.attach` (idempotent): imports the pool if needed, mounts the SR's containers, and
/// returns the opaque `sr` string (the SR dataset).
pub fn attach(_: &Context, a: ConfigArgs) -> Result<String, PluginError> {
    let uuid = required(&a.configuration, CONFIG_SR_UUID)?;
    let pool = required(&a.configuration, CONFIG_POOL)?;
    let devices = match non_empty(&a.configuration, CONFIG_DEVICE) {
        Some(d) => parse_devices(d)?,
        None => Vec::new(),
    };
    let sr = Sr::attach(pool, uuid, &devices).map_err(not_ours_is_config)?;
    Ok(sr.dataset().to_string())
}

/// `SR.detach` (idempotent: an SR that is gone, or whose pool is exported, is detached).
pub fn detach(_: &Context, a: SrArgs) -> Result<(), PluginError> {
    match Sr::open(&a.sr) {
        Ok(s) => Ok(s.detach()?),
        Err(zfs_volume::Error::SrNotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `SR.destroy` (no detach follows): a string that cannot name an SR is refused before any pool
/// is looked at.
pub fn destroy(_: &Context, a: SrArgs) -> Result<(), PluginError> {
    sr::layout::check_dataset_name(&a.sr)
        .map_err(|_| zfs_volume::Error::SrNotFound(a.sr.clone()))?;
    Ok(Sr::destroy_sr(&a.sr)?)
}

/// `SR.stat` (a pure read).
pub fn stat(_: &Context, a: SrArgs) -> Result<SrStat, PluginError> {
    Ok(Sr::open(&a.sr)?.stat()?.into())
}

/// `SR.set_name`.
pub fn set_name(_: &Context, a: SetNameArgs) -> Result<(), PluginError> {
    Ok(Sr::open(&a.sr)?.set_name(&a.new_name)?)
}

/// `SR.set_description`.
pub fn set_description(_: &Context, a: SetDescriptionArgs) -> Result<(), PluginError> {
    Ok(Sr::open(&a.sr)?.set_description(&a.new_description)?)
}

/// `SR.ls`: every live volume, snapshots included, with its keys (a pure read).
pub fn ls(_: &Context, a: SrArgs) -> Result<Vec<Volume>, PluginError> {
    Ok(Sr::open(&a.sr)?
        .ls()?
        .into_iter()
        .map(Volume::from)
        .collect())
}

impl From<zfs_volume::sr::Health> for Health {
    fn from(h: zfs_volume::sr::Health) -> Health {
        use zfs_volume::sr::Health as H;
        match h {
            H::Healthy(m) => Health::Healthy(m),
            H::Recovering(m) => Health::Recovering(m),
            H::Unavailable(m) => Health::Unavailable(m),
        }
    }
}

impl From<zfs_volume::sr::SrInfo> for SrStat {
    /// The SMAPI sr_stat of an SR (`sr` = its dataset, the opaque string).
    fn from(info: zfs_volume::sr::SrInfo) -> SrStat {
        SrStat {
            sr: info.dataset,
            name: info.name,
            uuid: Some(info.uuid),
            description: info.description,
            free_space: super::volume::i64_of(info.free_space),
            total_space: super::volume::i64_of(info.total_space),
            datasources: Vec::new(),
            clustered: false,
            health: info.health.into(),
        }
    }
}
