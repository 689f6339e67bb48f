//! Volume.stat and SR.ls: reads. One nosync channel program each, no lock, nothing mounted
//! or changed (xapi stats before every destroy and scans often; a read that waited behind a
//! writer or changed what it reads would be a defect). A volume whose revert is between its
//! two renames is found from what the dataset names say (`swapping_in` in the Lua prelude).

use super::layout::check_key;
use super::names::sr_program;
use super::record::{vdi_from, VdiInfo};
use super::Sr;
use crate::error::{Error, Result};
use crate::lzc::{Limits, NvList, NvValue, Program};

static LIST_SR: Program = sr_program!("list_sr");

impl Sr {
    /// Volume.stat: one nosync program, no lock, no side effect (xapi stats before every
    /// destroy, and a read must never wait behind a writer nor change what it reads).
    ///
    /// ```no_run
    /// # let sr = zfs_volume::sr::Sr::open("tank/zvol-sr-1")?;
    /// let v = sr.volume_stat("0f8c3d1e-6a57-4b1c-9d0e-2f3a4b5c6d7e")?;
    /// println!("{} bytes", v.virtual_size);
    /// # Ok::<(), zfs_volume::Error>(())
    /// ```
    ///
    /// It reads the VDI's listing record, as SR.ls does, so that both report the same, plus
    /// its live space use and origin: one objset open for a volume (two for a clone), where
    /// reading every property opens it five times (each native property read and the
    /// user-property list rebuild it; xapi stats before every datapath call). A VDI without a
    /// record is read from its properties.
    pub fn volume_stat(&self, key: &str) -> Result<VdiInfo> {
        // A volume whose revert's swap has taken `vol/<key>` away (running, or killed there)
        // is found by the program from what the names say (swapping_in in the prelude), so a
        // crash is never reported to xapi as a gone VDI and nothing waits for the lock.
        check_key(key)?;
        self.stat_read(key, Some("stat"))?
            .ok_or_else(|| Error::VolumeNotFound(key.to_string()))
    }

    /// The VDI `key` read from its properties themselves, never from its listing record:
    /// the truth the record caches (docs/semantics.md §8), for checks that compare the two.
    pub fn volume_stat_from_properties(&self, key: &str) -> Result<VdiInfo> {
        self.stat_existing(key)
    }

    /// SR.ls: every live VDI, snapshots included, tombstones never (I7). One nosync
    /// program for the whole SR, no lock, nothing mounted or changed.
    ///
    /// A revert whose swap has taken `vol/<key>` away (running, or killed there) has it missing:
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
}
