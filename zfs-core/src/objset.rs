//! A dataset's properties with their sources, in the form the kernel takes them back:
//! the legacy `ZFS_IOC_OBJSET_STATS` ioctl (libzfs_core does not wrap it).
//!
//! Why not a channel program: `zfs.get_prop` returns index properties (compression, sync,
//! primarycache, ...) as their names, and the kernel accepts them only as numbers when they
//! are set (`zfs_set_prop_nvlist` refuses a string for a `PROP_TYPE_INDEX` property; the
//! name-to-number tables live in libzfs, not libzfs_core). OBJSET_STATS returns every
//! property as `{value, source}` with index properties as their numbers, so what was set
//! locally can be set again on another dataset exactly.

use super::nvlist::NvValue;
use super::util::name;
use super::{Props, Zfs};
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;

impl Zfs {
    /// The properties set locally on `dataset` (source = the dataset itself), native and
    /// user ones, as [`Props`] that `clone`/`set_properties` take back unchanged. Inherited,
    /// default, received and read-only values are left out.
    ///
    /// Errors: `ENOENT` (no such dataset); `ENOTSUP` on a zfs module outside the versions
    /// whose `zfs_cmd_t` layout was verified (see [`Zfs::pool_status`]).
    ///
    /// ```no_run
    /// let local = libzfs_core::Zfs::get()?.local_properties("tank/vol")?;
    /// for (k, v) in local.iter() { println!("{k} = {v:?}"); }
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn local_properties(&self, dataset: &str) -> Result<Props> {
        let c = name(dataset)?;
        let checked = self.legacy_layout(Op::GetProperties, dataset, "ZFS_IOC_OBJSET_STATS")?;
        let (r, _, all) = self.ioctl_nvlist_out(&checked, sys::ZFS_IOC_OBJSET_STATS, &c)?;
        if let Err(e) = r {
            return Err(Error::zfs(Op::GetProperties, dataset, e));
        }
        let Some(all) = all else {
            return Ok(Props::new());
        };
        let mut local = Props::new();
        for (prop, entry) in all {
            let NvValue::List(e) = entry else { continue };
            let is_local = matches!(e.get("source"), Some(NvValue::Str(s)) if s == dataset);
            if !is_local {
                continue;
            }
            local = match e.get("value") {
                Some(NvValue::U64(v)) => local.u64(&prop, *v),
                Some(NvValue::Str(v)) if prop.contains(':') => local.user(&prop, v),
                Some(NvValue::Str(v)) => local.string(&prop, v),
                _ => local,
            };
        }
        Ok(local)
    }
}
