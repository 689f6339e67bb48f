//! Snapshots: atomic batches, destroy (optionally deferred), space estimates.

use super::nvlist::NvList;
use super::util::{batch_error, cstring, name, name_list, take_errlist};
use super::{Errno, Zfs};
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;
use std::ptr;

impl Zfs {
    /// Take snapshots atomically: one ioctl, one txg, all or nothing.
    ///
    /// `snapshots` are full names (`pool/ds@name`), all in one pool and at most one per
    /// dataset (`EXDEV` otherwise), as any list of strings (`&["tank/a@s"]`, a
    /// `Vec<String>`, an iterator). `user_props` (names with a `:`, string values) are set
    /// on every snapshot. A failure names the snapshots that failed and why, not the
    /// whole batch (its per-item errors are in [`Error::Zfs`]'s `items`).
    ///
    /// ```no_run
    /// libzfs_core::Zfs::get()?.snapshot(["tank/a@s1", "tank/b@s1"], &[("xapi-zvol:why", "backup")])?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn snapshot(
        &self,
        snapshots: impl IntoIterator<Item = impl AsRef<str>>,
        user_props: &[(&str, &str)],
    ) -> Result<()> {
        let snapshots = name_list(snapshots)?;
        if snapshots.is_empty() {
            return Ok(());
        }
        let mut snaps = NvList::new()?;
        for s in &snapshots {
            if !s.contains('@') {
                return Err(Error::invalid("snapshot name", format!("{s:?} has no '@'")));
            }
            snaps.add_boolean(s)?;
        }
        let mut props = NvList::new()?;
        for (k, v) in user_props {
            cstring("property value", v)?;
            props.add_string(k, v)?;
        }
        let mut errlist: *mut sys::nvlist_t = ptr::null_mut();
        // SAFETY: valid nvlists, borrowed by lzc; errlist is an out-pointer we own after.
        let rc = unsafe { sys::lzc_snapshot(snaps.as_mut_ptr(), props.as_mut_ptr(), &mut errlist) };
        let items = take_errlist(errlist);
        if rc == 0 {
            return Ok(());
        }
        let batch: Vec<&str> = snapshots.iter().map(String::as_str).collect();
        // The kernel names no item for EXDEV: find the snapshots that break the rule.
        let culprits = if rc == libc::EXDEV {
            exdev_culprits(&batch)
        } else {
            vec![]
        };
        Err(batch_error(
            Op::Snapshot,
            &batch,
            Errno(rc),
            items,
            &culprits,
        ))
    }

    /// Destroy snapshots, all or nothing. Missing ones are ignored. With `defer`, a
    /// snapshot that has clones or holds is marked and destroyed by ZFS when the last one
    /// goes, instead of failing with `EEXIST`/`EBUSY`. A failure names the snapshots that
    /// could not be destroyed and why.
    ///
    /// ```no_run
    /// libzfs_core::Zfs::get()?.destroy_snapshots(["tank/a@s1"], false)?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn destroy_snapshots(
        &self,
        snapshots: impl IntoIterator<Item = impl AsRef<str>>,
        defer: bool,
    ) -> Result<()> {
        let snapshots = name_list(snapshots)?;
        if snapshots.is_empty() {
            // lzc returns 0 without touching errlist for an empty list; skip the ioctl.
            return Ok(());
        }
        let mut snaps = NvList::new()?;
        for s in &snapshots {
            snaps.add_boolean(s)?;
        }
        let mut errlist: *mut sys::nvlist_t = ptr::null_mut();
        let defer = if defer { sys::B_TRUE } else { sys::B_FALSE };
        // SAFETY: as in snapshot().
        let rc = unsafe { sys::lzc_destroy_snaps(snaps.as_mut_ptr(), defer, &mut errlist) };
        let items = take_errlist(errlist);
        if rc == 0 {
            Ok(())
        } else {
            let batch: Vec<&str> = snapshots.iter().map(String::as_str).collect();
            Err(batch_error(
                Op::DestroySnapshots,
                &batch,
                Errno(rc),
                items,
                &[],
            ))
        }
    }

    /// Bytes that destroying the snapshots from `first` to `last` (inclusive, same
    /// dataset) would free.
    ///
    /// ```no_run
    /// let n = libzfs_core::Zfs::get()?.snaprange_space("tank/a@s1", "tank/a@s3")?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn snaprange_space(&self, first: &str, last: &str) -> Result<u64> {
        let f = name(first)?;
        let l = name(last)?;
        let mut used = 0u64;
        // SAFETY: valid strings; used is a valid out-pointer.
        let rc = unsafe { sys::lzc_snaprange_space(f.as_ptr(), l.as_ptr(), &mut used) };
        if rc == 0 {
            Ok(used)
        } else {
            Err(Error::zfs(
                Op::SnaprangeSpace,
                format!("{first}..{last}"),
                Errno(rc),
            ))
        }
    }
}

/// The snapshots of a batch that lzc_snapshot refuses with `EXDEV`: those of a dataset
/// named more than once, and those in another pool than the first snapshot's.
fn exdev_culprits<'a>(batch: &[&'a str]) -> Vec<&'a str> {
    let dataset = |s: &'a str| s.split('@').next().unwrap_or(s);
    let pool = batch.first().map(|s| crate::pool_of(s));
    batch
        .iter()
        .copied()
        .filter(|s| {
            batch.iter().filter(|o| dataset(o) == dataset(s)).count() > 1
                || Some(crate::pool_of(s)) != pool
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exdev_names_the_snapshots_that_break_the_rule() {
        assert_eq!(
            exdev_culprits(&["p/a@1", "p/b@1", "p/a@2"]),
            ["p/a@1", "p/a@2"]
        );
        assert_eq!(exdev_culprits(&["p/a@1", "q/b@1"]), ["q/b@1"]);
        assert!(exdev_culprits(&["p/a@1", "p/b@1"]).is_empty());
    }

    #[test]
    fn a_failed_batch_names_the_failing_items_only() {
        let batch = ["tank/a@s", "tank/b@s", "tank/c@s"];
        let e = batch_error(
            Op::Snapshot,
            &batch,
            Errno(libc::EEXIST),
            vec![("tank/b@s".into(), Errno(libc::EEXIST))],
            &[],
        );
        assert_eq!(
            e.to_string(),
            "cannot snapshot tank/b@s: snapshot already exists (EEXIST)"
        );
        let e = batch_error(
            Op::DestroySnapshots,
            &batch,
            Errno(libc::EEXIST),
            vec![
                ("tank/a@s".into(), Errno(libc::EEXIST)),
                ("tank/c@s".into(), Errno(libc::EBUSY)),
            ],
            &[],
        );
        assert_eq!(
            e.to_string(),
            "cannot destroy snapshots tank/a@s, tank/c@s: it has dependent clones (EEXIST) \
             [tank/a@s: it has dependent clones; tank/c@s: a snapshot has user holds or is in use]"
        );
        // No item named by the kernel: the culprits the caller found, else the batch.
        let e = batch_error(
            Op::Snapshot,
            &batch,
            Errno(libc::EXDEV),
            vec![],
            &["tank/c@s"],
        );
        assert!(
            e.to_string().starts_with("cannot snapshot tank/c@s: "),
            "{e}"
        );
        let many: Vec<String> = (0..5).map(|i| format!("tank/v{i}@s")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let e = batch_error(Op::Snapshot, &many, Errno(libc::ENOSPC), vec![], &[]);
        assert!(
            e.to_string()
                .starts_with("cannot snapshot tank/v0@s, tank/v1@s, tank/v2@s and 2 more: "),
            "{e}"
        );
    }
}
