//! Rotate snapshots of every zvol under a dataset (or of the dataset, if it is a zvol):
//! take one atomic snapshot of all of them named TAG-<unix time>, marked with a user
//! property (`libzfs-core:rotate=TAG`), then destroy the oldest snapshots so marked beyond
//! KEEP per zvol (the new one counts). Snapshots without the mark are never touched.
//!
//! ```text
//! cargo run -p libzfs-core --example rotate -- DATASET KEEP [TAG]
//! rotate tank/vms 7 daily
//! ```
//!
//! Only the public API, no Lua: [`Zfs::list`] reads the volumes and their snapshots (with
//! the mark and `createtxg`) in one call, [`Zfs::snapshot`] takes the batch in one txg,
//! [`Zfs::destroy_snapshots`] removes the old ones all or nothing.

use libzfs_core::{DatasetKind, Error, ListEntry, ListOptions, Zfs};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// The user property that marks a snapshot as this tool's, its value the tag.
const MARK: &str = "libzfs-core:rotate";

/// Snapshot every zvol under `dataset` as `TAG-<unix time>` and keep the newest `keep`
/// snapshots of that tag per zvol.
fn rotate(zfs: &Zfs, dataset: &str, keep: usize, tag: &str) -> Result<(), Error> {
    // The volumes (DATASET itself too, if it is one), and every snapshot with its mark and
    // creation txg.
    let what = ListOptions::new()
        .itself(true)
        .children(true)
        .snapshots(true);
    let entries = zfs.list(dataset, &what.recursive(true).props(["createtxg", MARK]))?;
    let of_kind = |k| entries.iter().filter(move |e: &&ListEntry| e.kind == k);
    let zvols: Vec<&str> = of_kind(DatasetKind::Volume)
        .map(|e| e.name.as_str())
        .collect();
    if zvols.is_empty() {
        println!("no volumes under {dataset}: nothing to do");
        return Ok(());
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    let now = now.map_or(0, |d| d.as_secs());
    let taken: Vec<String> = zvols.iter().map(|v| format!("{v}@{tag}-{now}")).collect();
    zfs.snapshot(&taken, &[(MARK, tag)])?;
    taken.iter().for_each(|s| println!("took {s}"));
    let mut old = vec![];
    for v in &zvols {
        let mut ours: Vec<&ListEntry> = of_kind(DatasetKind::Snapshot)
            .filter(|e| e.dataset() == *v && e.get_str(MARK) == Some(tag))
            .collect();
        ours.sort_by_key(|e| e.get_u64("createtxg"));
        // The snapshot just taken is one of the KEEP.
        let excess = (ours.len() + 1).saturating_sub(keep).min(ours.len());
        old.extend(ours[..excess].iter().map(|e| e.name.clone()));
    }
    zfs.destroy_snapshots(&old, false)?;
    old.iter().for_each(|s| println!("destroyed {s}"));
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let keep = args
        .get(1)
        .and_then(|k| k.parse::<usize>().ok())
        .filter(|k| *k > 0);
    let (Some(dataset), Some(keep), 2..=3) = (args.first(), keep, args.len()) else {
        eprintln!("usage: rotate DATASET KEEP [TAG]   (KEEP >= 1 snapshots per zvol; TAG defaults to 'auto')");
        return ExitCode::from(2);
    };
    let tag = args.get(2).map_or("auto", String::as_str);
    if tag.is_empty()
        || !tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        eprintln!("rotate: invalid tag {tag:?}: use letters, digits and - _ . :");
        return ExitCode::from(2);
    }
    match Zfs::get().and_then(|zfs| rotate(zfs, dataset, keep, tag)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rotate: {e}");
            ExitCode::FAILURE
        }
    }
}
