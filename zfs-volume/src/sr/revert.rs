//! Volume.revert: the volume takes the content of a snapshot VDI and keeps its identity (key,
//! name, xapi keys, locally set properties); newer snapshots are untouched.
//!
//! ZFS can only roll back to a dataset's latest snapshot, so that case is one
//! `lzc_rollback_to`. Any other snapshot is cloned and swapped in under the same name: clone
//! to `gc/<key>.new-<t>`, rename `vol/<key>` to `gc/<key>.old-<t>`, rename the new one to
//! `vol/<key>`, destroy the old one. The names are the intent record: reads report the volume
//! from them while a swap is under way, and recovery finishes or undoes a swap a crash
//! interrupted (recover.rs). No call waits for udev: Datapath.attach finds the device from
//! the zvol itself (device.rs).

use super::journal::{Intent, Journal};
use super::layout::check_key;
use super::names::{NEW_MARK, OLD_MARK};
use super::volume::{
    in_use, new_key, refuse_metadata, source_snapshot_name, space_error, OnBusy,
    TRANSIENT_BUSY_RETRY,
};
use super::{device, fault, record, Kind, Sr};
use crate::error::{Error, Result};
use crate::lzc::Props;

impl Sr {
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
        // The ZFS snapshot holding the snapshot VDI's content.
        let token = new_key();
        let mut snapshot_taken = Journal::begin(self.dataset());
        let content = match &s.content {
            Some(o) => o.clone(),
            None => {
                // A snapshot only for this revert's clone: recovery destroys it if the clone
                // never comes.
                let snap = source_snapshot_name(&s, &token);
                snapshot_taken.record(&Intent::Snapshot(snap.clone()))?;
                self.zfs.snapshot([&snap], &[])?;
                snap
            }
        };
        if s.content.is_none() {
            let snap = content.clone();
            snapshot_taken.on_undo("destroy the snapshot taken for the revert", move || {
                self.zfs
                    .destroy_snapshots([&snap], false)
                    .map_err(Error::from)
            });
        }
        // Fast path: the content is this volume's latest snapshot.
        if content.starts_with(&format!("{}@", v.dataset)) {
            // A rollback to before a resize changes volsize, which the listing record
            // cannot follow in the same txg: drop it first, write it back after.
            let mut rollback = Journal::begin(self.dataset());
            let resized = s.virtual_size != v.virtual_size;
            if resized {
                self.zfs
                    .update_user_properties(&v.dataset, &[], &[record::PROP])?;
                rollback.on_undo("write the listing record back", || {
                    self.write_record(&v, v.virtual_size);
                    Ok(())
                });
            }
            match self.zfs.rollback_to(&v.dataset, &content) {
                Ok(()) => {
                    rollback.commit();
                    if resized {
                        self.write_record(&v, s.virtual_size);
                    }
                    device::flush(&v.dataset, s.virtual_size);
                    if thick {
                        let r = self.thick_refreservation(s.virtual_size)?;
                        self.zfs
                            .set_properties(&v.dataset, &Props::new().u64("refreservation", r))?;
                    }
                    return Ok(());
                }
                // Newer snapshots: swap instead (the record is written back first).
                Err(e) if e.is_errno(libc::EEXIST) => drop(rollback),
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
        let new = self.layout.tombstone(&format!("{key}{NEW_MARK}{token}"));
        let old = self.layout.tombstone(&format!("{key}{OLD_MARK}{token}"));
        // One txg on 2.4+ when every property is a user property (clone_with_props.lua);
        // `lzc_clone` and its property sync task otherwise.
        self.clone_snapshot(&content, &new, &props, None)
            .map_err(|e| space_error(e, "revert", s.virtual_size))?;
        // The snapshot is the new content's origin now; the new content goes if the swap
        // cannot start.
        snapshot_taken.commit();
        let mut j = Journal::begin(self.dataset());
        j.on_undo("destroy the new content", || {
            self.destroy_with_dependents(&new, OnBusy::GiveUp)
        });
        fault::point("revert:after-clone");
        self.zfs
            .rename(&v.dataset, &old)
            .map_err(|e| in_use(e, key))?;
        // From here the names under gc/ tell recovery how to finish the swap.
        j.commit();
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
        match self.destroy_with_dependents(&old, OnBusy::RetryFor(TRANSIENT_BUSY_RETRY)) {
            Err(e) if e.is_errno(libc::EBUSY) => {
                log::info!("revert of {key}: the previous content {old} is still open; a later call collects it");
                Ok(())
            }
            r => r,
        }
    }
}
