//! Crash recovery and garbage collection (I4, I9), run by the calls themselves. Every call
//! that changes the tree starts with the cheap form: the intent record a killed two-step
//! call left ([`super::intent`]) and the tombstones under `gc/` (one small nosync
//! program); SR.attach, SR.destroy and `check` also scan every snapshot of the SR for
//! clone-less ones. Nothing is changed unless something is found.
//!
//! What a crash can leave, and what is done about it:
//! * a ZFS snapshot without clones (killed between snapshot and clone on ZFS < 2.4, or
//!   a collection step not reached): destroyed;
//! * `gc/<key>.new-<t>` with `vol/<key>` present: a revert that had not taken the old
//!   content away yet — the fresh clone is destroyed (the revert did not happen; the
//!   caller got no answer), or, if it is open, renamed to `gc/<key>.old-<t>` so that it
//!   can never be taken for the volume later;
//! * `gc/<key>.new-<t>` with `vol/<key>` missing: a revert killed after it destroyed or
//!   renamed away the old content — the new one is renamed into place;
//! * `gc/<key>.old-<t>` (after the swap): destroyed, with its dependents promoted;
//! * anything else under `gc/`: destroyed the same way.

use super::journal::{self, Intent};
use super::layout::{Kind, GC};
use super::names::{sr_program, NEW_MARK, OLD_MARK};
use super::record::strings;
use super::volume::{OnBusy, BUSY_RECHECK, BUSY_RETRY, TRANSIENT_BUSY_RETRY};
use super::{fault, Sr};
use crate::error::Result;
use crate::lzc::{Limits, NvList, NvValue, Program, Props};

static GC_SCAN: Program = sr_program!("gc_scan");
static LIST_SR: Program = sr_program!("list_sr");

/// What `xapi-zvol check` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Live VDIs.
    pub vdis: usize,
    /// Tombstones waiting under `gc/` (recovery backlog).
    pub tombstones: Vec<String>,
    /// ZFS snapshots without clones (garbage backlog).
    pub orphan_snapshots: Vec<String>,
    /// Invariant violations found (empty when healthy).
    pub problems: Vec<String>,
}

/// What [`Sr::scan`] found.
struct Backlog {
    /// Tombstones to collect now.
    gc: Vec<String>,
    /// Tombstones whose device is open: left for a later call.
    busy: Vec<String>,
    /// ZFS snapshots without clones.
    orphans: Vec<String>,
    /// Keys with both a snapshot VDI and a CBT-metadata VDI: data_destroys that did not
    /// finish (full scans only).
    unfinished_data_destroys: Vec<String>,
}

impl Sr {
    /// For `gc/<key>.new-<t>`: `vol/<key>`, the name it takes when its revert is finished;
    /// None for any other name.
    fn vol_of_new(&self, t: &str) -> Option<String> {
        let prefix = format!("{}/", self.layout.container(GC));
        let name = t.strip_prefix(&prefix)?;
        let (key, _) = name.split_once(NEW_MARK)?;
        Some(self.layout.vdi(key, Kind::Volume))
    }

    /// A revert's new content `t` that cannot be destroyed now (open) while its volume
    /// exists: the revert did not happen, and `t` must never be taken for the volume later
    /// (were the volume destroyed before `t` closes, the next recovery would otherwise
    /// rename `t` into its place). Renamed to the old-content name of the same revert:
    /// plain garbage, collected once closed. No-op for any other tombstone.
    fn set_aside(&self, t: &str) -> Result<()> {
        match self.vol_of_new(t) {
            Some(vol) if self.zfs.exists(&vol) => {}
            _ => return Ok(()),
        }
        let aside = t.replacen(NEW_MARK, OLD_MARK, 1);
        self.zfs.rename(t, &aside)?;
        fault::point("recover:after-step");
        Ok(())
    }

    fn scan(&self, full: bool) -> Result<Backlog> {
        let mut args = NvList::new()?;
        args.add_string("root", self.dataset())?;
        args.add_boolean_value("full", full)?;
        let out = self
            .zfs
            .program_nosync(self.pool(), &GC_SCAN, &args, Limits::large())?;
        let NvValue::List(t) = out else {
            return Ok(Backlog {
                gc: vec![],
                busy: vec![],
                orphans: vec![],
                unfinished_data_destroys: vec![],
            });
        };
        let busy = strings(&t, "busy");
        let gc = strings(&t, "gc")
            .into_iter()
            .filter(|g| !busy.contains(g))
            .collect();
        Ok(Backlog {
            gc,
            busy,
            orphans: strings(&t, "orphans"),
            unfinished_data_destroys: strings(&t, "unfinished_data_destroys"),
        })
    }

    /// Finish or undo what interrupted calls left, and collect garbage: the cheap form
    /// run by every changing call. Callers hold the SR lock. Idempotent; costs one nosync
    /// ioctl (and reading a file in /run) when there is nothing to do.
    pub fn recover(&self) -> Result<()> {
        self.recover_with(false)
    }

    /// [`Sr::recover`] plus a scan of every snapshot in the SR for clone-less ones (SR.attach,
    /// SR.destroy): what a crash before a reboot (which empties /run) may have left.
    pub fn recover_all(&self) -> Result<()> {
        self.recover_with(true)
    }

    fn recover_with(&self, full: bool) -> Result<()> {
        let pending = journal::pending(self.dataset());
        if !pending.is_empty() {
            for intent in &pending {
                match intent {
                    // A snapshot taken for a clone that never came: destroy it. If the
                    // clone was made after all, ZFS refuses (EEXIST) and it stays, as it
                    // should.
                    Intent::Snapshot(snap) => match self.zfs.destroy_snapshots([snap], false) {
                        Err(e) if e.is_errno(libc::EEXIST) => {}
                        r => r?,
                    },
                    // A thick resize killed between its reservation and its size: if the
                    // size did not change, give the extra reservation back.
                    Intent::Reservation {
                        dataset,
                        refreservation,
                        volsize,
                    } => {
                        let unchanged = match self.zfs.get_properties(dataset, ["volsize"]) {
                            Ok(p) => p.get("volsize").and_then(|v| v.as_u64()) == Some(*volsize),
                            // Destroyed since: nothing left to give back.
                            Err(e) if e.is_errno(libc::ENOENT) => false,
                            Err(e) => return Err(e.into()),
                        };
                        if unchanged {
                            self.zfs.set_properties(
                                dataset,
                                &Props::new().u64("refreservation", *refreservation),
                            )?;
                        }
                    }
                    // A data_destroy killed before its snapshot VDI went: undone.
                    Intent::DataDestroy(key) => self.undo_data_destroy(key)?,
                }
            }
            journal::clear(self.dataset());
            fault::point("recover:after-step");
        }
        let first = self.scan(full)?;
        // A data_destroy killed before a reboot (the record in /run is gone): the names say it.
        for key in &first.unfinished_data_destroys {
            self.undo_data_destroy(key)?;
            fault::point("recover:after-step");
        }
        if first.gc.is_empty() && first.busy.is_empty() && first.orphans.is_empty() {
            return Ok(());
        }
        // Interrupted reverts first: they decide which datasets are garbage. An open zvol
        // can be renamed, so the busy ones count here too (a new clone is often still
        // being probed by udev).
        for t in first.gc.iter().chain(&first.busy) {
            let Some(vol) = self.vol_of_new(t) else {
                continue;
            };
            if !self.zfs.exists(&vol) {
                // The revert had taken the old content away: finish it.
                self.zfs.rename(t, &vol)?;
                fault::point("recover:after-step");
            } else if first.busy.contains(t) {
                self.set_aside(t)?;
            }
        }
        let mut backlog = self.scan(full)?;
        if !backlog.busy.is_empty() {
            // Seemingly open: udev may be probing it for a moment; look once more.
            std::thread::sleep(BUSY_RECHECK);
            backlog = self.scan(full)?;
        }
        let Backlog {
            mut gc,
            busy,
            orphans,
            ..
        } = backlog;
        // SR.attach and SR.destroy (full) try the open ones too, waiting a little: nothing
        // of the SR should be in use then, and SR.destroy must not leave any behind.
        let on_busy = if full {
            gc.extend(busy);
            OnBusy::RetryFor(BUSY_RETRY)
        } else {
            OnBusy::RetryFor(TRANSIENT_BUSY_RETRY)
        };
        for t in &gc {
            if self.zfs.exists(t) {
                match self.destroy_with_dependents(t, on_busy) {
                    // Still open (e.g. an old device after a revert): collect it on a later
                    // call instead of failing or slowing this one.
                    Err(e) if e.is_errno(libc::EBUSY) => {
                        log::info!("tombstone {t} is still open; a later call collects it");
                        self.set_aside(t)?;
                        continue;
                    }
                    r => r?,
                }
                fault::point("recover:after-step");
            }
        }
        // Snapshots without clones (after the tombstones went, some may have appeared or
        // gone): destroy those that are still clone-less.
        let orphans2 = if orphans.is_empty() {
            vec![]
        } else {
            self.scan(full)?.orphans
        };
        let refs: Vec<&str> = orphans2.iter().map(|s| s.as_str()).collect();
        if !refs.is_empty() {
            self.zfs.destroy_snapshots(&refs, false)?;
            fault::point("recover:after-step");
        }
        Ok(())
    }

    /// `xapi-zvol check`: the invariants that can be read off the pool, and the backlog.
    pub fn check(&self) -> Result<CheckReport> {
        let Backlog {
            gc,
            busy,
            orphans: orphan_snapshots,
            unfinished_data_destroys,
        } = self.scan(true)?;
        let vdis = self.ls()?;
        let mut problems = vec![];
        for v in &vdis {
            if v.kind != Kind::Volume && v.snapshot_of.is_none() {
                problems.push(format!("snapshot VDI {} does not record its source", v.key));
            }
            if v.name.is_empty()
                && v.description.is_empty()
                && v.keys.is_empty()
                && v.virtual_size == 0
            {
                problems.push(format!("VDI {} has no metadata", v.key));
            }
        }
        for k in &unfinished_data_destroys {
            problems.push(format!(
                "VDI {k} is both a snapshot VDI and CBT metadata (an unfinished data_destroy; \
                 the next SR.attach undoes it)"
            ));
        }
        for s in &orphan_snapshots {
            problems.push(format!(
                "snapshot {s} has no clone (garbage; the next change collects it)"
            ));
        }
        for t in &gc {
            problems.push(format!("tombstone {t} waits for collection"));
        }
        for t in &busy {
            problems.push(format!(
                "tombstone {t} waits for collection (its device is still open)"
            ));
        }
        let tombstones = gc.into_iter().chain(busy).collect();
        Ok(CheckReport {
            vdis: vdis.len(),
            tombstones,
            orphan_snapshots,
            problems,
        })
    }

    /// `xapi-zvol tree`: every dataset and ZFS snapshot of the SR with the VDI it backs,
    /// as indented text.
    pub fn tree(&self) -> Result<String> {
        let mut args = NvList::new()?;
        args.add_string("root", self.dataset())?;
        args.add_boolean_value("deep", true)?;
        let out = self
            .zfs
            .program_nosync(self.pool(), &LIST_SR, &args, Limits::large())?;
        let mut s = format!("SR {} ({})\n", self.uuid, self.dataset());
        let NvValue::List(t) = out else { return Ok(s) };
        let mut snaps: Vec<(String, u64, Vec<String>)> = vec![];
        if let Some(NvValue::List(l)) = t.get("snapshots") {
            for (_, v) in l {
                if let NvValue::List(r) = v {
                    let name = super::record::string(r, "name").unwrap_or_default();
                    let txg = super::record::num(r, "txg");
                    snaps.push((name, txg, strings(r, "clones")));
                }
            }
        }
        let vdis = self.ls()?;
        for v in &vdis {
            let kind = match v.kind {
                Kind::Volume => "volume",
                Kind::Snapshot => "snapshot",
                Kind::CbtMetadata => "CBT metadata",
            };
            s.push_str(&format!(
                "  {kind} {} \"{}\" {} bytes  {}{}\n",
                v.key,
                v.name,
                v.virtual_size,
                v.dataset,
                v.origin
                    .as_ref()
                    .map(|o| format!(" (clone of {o})"))
                    .unwrap_or_default()
            ));
            for (k, val) in &v.keys {
                s.push_str(&format!("      key {k} = {val}\n"));
            }
            for (n, txg, clones) in snaps
                .iter()
                .filter(|(n, _, _)| n.starts_with(&format!("{}@", v.dataset)))
            {
                s.push_str(&format!(
                    "      @{} (txg {txg}) -> {}\n",
                    n.split('@').nth(1).unwrap_or(""),
                    clones.join(", ")
                ));
            }
        }
        for g in strings(&t, "gc") {
            s.push_str(&format!("  tombstone {g}\n"));
        }
        Ok(s)
    }
}
