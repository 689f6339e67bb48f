//! Small helpers shared by the lzc wrappers: C strings, errlists, checked names.

use super::nvlist::NvList;
use super::Errno;
use crate::error::{Error, Result};
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
