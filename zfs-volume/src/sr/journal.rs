//! One idiom for every compound operation, the steps that cannot be one transaction: a
//! [`Journal`]. It is begun before the first step; each step that changed something registers
//! how to undo it ([`Journal::on_undo`]); [`Journal::commit`] at the end forgets them. If the
//! operation returns early (an error), the journal is dropped uncommitted and runs the undo
//! steps, newest first, like Incus's reverter.
//!
//! A step whose undo must survive a kill of the process is also *recorded*
//! ([`Journal::record`]): its [`Intent`] is written to `/run/xapi-zvol/<sr>.intent` before the
//! step runs, and removed by the commit, or once every undo step succeeded. A process killed in
//! between leaves the record, and the next changing call on the SR (they all hold the SR lock)
//! undoes what it names ([`pending`], `recover.rs`). This keeps recovery O(1) per call; the
//! full scan of the SR runs only on SR.attach (after a reboot /run is empty) and SR.destroy.
//!
//! The record is written to a temporary file and renamed into place, so a kill while it is
//! written leaves the previous state (no record), never a torn one.
//!
//! Revert's swap keeps its own crash protocol, the names of its two datasets under `gc/`
//! (`revert.rs`, `recover.rs`): a journal undoes its steps in process, the names tell recovery
//! which side of the swap a killed revert was on.

use crate::error::Result;
use crate::host::lock as run_files;

/// One interrupted step and what recovery does about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// A ZFS snapshot about to be taken for a clone (ZFS < 2.4: snapshot, then clone):
    /// destroyed by recovery if it got no clone.
    Snapshot(String),
    /// A thick resize raising a volume's reservation before its size (two ioctls): if
    /// `volsize` is still the old one, recovery puts the old reservation back.
    Reservation {
        /// The volume.
        dataset: String,
        /// Its refreservation before the resize, bytes.
        refreservation: u64,
        /// Its volsize before the resize, bytes.
        volsize: u64,
    },
    /// A data_destroy of this snapshot VDI key (`cbt.rs`): if the snapshot VDI is still there,
    /// recovery removes the metadata VDI and bookmark it had made; if it is gone, it finished.
    DataDestroy(String),
}

impl Intent {
    fn encode(&self) -> String {
        match self {
            Intent::Snapshot(s) => format!("snapshot {s}\n"),
            Intent::Reservation {
                dataset,
                refreservation,
                volsize,
            } => format!("reservation {refreservation} {volsize} {dataset}\n"),
            Intent::DataDestroy(key) => format!("data-destroy {key}\n"),
        }
    }

    /// One line of a record; a bare name is a snapshot (the format before typed lines).
    fn decode(line: &str) -> Option<Intent> {
        match line.split_once(' ') {
            Some(("snapshot", s)) => Some(Intent::Snapshot(s.to_string())),
            Some(("data-destroy", k)) => Some(Intent::DataDestroy(k.to_string())),
            Some(("reservation", rest)) => {
                let mut f = rest.splitn(3, ' ');
                let refreservation = f.next()?.parse().ok()?;
                let volsize = f.next()?.parse().ok()?;
                let dataset = f.next()?.to_string();
                Some(Intent::Reservation {
                    dataset,
                    refreservation,
                    volsize,
                })
            }
            None if !line.is_empty() => Some(Intent::Snapshot(line.to_string())),
            _ => None,
        }
    }
}

/// The record's file in the run directory.
fn file(sr: &str) -> String {
    format!("{}.intent", sr.replace('/', "+"))
}

/// An undo step: what it undoes (for the log) and how.
type Undo<'a> = (&'static str, Box<dyn FnOnce() -> Result<()> + 'a>);

/// A compound operation in progress on the SR dataset `sr` (see the module docs). Callers hold
/// the SR lock (SR.create: the host-wide create lock) for the journal's whole life.
#[must_use = "a journal undoes its steps when dropped uncommitted"]
pub(super) struct Journal<'a> {
    sr: String,
    recorded: bool,
    undo: Vec<Undo<'a>>,
}

impl<'a> Journal<'a> {
    /// Begins an operation on the SR dataset `sr`.
    pub(super) fn begin(sr: &str) -> Journal<'a> {
        Journal {
            sr: sr.to_string(),
            recorded: false,
            undo: Vec::new(),
        }
    }

    /// Writes `intent` to the SR's record before the step it describes, so that recovery can
    /// undo that step if the process is killed.
    pub(super) fn record(&mut self, intent: &Intent) -> Result<()> {
        write(&self.sr, intent)?;
        self.recorded = true;
        Ok(())
    }

    /// Registers how to undo a step that has just changed something.
    pub(super) fn on_undo(&mut self, what: &'static str, undo: impl FnOnce() -> Result<()> + 'a) {
        self.undo.push((what, Box::new(undo)));
    }

    /// The operation is complete: nothing is undone, the record (if any) goes.
    pub(super) fn commit(mut self) {
        self.undo.clear();
        if self.recorded {
            clear(&self.sr);
            self.recorded = false;
        }
    }
}

impl Drop for Journal<'_> {
    /// Undoes the steps of an operation that did not commit, newest first. The record goes only
    /// if every undo step succeeded; otherwise it stays, and recovery finishes the undo.
    fn drop(&mut self) {
        let mut undone = true;
        while let Some((what, undo)) = self.undo.pop() {
            if let Err(e) = undo() {
                log::warn!(
                    "{}: cannot {what}: {e} (the next call's recovery retries)",
                    self.sr
                );
                undone = false;
            }
        }
        if self.recorded && undone {
            clear(&self.sr);
        }
    }
}

/// Writes `intent` as the SR's record. Callers hold the SR lock.
fn write(sr: &str, intent: &Intent) -> Result<()> {
    run_files::write_atomic(&file(sr), &intent.encode())
}

/// Drops the SR's record (the operation finished, undid itself, or recovery undid it).
pub(super) fn clear(sr: &str) {
    run_files::remove(&file(sr));
}

/// What a record a killed call left behind names.
pub(super) fn pending(sr: &str) -> Vec<Intent> {
    run_files::read(&file(sr))
        .map(|s| s.lines().filter_map(Intent::decode).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn records_round_trip() {
        for i in [
            Intent::Snapshot("tank/zvol-sr-1/vol/k@n".into()),
            Intent::Reservation {
                dataset: "tank/my pool/zvol-sr-1/vol/k".into(),
                refreservation: 17_000_000,
                volsize: 16 << 20,
            },
            Intent::DataDestroy("0f8c3d1e-6a57-4b1c-9d0e-2f3a4b5c6d7e".into()),
        ] {
            let line = i.encode();
            assert!(line.ends_with('\n'));
            assert_eq!(Intent::decode(line.trim_end_matches('\n')), Some(i));
        }
    }

    /// A journal in a run directory of its own (the record file is the only host state).
    fn with_run_dir<T>(f: impl FnOnce() -> T) -> T {
        let dir = std::env::temp_dir().join(format!("xzv-journal-{}", std::process::id()));
        let _ = super::super::lock::HostSettings {
            run_dir: dir.clone(),
            ..Default::default()
        }
        .install();
        let r = f();
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    #[test]
    fn an_uncommitted_journal_undoes_newest_first_and_keeps_the_record_if_an_undo_fails() {
        with_run_dir(|| {
            let sr = format!("tank/zvol-sr-journal-{}", std::process::id());
            let log = std::cell::RefCell::new(Vec::new());
            {
                let mut j = Journal::begin(&sr);
                j.record(&Intent::Snapshot("s@1".into())).unwrap();
                j.on_undo("first", || {
                    log.borrow_mut().push("first");
                    Ok(())
                });
                j.on_undo("second", || {
                    log.borrow_mut().push("second");
                    Ok(())
                });
            }
            assert_eq!(*log.borrow(), ["second", "first"]);
            assert!(pending(&sr).is_empty(), "every undo succeeded: no record");
            {
                let mut j = Journal::begin(&sr);
                j.record(&Intent::Snapshot("s@2".into())).unwrap();
                j.on_undo("fail", || {
                    Err(Error::Refused {
                        key: "k".into(),
                        reason: "r".into(),
                    })
                });
            }
            assert_eq!(pending(&sr), [Intent::Snapshot("s@2".into())]);
            clear(&sr);
            let mut j = Journal::begin(&sr);
            j.record(&Intent::Snapshot("s@3".into())).unwrap();
            j.on_undo("never", || panic!("a committed journal undoes nothing"));
            j.commit();
            assert!(pending(&sr).is_empty());
        })
    }

    #[test]
    fn old_records_and_garbage() {
        assert_eq!(
            Intent::decode("tank/sr/vol/k@n"),
            Some(Intent::Snapshot("tank/sr/vol/k@n".into()))
        );
        assert_eq!(Intent::decode(""), None);
        assert_eq!(Intent::decode("reservation x 1 tank/v"), None);
        assert_eq!(Intent::decode("reservation 1 2"), None);
    }
}
