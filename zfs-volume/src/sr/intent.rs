//! Intent records for the compound steps that cannot be one transaction. Before the first
//! step the intent is written to `/run/xapi-zvol/<sr>.intent`; after the last step it is
//! removed. A process killed in between leaves the record, and the next changing call on
//! the SR (they all hold the SR lock) finishes or undoes what it names. This keeps
//! recovery O(1) per call; the full scan of the SR runs only on SR.attach (after a reboot
//! /run is empty) and SR.destroy.
//!
//! The record is written to a temporary file and renamed into place, so a kill while it is
//! written leaves the previous state (no record), never a torn one.

use super::lock;
use crate::error::{Error, Result};
use std::path::PathBuf;

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
        }
    }

    /// One line of a record; a bare name is a snapshot (the format before typed lines).
    fn decode(line: &str) -> Option<Intent> {
        match line.split_once(' ') {
            Some(("snapshot", s)) => Some(Intent::Snapshot(s.to_string())),
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

fn path(sr: &str) -> PathBuf {
    lock::run_dir().join(format!("{}.intent", sr.replace('/', "+")))
}

/// Record `intent` before its first step. Callers hold the SR lock.
pub fn record(sr: &str, intent: &Intent) -> Result<()> {
    let p = path(sr);
    let tmp = p.with_extension("intent.tmp");
    let io = |what: &PathBuf| {
        let what = what.display().to_string();
        move |source| Error::Io {
            what: format!("write {what}"),
            source,
        }
    };
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(io(&p))?;
    }
    std::fs::write(&tmp, intent.encode()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &p).map_err(io(&p))
}

/// The operation finished (or undid itself): drop the record.
pub fn clear(sr: &str) {
    let _ = std::fs::remove_file(path(sr));
}

/// What a record a killed call left behind names.
pub fn pending(sr: &str) -> Vec<Intent> {
    std::fs::read_to_string(path(sr))
        .map(|s| s.lines().filter_map(Intent::decode).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        for i in [
            Intent::Snapshot("tank/zvol-sr-1/vol/k@n".into()),
            Intent::Reservation {
                dataset: "tank/my pool/zvol-sr-1/vol/k".into(),
                refreservation: 17_000_000,
                volsize: 16 << 20,
            },
        ] {
            let line = i.encode();
            assert!(line.ends_with('\n'));
            assert_eq!(Intent::decode(line.trim_end_matches('\n')), Some(i));
        }
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
