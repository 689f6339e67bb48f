//! User holds on snapshots: a held snapshot cannot be destroyed (without defer).

use super::nvlist::{NvList, NvValue};
use super::util::{name, take_errlist};
use super::{Errno, Zfs};
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;
use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::ptr;

impl Zfs {
    /// Place holds (`snapshot`, `tag`). With `cleanup_fd` (an `O_EXCL` descriptor of
    /// `/dev/zfs`), the holds are released when that descriptor closes.
    ///
    /// Missing snapshots do not fail the call: they are returned as `(name, ENOENT)`.
    /// One tag per snapshot per call (the kernel takes a `{snapshot: tag}` map): a
    /// snapshot listed twice is refused, call again for a second tag. Errors: `EEXIST`
    /// (a hold of this tag exists), all or nothing.
    ///
    /// ```no_run
    /// let missing = libzfs_core::Zfs::get()?.hold(&[("tank/a@s1", "backup")], None)?;
    /// assert!(missing.is_empty());
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn hold(
        &self,
        holds: &[(&str, &str)],
        cleanup_fd: Option<RawFd>,
    ) -> Result<Vec<(String, Errno)>> {
        if holds.is_empty() {
            return Ok(vec![]);
        }
        let mut nv = NvList::new()?;
        for (s, tag) in holds {
            name(s)?;
            if nv.exists(s) {
                // The list has unique names: a second tag would silently replace the first.
                return Err(Error::invalid(
                    "holds",
                    format!("{s} is listed twice: one tag per snapshot per call (hold again for another tag)"),
                ));
            }
            nv.add_string(s, tag)?;
        }
        let mut errlist: *mut sys::nvlist_t = ptr::null_mut();
        // SAFETY: valid nvlist (borrowed); errlist is ours afterwards.
        let rc = unsafe { sys::lzc_hold(nv.as_mut_ptr(), cleanup_fd.unwrap_or(-1), &mut errlist) };
        let items = take_errlist(errlist);
        if rc == 0 {
            Ok(items)
        } else {
            Err(Error::zfs_items(
                Op::Hold,
                holds.iter().map(|h| h.0).collect::<Vec<_>>().join(" "),
                Errno(rc),
                items,
            ))
        }
    }

    /// Release holds (`snapshot`, `tag`), several tags of one snapshot at once if need
    /// be.
    ///
    /// Like [`Zfs::hold`], what does not exist does not fail the call (the kernel only
    /// reports it): the result lists what was not released, as `("snap#tag", ENOENT)`
    /// for a tag the snapshot does not hold and `("snap", ENOENT)` for a missing
    /// snapshot. An empty list means every hold was released.
    ///
    /// ```no_run
    /// let not_held = libzfs_core::Zfs::get()?.release(&[("tank/a@s1", "backup")])?;
    /// assert!(not_held.is_empty());
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn release(&self, holds: &[(&str, &str)]) -> Result<Vec<(String, Errno)>> {
        if holds.is_empty() {
            return Ok(vec![]);
        }
        // {snapshot: {tag: boolean}}, grouping tags per snapshot.
        let mut per: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (s, t) in holds {
            name(s)?;
            per.entry(s).or_default().push(t);
        }
        let mut nv = NvList::new()?;
        for (s, tags) in per {
            let mut t = NvList::new()?;
            for tag in tags {
                t.add_boolean(tag)?;
            }
            nv.add_nvlist(s, &t)?;
        }
        let mut errlist: *mut sys::nvlist_t = ptr::null_mut();
        // SAFETY: as in hold().
        let rc = unsafe { sys::lzc_release(nv.as_mut_ptr(), &mut errlist) };
        let items = take_errlist(errlist);
        if rc == 0 {
            Ok(items)
        } else {
            Err(Error::zfs_items(
                Op::Release,
                holds.iter().map(|h| h.0).collect::<Vec<_>>().join(" "),
                Errno(rc),
                items,
            ))
        }
    }

    /// The holds on a snapshot: tag → creation time (seconds since the epoch).
    ///
    /// ```no_run
    /// let holds = libzfs_core::Zfs::get()?.get_holds("tank/a@s1")?;
    /// for (tag, ctime) in holds { println!("{tag} since {ctime}"); }
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn get_holds(&self, snapshot: &str) -> Result<BTreeMap<String, u64>> {
        let c = name(snapshot)?;
        let mut out: *mut sys::nvlist_t = ptr::null_mut();
        // SAFETY: valid string; out is ours afterwards.
        let rc = unsafe { sys::lzc_get_holds(c.as_ptr(), &mut out) };
        if rc != 0 {
            if !out.is_null() {
                // SAFETY: we own it.
                drop(unsafe { NvList::from_raw_owned(out) });
            }
            return Err(Error::zfs(Op::GetHolds, snapshot, Errno(rc)));
        }
        // SAFETY: a list we own.
        let list = unsafe { NvList::from_raw_owned(out) };
        let mut m = BTreeMap::new();
        for (tag, v) in list.to_tree() {
            if let NvValue::U64(t) = v {
                m.insert(tag, t);
            }
        }
        Ok(m)
    }
}
