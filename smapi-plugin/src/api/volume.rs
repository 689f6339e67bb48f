//! The `Volume.*` methods of the volume plugin (contract §4.4; semantics in
//! `docs/semantics.md`). Each opens the SR (marker checked) and calls the one operation of
//! `zfs_volume::sr` that implements it; a volume's key is the UUID we issued, also reported as
//! its uuid, and its URI is `zvol:///dev/zvol/<dataset>` ([`super::datapath::zvol_uri`]).

use base64::Engine;
use zfs_volume::sr::{Kind, Sr};

use super::context::Context;
use crate::error::PluginError;
use crate::logging;
use crate::types::{ChangedBlocks, Keys, Volume, VolumeType};

crate::request! {
    /// `Volume.create`.
    CreateArgs { dbg: String, sr: String, name: String, description: String, size: Size, sharable: Bool }
}

crate::request! {
    /// `Volume.snapshot`, `Volume.clone`, `Volume.destroy`, `Volume.stat`: a volume of an SR.
    VolumeArgs { dbg: String, sr: String, key: String }
}

crate::request! {
    /// `Volume.revert`.
    RevertArgs { dbg: String, sr: String, snapshot: String, key: String }
}

crate::request! {
    /// `Volume.set_name`.
    SetNameArgs { dbg: String, sr: String, key: String, new_name: String }
}

crate::request! {
    /// `Volume.set_description`.
    SetDescriptionArgs { dbg: String, sr: String, key: String, new_description: String }
}

crate::request! {
    /// `Volume.set`.
    SetArgs { dbg: String, sr: String, key: String, k: String, v: String }
}

crate::request! {
    /// `Volume.unset`.
    UnsetArgs { dbg: String, sr: String, key: String, k: String }
}

crate::request! {
    /// `Volume.resize`.
    ResizeArgs { dbg: String, sr: String, key: String, new_size: Size }
}

crate::request! {
    /// `Volume.list_changed_blocks`: from `key` to `key2`, bytes `offset` to `offset + length`
    /// (a negative `length`: to the end, which is what xapi passes).
    ChangedBlocksArgs { dbg: String, sr: String, key: String, key2: String, offset: Size, length: Int64 }
}

/// `Volume.create`: a new volume of at least `size` bytes.
pub fn create(_: &Context, a: CreateArgs) -> Result<Volume, PluginError> {
    let sr = Sr::open(&a.sr)?;
    Ok(sr
        .volume_create(&a.name, &a.description, a.size.0, a.sharable)?
        .into())
}

/// `Volume.snapshot`: a new read-only, attachable snapshot volume of `key`.
pub fn snapshot(_: &Context, a: VolumeArgs) -> Result<Volume, PluginError> {
    Ok(Sr::open(&a.sr)?.volume_snapshot(&a.key)?.into())
}

/// `Volume.clone`: a new writable copy of any volume, snapshot or not.
pub fn clone(_: &Context, a: VolumeArgs) -> Result<Volume, PluginError> {
    Ok(Sr::open(&a.sr)?.volume_clone(&a.key)?.into())
}

/// `Volume.destroy` (idempotent: a missing key succeeds).
pub fn destroy(_: &Context, a: VolumeArgs) -> Result<(), PluginError> {
    Ok(Sr::open(&a.sr)?.volume_destroy(&a.key)?)
}

/// `Volume.revert`: `key` takes the content of `snapshot`, keeping its identity.
pub fn revert(_: &Context, a: RevertArgs) -> Result<(), PluginError> {
    Ok(Sr::open(&a.sr)?.volume_revert(&a.snapshot, &a.key)?)
}

/// `Volume.set_name`.
pub fn set_name(_: &Context, a: SetNameArgs) -> Result<(), PluginError> {
    Ok(Sr::open(&a.sr)?.volume_set_name(&a.key, &a.new_name)?)
}

/// `Volume.set_description`.
pub fn set_description(_: &Context, a: SetDescriptionArgs) -> Result<(), PluginError> {
    Ok(Sr::open(&a.sr)?.volume_set_description(&a.key, &a.new_description)?)
}

/// `Volume.set`: a custom key (`xe vdi-param-set sm-config`, xapi's own keys).
pub fn set(_: &Context, a: SetArgs) -> Result<(), PluginError> {
    Ok(Sr::open(&a.sr)?.volume_set(&a.key, &a.k, &a.v)?)
}

/// `Volume.unset` (an absent key is fine).
pub fn unset(_: &Context, a: UnsetArgs) -> Result<(), PluginError> {
    Ok(Sr::open(&a.sr)?.volume_unset(&a.key, &a.k)?)
}

/// `Volume.resize`: grow to at least `new_size` bytes (never shrinks).
pub fn resize(_: &Context, a: ResizeArgs) -> Result<(), PluginError> {
    Ok(Sr::open(&a.sr)?.volume_resize(&a.key, a.new_size.0)?)
}

/// `Volume.enable_cbt`: changed block tracking on (ZFS computes the changes; nothing is
/// tracked on the write path).
pub fn enable_cbt(_: &Context, a: VolumeArgs) -> Result<(), PluginError> {
    Ok(Sr::open(&a.sr)?.volume_enable_cbt(&a.key)?)
}

/// `Volume.disable_cbt`.
pub fn disable_cbt(_: &Context, a: VolumeArgs) -> Result<(), PluginError> {
    Ok(Sr::open(&a.sr)?.volume_disable_cbt(&a.key)?)
}

/// `Volume.data_destroy`: a CBT-enabled snapshot VDI loses its data and stays as CBT metadata.
pub fn data_destroy(_: &Context, a: VolumeArgs) -> Result<(), PluginError> {
    Ok(Sr::open(&a.sr)?.volume_data_destroy(&a.key)?)
}

/// `Volume.list_changed_blocks`: the 64 KiB blocks that may differ from `key` to `key2`.
pub fn list_changed_blocks(
    _: &Context,
    a: ChangedBlocksArgs,
) -> Result<ChangedBlocks, PluginError> {
    // "Negative lengths indicate that we want the full length" (the IDL).
    let length = u64::try_from(a.length).ok();
    // The SR is opened by the program that reads the pair (one cold ioctl fewer).
    let c = Sr::list_changed_blocks_at(&a.sr, &a.key, &a.key2, a.offset.0, length)?;
    if let Some(s) = &c.stats {
        // The peak memory too: it must stay flat as disks grow (the bitmap, not the disk).
        logging::info(&format!(
            "Volume.list_changed_blocks {} -> {}: {} of {} blocks changed ({} stream records, {} \
             bytes; peak RSS {} KiB){}",
            a.key,
            a.key2,
            c.bitmap.count(),
            c.bitmap.blocks(),
            s.records,
            s.bytes,
            peak_rss_kib().map_or("?".into(), |k| k.to_string()),
            if c.sent_ahead {
                "; the send started ahead"
            } else {
                ""
            }
        ));
    }
    Ok(ChangedBlocks {
        granularity: i64_of(c.bitmap.granularity()),
        bitmap: base64::engine::general_purpose::STANDARD.encode(c.bitmap.as_bytes()),
    })
}

/// This process's peak resident memory (`VmHWM` of /proc/self/status), KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `Volume.stat` (a pure read).
pub fn stat(_: &Context, a: VolumeArgs) -> Result<Volume, PluginError> {
    Ok(Sr::open(&a.sr)?.volume_stat(&a.key)?.into())
}

/// Bytes as the IDL's int64 (sizes above i64::MAX cannot occur on a real pool; saturate).
pub(crate) fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl From<zfs_volume::sr::VdiInfo> for Volume {
    /// The SMAPI volume of a VDI: its key is also its uuid; its URI is built with
    /// [`super::datapath::zvol_uri`], so the datapath plugin parses it back exactly.
    fn from(v: zfs_volume::sr::VdiInfo) -> Volume {
        let uri = super::datapath::zvol_uri(std::path::Path::new(&v.device_path()));
        let volume_type = match v.kind {
            Kind::CbtMetadata => VolumeType::CbtMetadata,
            Kind::Volume | Kind::Snapshot => VolumeType::Data,
        };
        Volume {
            uuid: Some(v.key.clone()),
            read_write: v.read_write(),
            key: v.key,
            name: v.name,
            description: v.description,
            sharable: v.sharable,
            virtual_size: i64_of(v.virtual_size),
            physical_utilisation: i64_of(v.physical_utilisation),
            uri: vec![uri],
            keys: v.keys.into_iter().collect::<Keys>(),
            volume_type: Some(volume_type),
            cbt_enabled: Some(v.cbt_enabled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_mapping() {
        let v = zfs_volume::sr::VdiInfo {
            key: "0f8c3d1e-6a57-4b1c-9d0e-2f3a4b5c6d7e".into(),
            kind: zfs_volume::sr::Kind::Snapshot,
            dataset: "tank/zvol-sr-u/snap/0f8c3d1e-6a57-4b1c-9d0e-2f3a4b5c6d7e".into(),
            name: "n".into(),
            description: "d".into(),
            sharable: true,
            virtual_size: 1 << 30,
            physical_utilisation: 4096,
            keys: [("vdi-type".to_string(), "user".to_string())]
                .into_iter()
                .collect(),
            snapshot_of: None,
            thick: false,
            origin: None,
            content: None,
            cbt_enabled: true,
        };
        let vol = Volume::from(v);
        assert_eq!(vol.uuid.as_deref(), Some(vol.key.as_str()));
        assert!(!vol.read_write);
        assert!(vol.sharable);
        assert_eq!(vol.virtual_size, 1 << 30);
        assert_eq!(
            vol.uri,
            vec![format!("zvol:///dev/zvol/tank/zvol-sr-u/snap/{}", vol.key)]
        );
        assert_eq!(vol.keys["vdi-type"], "user");
        assert_eq!(vol.volume_type, Some(VolumeType::Data));
        assert_eq!(vol.cbt_enabled, Some(true));
        let cfg = crate::api::context::DatapathConfig::default();
        assert_eq!(
            super::super::datapath::parse_uri(&vol.uri[0], &cfg).unwrap(),
            std::path::Path::new(
                "/dev/zvol/tank/zvol-sr-u/snap/0f8c3d1e-6a57-4b1c-9d0e-2f3a4b5c6d7e"
            )
        );
    }
}
