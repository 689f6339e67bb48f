//! Volume operations (one function per SMAPI method), with the ZFS dependency rules
//! they have to work around explained where they are handled.

use super::layout::{check_key, Kind};
use super::record::{vdi_from, VdiInfo};
use super::{device, fault, intent, meta, record, Provisioning, Sr};
use crate::error::{Error, Op, Result};
use crate::lzc::{check_step, program, reservation, Limits, NvList, NvValue, Program, Props};

static STAT_VDI: Program = program!("stat_vdi");
static LIST_SR: Program = program!("list_sr");
static DESTROY_VDI: Program = program!("destroy_vdi");
static SNAPSHOT_CLONE: Program = program!("snapshot_clone");
static CLONE_WITH_PROPS: Program = program!("clone_with_props");

/// How long Volume.destroy retries a transient EBUSY (udev probing a zvol).
pub(crate) const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a tombstone that is not known to be open is retried on EBUSY: udev probes a
/// zvol's device for a moment after it appears or is renamed (its add and change events),
/// well under a second.
pub(crate) const TRANSIENT_BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a changing call looks again at tombstones that seemed open: enough for a udev
/// probe to end, short against the call. Only paid while a tombstone is open.
pub(crate) const BUSY_RECHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// Whether [`Sr::destroy_dataset_tree`] waits out a transient EBUSY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnBusy {
    /// Retry for up to this long: the caller asked for this dataset to go now.
    RetryFor(std::time::Duration),
    /// One attempt: a tombstone that is busy now is collected by a later call, once its
    /// device is closed; no call waits for it.
    GiveUp,
}

/// A new VDI key: a random (v4) UUID, which xapi also takes as the VDI uuid.
fn new_key() -> String {
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
    fn vdi_dataset(&self, key: &str, kind: Kind) -> String {
        self.layout.vdi(key, kind)
    }

    /// Volume.stat: one nosync program, no lock, no side effect (xapi stats before every
    /// destroy, and a read must never wait behind a writer nor change what it reads).
    ///
    /// ```no_run
    /// # let sr = zfs_volume::sr::Sr::open("tank/zvol-sr-1")?;
    /// let v = sr.volume_stat("0f8c3d1e-6a57-4b1c-9d0e-2f3a4b5c6d7e")?;
    /// println!("{} bytes", v.virtual_size);
    /// # Ok::<(), zfs_volume::Error>(())
    /// ```
    pub fn volume_stat(&self, key: &str) -> Result<VdiInfo> {
        // A volume whose revert is between its two renames (running, or killed there) is
        // found by the program from what the names say (swapping_in in the prelude), so a
        // crash is never reported to xapi as a gone VDI and nothing waits for the lock.
        self.stat_existing(key)
    }

    pub(crate) fn stat_raw(&self, key: &str) -> Result<Option<VdiInfo>> {
        let mut args = NvList::new()?;
        args.add_string("root", self.dataset())?;
        args.add_string("key", key)?;
        let out = self
            .zfs
            .program_nosync(self.pool(), &STAT_VDI, &args, Limits::default())?;
        let NvValue::List(t) = out else {
            return Ok(None);
        };
        if !matches!(t.get("found"), Some(NvValue::Bool(true))) {
            return Ok(None);
        }
        Ok(vdi_from(&t))
    }

    /// The start of every change to an existing VDI, under the SR lock: the cheap recovery
    /// check and the VDI's stat in one nosync program. Only when an interrupted call left
    /// something (an intent record in /run, a tombstone under gc/) does the full
    /// [`Sr::recover`] run, and then the stat is read again.
    fn recover_and_stat(&self, key: &str) -> Result<VdiInfo> {
        check_key(key)?;
        if intent::pending(self.dataset()).is_empty() {
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
    fn stat_existing(&self, key: &str) -> Result<VdiInfo> {
        check_key(key)?;
        self.stat_raw(key)?
            .ok_or_else(|| Error::VolumeNotFound(key.to_string()))
    }

    /// SR.ls: every live VDI, snapshots included, tombstones never (I7). One nosync
    /// program for the whole SR, no lock, nothing mounted or changed.
    ///
    /// A revert between its two renames (running, or killed there) has `vol/<key>` missing:
    /// the program lists that VDI from its new content under `gc/` (xapi's SR scan forgets
    /// the VDIs it does not see, I1); the next changing call finishes the swap.
    pub fn ls(&self) -> Result<Vec<VdiInfo>> {
        Ok(self.ls_with_tombstones()?.0)
    }

    /// [`Sr::ls`], plus the tombstones under `gc/`.
    pub(crate) fn ls_with_tombstones(&self) -> Result<(Vec<VdiInfo>, Vec<String>)> {
        let mut args = NvList::new()?;
        args.add_string("root", self.dataset())?;
        args.add_boolean_value("deep", false)?;
        let out = self
            .zfs
            .program_nosync(self.pool(), &LIST_SR, &args, Limits::large())?;
        let mut v = vec![];
        let mut gc = vec![];
        if let NvValue::List(t) = out {
            if let Some(NvValue::List(vdis)) = t.get("vdis") {
                for (_, r) in vdis {
                    if let NvValue::List(r) = r {
                        match vdi_from(r) {
                            Some(info) => v.push(info),
                            // A listing record this version cannot read (written by a
                            // newer one, or by hand): the program skipped the properties,
                            // so read them the slow way rather than drop the VDI.
                            None if r.get("ls").is_some() => {
                                if let Some(key) = super::record::string(r, "key") {
                                    v.extend(self.stat_raw(&key)?);
                                }
                            }
                            None => {}
                        }
                    }
                }
            }
            gc = super::record::strings(&t, "gc");
        }
        v.sort_by(|a, b| a.key.cmp(&b.key));
        Ok((v, gc))
    }

    fn thick_refreservation(&self, volsize: u64) -> Result<u64> {
        let st = self.zfs.pool_status(self.pool())?;
        let copies = self
            .zfs
            .get_properties(self.dataset(), &["copies"])?
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

    /// Volume.create: a zvol of at least `size` bytes (rounded up to the volblocksize),
    /// thin or thick per the SR, with its metadata, in one ioctl.
    pub fn volume_create(
        &self,
        name: &str,
        description: &str,
        size: u64,
        sharable: bool,
    ) -> Result<VdiInfo> {
        meta::check_value("name", name)?;
        meta::check_value("description", description)?;
        let volsize = round_size(size, self.volblocksize)?;
        let _l = self.lock()?;
        self.recover()?;
        let key = new_key();
        let thick = self.provisioning == Provisioning::Thick;
        let mut props = NewVdi {
            key: &key,
            name,
            description,
            sharable,
            thick,
            snapshot_of: None,
            volsize,
            referenced: None,
            keys: &[],
        }
        .props()?;
        if thick {
            props = props.u64("refreservation", self.thick_refreservation(volsize)?);
        }
        let ds = self.vdi_dataset(&key, Kind::Volume);
        let spec = crate::lzc::VolumeSpec::new(volsize)
            .volblocksize(self.volblocksize)
            .props(props);
        self.zfs
            .create_volume(&ds, &spec)
            .map_err(|e| space_error(e, "create", volsize))?;
        self.stat_existing(&key)
    }

    /// True when a clone with `props` can be one channel program: the kernel has
    /// `zfs.sync.clone` (2.4+) and only user properties are set (programs cannot set
    /// native ones such as refreservation).
    fn one_txg_clone(&self, props: &Props) -> Result<bool> {
        Ok(props.iter().all(|(k, _)| k.contains(':')) && self.capabilities()?.sync_clone)
    }

    /// Run snapshot_clone.lua or clone_with_props.lua: `source` is their first argument;
    /// `new` is the VDI being made. A new volume is described by the program inside its
    /// txg (its `used` is only known there), which saves the caller a stat ioctl. A new
    /// snapshot VDI is fully known beforehand except its `referenced`, which the program
    /// returns: reading the clone back would open its objset five times inside the txg.
    fn run_clone_program(
        &self,
        p: &Program,
        source: (&str, &str),
        dst: &str,
        props: &Props,
        op: Op,
        new: &VdiInfo,
    ) -> Result<Option<VdiInfo>> {
        let mut args = NvList::new()?;
        args.add_string(source.0, source.1)?;
        args.add_string("clone", dst)?;
        args.add_nvlist("props", &user_props_nvlist(props)?)?;
        let snapshot = new.kind == Kind::Snapshot;
        args.add_string("kind", if snapshot { "snapshot" } else { "volume" })?;
        args.add_string("key", &new.key)?;
        // A new snapshot VDI's listing record gets the `referenced` of the snapshot the
        // program takes, known only inside its txg.
        let record = props.iter().find(|(k, _)| *k == record::PROP);
        if snapshot
            && matches!(record, Some((_, crate::lzc::PropValue::Str(r))) if !r.starts_with(record::REFERENCED_HEAD))
        {
            args.add_boolean_value("fill_referenced", true)?;
        }
        let out = self
            .zfs
            .program_sync(self.pool(), p, &args, Limits::default())?;
        check_step(p, op, dst, &out)?;
        let NvValue::List(t) = &out else {
            return Ok(None);
        };
        if snapshot {
            return Ok(t.get("referenced").map(|_| VdiInfo {
                physical_utilisation: super::record::num(t, "referenced"),
                ..new.clone()
            }));
        }
        Ok(match t.get("vdi") {
            Some(NvValue::List(v)) => vdi_from(v),
            _ => None,
        })
    }

    /// Clone an existing ZFS snapshot with `props`: one txg with `zfs.sync.clone` (2.4+)
    /// when only user properties are set, else `lzc_clone` (which sets them in a second
    /// sync task).
    /// Returns the new VDI when the one-txg path could describe it.
    fn clone_snapshot(
        &self,
        origin: &str,
        dst: &str,
        props: &Props,
        new: &VdiInfo,
    ) -> Result<Option<VdiInfo>> {
        if self.one_txg_clone(props)? {
            return self.run_clone_program(
                &CLONE_WITH_PROPS,
                ("origin", origin),
                dst,
                props,
                Op::Clone,
                new,
            );
        }
        self.zfs.clone(dst, origin, props).map(|()| None)
    }

    /// Snapshot `src` as `<src>@<new>` and clone it into `dst` with `props`: one txg where
    /// the kernel has `zfs.sync.clone` (2.4+) and no native property is needed, two
    /// otherwise (a crash in between leaves a clone-less snapshot, collected by
    /// [`Sr::recover`]).
    /// Returns the new VDI when the one-txg path could describe it.
    fn snapshot_and_clone(
        &self,
        src: &str,
        snap: &str,
        dst: &str,
        props: &Props,
        fault_name: &str,
        new: &VdiInfo,
    ) -> Result<Option<VdiInfo>> {
        if self.one_txg_clone(props)? {
            return self
                .run_clone_program(
                    &SNAPSHOT_CLONE,
                    ("snapshot", snap),
                    dst,
                    props,
                    Op::Snapshot,
                    new,
                )
                .map_err(|e| relabel(e, src));
        }
        intent::record(self.dataset(), &intent::Intent::Snapshot(snap.to_string()))?;
        self.zfs.snapshot(&[snap], &[])?;
        fault::point(fault_name);
        let r = self.zfs.clone(dst, snap, props);
        // Leave nothing behind: the snapshot was only for this clone. If it cannot go now
        // (the pool was exported or suspended under us), keep the intent record so the next
        // call's recovery destroys it.
        if r.is_err() && self.zfs.destroy_snapshots(&[snap], false).is_err() {
            return r.map(|()| None);
        }
        intent::clear(self.dataset());
        r.map(|()| None)
    }

    /// Volume.snapshot: a read-only, attachable snapshot VDI (clone-on-snapshot). Name
    /// and description are copied; xapi's keys are not (the IDL says so).
    pub fn volume_snapshot(&self, key: &str) -> Result<VdiInfo> {
        check_key(key)?;
        let _l = self.lock()?;
        let src = self.recover_and_stat(key)?;
        let new = new_key();
        let dst = self.vdi_dataset(&new, Kind::Snapshot);
        // A snapshot of a snapshot VDI clones its content, whose `referenced` is the
        // source's; a new ZFS snapshot's is filled in by the one-txg program (2.4+), or
        // read live by SR.ls until the VDI's next metadata change writes it.
        let referenced = (src.kind == Kind::Snapshot).then_some(src.physical_utilisation);
        let props = NewVdi {
            key: &new,
            name: &src.name,
            description: &src.description,
            sharable: false,
            thick: false,
            snapshot_of: Some(key),
            volsize: src.virtual_size,
            referenced,
            keys: &[],
        }
        .props()?;
        let expect = VdiInfo {
            key: new.clone(),
            kind: Kind::Snapshot,
            dataset: dst.clone(),
            name: src.name.clone(),
            description: src.description.clone(),
            sharable: false,
            virtual_size: src.virtual_size,
            physical_utilisation: referenced.unwrap_or(0),
            keys: Default::default(),
            snapshot_of: Some(key.to_string()),
            thick: false,
            origin: None,
            content: None,
        };
        let made = match (&src.kind, &src.content) {
            // A snapshot VDI never changes, so the ZFS snapshot it was cloned from (or that
            // a promote moved into it) already is its content: clone that (one ioctl, no
            // new ZFS snapshot).
            (Kind::Snapshot, Some(content)) => {
                self.clone_snapshot(content, &dst, &props, &expect)?
            }
            _ => {
                let snap = source_snapshot_name(&src, &new);
                self.snapshot_and_clone(
                    &src.dataset,
                    &snap,
                    &dst,
                    &props,
                    "snapshot:after-snapshot",
                    &expect,
                )
                .map_err(|e| space_error(e, "snapshot", 0))?
            }
        };
        made.map_or_else(|| self.stat_existing(&new), Ok)
    }

    /// Volume.clone: a writable copy of any VDI, snapshot or not.
    pub fn volume_clone(&self, key: &str) -> Result<VdiInfo> {
        check_key(key)?;
        let _l = self.lock()?;
        let src = self.recover_and_stat(key)?;
        let new = new_key();
        let dst = self.vdi_dataset(&new, Kind::Volume);
        let thick = self.provisioning == Provisioning::Thick;
        let mut props = NewVdi {
            key: &new,
            name: &src.name,
            description: &src.description,
            sharable: src.sharable,
            thick,
            snapshot_of: None,
            volsize: src.virtual_size,
            referenced: None,
            keys: &[],
        }
        .props()?;
        if thick {
            props = props.u64(
                "refreservation",
                self.thick_refreservation(src.virtual_size)?,
            );
        }
        // Only its kind, key and dataset matter: the program describes a new volume.
        let expect = VdiInfo {
            key: new.clone(),
            kind: Kind::Volume,
            dataset: dst.clone(),
            ..src.clone()
        };
        let made = match (&src.kind, &src.content) {
            (Kind::Snapshot, Some(content)) => self
                .clone_snapshot(content, &dst, &props, &expect)
                .map_err(|e| space_error(e, "clone", src.virtual_size))?,
            _ => {
                let snap = source_snapshot_name(&src, &new);
                self.snapshot_and_clone(
                    &src.dataset,
                    &snap,
                    &dst,
                    &props,
                    "clone:after-snapshot",
                    &expect,
                )
                .map_err(|e| space_error(e, "clone", src.virtual_size))?
            }
        };
        made.map_or_else(|| self.stat_existing(&new), Ok)
    }

    /// Volume.destroy: succeeds for a missing key (xapi may destroy one key twice);
    /// whatever depends on the VDI is promoted so it survives (I3), and what nothing
    /// needs any more goes in the same txg (I4).
    pub fn volume_destroy(&self, key: &str) -> Result<()> {
        check_key(key)?;
        let _l = self.lock()?;
        self.recover()?;
        self.destroy_locked(key)
    }

    pub(crate) fn destroy_locked(&self, key: &str) -> Result<()> {
        for kind in [Kind::Volume, Kind::Snapshot] {
            let ds = self.vdi_dataset(key, kind);
            if self.zfs.exists(&ds) {
                self.destroy_dataset_tree(&ds, OnBusy::RetryFor(BUSY_RETRY))
                    .map_err(|e| in_use(e, key))?;
                fault::point("destroy:after-destroy");
            }
        }
        Ok(())
    }

    /// Destroy one dataset of the SR with destroy_vdi.lua (promote the heir, destroy,
    /// collect), one txg.
    ///
    /// udev opens a zvol briefly after it appears and after every close-after-write (its
    /// `watch` rule re-probes the device), and ZFS answers EBUSY while it does. That is
    /// transient, so with [`OnBusy::RetryFor`] EBUSY is retried for a bounded time; the
    /// program is idempotent (a promote it already did stays valid). A zvol really in use
    /// stays EBUSY and fails.
    pub(crate) fn destroy_dataset_tree(&self, ds: &str, on_busy: OnBusy) -> Result<()> {
        let mut args = NvList::new()?;
        args.add_string("dataset", ds)?;
        args.add_string("root", self.dataset())?;
        let start = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(20);
        loop {
            let out = self
                .zfs
                .program_sync(self.pool(), &DESTROY_VDI, &args, Limits::default())?;
            if let NvValue::List(t) = &out {
                if matches!(t.get("err"), Some(NvValue::I64(2)))
                    && matches!(t.get("step"), Some(NvValue::Str(s)) if s == "exists")
                {
                    return Ok(());
                }
            }
            match check_step(&DESTROY_VDI, Op::Destroy, ds, &out) {
                Err(e)
                    if matches!(on_busy, OnBusy::RetryFor(limit) if start.elapsed() < limit)
                        && e.is_errno(libc::EBUSY) =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(250));
                }
                r => return r,
            }
        }
    }

    /// Volume.revert: `key` takes the content of snapshot VDI `snapshot` and keeps its
    /// identity (key, name, xapi keys); newer snapshots are untouched.
    ///
    /// ZFS can only roll back to the latest snapshot, so that case is one
    /// `lzc_rollback_to`; any other snapshot is cloned and swapped in under the same
    /// name: clone → `gc/<key>.new-<t>`, rename `vol/<key>` → `gc/<key>.old-<t>`, rename
    /// the new one → `vol/<key>`, destroy the old one. The names are the intent record:
    /// [`Sr::recover`] finishes or undoes a swap a crash interrupted.
    pub fn volume_revert(&self, snapshot: &str, key: &str) -> Result<()> {
        check_key(snapshot)?;
        check_key(key)?;
        let _l = self.lock()?;
        let s = self.recover_and_stat(snapshot)?;
        let v = self.stat_existing(key)?;
        if s.kind != Kind::Snapshot {
            return Err(Error::Refused {
                key: snapshot.into(),
                reason: "revert needs a snapshot VDI as its source".into(),
            });
        }
        if v.kind != Kind::Volume {
            return Err(Error::Refused {
                key: key.into(),
                reason: "a snapshot VDI cannot be reverted (it is read-only)".into(),
            });
        }
        let thick = v.thick;
        // The ZFS snapshot holding the snapshot VDI's content.
        let token = new_key();
        let content = match &s.content {
            Some(o) => o.clone(),
            None => {
                let snap = source_snapshot_name(&s, &token);
                intent::record(self.dataset(), &intent::Intent::Snapshot(snap.clone()))?;
                self.zfs.snapshot(&[&snap], &[])?;
                snap
            }
        };
        // Fast path: the content is this volume's latest snapshot.
        if content.starts_with(&format!("{}@", v.dataset)) {
            // A rollback to before a resize changes volsize, which the listing record
            // cannot follow in the same txg: drop it first, write it back after.
            let resized = s.virtual_size != v.virtual_size;
            if resized {
                self.zfs
                    .update_user_properties(&v.dataset, &[], &[record::PROP])?;
            }
            let r = self.zfs.rollback_to(&v.dataset, &content);
            if resized {
                self.write_record(
                    &v,
                    if r.is_ok() {
                        s.virtual_size
                    } else {
                        v.virtual_size
                    },
                );
            }
            match r {
                Ok(()) => {
                    device::flush(&v.dataset, s.virtual_size);
                    if thick {
                        let r = self.thick_refreservation(s.virtual_size)?;
                        self.zfs
                            .set_properties(&v.dataset, &Props::new().u64("refreservation", r))?;
                    }
                    return Ok(());
                }
                Err(e) if e.is_errno(libc::EEXIST) => {} // newer snapshots: swap instead
                Err(e) => return Err(in_use(e, key)),
            }
        }
        // The new dataset takes over the volume's identity, so it gets every property set
        // locally on the volume: our metadata, and what an admin set (compression, sync,
        // primarycache, ..., other user properties), as the kernel takes them back (index
        // properties as numbers). Not the size: the snapshot's is the point of a revert.
        let mut props = Props::new();
        for (k, val) in self.zfs.local_properties(&v.dataset)?.iter() {
            if matches!(k, "volsize" | "volblocksize") || k == record::PROP {
                continue;
            }
            props = match val {
                crate::lzc::PropValue::U64(n) => props.u64(k, *n),
                crate::lzc::PropValue::Str(t) => props.string(k, t),
            };
        }
        // The listing record, with the snapshot's size.
        if let Some(r) = record::Record::of(&v, s.virtual_size).encode() {
            props = props.user(record::PROP, &r);
        }
        if thick {
            props = props.u64("refreservation", self.thick_refreservation(s.virtual_size)?);
        }
        let new = self.layout.tombstone(&format!("{key}.new-{token}"));
        let old = self.layout.tombstone(&format!("{key}.old-{token}"));
        let r = self.zfs.clone(&new, &content, &props);
        if let Err(e) = r {
            // As in snapshot_and_clone: the intent record stays if the snapshot cannot go.
            if s.content.is_some() || self.zfs.destroy_snapshots(&[&content], false).is_ok() {
                intent::clear(self.dataset());
            }
            return Err(space_error(e, "revert", s.virtual_size));
        }
        intent::clear(self.dataset());
        fault::point("revert:after-clone");
        if let Err(e) = self.zfs.rename(&v.dataset, &old) {
            let _ = self.destroy_dataset_tree(&new, OnBusy::GiveUp);
            return Err(in_use(e, key));
        }
        fault::point("revert:after-rename-old");
        self.zfs.rename(&new, &v.dataset)?;
        fault::point("revert:after-rename-new");
        // No wait for udev to move the /dev/zvol link: Datapath.attach finds the device
        // from the zvol itself (device.rs), so the next attach hands out the new content.
        //
        // The revert is done: the key now holds the snapshot's content. udev probes the
        // renamed old device for a moment (a short retry covers that); if it is still open
        // after that (xapi reverts only halted VMs, but an admin may hold it), its dataset
        // cannot go yet: it stays a tombstone that a later call collects once it is closed,
        // and the revert still succeeds.
        match self.destroy_dataset_tree(&old, OnBusy::RetryFor(TRANSIENT_BUSY_RETRY)) {
            Err(e) if e.is_errno(libc::EBUSY) => {
                log::info!("revert of {key}: the previous content {old} is still open; a later call collects it");
                Ok(())
            }
            r => r,
        }
    }

    /// Volume.resize: grow only (shrinking would destroy data); a thick volume's
    /// reservation is set in the same ioctl.
    pub fn volume_resize(&self, key: &str, new_size: u64) -> Result<()> {
        check_key(key)?;
        let _l = self.lock()?;
        let v = self.recover_and_stat(key)?;
        if v.kind == Kind::Snapshot {
            return Err(Error::Refused {
                key: key.into(),
                reason: "a snapshot VDI cannot be resized (it is read-only)".into(),
            });
        }
        let size = round_size(new_size, self.volblocksize)?;
        if new_size < v.virtual_size {
            return Err(Error::Shrink {
                key: key.into(),
                current: v.virtual_size,
                requested: new_size,
            });
        }
        if size <= v.virtual_size {
            return Ok(());
        }
        // volsize is set by its own ioctl, so the listing record cannot change with it in
        // one txg: it goes first and is written back after (sr/record.rs), so a crash in
        // between leaves no record rather than a wrong size.
        self.zfs
            .update_user_properties(&v.dataset, &[], &[record::PROP])
            .map_err(|e| space_error(e, "resize", size))?;
        let r = self.resize_volume(&v, size);
        self.write_record(&v, if r.is_ok() { size } else { v.virtual_size });
        r
    }

    /// Write `v`'s listing record with `volsize` (none if it would not fit). A failure is
    /// only logged: without a record SR.ls reads the properties themselves, still right.
    fn write_record(&self, v: &VdiInfo, volsize: u64) {
        if let Some(r) = record::Record::of(v, volsize).encode() {
            if let Err(e) = self
                .zfs
                .update_user_properties(&v.dataset, &[(record::PROP, &r)], &[])
            {
                log::warn!(
                    "{}: listing record not written ({e}); SR.ls reads its properties instead",
                    v.key
                );
            }
        }
    }

    /// The volsize (and a thick volume's reservation) part of Volume.resize.
    fn resize_volume(&self, v: &VdiInfo, size: u64) -> Result<()> {
        // A thick volume takes its larger reservation first, alone: one SET_PROP ioctl with
        // both properties is not atomic (the kernel sets volsize, then fails the
        // refreservation on a full pool, leaving a grown volume without its space). Taken
        // first, a full pool fails before anything changed; if volsize then fails, the old
        // reservation is put back.
        let old_reservation = if v.thick {
            let old = self
                .zfs
                .get_properties(&v.dataset, &["refreservation"])?
                .get("refreservation")
                .and_then(|p| p.as_u64())
                .unwrap_or(0);
            let new = self.thick_refreservation(size)?;
            if new > old {
                // Two ioctls: a kill between them would leave the volume over-reserved.
                // The intent record lets the next call's recovery give it back.
                intent::record(
                    self.dataset(),
                    &intent::Intent::Reservation {
                        dataset: v.dataset.clone(),
                        refreservation: old,
                        volsize: v.virtual_size,
                    },
                )?;
                self.zfs
                    .set_properties(&v.dataset, &Props::new().u64("refreservation", new))
                    .map_err(|e| space_error(e, "resize", size))?;
                fault::point("resize:after-reservation");
            }
            Some(old)
        } else {
            None
        };
        if let Err(e) = self
            .zfs
            .set_properties(&v.dataset, &Props::new().u64("volsize", size))
        {
            if let Some(old) = old_reservation {
                let _ = self
                    .zfs
                    .set_properties(&v.dataset, &Props::new().u64("refreservation", old));
            }
            intent::clear(self.dataset());
            return Err(space_error(e, "resize", size));
        }
        intent::clear(self.dataset());
        fault::point("resize:after-resize");
        Ok(())
    }

    /// Change user properties of a VDI and its listing record in one txg.
    fn set_user(&self, key: &str, set: &[(&str, &str)], unset: &[&str]) -> Result<()> {
        check_key(key)?;
        let _l = self.lock()?;
        let v = self.recover_and_stat(key)?;
        let record = record::after_change(&v, set, unset);
        let mut set = set.to_vec();
        let mut unset = unset.to_vec();
        match &record {
            Some(r) => set.push((record::PROP, r)),
            None => unset.push(record::PROP),
        }
        self.zfs.update_user_properties(&v.dataset, &set, &unset)
    }

    /// Volume.set_name.
    pub fn volume_set_name(&self, key: &str, name: &str) -> Result<()> {
        meta::check_value("name", name)?;
        self.set_user(key, &[(meta::VDI_NAME, name)], &[])
    }

    /// Volume.set_description.
    pub fn volume_set_description(&self, key: &str, d: &str) -> Result<()> {
        meta::check_value("description", d)?;
        self.set_user(key, &[(meta::VDI_DESCRIPTION, d)], &[])
    }

    /// Volume.set: store xapi key `k` = `v` (encoded property name, I6).
    pub fn volume_set(&self, key: &str, k: &str, v: &str) -> Result<()> {
        let p = meta::encode_key(k)?;
        meta::check_value("value", v)?;
        self.set_user(key, &[(&p, v)], &[])
    }

    /// Volume.unset: remove xapi key `k` (absent keys are fine).
    pub fn volume_unset(&self, key: &str, k: &str) -> Result<()> {
        let p = meta::encode_key(k)?;
        self.set_user(key, &[], &[&p])
    }
}

/// Name the source dataset (not the new clone) in a failed snapshot+clone.
fn relabel(e: Error, src: &str) -> Error {
    match e {
        Error::Zfs {
            op,
            errno,
            reason,
            items,
            ..
        } => Error::Zfs {
            op,
            target: src.to_string(),
            errno,
            reason,
            items,
        },
        e => e,
    }
}

/// The string-valued (user) properties of `props` as a channel-program argument.
fn user_props_nvlist(props: &Props) -> Result<NvList> {
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
fn source_snapshot_name(src: &VdiInfo, new: &str) -> String {
    match src.kind {
        Kind::Snapshot => format!("{}@{}", src.dataset, src.key),
        Kind::Volume => format!("{}@{new}", src.dataset),
    }
}

/// Reword out-of-space failures so the admin knows what to do.
fn space_error(e: Error, what: &str, size: u64) -> Error {
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

/// An EBUSY from ZFS on a volume means it is open (attached to a VM).
fn in_use(e: Error, key: &str) -> Error {
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
}

impl NewVdi<'_> {
    /// The user properties to create the dataset with; fails only for a key that cannot
    /// be stored.
    ///
    /// ```
    /// use zfs_volume::sr::NewVdi;
    /// let p = NewVdi { key: "k", name: "n", description: "", sharable: false, thick: false,
    ///     snapshot_of: None, volsize: 1 << 20, referenced: None, keys: &[("vdi-type", "user")] }.props()?;
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
