//! Small helpers shared by the lzc wrappers: C strings, errlists, checked names, name
//! lists and the errors of batch calls.

use super::nvlist::NvList;
use super::Errno;
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;
use std::ffi::CString;

/// Longest dataset/snapshot name ZFS accepts (ZFS_MAX_DATASET_NAME_LEN - 1).
pub const MAX_NAME: usize = sys::ZFS_MAX_DATASET_NAME_LEN as usize - 1;

/// A C string for `what`, refusing interior NULs (never truncating).
pub(crate) fn cstring(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(what, format!("{s:?} contains a NUL character")))
}

/// A dataset or snapshot name as a C string, length-checked.
pub(crate) fn name(s: &str) -> Result<CString> {
    if s.is_empty() {
        return Err(Error::invalid("dataset name", "empty name"));
    }
    if s.len() > MAX_NAME {
        return Err(Error::invalid(
            "dataset name",
            format!("{s:?} is longer than {MAX_NAME} bytes"),
        ));
    }
    cstring("dataset name", s)
}

/// Turn an lzc output errlist (`{name: int32 errno}`) into a vector. Takes ownership of
/// the pointer (frees it); NULL means no list.
pub(crate) fn take_errlist(p: *mut sys::nvlist_t) -> Vec<(String, Errno)> {
    if p.is_null() {
        return vec![];
    }
    // SAFETY: lzc hands us a freshly unpacked list that we own.
    let list = unsafe { NvList::from_raw_owned(p) };
    let mut out = vec![];
    for (k, v) in list.to_tree() {
        if let super::nvlist::NvValue::I32(e) = v {
            out.push((k, Errno(e)));
        }
    }
    out
}

/// Map an lzc return code to a Result.
pub(crate) fn check(rc: i32, op: crate::error::Op, target: &str) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::zfs(op, target, Errno(rc)))
    }
}

/// One (name, value) pair of strings in a list argument: `(snapshot, tag)` of a hold,
/// `(bookmark, source)` of a bookmark. Implemented for tuples of anything string-like,
/// by value or by reference, so `&[("tank/a@s", "tag")]`, a `Vec<(String, String)>` and an
/// iterator of `(&str, String)` all fit.
///
/// ```
/// use libzfs_core::StrPair;
/// fn show(p: impl StrPair) -> String { format!("{}={}", p.first(), p.second()) }
/// assert_eq!(show(("a", String::from("b"))), "a=b");
/// assert_eq!(show(&("a", "b")), "a=b");
/// ```
pub trait StrPair {
    /// The first string (the name: snapshot, bookmark).
    fn first(&self) -> &str;
    /// The second string (the value: tag, source).
    fn second(&self) -> &str;
}

impl<A: AsRef<str>, B: AsRef<str>> StrPair for (A, B) {
    fn first(&self) -> &str {
        self.0.as_ref()
    }
    fn second(&self) -> &str {
        self.1.as_ref()
    }
}

impl<T: StrPair + ?Sized> StrPair for &T {
    fn first(&self) -> &str {
        (**self).first()
    }
    fn second(&self) -> &str {
        (**self).second()
    }
}

/// A list of names as owned strings, each checked as a dataset name.
pub(crate) fn name_list(list: impl IntoIterator<Item = impl AsRef<str>>) -> Result<Vec<String>> {
    list.into_iter()
        .map(|n| {
            let n = n.as_ref();
            name(n)?;
            Ok(n.to_string())
        })
        .collect()
}

/// A list of pairs as owned strings, the first of each checked as a dataset name.
pub(crate) fn pair_list(
    list: impl IntoIterator<Item = impl StrPair>,
) -> Result<Vec<(String, String)>> {
    list.into_iter()
        .map(|p| {
            name(p.first())?;
            Ok((p.first().to_string(), p.second().to_string()))
        })
        .collect()
}

/// Names for a message: all of them up to three, else the first three and how many more.
pub(crate) fn summarize(names: &[&str]) -> String {
    const SHOWN: usize = 3;
    if names.len() <= SHOWN {
        names.join(", ")
    } else {
        format!(
            "{} and {} more",
            names[..SHOWN].join(", "),
            names.len() - SHOWN
        )
    }
}

/// The error of a failed batch call (lzc_snapshot, lzc_destroy_snaps, lzc_hold, ...): it
/// names the items that failed, with their errors, not the whole batch; only when the
/// kernel named none is the target the batch (or `culprits`, when the caller could tell
/// which items are at fault).
pub(crate) fn batch_error(
    op: Op,
    batch: &[&str],
    errno: Errno,
    items: Vec<(String, Errno)>,
    culprits: &[&str],
) -> Error {
    let target = if !items.is_empty() {
        summarize(&items.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>())
    } else if !culprits.is_empty() {
        summarize(culprits)
    } else {
        summarize(batch)
    };
    Error::zfs_items(op, target, errno, items)
}
