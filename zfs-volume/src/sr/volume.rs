//! What the volume operations share: the start of every change to an existing VDI (cheap
//! recovery check and stat in one program), the names of new VDIs and ZFS snapshots, a new
//! VDI's properties, thick reservations, and the wording of space and in-use errors. Each
//! SMAPI method is one file of its own beside this one (read, create, snapshot, clone,
//! destroy, revert, resize, metadata).

use super::layout::{check_key, Kind};
use super::names::sr_program;
use super::record::{vdi_from, VdiInfo};
use super::{journal, meta, record, Sr};
use crate::error::{Error, Result};
use crate::lzc::{reservation, Limits, NvList, NvTree, NvValue, Program, Props};

static STAT_VDI: Program = sr_program!("stat_vdi");

/// How long Volume.destroy retries a transient EBUSY (udev probing a zvol).
pub(crate) const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a tombstone that is not known to be open is retried on EBUSY: udev probes a
/// zvol's device for a moment after it appears or is renamed (its add and change events),
/// well under a second.
pub(crate) const TRANSIENT_BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a changing call looks again at tombstones that seemed open: enough for a udev
/// probe to end, short against the call. Only paid while a tombstone is open.
pub(crate) const BUSY_RECHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// Whether [`Sr::destroy_with_dependents`] waits out a transient EBUSY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnBusy {
    /// Retry for up to this long: the caller asked for this dataset to go now.
    RetryFor(std::time::Duration),
    /// One attempt: a tombstone that is busy now is collected by a later call, once its
    /// device is closed; no call waits for it.
    GiveUp,
}

/// A new VDI key: a random (v4) UUID, which xapi also takes as the VDI uuid.
pub(super) fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Round `size` up to a whole number of blocks (at least one block).
///
/// ```
/// # use zfs_volume::sr::round_size;
/// assert_eq!(round_size(1, 16384).unwrap(), 16384);
/// assert_eq!(round_size(0, 16384).unwrap(), 16384);
/// assert_eq!(round_size(32768, 16384).unwrap(), 32768);
/// assert!(round_size(u64::MAX, 16384).is_err());
/// ```
pub fn round_size(size: u64, block: u64) -> Result<u64> {
    let size = size.max(1);
    size.checked_next_multiple_of(block)
        .filter(|s| *s <= i64::MAX as u64)
        .ok_or_else(|| Error::invalid("volume size", format!("{size} bytes is too large")))
}

impl Sr {
    /// Take ZFS snapshot `snap` for a clone that follows, under journal `j`: the intent is
    /// recorded first (recovery destroys a snapshot whose clone never came, should the
    /// process be killed) and `j` destroys it if the operation fails before its commit.
    pub(super) fn snapshot_for_clone<'a>(
        &'a self,
        j: &mut journal::Journal<'a>,
        snap: &str,
        what: &'static str,
    ) -> Result<()> {
        j.record(&journal::Intent::Snapshot(snap.to_string()))?;
        self.zfs.snapshot([snap], &[])?;
        let undo = snap.to_string();
        j.on_undo(what, move || {
            self.zfs
                .destroy_snapshots([&undo], false)
                .map_err(Error::from)
        });
        Ok(())
    }

    pub(super) fn vdi_dataset(&self, key: &str, kind: Kind) -> String {
        self.layout.vdi(key, kind)
    }

    pub(crate) fn stat_raw(&self, key: &str) -> Result<Option<VdiInfo>> {
        self.stat_read(key, None)
    }

    /// The VDI `key` as a device lookup needs it (its kind and size), from its listing
    /// record when it has one: no objset is opened then, where a full stat opens the VDI's
    /// five times on OpenZFS (every native property read and the user-property list rebuild
    /// it). `physical_utilisation`, `origin` and `content` are not filled. The flag says
    /// the volume is in the middle of a revert's swap (`vol/<key>` is missing: no device).
    pub(crate) fn stat_for_device(&self, key: &str) -> Result<Option<(VdiInfo, bool)>> {
        let Some(t) = self.stat_program(key, Some("device"))? else {
            return Ok(None);
        };
        let swapping = matches!(t.get("swapping"), Some(NvValue::Bool(true)));
        let v = match vdi_from(&t) {
            Some(v) => Some(v),
            // A listing record this version cannot read: the properties.
            None => self.stat_read(key, None)?,
        };
        Ok(v.map(|v| (v, swapping)))
    }

    /// The VDI `key` from its properties (`listed` None), or from its listing record with
    /// what `listed` names besides ("stat", "device": see describe_listed in the prelude).
    pub(super) fn stat_read(&self, key: &str, listed: Option<&str>) -> Result<Option<VdiInfo>> {
        let Some(t) = self.stat_program(key, listed)? else {
            return Ok(None);
        };
        match vdi_from(&t) {
            // A listing record this version cannot read: the properties.
            None if listed.is_some() => self.stat_read(key, None),
            v => Ok(v),
        }
    }

    /// stat_vdi.lua's answer for a VDI that exists.
    fn stat_program(&self, key: &str, listed: Option<&str>) -> Result<Option<NvTree>> {
        let mut args = NvList::new()?;
        args.add_string("root", self.dataset())?;
        args.add_string("key", key)?;
        if let Some(mode) = listed {
            args.add_boolean_value("listed", true)?;
            args.add_string("mode", mode)?;
        }
        let out = self
            .zfs
            .program_nosync(self.pool(), &STAT_VDI, &args, Limits::default())?;
        let NvValue::List(t) = out else {
            return Ok(None);
        };
        if !matches!(t.get("found"), Some(NvValue::Bool(true))) {
            return Ok(None);
        }
        Ok(Some(t))
    }

    /// The start of every change to an existing VDI, under the SR lock: the cheap recovery
    /// check and the VDI's stat in one nosync program. Only when an interrupted call left
    /// something (an intent record in /run, a tombstone under gc/) does the full
    /// [`Sr::recover`] run, and then the stat is read again.
    pub(super) fn recover_and_stat(&self, key: &str) -> Result<VdiInfo> {
        check_key(key)?;
        if journal::pending(self.dataset()).is_empty() {
            let mut args = NvList::new()?;
            args.add_string("root", self.dataset())?;
            args.add_string("key", key)?;
            args.add_boolean_value("gc", true)?;
            args.add_boolean_value("listed", true)?;
            let mut out =
                self.zfs
                    .program_nosync(self.pool(), &STAT_VDI, &args, Limits::default())?;
            // Tombstones that seem open are left alone, but udev also holds a zvol for a
            // moment after it appears or is renamed: look once more after that moment.
            let busy = |o: &NvValue| matches!(o, NvValue::List(t) if record::num(t, "busy") > 0);
            if busy(&out) {
                std::thread::sleep(BUSY_RECHECK);
                out = self
                    .zfs
                    .program_nosync(self.pool(), &STAT_VDI, &args, Limits::default())?;
            }
            if let NvValue::List(t) = &out {
                // Nothing to collect, and the VDI is not in the middle of a revert's swap
                // (which only recovery finishes, whatever udev holds).
                if matches!(t.get("tombstones"), Some(NvValue::List(l)) if l.is_empty())
                    && !matches!(t.get("swapping"), Some(NvValue::Bool(true)))
                {
                    return match t.get("found") {
                        // A listing record this version cannot read: the properties.
                        Some(NvValue::Bool(true)) => {
                            vdi_from(t).map_or_else(|| self.stat_existing(key), Ok)
                        }
                        _ => Err(Error::VolumeNotFound(key.to_string())),
                    };
                }
            }
        }
        self.recover()?;
        self.stat_existing(key)
    }

    /// The VDI `key`, or [`Error::VolumeNotFound`].
    pub(super) fn stat_existing(&self, key: &str) -> Result<VdiInfo> {
        check_key(key)?;
        self.stat_raw(key)?
            .ok_or_else(|| Error::VolumeNotFound(key.to_string()))
    }

    pub(super) fn thick_refreservation(&self, volsize: u64) -> Result<u64> {
        let st = self.zfs.pool_status(self.pool())?;
        let copies = self
            .zfs
            .get_properties(self.dataset(), ["copies"])?
            .get("copies")
            .and_then(|p| {
                p.as_u64()
                    .or_else(|| p.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(1);
        Ok(reservation::thick_refreservation(
            volsize,
            self.volblocksize,
            &st.top_vdevs(),
            copies,
        ))
    }
}

/// Name the source dataset (not the new clone) in a failed snapshot+clone.
pub(super) fn relabel(e: Error, src: &str) -> Error {
    match e {
        Error::Zfs(libzfs_core::Error::Zfs {
            op,
            errno,
            reason,
            items,
            ..
        }) => Error::Zfs(libzfs_core::Error::Zfs {
            op,
            target: src.to_string(),
            errno,
            reason,
            items,
        }),
        e => e,
    }
}

/// The string-valued (user) properties of `props` as a channel-program argument.
pub(super) fn user_props_nvlist(props: &Props) -> Result<NvList> {
    let mut p = NvList::new()?;
    for (k, v) in props.iter() {
        if let crate::lzc::PropValue::Str(s) = v {
            p.add_string(k, s)?;
        }
    }
    Ok(p)
}

/// The name of a new ZFS snapshot taken of `src` to clone from. Short names are
/// globally unique (promote never clashes): a writable volume's is the key of the VDI
/// about to be made from it; a snapshot VDI's is its own key, because its content never
/// changes, so later clones find and reuse it as the snapshot VDI's content.
pub(super) fn source_snapshot_name(src: &VdiInfo, new: &str) -> String {
    match src.kind {
        // A CBT-metadata VDI is refused before (refuse_metadata): it has nothing to snapshot.
        Kind::Snapshot | Kind::CbtMetadata => format!("{}@{}", src.dataset, src.key),
        Kind::Volume => format!("{}@{new}", src.dataset),
    }
}

/// Reword out-of-space failures so the admin knows what to do.
pub(super) fn space_error(e: impl Into<Error>, what: &str, size: u64) -> Error {
    let e = e.into();
    if e.is_errno(libc::ENOSPC) {
        let need = if size > 0 {
            format!(" ({size} bytes)")
        } else {
            String::new()
        };
        return Error::NoSpace {
            what: format!("{what}{need}"),
            detail: e.to_string(),
        };
    }
    e
}

/// Refuse an operation that needs a VDI's data on a CBT-metadata VDI (its data was destroyed by
/// `Volume.data_destroy`); `what` is the operation, as in "cannot be {what}".
pub(super) fn refuse_metadata(v: &VdiInfo, what: &str) -> Result<()> {
    if v.holds_data() {
        return Ok(());
    }
    Err(Error::Refused {
        key: v.key.clone(),
        reason: format!(
            "it is a CBT-metadata VDI (its data was destroyed by VDI.data_destroy), so it cannot be \
             {what}; it can be listed, destroyed, and used as the earlier VDI of \
             VDI.list_changed_blocks"
        ),
    })
}

/// An EBUSY from ZFS on a volume means it is open (attached to a VM).
pub(super) fn in_use(e: impl Into<Error>, key: &str) -> Error {
    let e = e.into();
    if e.is_errno(libc::EBUSY) {
        return Error::InUse {
            key: key.to_string(),
            detail: e.to_string(),
        };
    }
    e
}

/// A new VDI's metadata: the user properties every VDI dataset carries (I6), its listing
/// record (sr/record.rs) included.
#[derive(Debug, Clone)]
pub struct NewVdi<'a> {
    /// Key (UUID).
    pub key: &'a str,
    /// name-label.
    pub name: &'a str,
    /// name-description.
    pub description: &'a str,
    /// Sharable.
    pub sharable: bool,
    /// Thick provisioned.
    pub thick: bool,
    /// For a snapshot VDI: the key of its source volume.
    pub snapshot_of: Option<&'a str>,
    /// volsize, bytes.
    pub volsize: u64,
    /// For a snapshot VDI: `referenced`, when known before it is made.
    pub referenced: Option<u64>,
    /// xapi's keys (`Volume.set`): none for the VDIs the SMAPI calls make.
    pub keys: &'a [(&'a str, &'a str)],
    /// Changed block tracking enabled (a snapshot of a volume that has it).
    pub cbt: bool,
}

impl NewVdi<'_> {
    /// The user properties to create the dataset with; fails only for a key that cannot
    /// be stored.
    ///
    /// ```
    /// use zfs_volume::sr::NewVdi;
    /// let p = NewVdi { key: "k", name: "n", description: "", sharable: false, thick: false,
    ///     snapshot_of: None, volsize: 1 << 20, referenced: None, keys: &[("vdi-type", "user")],
    ///     cbt: false }.props()?;
    /// assert!(p.iter().any(|(k, _)| k == "xapi-zvol:ls"));
    /// assert!(p.iter().any(|(k, _)| k == "xapi-zvol:k:vdi-type"));
    /// # Ok::<(), zfs_volume::Error>(())
    /// ```
    pub fn props(&self) -> Result<Props> {
        let mut p = Props::new()
            .user(meta::VDI_KEY, self.key)
            .user(meta::VDI_NAME, self.name)
            .user(meta::VDI_DESCRIPTION, self.description)
            .user(
                meta::VDI_SHARABLE,
                if self.sharable { "true" } else { "false" },
            )
            .user(
                meta::VDI_PROVISIONING,
                if self.thick { "thick" } else { "thin" },
            );
        if let Some(o) = self.snapshot_of {
            p = p.user(meta::VDI_SNAPSHOT_OF, o);
        }
        if self.cbt {
            p = p.user(meta::VDI_CBT, "true");
        }
        for (k, v) in self.keys {
            meta::check_value("value", v)?;
            p = p.user(&meta::encode_key(k)?, v);
        }
        if let Some(r) = record::for_new(self) {
            p = p.user(record::PROP, &r);
        }
        Ok(p)
    }
}
