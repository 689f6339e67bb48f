//! User holds on snapshots: a held snapshot cannot be destroyed (without defer).

use super::nvlist::{NvList, NvValue};
use super::util::{batch_error, name, pair_list, take_errlist, StrPair};
use super::{Errno, Zfs};
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;

impl Zfs {
    /// Place holds, (`snapshot`, `tag`) pairs. With `cleanup_fd` (an `O_EXCL` descriptor
    /// of `/dev/zfs`, borrowed for the call), the holds are released when that descriptor
    /// closes.
    ///
    /// Missing snapshots do not fail the call: they are returned as `(name, ENOENT)`.
    /// One tag per snapshot per call (the kernel takes a `{snapshot: tag}` map): a
    /// snapshot listed twice is refused, call again for a second tag. Errors: `EEXIST`
    /// (a hold of this tag exists), all or nothing, naming the snapshots that failed.
    ///
    /// ```no_run
    /// let missing = libzfs_core::Zfs::get()?.hold([("tank/a@s1", "backup")], None)?;
    /// assert!(missing.is_empty());
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn hold(
        &self,
        holds: impl IntoIterator<Item = impl StrPair>,
        cleanup_fd: Option<BorrowedFd<'_>>,
    ) -> Result<Vec<(String, Errno)>> {
        let holds = pair_list(holds)?;
        if holds.is_empty() {
            return Ok(vec![]);
        }
        let mut nv = NvList::new()?;
        for (s, tag) in &holds {
            if nv.exists(s) {
                // The list has unique names: a second tag would silently replace the first.
                return Err(Error::invalid(
                    "holds",
                    format!("{s} is listed twice: one tag per snapshot per call (hold again for another tag)"),
                ));
            }
            nv.add_string(s, tag)?;
        }
        let fd = cleanup_fd.map_or(-1, |f| f.as_raw_fd());
        let mut errlist: *mut sys::nvlist_t = ptr::null_mut();
        // SAFETY: valid nvlist (borrowed); errlist is ours afterwards; `fd` is -1 or a
        // descriptor borrowed for the duration of the call.
        let rc = unsafe { sys::lzc_hold(nv.as_mut_ptr(), fd, &mut errlist) };
        let items = take_errlist(errlist);
        if rc == 0 {
            Ok(items)
        } else {
            let batch: Vec<&str> = holds.iter().map(|h| h.0.as_str()).collect();
            Err(batch_error(Op::Hold, &batch, Errno(rc), items, &[]))
        }
    }

    /// Release holds, (`snapshot`, `tag`) pairs, several tags of one snapshot at once if
    /// need be.
    ///
    /// Like [`Zfs::hold`], what does not exist does not fail the call (the kernel only
    /// reports it): the result lists what was not released, as `("snap#tag", ENOENT)`
    /// for a tag the snapshot does not hold and `("snap", ENOENT)` for a missing
    /// snapshot. An empty list means every hold was released.
    ///
    /// ```no_run
    /// let not_held = libzfs_core::Zfs::get()?.release([("tank/a@s1", "backup")])?;
    /// assert!(not_held.is_empty());
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn release(
        &self,
        holds: impl IntoIterator<Item = impl StrPair>,
    ) -> Result<Vec<(String, Errno)>> {
        let holds = pair_list(holds)?;
        if holds.is_empty() {
            return Ok(vec![]);
        }
        // {snapshot: {tag: boolean}}, grouping tags per snapshot.
        let mut per: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (s, t) in &holds {
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
            let batch: Vec<&str> = holds.iter().map(|h| h.0.as_str()).collect();
            Err(batch_error(Op::Release, &batch, Errno(rc), items, &[]))
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
