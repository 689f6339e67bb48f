//! Volume.snapshot: clone-on-snapshot. A snapshot VDI is a read-only clone of a ZFS snapshot
//! (attachable, I5 by the `snap` container's readonly=on, inherited in the txg that creates
//! it). A snapshot of a snapshot VDI clones the ZFS snapshot that already is its content.

use super::layout::check_key;
use super::record::VdiInfo;
use super::volume::{new_key, refuse_metadata, source_snapshot_name, space_error, NewVdi};
use super::{Kind, Sr};
use crate::error::Result;

impl Sr {
    /// Volume.snapshot: a read-only, attachable snapshot VDI (clone-on-snapshot). Name
    /// and description are copied; xapi's keys are not (the IDL says so).
    pub fn volume_snapshot(&self, key: &str) -> Result<VdiInfo> {
        check_key(key)?;
        let _l = self.lock()?;
        let src = self.recover_and_stat(key)?;
        refuse_metadata(&src, "snapshotted")?;
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
            // A snapshot of a tracked volume is a point of its CBT chain (xapi expects
            // cbt_enabled on it, and data_destroy needs it).
            cbt: src.cbt_enabled,
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
            cbt_enabled: src.cbt_enabled,
        };
        let made = match (&src.kind, &src.content) {
            // A snapshot VDI never changes, so the ZFS snapshot it was cloned from (or that
            // a promote moved into it) already is its content: clone that (one ioctl, no
            // new ZFS snapshot).
            (Kind::Snapshot, Some(content)) => {
                self.clone_snapshot(content, &dst, &props, Some(&expect))?
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
}
