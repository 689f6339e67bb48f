//! [`ModelBackend`]: a ZFS-free [`VolumeBackend`] for the `request` target.
//!
//! It runs the same pure checks as the ZFS backend before it would touch a pool (key, SR uuid,
//! dataset name, property name and value limits, SR.create's configuration parser), then answers
//! with a fixed, plausible value built through the ZFS backend's own conversions
//! ([`volume_of`], [`sr_stat_of`]), so request strings flow into the rendered results (names,
//! descriptions, configurations, device URIs) and the encoder is fuzzed as well. It proves
//! nothing about storage semantics.

use std::collections::BTreeMap;

use smapi_plugin::backend::{AdminCmd, VolumeBackend};
use smapi_plugin::types::{Configuration, ProbeResult, SrStat, Volume};
use smapi_plugin::zfs_backend::{parse_sr_config, sr_stat_of, volume_of, CONFIG_SR_UUID};
use smapi_plugin::PluginError;
use zfs_volume::sr::layout::{check_dataset_name, check_key, check_sr_uuid, sr_dataset, Layout};
use zfs_volume::sr::meta::{check_value, encode_key};
use zfs_volume::sr::{round_size, Health, Kind, PoolSource, SrInfo, VdiInfo};

/// The key every newly made volume gets (a key the ZFS backend could have issued).
pub const NEW_KEY: &str = "0f8c3d1e-6a57-4b1c-9d0e-2f3a4b5c6d7e";

/// The SR-dataset part of the opaque `sr` string this model hands out.
const POOL: &str = "tank";

/// See the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub struct ModelBackend;

/// The SR layout behind an opaque `sr` string, refused as the ZFS backend refuses a name that
/// cannot be a dataset.
fn layout(sr: &str) -> Result<Layout, PluginError> {
    check_dataset_name(sr).map_err(|_| zfs_volume::Error::SrNotFound(sr.to_string()))?;
    Ok(Layout::new(sr))
}

fn vdi(sr: &str, key: &str, kind: Kind, name: &str, description: &str, size: u64) -> Result<Volume, PluginError> {
    check_key(key)?;
    check_value("name", name)?;
    check_value("description", description)?;
    let dataset = layout(sr)?.vdi(key, kind);
    Ok(volume_of(VdiInfo {
        key: key.to_string(),
        kind,
        dataset,
        name: name.to_string(),
        description: description.to_string(),
        sharable: false,
        virtual_size: round_size(size, 16384)?,
        physical_utilisation: 4096,
        keys: BTreeMap::from([("vdi-type".to_string(), "user".to_string())]),
        snapshot_of: (kind == Kind::Snapshot).then(|| NEW_KEY.to_string()),
        thick: false,
        origin: None,
        content: None,
    }))
}

fn stat(sr: &str, uuid: &str) -> Result<SrStat, PluginError> {
    layout(sr)?;
    Ok(sr_stat_of(SrInfo {
        dataset: sr.to_string(),
        uuid: uuid.to_string(),
        name: "sr".to_string(),
        description: String::new(),
        free_space: 1 << 30,
        total_space: 1 << 31,
        health: Health::Healthy(String::new()),
    }))
}

fn set_text(sr: &str, key: Option<&str>, what: &str, text: &str) -> Result<(), PluginError> {
    layout(sr)?;
    if let Some(k) = key {
        check_key(k)?;
    }
    Ok(check_value(what, text)?)
}

impl VolumeBackend for ModelBackend {
    fn diagnostics(&self, _: &str) -> Result<String, PluginError> {
        Ok("model backend: no pool".to_string())
    }
    fn sr_probe(&self, _: &str, c: &Configuration) -> Result<Vec<ProbeResult>, PluginError> {
        let uuid = "5e0a3e4c-1f7b-4c1e-8f1a-0d3c2b1a0f9e";
        let mut found = c.clone();
        found.insert(CONFIG_SR_UUID.to_string(), uuid.to_string());
        let sr = stat(&sr_dataset(POOL, uuid), uuid)?;
        Ok(vec![ProbeResult { configuration: found, complete: true, sr: Some(sr), extra_info: BTreeMap::new() }])
    }
    fn sr_create(&self, _: &str, uuid: &str, c: &Configuration, name: &str, desc: &str) -> Result<Configuration, PluginError> {
        let cfg = parse_sr_config(c)?;
        check_sr_uuid(uuid)?;
        check_value("name", name)?;
        check_value("description", desc)?;
        let parent = match cfg.source {
            PoolSource::Existing(p) => p,
            _ => format!("zvol-{uuid}"),
        };
        check_dataset_name(&sr_dataset(&parent, uuid))?;
        let mut out = c.clone();
        out.insert(CONFIG_SR_UUID.to_string(), uuid.to_string());
        out.insert("pool".to_string(), parent);
        Ok(out)
    }
    fn sr_attach(&self, _: &str, c: &Configuration) -> Result<String, PluginError> {
        let uuid = c.get(CONFIG_SR_UUID).map_or("", String::as_str);
        check_sr_uuid(uuid)?;
        let sr = sr_dataset(c.get("pool").map_or(POOL, String::as_str), uuid);
        layout(&sr)?;
        Ok(sr)
    }
    fn sr_detach(&self, _: &str, sr: &str) -> Result<(), PluginError> {
        layout(sr).map(drop)
    }
    fn sr_destroy(&self, _: &str, sr: &str) -> Result<(), PluginError> {
        layout(sr).map(drop)
    }
    fn sr_stat(&self, _: &str, sr: &str) -> Result<SrStat, PluginError> {
        stat(sr, "5e0a3e4c-1f7b-4c1e-8f1a-0d3c2b1a0f9e")
    }
    fn sr_set_name(&self, _: &str, sr: &str, new_name: &str) -> Result<(), PluginError> {
        set_text(sr, None, "name", new_name)
    }
    fn sr_set_description(&self, _: &str, sr: &str, new_description: &str) -> Result<(), PluginError> {
        set_text(sr, None, "description", new_description)
    }
    fn sr_ls(&self, _: &str, sr: &str) -> Result<Vec<Volume>, PluginError> {
        Ok(vec![vdi(sr, NEW_KEY, Kind::Volume, "v", "", 1 << 20)?, vdi(sr, "1", Kind::Snapshot, "s", "", 1 << 20)?])
    }
    fn volume_create(&self, _: &str, sr: &str, name: &str, desc: &str, size: i64, _: bool) -> Result<Volume, PluginError> {
        // The adapter has refused negative sizes already: a wrap here would be a dispatch bug.
        let size = u64::try_from(size).expect("dispatch passed a negative size");
        vdi(sr, NEW_KEY, Kind::Volume, name, desc, size)
    }
    fn volume_snapshot(&self, _: &str, sr: &str, key: &str) -> Result<Volume, PluginError> {
        check_key(key)?;
        vdi(sr, NEW_KEY, Kind::Snapshot, "snapshot", "", 1 << 20)
    }
    fn volume_clone(&self, _: &str, sr: &str, key: &str) -> Result<Volume, PluginError> {
        check_key(key)?;
        vdi(sr, NEW_KEY, Kind::Volume, "clone", "", 1 << 20)
    }
    fn volume_destroy(&self, _: &str, sr: &str, key: &str) -> Result<(), PluginError> {
        layout(sr)?;
        Ok(check_key(key)?)
    }
    fn volume_revert(&self, _: &str, sr: &str, snapshot: &str, key: &str) -> Result<(), PluginError> {
        layout(sr)?;
        check_key(snapshot)?;
        Ok(check_key(key)?)
    }
    fn volume_set_name(&self, _: &str, sr: &str, key: &str, new_name: &str) -> Result<(), PluginError> {
        set_text(sr, Some(key), "name", new_name)
    }
    fn volume_set_description(&self, _: &str, sr: &str, key: &str, new_description: &str) -> Result<(), PluginError> {
        set_text(sr, Some(key), "description", new_description)
    }
    fn volume_set(&self, _: &str, sr: &str, key: &str, k: &str, v: &str) -> Result<(), PluginError> {
        encode_key(k)?;
        set_text(sr, Some(key), "value", v)
    }
    fn volume_unset(&self, _: &str, sr: &str, key: &str, k: &str) -> Result<(), PluginError> {
        encode_key(k)?;
        set_text(sr, Some(key), "key", "")
    }
    fn volume_resize(&self, _: &str, sr: &str, key: &str, new_size: i64) -> Result<(), PluginError> {
        let new_size = u64::try_from(new_size).expect("dispatch passed a negative size");
        round_size(new_size, 16384)?;
        set_text(sr, Some(key), "key", "")
    }
    fn volume_stat(&self, _: &str, sr: &str, key: &str) -> Result<Volume, PluginError> {
        vdi(sr, key, Kind::Volume, "v", "", 1 << 20)
    }
    fn admin(&self, cmd: AdminCmd) -> Result<String, PluginError> {
        Ok(cmd.to_string())
    }
}
