//! What stat and ls report about VDIs and SRs, decoded from the in-kernel programs, and the
//! listing record those programs read.
//!
//! **The listing record**: all SR.ls reports about a VDI except its live space use, kept in
//! one user property (`xapi-zvol:ls`) so that SR.ls reads one property per VDI.
//!
//! Why: inside the kernel, reading any *native* property of a dataset, or listing its user
//! properties, opens the dataset's objset, and ZFS rebuilds that from scratch every time
//! (a dataset is evicted as soon as its last hold goes; the open walks the inheritance of a
//! dozen properties up the tree). That was ~4 ms per VDI in the test VM and made SR.ls cost
//! as much as `zfs list`. A user property read by name does not open the objset (~0.3 ms).
//! A volume still pays one open for `used`, which changes with every write; a snapshot
//! VDI pays none: its size and `referenced` never change (it is never written).
//!
//! The record is a cache of the separate properties, which stay the truth
//! ([`crate::sr::Sr::volume_stat_from_properties`] reads them; the tests compare both after
//! every kind of change). Volume.stat reads the record as SR.ls does, plus the live space
//! use and origin, and a datapath's device lookup reads only the record: xapi stats before
//! every datapath call, and each native property read would open the objset again. Every
//! writer sets it in the same txg as the properties it summarises. A
//! change the record cannot follow atomically (a resize: `volsize` is set by its own
//! ioctl) removes the record first and writes it back after, so a crash leaves no record,
//! never a stale one. Without a record SR.ls reads the properties, as for VDIs made before
//! the record existed; the next metadata change of such a VDI writes one. A record that
//! would not fit in a property value is not written. The one way to make a record stale is
//! to change the properties without it: by hand (`zfs set xapi-zvol:...`), or with a build
//! from before the record; the next change through xapi-zvol rewrites it from the
//! properties, and `zfs inherit xapi-zvol:ls <dataset>` drops it at once.

use super::layout::Kind;
use super::meta::{self, MAX_PROP_VALUE};
use crate::lzc::{NvTree, NvValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One VDI as xapi sees it.
///
/// ```
/// # use zfs_volume::sr::{VdiInfo, Kind};
/// let v = VdiInfo { key: "k".into(), kind: Kind::Volume, dataset: "p/s/vol/k".into(), name: "n".into(),
///     description: String::new(), sharable: false, virtual_size: 1 << 20, physical_utilisation: 0,
///     keys: Default::default(), snapshot_of: None, thick: false, origin: None, content: None,
///     cbt_enabled: false };
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
    /// Changed block tracking is enabled (`Volume.enable_cbt`; copied to its snapshots).
    pub cbt_enabled: bool,
}

impl VdiInfo {
    /// False for snapshot VDIs (I5) and CBT-metadata VDIs.
    pub fn read_write(&self) -> bool {
        self.kind == Kind::Volume
    }
    /// False for a CBT-metadata VDI, whose data was destroyed (`Volume.data_destroy`).
    pub fn holds_data(&self) -> bool {
        self.kind != Kind::CbtMetadata
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
        "cbt_metadata" => Kind::CbtMetadata,
        _ => return None,
    };
    // The listing record (SR.ls), when the VDI has one: see below. One this version
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
        Kind::CbtMetadata => 0,
    };
    // A CBT-metadata VDI is a filesystem: no volsize, its size is a property.
    let virtual_size = match kind {
        Kind::CbtMetadata => user
            .get(meta::VDI_SIZE)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => num(t, "volsize"),
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
        virtual_size,
        physical_utilisation,
        keys,
        snapshot_of: user.get(meta::VDI_SNAPSHOT_OF).cloned(),
        thick: user
            .get(meta::VDI_PROVISIONING)
            .map(|p| p == "thick")
            .unwrap_or(false),
        origin: string(t, "origin"),
        content: string(t, "content"),
        cbt_enabled: user.get(meta::VDI_CBT).is_some_and(|s| s == "true"),
    })
}

/// The string elements of the list `k` of a program's output (absent or not a list: none).
pub(crate) fn strings(t: &NvTree, k: &str) -> Vec<String> {
    match t.get(k) {
        Some(NvValue::List(l)) => l
            .iter()
            .filter_map(|(_, v)| {
                if let NvValue::Str(s) = v {
                    Some(s.clone())
                } else {
                    None
                }
            })
            .collect(),
        _ => vec![],
    }
}

// ---------------------------------------------------------------------------------------
// The listing record
// ---------------------------------------------------------------------------------------

/// The property holding the record.
pub use super::names::LISTING as PROP;
pub use super::names::REFERENCED_HEAD;
/// Record format version.
const VERSION: u32 = 1;

/// One VDI's listing record. Field names are short: the record is read for every VDI of
/// every SR.ls. `r` is first so that its presence shows in the first bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `referenced` of a snapshot VDI (its physical utilisation), when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub r: Option<u64>,
    /// Format version.
    pub v: u32,
    /// name-label.
    pub n: String,
    /// name-description.
    pub d: String,
    /// Sharable.
    pub s: bool,
    /// Thick provisioned.
    pub t: bool,
    /// For a snapshot VDI: the key of the volume it was taken from.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub o: Option<String>,
    /// volsize, bytes.
    pub z: u64,
    /// xapi's keys.
    pub k: BTreeMap<String, String>,
    /// Changed block tracking enabled.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub c: bool,
}

impl Record {
    /// The record of a VDI as stat describes it, with `virtual_size` replaced by `volsize`.
    pub fn of(v: &VdiInfo, volsize: u64) -> Record {
        Record {
            // A CBT-metadata VDI holds no data: 0, so the listing reads nothing live.
            r: match v.kind {
                Kind::Volume => None,
                Kind::Snapshot => Some(v.physical_utilisation),
                Kind::CbtMetadata => Some(0),
            },
            v: VERSION,
            n: v.name.clone(),
            d: v.description.clone(),
            s: v.sharable,
            t: v.thick,
            o: v.snapshot_of.clone(),
            z: volsize,
            k: v.keys.clone(),
            c: v.cbt_enabled,
        }
    }

    /// The property value, or `None` when it would not fit in one.
    ///
    /// ```
    /// use zfs_volume::sr::record::Record;
    /// let r = Record { r: Some(8192), v: 1, n: "disk".into(), d: String::new(), s: false, t: false,
    ///     o: None, z: 1 << 20, k: Default::default(), c: false };
    /// let text = r.encode().unwrap();
    /// assert!(text.starts_with("{\"r\":8192,"));
    /// assert_eq!(Record::decode(&text), Some(r));
    /// ```
    pub fn encode(&self) -> Option<String> {
        let s = serde_json::to_string(self).ok()?;
        // Room for a `referenced` a program may add (REFERENCED_HEAD + 20 digits + ',').
        (s.len() + 26 <= MAX_PROP_VALUE && !s.contains('\0')).then_some(s)
    }

    /// Parse a property value; `None` for anything this version did not write.
    pub fn decode(s: &str) -> Option<Record> {
        serde_json::from_str::<Record>(s)
            .ok()
            .filter(|r| r.v == VERSION)
    }

    /// The VDI this record describes; `physical_utilisation` is `used` for a volume (read
    /// live by the listing) and the recorded `referenced` for a snapshot VDI (or the live
    /// one the listing read when the record has none).
    pub(crate) fn into_info(
        self,
        key: String,
        kind: Kind,
        dataset: String,
        used: u64,
        referenced: u64,
    ) -> VdiInfo {
        VdiInfo {
            key,
            kind,
            dataset,
            name: self.n,
            description: self.d,
            sharable: self.s,
            virtual_size: self.z,
            physical_utilisation: match kind {
                Kind::Volume => used,
                Kind::Snapshot => self.r.unwrap_or(referenced),
                Kind::CbtMetadata => 0,
            },
            keys: self.k,
            snapshot_of: self.o,
            thick: self.t,
            origin: None,
            content: None,
            cbt_enabled: self.c,
        }
    }
}

/// The record of a new VDI; `None` when it does not fit.
pub(crate) fn for_new(n: &super::NewVdi<'_>) -> Option<String> {
    Record {
        r: n.referenced,
        v: VERSION,
        n: n.name.into(),
        d: n.description.into(),
        s: n.sharable,
        t: n.thick,
        o: n.snapshot_of.map(String::from),
        z: n.volsize,
        k: n.keys
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        c: n.cbt,
    }
    .encode()
}

/// The record after a metadata change of `v` (`set` and `unset` as given to
/// set_user_props): `None` when it no longer fits.
pub(crate) fn after_change(v: &VdiInfo, set: &[(&str, &str)], unset: &[&str]) -> Option<String> {
    let mut r = Record::of(v, v.virtual_size);
    for (p, val) in set {
        match *p {
            meta::VDI_NAME => r.n = val.to_string(),
            meta::VDI_DESCRIPTION => r.d = val.to_string(),
            meta::VDI_CBT => r.c = *val == "true",
            p => {
                if let Some(k) = meta::decode_key(p) {
                    r.k.insert(k, val.to_string());
                }
            }
        }
    }
    for p in unset {
        if *p == meta::VDI_CBT {
            r.c = false;
        }
        if let Some(k) = meta::decode_key(p) {
            r.k.remove(&k);
        }
    }
    r.encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: Kind) -> VdiInfo {
        VdiInfo {
            key: "k".into(),
            kind,
            dataset: "p/s/vol/k".into(),
            name: "disk \"0\" ✓".into(),
            description: "d\n".into(),
            sharable: true,
            virtual_size: 1 << 30,
            physical_utilisation: 4096,
            keys: [("vdi-type".to_string(), "user".to_string())].into(),
            snapshot_of: None,
            thick: true,
            origin: Some("x@y".into()),
            content: None,
            cbt_enabled: kind == Kind::Snapshot,
        }
    }

    #[test]
    fn round_trip_keeps_what_ls_reports() {
        for kind in [Kind::Volume, Kind::Snapshot] {
            let v = info(kind);
            assert_eq!(
                Record::of(&v, 1).encode().unwrap().contains("\"c\":true"),
                v.cbt_enabled
            );
            let text = Record::of(&v, v.virtual_size).encode().unwrap();
            assert_eq!(
                text.starts_with(REFERENCED_HEAD),
                kind == Kind::Snapshot,
                "{text}"
            );
            let back = Record::decode(&text).unwrap().into_info(
                "k".into(),
                kind,
                v.dataset.clone(),
                4096,
                0,
            );
            assert_eq!(back, VdiInfo { origin: None, ..v });
        }
    }

    #[test]
    fn changes_follow_set_and_unset() {
        let v = info(Kind::Volume);
        let name_prop = meta::encode_key("tagsA b").unwrap();
        let r = after_change(
            &v,
            &[(meta::VDI_NAME, "new"), (&name_prop, "x")],
            &[&meta::encode_key("vdi-type").unwrap()],
        );
        let r = Record::decode(&r.unwrap()).unwrap();
        assert_eq!(r.n, "new");
        assert_eq!(r.k, [("tagsA b".to_string(), "x".to_string())].into());
        let r = after_change(&v, &[(meta::VDI_DESCRIPTION, "dd")], &[])
            .map(|s| Record::decode(&s).unwrap());
        assert_eq!(
            r.map(|r| (r.d, r.n)),
            Some(("dd".to_string(), v.name.clone()))
        );
    }

    #[test]
    fn a_record_too_large_is_not_written() {
        let mut v = info(Kind::Volume);
        v.description = "x".repeat(MAX_PROP_VALUE - 200);
        assert!(Record::of(&v, 1).encode().is_some());
        v.description = "x".repeat(MAX_PROP_VALUE);
        assert!(Record::of(&v, 1).encode().is_none());
        let d = "é".repeat(MAX_PROP_VALUE / 2);
        let n = super::super::NewVdi {
            key: "k",
            name: "n",
            description: &d,
            sharable: false,
            thick: false,
            snapshot_of: None,
            volsize: 1,
            referenced: None,
            keys: &[],
            cbt: false,
        };
        assert!(for_new(&n).is_none());
    }

    #[test]
    fn foreign_or_future_records_are_ignored() {
        assert!(Record::decode("").is_none());
        assert!(Record::decode(
            "{\"v\":2,\"n\":\"\",\"d\":\"\",\"s\":false,\"t\":false,\"z\":1,\"k\":{}}"
        )
        .is_none());
        assert!(Record::decode(
            "{\"v\":1,\"n\":\"\",\"d\":\"\",\"s\":false,\"t\":false,\"z\":1,\"k\":{}}"
        )
        .is_some());
        assert!(Record::decode("{\"v\":1}").is_none());
    }
}
