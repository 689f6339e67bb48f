//! Intent records for the two-step operations that cannot be one transaction (ZFS < 2.4:
//! snapshot, then clone). Before the first step the snapshot's name is written to
//! `/run/xapi-zvol/<sr>.intent`; after the last step it is removed. A process killed in
//! between leaves the record, and the next call on the SR (they all hold the SR lock)
//! destroys that snapshot if it got no clone. This keeps recovery O(1) per call; the full
//! scan of the SR runs only on SR.attach (after a reboot /run is empty) and SR.destroy.

use super::lock;
use crate::error::{Error, Result};
use std::path::PathBuf;

fn path(sr: &str) -> PathBuf {
    lock::run_dir().join(format!("{}.intent", sr.replace('/', "+")))
}

/// Record that `snapshot` is about to be taken for a clone. Callers hold the SR lock.
pub fn record(sr: &str, snapshot: &str) -> Result<()> {
    let p = path(sr);
    std::fs::write(&p, format!("{snapshot}\n")).map_err(|source| Error::Io {
        what: format!("write {}", p.display()),
        source,
    })
}

/// The operation finished (or undid itself): drop the record.
pub fn clear(sr: &str) {
    let _ = std::fs::remove_file(path(sr));
}

/// The snapshots named by a record a killed call left behind.
pub fn pending(sr: &str) -> Vec<String> {
    std::fs::read_to_string(path(sr))
        .map(|s| {
            s.lines()
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}
