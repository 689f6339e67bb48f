//! Volume.destroy, and destroying any dataset of an SR whatever depends on it.
//!
//! ZFS refuses to destroy a dataset that has snapshots (EBUSY) and a snapshot that has clones
//! (EEXIST); destroy_vdi.lua promotes the clone of the newest clone-bearing snapshot (the
//! heir), destroys, and collects what nothing needs any more, in one txg (I3, I4). An open
//! zvol is long-held and cannot be destroyed (EBUSY): udev holds every zvol for a moment after
//! it appears or is renamed, so callers choose how long to wait that out (`OnBusy`).

use super::layout::{check_key, Kind};
use super::names::sr_program;
use super::volume::{in_use, OnBusy, BUSY_RETRY};
use super::{fault, Sr};
use crate::error::{Op, Result};
use crate::lzc::{check_step, Limits, NvList, NvValue, Program};

static DESTROY_VDI: Program = sr_program!("destroy_vdi");

impl Sr {
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
                self.destroy_with_dependents(&ds, OnBusy::RetryFor(BUSY_RETRY))
                    .map_err(|e| in_use(e, key))?;
                fault::point("destroy:after-destroy");
            }
            // An activate_readonly whose deactivate never came left a mark (a file in the run
            // directory); with the zvol gone (here, or earlier by a data_destroy), nothing
            // else would remove it.
            crate::host::device::unmark_read_only(&ds);
        }
        // A CBT-metadata VDI (or what an unfinished data_destroy of this key made).
        if self.zfs.exists(&self.vdi_dataset(key, Kind::CbtMetadata)) {
            self.destroy_cbt_metadata(key)?;
            fault::point("destroy:after-destroy");
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
    pub(crate) fn destroy_with_dependents(&self, ds: &str, on_busy: OnBusy) -> Result<()> {
        self.destroy_and_set(ds, on_busy, None)
    }

    /// [`Sr::destroy_with_dependents`], and in the same txg set the user properties `set.1`
    /// on dataset `set.0` (nothing is set if the destroy cannot happen): a revert's new
    /// content gets the volume's metadata exactly when the old content goes.
    pub(crate) fn destroy_and_set(
        &self,
        ds: &str,
        on_busy: OnBusy,
        set: Option<(&str, &NvList)>,
    ) -> Result<()> {
        let mut args = NvList::new()?;
        args.add_string("dataset", ds)?;
        args.add_string("root", self.dataset())?;
        if let Some((on, props)) = set {
            args.add_string("set_on", on)?;
            args.add_nvlist("props", props)?;
        }
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
                r => return r.map_err(crate::Error::from),
            }
        }
    }
}
