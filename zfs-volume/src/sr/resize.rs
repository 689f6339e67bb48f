//! Volume.resize: grow only (shrinking would destroy data). volsize is set by its own
//! SET_PROP ioctl, so the listing record cannot change with it in one txg: it goes first and
//! is written back after (a crash leaves no record, never a wrong one). A thick volume takes
//! its larger reservation first, alone, under a journal record: a full pool then fails before
//! anything changed, and a kill between the two ioctls is undone by recovery.

use super::journal::{Intent, Journal};
use super::layout::check_key;
use super::record::{self, VdiInfo};
use super::volume::{round_size, space_error};
use super::{fault, Kind, Sr};
use crate::error::{Error, Result};
use crate::lzc::Props;

impl Sr {
    /// Volume.resize: grow only (shrinking would destroy data); a thick volume's
    /// reservation is set in the same ioctl.
    pub fn volume_resize(&self, key: &str, new_size: u64) -> Result<()> {
        check_key(key)?;
        let _l = self.lock()?;
        let v = self.recover_and_stat(key)?;
        super::volume::refuse_metadata(&v, "resized")?;
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
        let mut j = Journal::begin(self.dataset());
        self.zfs
            .update_user_properties(&v.dataset, &[], &[record::PROP])
            .map_err(|e| space_error(e, "resize", size))?;
        j.on_undo("write the listing record back", || {
            self.write_record(&v, v.virtual_size);
            Ok(())
        });
        // A thick volume takes its larger reservation first, alone: one SET_PROP ioctl with
        // both properties is not atomic (the kernel sets volsize, then fails the
        // refreservation on a full pool, leaving a grown volume without its space). Taken
        // first, a full pool fails before anything changed; if volsize then fails, the old
        // reservation is put back.
        if v.thick {
            let old = self
                .zfs
                .get_properties(&v.dataset, ["refreservation"])?
                .get("refreservation")
                .and_then(|p| p.as_u64())
                .unwrap_or(0);
            let new = self.thick_refreservation(size)?;
            if new > old {
                // Two ioctls: a kill between them would leave the volume over-reserved.
                // The record lets the next call's recovery give it back.
                j.record(&Intent::Reservation {
                    dataset: v.dataset.clone(),
                    refreservation: old,
                    volsize: v.virtual_size,
                })?;
                self.zfs
                    .set_properties(&v.dataset, &Props::new().u64("refreservation", new))
                    .map_err(|e| space_error(e, "resize", size))?;
                let dataset = v.dataset.clone();
                j.on_undo("put the old reservation back", move || {
                    self.zfs
                        .set_properties(&dataset, &Props::new().u64("refreservation", old))
                        .map_err(Error::from)
                });
                fault::point("resize:after-reservation");
            }
        }
        self.zfs
            .set_properties(&v.dataset, &Props::new().u64("volsize", size))
            .map_err(|e| space_error(e, "resize", size))?;
        j.commit();
        fault::point("resize:after-resize");
        self.write_record(&v, size);
        Ok(())
    }

    /// Write `v`'s listing record with `volsize` (none if it would not fit). A failure is
    /// only logged: without a record SR.ls reads the properties themselves, still right.
    pub(super) fn write_record(&self, v: &VdiInfo, volsize: u64) {
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
}
