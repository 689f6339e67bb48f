//! Volume.clone, and the snapshot+clone machinery Volume.snapshot shares.
//!
//! ZFS rules handled here: a clone needs a snapshot to be cloned from, and a snapshot with a
//! clone cannot be destroyed (EEXIST) until the clone is promoted or gone. Every ZFS snapshot
//! in an SR exists only as the origin of a clone (I4). On OpenZFS 2.4 `zfs.sync.clone` makes
//! snapshot+clone one txg in a channel program (user properties only: a program cannot set
//! native ones such as refreservation); elsewhere they are two ioctls, with an intent record
//! between them so that recovery destroys a snapshot whose clone never came.

use super::journal::Journal;
use super::layout::check_key;
use super::names::sr_program;
use super::record::{self, vdi_from, VdiInfo};
use super::volume::{
    new_key, refuse_metadata, relabel, source_snapshot_name, space_error, user_props_nvlist, NewVdi,
};
use super::{fault, Kind, Provisioning, Sr};
use crate::error::{Op, Result};
use crate::lzc::{check_step, Limits, NvList, NvValue, Program, Props};

static SNAPSHOT_CLONE: Program = sr_program!("snapshot_clone");
static CLONE_WITH_PROPS: Program = sr_program!("clone_with_props");

impl Sr {
    /// True when a clone with `props` can be one channel program: the kernel has
    /// `zfs.sync.clone` (2.4+) and only user properties are set (programs cannot set
    /// native ones such as refreservation).
    pub(super) fn one_txg_clone(&self, props: &Props) -> Result<bool> {
        Ok(props.iter().all(|(k, _)| k.contains(':')) && self.capabilities()?.sync_clone)
    }

    /// Run snapshot_clone.lua or clone_with_props.lua: `source` is their first argument;
    /// `new` is the VDI being made, if the caller wants it back. A new volume is described
    /// by the program inside its txg (its `used` is only known there), which saves the
    /// caller a stat ioctl. A new snapshot VDI is fully known beforehand except its
    /// `referenced`, which the program returns: reading the clone back would open its objset
    /// five times inside the txg. Without `new` the program describes nothing.
    fn run_clone_program(
        &self,
        p: &Program,
        source: (&str, &str),
        dst: &str,
        props: &Props,
        op: Op,
        new: Option<&VdiInfo>,
    ) -> Result<Option<VdiInfo>> {
        let mut args = NvList::new()?;
        args.add_string(source.0, source.1)?;
        args.add_string("clone", dst)?;
        args.add_nvlist("props", &user_props_nvlist(props)?)?;
        // What the program is asked to describe: the new VDI's kind and key, if wanted.
        if let Some(new) = new {
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
        }
        let out = self
            .zfs
            .program_sync(self.pool(), p, &args, Limits::default())?;
        check_step(p, op, dst, &out)?;
        let (Some(new), NvValue::List(t)) = (new, &out) else {
            return Ok(None);
        };
        if new.kind == Kind::Snapshot {
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
    /// Returns the new VDI when the one-txg path could describe it (`new` given).
    pub(super) fn clone_snapshot(
        &self,
        origin: &str,
        dst: &str,
        props: &Props,
        new: Option<&VdiInfo>,
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
        self.zfs
            .clone(dst, origin, props)
            .map(|()| None)
            .map_err(crate::Error::from)
    }

    /// Snapshot `src` as `<src>@<new>` and clone it into `dst` with `props`: one txg where
    /// the kernel has `zfs.sync.clone` (2.4+) and no native property is needed, two
    /// otherwise (a crash in between leaves a clone-less snapshot, collected by
    /// [`Sr::recover`]).
    /// Returns the new VDI when the one-txg path could describe it.
    pub(super) fn snapshot_and_clone(
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
                    Some(new),
                )
                .map_err(|e| relabel(e, src));
        }
        // Leave nothing behind: the snapshot is only for this clone. If the clone fails and the
        // snapshot cannot go at once (the pool was exported or suspended under us), or the
        // process is killed between the two, the record lets the next call's recovery
        // destroy it.
        let mut j = Journal::begin(self.dataset());
        self.snapshot_for_clone(&mut j, snap, "destroy the snapshot taken for the clone")?;
        fault::point(fault_name);
        self.zfs.clone(dst, snap, props)?;
        j.commit();
        Ok(None)
    }

    /// Volume.clone: a writable copy of any VDI, snapshot or not.
    pub fn volume_clone(&self, key: &str) -> Result<VdiInfo> {
        check_key(key)?;
        let _l = self.lock()?;
        let src = self.recover_and_stat(key)?;
        refuse_metadata(&src, "cloned")?;
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
            // A clone starts a new disk: CBT is off on it (as xapi does for clones).
            cbt: false,
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
            cbt_enabled: false,
            ..src.clone()
        };
        let made = match (&src.kind, &src.content) {
            (Kind::Snapshot, Some(content)) => self
                .clone_snapshot(content, &dst, &props, Some(&expect))
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
}
