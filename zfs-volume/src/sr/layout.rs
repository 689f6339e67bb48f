//! Where things live under an SR dataset, and the names of our datasets.
//!
//! ```text
//! <pool>/zvol-sr-<sr uuid>          the SR dataset: a filesystem, mountpoint=none, our marker
//!   .../vol/<key>                   writable VDIs (zvols)
//!   .../snap/<key>                  snapshot VDIs: zvols cloned from a ZFS snapshot; the
//!                                   container has readonly=on, so every snapshot VDI
//!                                   inherits it in the same txg it is created in (I5)
//!   .../cbt/<key>                   CBT-metadata VDIs: filesystems that hold no data, only
//!                                   the metadata of a snapshot VDI whose data went
//!                                   (Volume.data_destroy, `cbt.rs`); the container is
//!                                   made on demand and goes with its last child
//!   .../gc/<name>                   tombstones: datasets no VDI owns any more, kept only
//!                                   while others depend on them; destroyed by GC (I4)
//! <dataset>@<key or x-...>          ZFS snapshots: one per snapshot VDI or clone source,
//!                                   short names globally unique so promote never clashes
//! ```
//!
//! A VDI key is a UUID we generate; the dataset name is derived from it, so finding a VDI
//! is O(1) whatever the SR size (Volume.stat must stay cheap), and promote — which moves
//! ZFS snapshots between datasets — never changes a key (I1).

use crate::error::{Error, Result};

/// Prefix of SR dataset names.
pub const SR_DATASET_PREFIX: &str = "zvol-sr-";
/// Prefix of pools SR.create makes.
pub const POOL_PREFIX: &str = "zvol-";
pub use super::names::{CBT, GC, SNAP, VOL};

/// The kinds of VDI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A writable volume.
    Volume,
    /// A read-only snapshot VDI.
    Snapshot,
    /// A snapshot VDI whose data was destroyed (`Volume.data_destroy`): its metadata and
    /// its place in a changed-block-tracking chain stay, it holds no data.
    CbtMetadata,
}

impl Kind {
    /// The container holding VDIs of this kind.
    pub fn container(self) -> &'static str {
        match self {
            Kind::Volume => VOL,
            Kind::Snapshot => SNAP,
            Kind::CbtMetadata => CBT,
        }
    }

    /// The kind of VDI a container holds.
    pub fn of_container(c: &str) -> Option<Kind> {
        match c {
            VOL => Some(Kind::Volume),
            SNAP => Some(Kind::Snapshot),
            CBT => Some(Kind::CbtMetadata),
            _ => None,
        }
    }

    /// Every kind, in the order a key is looked up (a data_destroy in progress has both a
    /// snapshot VDI and its metadata VDI: the snapshot VDI is the one that counts).
    pub const ALL: [Kind; 3] = [Kind::Volume, Kind::Snapshot, Kind::CbtMetadata];
}

/// Names under one SR dataset.
///
/// ```
/// use zfs_volume::sr::layout::{Layout, Kind};
/// let l = Layout::new("tank/zvol-sr-1");
/// assert_eq!(l.vdi("3f2c", Kind::Volume), "tank/zvol-sr-1/vol/3f2c");
/// assert_eq!(l.pool(), "tank");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: String,
}

impl Layout {
    /// Layout of the SR dataset `root`.
    pub fn new(root: impl Into<String>) -> Layout {
        Layout { root: root.into() }
    }
    /// The SR dataset.
    pub fn root(&self) -> &str {
        &self.root
    }
    /// The pool the SR lives in.
    pub fn pool(&self) -> &str {
        self.root.split('/').next().unwrap_or(&self.root)
    }
    /// A container dataset (`vol`, `snap`, `gc`).
    pub fn container(&self, c: &str) -> String {
        format!("{}/{c}", self.root)
    }
    /// The dataset of a VDI.
    pub fn vdi(&self, key: &str, kind: Kind) -> String {
        format!("{}/{}/{key}", self.root, kind.container())
    }
    /// A tombstone dataset.
    pub fn tombstone(&self, name: &str) -> String {
        format!("{}/{GC}/{name}", self.root)
    }
    /// Classify a dataset under this SR: `Some((kind, key))` for a VDI dataset.
    pub fn classify(&self, dataset: &str) -> Option<(Kind, String)> {
        let rest = dataset.strip_prefix(&self.root)?.strip_prefix('/')?;
        let (c, key) = rest.split_once('/')?;
        if key.contains('/') || key.contains('@') {
            return None;
        }
        Kind::of_container(c).map(|k| (k, key.to_string()))
    }
    /// The `/dev/zvol/...` path of a dataset.
    pub fn device_path(dataset: &str) -> String {
        format!("/dev/zvol/{dataset}")
    }
}

/// The SR dataset name for an SR uuid in a pool (or under a parent dataset).
///
/// ```
/// assert_eq!(zfs_volume::sr::layout::sr_dataset("tank", "abc"), "tank/zvol-sr-abc");
/// ```
pub fn sr_dataset(parent: &str, sr_uuid: &str) -> String {
    format!("{parent}/{SR_DATASET_PREFIX}{sr_uuid}")
}

/// The SR uuid an SR dataset name carries (`<parent>/zvol-sr-<uuid>`), or `None` for a
/// name that cannot be an SR dataset of ours (a pool's root, any other leaf name). Says
/// nothing about whether the dataset exists or carries our marker.
///
/// ```
/// use zfs_volume::sr::layout::sr_uuid_of;
/// assert_eq!(sr_uuid_of("tank/vms/zvol-sr-5e0a3e4c-1f7b-4c1e-8f1a-0d3c2b1a0f9e"),
///            Some("5e0a3e4c-1f7b-4c1e-8f1a-0d3c2b1a0f9e"));
/// assert_eq!(sr_uuid_of("zvol-sr-5e0a3e4c-1f7b-4c1e-8f1a-0d3c2b1a0f9e"), None); // a pool
/// assert_eq!(sr_uuid_of("tank/foreign"), None);
/// ```
pub fn sr_uuid_of(dataset: &str) -> Option<&str> {
    let (parent, leaf) = dataset.rsplit_once('/')?;
    let uuid = leaf.strip_prefix(SR_DATASET_PREFIX)?;
    (!parent.is_empty() && check_dataset_name(dataset).is_ok() && check_sr_uuid(uuid).is_ok())
        .then_some(uuid)
}

/// Split the dataset of a VDI (`<sr dataset>/vol/<key>` or `<sr dataset>/snap/<key>`) into
/// its SR dataset, kind and key; `None` for any other name.
///
/// ```
/// use zfs_volume::sr::layout::{split_vdi, Kind};
/// let k = "0f8c3d1e-6a57-4b1c-9d0e-2f3a4b5c6d7e";
/// let sr = "tank/zvol-sr-5e0a3e4c-1f7b-4c1e-8f1a-0d3c2b1a0f9e";
/// assert_eq!(split_vdi(&format!("{sr}/snap/{k}")), Some((sr, Kind::Snapshot, k)));
/// assert_eq!(split_vdi(&format!("{sr}/gc/{k}")), None);
/// assert_eq!(split_vdi("tank/disk"), None);
/// ```
pub fn split_vdi(dataset: &str) -> Option<(&str, Kind, &str)> {
    let (rest, key) = dataset.rsplit_once('/')?;
    let (sr, container) = rest.rsplit_once('/')?;
    let kind = Kind::of_container(container)?;
    check_key(key).ok()?;
    sr_uuid_of(sr)?;
    Some((sr, kind, key))
}

/// Check that a VDI key is one we could have issued: a lower-case UUID-like token.
/// Anything else (`../x`, `a@b`, `a/b`, empty, 300 characters, NUL, ...) is refused before
/// any name is built from it.
///
/// ```
/// use zfs_volume::sr::layout::check_key;
/// assert!(check_key("0f8c3d1e-6a57-4b1c-9d0e-2f3a4b5c6d7e").is_ok());
/// assert!(check_key("../x").is_err());
/// ```
pub fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !key.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "volume key",
            format!("{key:?} is not a volume key of this SR (keys are lower-case UUIDs issued by xapi-zvol)"),
        ))
    }
}

/// Check an SR uuid as xapi passes it to SR.create.
///
/// ```
/// use zfs_volume::sr::layout::check_sr_uuid;
/// assert!(check_sr_uuid("5e0a3e4c-1f7b-4c1e-8f1a-0d3c2b1a0f9e").is_ok());
/// assert!(check_sr_uuid("a/b").is_err());
/// ```
pub fn check_sr_uuid(uuid: &str) -> Result<()> {
    let ok = !uuid.is_empty()
        && uuid.len() <= 64
        && uuid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && uuid.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::Config {
            key: "uuid".into(),
            reason: format!("{uuid:?} is not a usable SR uuid"),
        })
    }
}

/// Check a dataset or pool name given by an administrator (configuration `pool`).
///
/// ```
/// use zfs_volume::sr::layout::check_dataset_name;
/// assert!(check_dataset_name("tank/vms").is_ok());
/// assert!(check_dataset_name("tank/../x").is_err());
/// assert!(check_dataset_name("tank@snap").is_err());
/// ```
pub fn check_dataset_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid("dataset name", format!("{name:?}: {why}")));
    if name.is_empty() || name.len() > 200 {
        return bad("must be 1 to 200 characters");
    }
    for comp in name.split('/') {
        if comp.is_empty() || comp == "." || comp == ".." {
            return bad("empty, '.' or '..' component");
        }
        if !comp
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
        {
            return bad("only letters, digits and _ - . : are allowed");
        }
    }
    if !name.as_bytes()[0].is_ascii_alphabetic() {
        return bad("must start with a letter");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_round_trips() {
        let l = Layout::new("p/zvol-sr-u");
        for kind in Kind::ALL {
            let d = l.vdi("k1", kind);
            assert_eq!(l.classify(&d), Some((kind, "k1".to_string())));
        }
        assert_eq!(l.classify("p/zvol-sr-u"), None);
        assert_eq!(l.classify("p/zvol-sr-u/gc/x"), None);
        assert_eq!(l.classify("p/zvol-sr-u/vol/k@s"), None);
        assert_eq!(l.classify("p/zvol-sr-uu/vol/k"), None);
        assert_eq!(l.classify("p/other/vol/k"), None);
    }

    #[test]
    fn hostile_keys_are_refused() {
        for k in [
            "",
            "../x",
            "a@b",
            "a/b",
            "#",
            "%",
            "A",
            "a b",
            "a\0b",
            "ü",
            "-rf",
            &"a".repeat(300),
        ] {
            assert!(check_key(k).is_err(), "{k:?}");
        }
    }
}
