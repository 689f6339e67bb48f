//! Snapshots: atomic batches, destroy (optionally deferred), space estimates.

use super::nvlist::NvList;
use super::util::{cstring, name, take_errlist};
use super::{Errno, Zfs};
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;
use std::ptr;

impl Zfs {
    /// Take snapshots atomically: one ioctl, one txg, all or nothing.
    ///
    /// `snapshots` are full names (`pool/ds@name`), all in one pool and at most one per
    /// dataset (`EXDEV` otherwise). `user_props` (names with a `:`, string values) are set
    /// on every snapshot. A failure names each snapshot that failed and why.
    ///
    /// ```no_run
    /// libzfs_core::Zfs::get()?.snapshot(&["tank/a@s1", "tank/b@s1"], &[("xapi-zvol:why", "backup")])?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn snapshot(&self, snapshots: &[&str], user_props: &[(&str, &str)]) -> Result<()> {
        if snapshots.is_empty() {
            return Ok(());
        }
        let mut snaps = NvList::new()?;
        for s in snapshots {
            name(s)?;
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
            Ok(())
        } else {
            Err(Error::zfs_items(
                Op::Snapshot,
                snapshots.join(" "),
                Errno(rc),
                items,
            ))
        }
    }

    /// Destroy snapshots, all or nothing. Missing ones are ignored. With `defer`, a
    /// snapshot that has clones or holds is marked and destroyed by ZFS when the last one
    /// goes, instead of failing with `EEXIST`/`EBUSY`.
    ///
    /// ```no_run
    /// libzfs_core::Zfs::get()?.destroy_snapshots(&["tank/a@s1"], false)?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn destroy_snapshots(&self, snapshots: &[&str], defer: bool) -> Result<()> {
        if snapshots.is_empty() {
            // lzc returns 0 without touching errlist for an empty list; skip the ioctl.
            return Ok(());
        }
        let mut snaps = NvList::new()?;
        for s in snapshots {
            name(s)?;
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
            Err(Error::zfs_items(
                Op::DestroySnapshots,
                snapshots.join(" "),
                Errno(rc),
                items,
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
