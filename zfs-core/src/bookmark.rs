//! Bookmarks: a snapshot's position kept without its data (incremental-send sources).

use super::nvlist::{NvList, NvValue};
use super::util::{batch_error, name, name_list, pair_list, take_errlist, StrPair};
use super::{Errno, Zfs};
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;
use std::collections::BTreeMap;
use std::ptr;

impl Zfs {
    /// Create bookmarks, (`fs#bookmark`, source `fs@snap` or `fs#other`) pairs,
    /// atomically. Errors: `EEXIST` (bookmark exists), `ENOENT` (no such source), naming
    /// the bookmarks that failed, with per-item errors.
    ///
    /// ```no_run
    /// libzfs_core::Zfs::get()?.bookmark([("tank/a#b1", "tank/a@s1")])?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn bookmark(&self, pairs: impl IntoIterator<Item = impl StrPair>) -> Result<()> {
        let pairs = pair_list(pairs)?;
        if pairs.is_empty() {
            return Ok(());
        }
        let mut nv = NvList::new()?;
        for (b, src) in &pairs {
            if nv.exists(b) {
                // The list has unique names: the second source would silently win.
                return Err(Error::invalid("bookmarks", format!("{b} is listed twice")));
            }
            nv.add_string(b, src)?;
        }
        let mut errlist: *mut sys::nvlist_t = ptr::null_mut();
        // SAFETY: valid nvlist (borrowed); errlist ours afterwards.
        let rc = unsafe { sys::lzc_bookmark(nv.as_mut_ptr(), &mut errlist) };
        let items = take_errlist(errlist);
        if rc == 0 {
            Ok(())
        } else {
            let batch: Vec<&str> = pairs.iter().map(|p| p.0.as_str()).collect();
            Err(batch_error(Op::Bookmark, &batch, Errno(rc), items, &[]))
        }
    }

    /// Bookmarks of a dataset: short name → {guid, createtxg, creation}.
    ///
    /// ```no_run
    /// let b = libzfs_core::Zfs::get()?.get_bookmarks("tank/a")?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn get_bookmarks(&self, dataset: &str) -> Result<BTreeMap<String, BTreeMap<String, u64>>> {
        let c = name(dataset)?;
        let mut want = NvList::new()?;
        for p in ["guid", "createtxg", "creation"] {
            want.add_boolean(p)?;
        }
        let mut out: *mut sys::nvlist_t = ptr::null_mut();
        // SAFETY: valid arguments; out is ours afterwards.
        let rc = unsafe { sys::lzc_get_bookmarks(c.as_ptr(), want.as_mut_ptr(), &mut out) };
        if rc != 0 {
            if !out.is_null() {
                // SAFETY: we own it.
                drop(unsafe { NvList::from_raw_owned(out) });
            }
            return Err(Error::zfs(Op::GetBookmarks, dataset, Errno(rc)));
        }
        // SAFETY: we own it.
        let list = unsafe { NvList::from_raw_owned(out) };
        let mut m = BTreeMap::new();
        for (bm, v) in list.to_tree() {
            let mut props = BTreeMap::new();
            if let NvValue::List(inner) = v {
                for (p, pv) in inner {
                    // Each property is {value: uint64}.
                    if let NvValue::List(vl) = pv {
                        for (k, x) in vl {
                            if let (true, NvValue::U64(n)) = (k == "value", x) {
                                props.insert(p.clone(), n);
                            }
                        }
                    }
                }
            }
            m.insert(bm, props);
        }
        Ok(m)
    }

    /// Destroy bookmarks (full names `fs#bm`, any list of strings); missing ones are
    /// ignored. A failure names the bookmarks that could not be destroyed.
    ///
    /// ```no_run
    /// libzfs_core::Zfs::get()?.destroy_bookmarks(["tank/a#b1"])?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn destroy_bookmarks(
        &self,
        bookmarks: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<()> {
        let bookmarks = name_list(bookmarks)?;
        if bookmarks.is_empty() {
            return Ok(());
        }
        let mut nv = NvList::new()?;
        for b in &bookmarks {
            nv.add_boolean(b)?;
        }
        let mut errlist: *mut sys::nvlist_t = ptr::null_mut();
        // SAFETY: as in bookmark().
        let rc = unsafe { sys::lzc_destroy_bookmarks(nv.as_mut_ptr(), &mut errlist) };
        let items = take_errlist(errlist);
        if rc == 0 {
            Ok(())
        } else {
            let batch: Vec<&str> = bookmarks.iter().map(String::as_str).collect();
            Err(batch_error(
                Op::DestroyBookmarks,
                &batch,
                Errno(rc),
                items,
                &[],
            ))
        }
    }
}
