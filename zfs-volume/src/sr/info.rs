//! What stat and ls report, decoded from the in-kernel listing programs.

use super::layout::Kind;
use super::meta;
use super::summary::Record;
use crate::lzc::{NvTree, NvValue};
use std::collections::BTreeMap;

/// One VDI as xapi sees it.
///
/// ```
/// # use zfs_volume::sr::{VdiInfo, Kind};
/// let v = VdiInfo { key: "k".into(), kind: Kind::Volume, dataset: "p/s/vol/k".into(), name: "n".into(),
///     description: String::new(), sharable: false, virtual_size: 1 << 20, physical_utilisation: 0,
///     keys: Default::default(), snapshot_of: None, thick: false, origin: None, content: None };
/// assert!(v.read_write());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdiInfo {
    /// The key (a UUID), also the VDI uuid.
    pub key: String,
    /// Writable volume or read-only snapshot VDI.
    pub kind: Kind,
    /// The dataset behind it.
    pub dataset: String,
    /// name-label.
    pub name: String,
    /// name-description.
    pub description: String,
    /// Sharable flag given at create.
    pub sharable: bool,
    /// volsize, bytes.
    pub virtual_size: u64,
    /// Space it uses: `used` for a volume (with its reservation), `referenced` for a
    /// snapshot VDI (the data it shows; its own `used` is near zero).
    pub physical_utilisation: u64,
    /// xapi's keys (`Volume.set`), decoded.
    pub keys: BTreeMap<String, String>,
    /// For a snapshot VDI: the key of the volume it was taken from.
    pub snapshot_of: Option<String>,
    /// Thick provisioned (has a refreservation).
    pub thick: bool,
    /// The ZFS origin snapshot, if the dataset is a clone ([`crate::sr::Sr::volume_stat`]
    /// and the deep listing of `tree` fill it; SR.ls does not need it and skips the lookup).
    pub origin: Option<String>,
    /// For a snapshot VDI, the ZFS snapshot holding exactly its content, when one exists:
    /// its origin while that is still `<source>@<key>`, or its own `@<key>` after a
    /// promote moved it there. (After a promote the origin can be an older snapshot of
    /// an ancestor, which is NOT this VDI's content.) Only [`crate::sr::Sr::volume_stat`]
    /// fills it.
    pub content: Option<String>,
}

impl VdiInfo {
    /// False for snapshot VDIs (I5).
    pub fn read_write(&self) -> bool {
        self.kind == Kind::Volume
    }
    /// The block device link udev creates for it.
    pub fn device_path(&self) -> String {
        super::layout::Layout::device_path(&self.dataset)
    }
}

/// SR health, as xapi's `health` variant wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Usable.
    Healthy(String),
    /// Usable, repairing (resilver); scans are refused by xapi while reported.
    Recovering(String),
    /// Not usable.
    Unavailable(String),
}

/// What SR.stat reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrInfo {
    /// SR dataset.
    pub dataset: String,
    /// SR uuid (marker).
    pub uuid: String,
    /// name-label.
    pub name: String,
    /// name-description.
    pub description: String,
    /// Bytes free for new data.
    pub free_space: u64,
    /// Bytes in all (pool used + available).
    pub total_space: u64,
    /// Health from the pool state.
    pub health: Health,
}

pub(crate) fn num(t: &NvTree, k: &str) -> u64 {
    match t.get(k) {
        Some(NvValue::I64(n)) => *n as u64,
        Some(NvValue::U64(n)) => *n,
        Some(NvValue::Str(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

pub(crate) fn string(t: &NvTree, k: &str) -> Option<String> {
    match t.get(k) {
        Some(NvValue::Str(s)) => Some(s.clone()),
        _ => None,
    }
}

pub(crate) fn user(t: &NvTree) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Some(NvValue::List(u)) = t.get("user") {
        for (k, v) in u {
            if let NvValue::Str(s) = v {
                m.insert(k.clone(), s.clone());
            }
        }
    }
    m
}

/// Decode one record of stat_vdi.lua / list_sr.lua.
pub(crate) fn vdi_from(t: &NvTree) -> Option<VdiInfo> {
    let kind = match string(t, "kind")?.as_str() {
        "volume" => Kind::Volume,
        "snapshot" => Kind::Snapshot,
        _ => return None,
    };
    // The listing record (SR.ls), when the VDI has one: see summary.rs. One this version
    // cannot read gives None: the listing skipped the properties, so the caller reads them.
    if let Some(text) = string(t, "ls") {
        let rec = Record::decode(&text)?;
        let mut v = rec.into_info(
            string(t, "key")?,
            kind,
            string(t, "dataset")?,
            num(t, "used"),
            num(t, "referenced"),
        );
        v.origin = string(t, "origin");
        v.content = string(t, "content");
        return Some(v);
    }
    let user = user(t);
    let key = string(t, "key").or_else(|| user.get(meta::VDI_KEY).cloned())?;
    let keys = user
        .iter()
        .filter_map(|(k, v)| meta::decode_key(k).map(|d| (d, v.clone())))
        .collect();
    let physical_utilisation = match kind {
        Kind::Volume => num(t, "used"),
        Kind::Snapshot => num(t, "referenced"),
    };
    Some(VdiInfo {
        key,
        kind,
        dataset: string(t, "dataset")?,
        name: user.get(meta::VDI_NAME).cloned().unwrap_or_default(),
        description: user.get(meta::VDI_DESCRIPTION).cloned().unwrap_or_default(),
        sharable: user
            .get(meta::VDI_SHARABLE)
            .map(|s| s == "true")
            .unwrap_or(false),
        virtual_size: num(t, "volsize"),
        physical_utilisation,
        keys,
        snapshot_of: user.get(meta::VDI_SNAPSHOT_OF).cloned(),
        thick: user
            .get(meta::VDI_PROVISIONING)
            .map(|p| p == "thick")
            .unwrap_or(false),
        origin: string(t, "origin"),
        content: string(t, "content"),
    })
}
