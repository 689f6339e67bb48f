//! Volume.revert: the volume takes the content of a snapshot VDI and keeps its identity (key,
//! name, xapi keys, locally set properties); newer snapshots are untouched.
//!
//! ZFS can only roll back to a dataset's latest snapshot, so that case is one
//! `lzc_rollback_to`. Any other snapshot is cloned in under the volume's name:
//! * on OpenZFS 2.4+, with only user properties to carry, one channel program destroys
//!   `vol/<key>` and clones the content under the same name (revert_in_place.lua): one txg,
//!   no rename, nothing in between for a crash to leave;
//! * otherwise (2.1–2.3, a native property such as a thick volume's refreservation, an open
//!   volume) a swap: clone to `gc/<key>.new-<t>`, destroy `vol/<key>` in place (or, if it is
//!   open, rename it to `gc/<key>.old-<t>` and destroy that once it is closed), rename the new
//!   one to `vol/<key>`. Once `vol/<key>` is gone the name `gc/<key>.new-<t>` is the
//!   committed intent: reads report the volume from it and recovery renames it into place
//!   (recover.rs).
//!
//! No call waits for udev: Datapath.attach finds the device from the zvol itself (device.rs).
//! Destroying in place matters for speed: a renamed zvol is announced anew and udev's probe
//! holds it open for a moment, which the destroy after a rename had to wait out.

use super::journal::Journal;
use super::layout::check_key;
use super::names::{sr_program, NEW_MARK, OLD_MARK};
use super::record::VdiInfo;
use super::volume::{
    in_use, new_key, refuse_metadata, source_snapshot_name, space_error, user_props_nvlist, OnBusy,
    TRANSIENT_BUSY_RETRY,
};
use super::{device, fault, record, Kind, Sr};
use crate::error::{Error, Op, Result};
use crate::lzc::{check_step, Limits, NvList, NvValue, Program, Props};

static REVERT_IN_PLACE: Program = sr_program!("revert_in_place");
static LATEST_SNAPSHOT: Program = sr_program!("latest_snapshot");

impl Sr {
    /// Volume.revert: `key` takes the content of snapshot VDI `snapshot` and keeps its
    /// identity (key, name, xapi keys); newer snapshots are untouched.
    ///
    /// ZFS can only roll back to the latest snapshot, so that case is one
    /// `lzc_rollback_to`; any other snapshot is cloned in under the volume's name, in one
    /// channel program where the kernel can (2.4+, user properties only), else by a swap
    /// through `gc/<key>.new-<t>` whose names are the intent record [`Sr::recover`]
    /// finishes or undoes (see the module docs).
    pub fn volume_revert(&self, snapshot: &str, key: &str) -> Result<()> {
        check_key(snapshot)?;
        check_key(key)?;
        let _l = self.lock()?;
        let s = self.recover_and_stat(snapshot)?;
        let v = self.stat_existing(key)?;
        refuse_metadata(&s, "reverted to")?;
        refuse_metadata(&v, "reverted")?;
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
        // Fast path: the content is this volume's latest snapshot.
        if let Some(content) = s.content.as_deref() {
            if content.starts_with(&format!("{}@", v.dataset)) && self.rollback(&v, &s, content)? {
                return Ok(());
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
        // One txg on 2.4+ when every property is a user property.
        let mut open = false;
        let mut s = s;
        if self.one_txg_clone(&props)? {
            match self.revert_in_place(&v, &s, &props) {
                Ok(()) => return Ok(()),
                // The volume is open: the swap below can rename it away. The program's
                // promote may have moved the content snapshot: read where it is now.
                Err(e) if e.is_errno(libc::EBUSY) => {
                    open = true;
                    s = self.stat_existing(snapshot)?;
                }
                Err(e) => return Err(space_error(in_use(e, key), "revert", s.virtual_size)),
            }
        }
        self.revert_by_swap(&v, &s, &props, open)
    }

    /// The rollback of `v` to `content`, its latest snapshot: true when done, false when
    /// ZFS refuses because newer snapshots exist (then the caller swaps).
    fn rollback(&self, v: &VdiInfo, s: &VdiInfo, content: &str) -> Result<bool> {
        // A rollback to before a resize changes volsize, which the listing record
        // cannot follow in the same txg: drop it first, write it back after. That costs two
        // txgs, so first ask whether the rollback can happen at all (a read, no txg).
        let mut rollback = Journal::begin(self.dataset());
        let resized = s.virtual_size != v.virtual_size;
        if resized && !self.is_latest_snapshot(&v.dataset, content)? {
            return Ok(false);
        }
        if resized {
            self.zfs
                .update_user_properties(&v.dataset, &[], &[record::PROP])?;
            rollback.on_undo("write the listing record back", || {
                self.write_record(v, v.virtual_size);
                Ok(())
            });
        }
        match self.zfs.rollback_to(&v.dataset, content) {
            Ok(()) => {
                rollback.commit();
                if resized {
                    self.write_record(v, s.virtual_size);
                }
                device::flush(&v.dataset, s.virtual_size);
                if v.thick {
                    let r = self.thick_refreservation(s.virtual_size)?;
                    self.zfs
                        .set_properties(&v.dataset, &Props::new().u64("refreservation", r))?;
                }
                Ok(true)
            }
            // Newer snapshots: swap instead (the record is written back first).
            Err(e) if e.is_errno(libc::EEXIST) => Ok(false),
            Err(e) => Err(in_use(e, &v.key)),
        }
    }

    /// True when `snap` is the newest snapshot of `dataset` (latest_snapshot.lua, nosync):
    /// the only one `lzc_rollback_to` takes it back to.
    fn is_latest_snapshot(&self, dataset: &str, snap: &str) -> Result<bool> {
        let mut args = NvList::new()?;
        args.add_string("dataset", dataset)?;
        let out =
            self.zfs
                .program_nosync(self.pool(), &LATEST_SNAPSHOT, &args, Limits::default())?;
        Ok(
            matches!(&out, NvValue::List(t) if matches!(t.get("latest"), Some(NvValue::Str(l)) if l == snap)),
        )
    }

    /// revert_in_place.lua: destroy `v` and clone `s`'s content under its name with `props`
    /// (user properties only), one txg. EBUSY: `v` is open, after a short retry (udev probes a
    /// zvol for a moment after every close-after-write); nothing of `v` changed then.
    fn revert_in_place(&self, v: &VdiInfo, s: &VdiInfo, props: &Props) -> Result<()> {
        let mut args = NvList::new()?;
        args.add_string("volume", &v.dataset)?;
        args.add_string("snapshot", &s.dataset)?;
        args.add_string("skey", &s.key)?;
        args.add_string("root", self.dataset())?;
        args.add_nvlist("props", &user_props_nvlist(props)?)?;
        let start = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(20);
        loop {
            let out =
                self.zfs
                    .program_sync(self.pool(), &REVERT_IN_PLACE, &args, Limits::default())?;
            match check_step(&REVERT_IN_PLACE, Op::Clone, &v.dataset, &out) {
                Err(e) if e.is_errno(libc::EBUSY) && start.elapsed() < TRANSIENT_BUSY_RETRY => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(250));
                }
                r => return r.map_err(Error::from),
            }
        }
    }

    /// The swap (see the module docs): clone to `gc/<key>.new-<t>`, take `vol/<key>` away
    /// (destroyed in place, or renamed aside if `open` or found open), rename the new one in.
    fn revert_by_swap(&self, v: &VdiInfo, s: &VdiInfo, props: &Props, open: bool) -> Result<()> {
        let key = v.key.as_str();
        // The ZFS snapshot holding the snapshot VDI's content.
        let token = new_key();
        let mut snapshot_taken = Journal::begin(self.dataset());
        let content = match &s.content {
            Some(o) => o.clone(),
            None => {
                // A snapshot only for this revert's clone: recovery destroys it if the clone
                // never comes.
                let snap = source_snapshot_name(s, &token);
                self.snapshot_for_clone(
                    &mut snapshot_taken,
                    &snap,
                    "destroy the snapshot taken for the revert",
                )?;
                snap
            }
        };
        let new = self.layout.tombstone(&format!("{key}{NEW_MARK}{token}"));
        let old = self.layout.tombstone(&format!("{key}{OLD_MARK}{token}"));
        // `lzc_clone` sets properties in a sync task of its own (a txg). User properties can
        // instead be set by the program that destroys the old content, in its txg: then the
        // new content is the volume, metadata and all, exactly when the old one goes (and a
        // new content without them is plainly an unfinished revert's).
        let later = !open && props.iter().all(|(k, _)| k.contains(':'));
        let none = Props::new();
        self.clone_snapshot(&content, &new, if later { &none } else { props }, None)
            .map_err(|e| space_error(e, "revert", s.virtual_size))?;
        // The snapshot is the new content's origin now; the new content goes if the swap
        // cannot start.
        snapshot_taken.commit();
        let mut j = Journal::begin(self.dataset());
        j.on_undo("destroy the new content", || {
            self.destroy_with_dependents(&new, OnBusy::GiveUp)
        });
        fault::point("revert:after-clone");
        // Take the old content away. From the moment vol/<key> is gone, gc/<key>.new-<t>
        // is the volume: reads report it from there and recovery renames it into place.
        let on_busy = if open {
            OnBusy::GiveUp
        } else {
            OnBusy::RetryFor(TRANSIENT_BUSY_RETRY)
        };
        let set = user_props_nvlist(props)?;
        match self.destroy_and_set(&v.dataset, on_busy, later.then_some((new.as_str(), &set))) {
            Ok(()) => {
                j.commit();
                fault::point("revert:after-destroy");
                self.zfs.rename(&new, &v.dataset)?;
                return Ok(());
            }
            Err(e) if e.is_errno(libc::EBUSY) => {}
            Err(e) => return Err(in_use(e, key)),
        }
        if later {
            self.zfs.set_properties(&new, props)?;
        }
        // Open (xapi reverts only halted VMs, but an admin may hold it): an open zvol can be
        // renamed, not destroyed.
        self.zfs
            .rename(&v.dataset, &old)
            .map_err(|e| in_use(e, key))?;
        j.commit();
        fault::point("revert:after-rename-old");
        self.zfs.rename(&new, &v.dataset)?;
        fault::point("revert:after-rename-new");
        // The revert is done. The old content cannot go while it is open: it stays a
        // tombstone that a later call collects once it is closed.
        match self.destroy_with_dependents(&old, OnBusy::GiveUp) {
            Err(e) if e.is_errno(libc::EBUSY) => {
                log::info!("revert of {key}: the previous content {old} is still open; a later call collects it");
                Ok(())
            }
            r => r,
        }
    }
}
