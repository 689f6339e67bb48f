//! A dataset's properties with their sources, in the form the kernel takes them back:
//! the legacy `ZFS_IOC_OBJSET_STATS` ioctl (libzfs_core does not wrap it).
//!
//! Why not a channel program: `zfs.get_prop` returns index properties (compression, sync,
//! primarycache, ...) as their names, and the kernel accepts them only as numbers when they
//! are set (`zfs_set_prop_nvlist` refuses a string for a `PROP_TYPE_INDEX` property; the
//! name-to-number tables live in libzfs, not libzfs_core). OBJSET_STATS returns every
//! property as `{value, source}` with index properties as their numbers, so what was set
//! locally can be set again on another dataset exactly. And unlike a channel program, the
//! ioctl is not written into the pool's history (`docs/zfs-facts.md` §1.7).

use super::props::prop_read;
use super::util::name;
use super::{PropRead, PropValue, Props, Zfs};
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;
use std::collections::BTreeMap;

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
        let mut local = Props::new();
        for (prop, read) in self.objset_properties(dataset)? {
            if read.source != dataset {
                continue;
            }
            local = match read.value {
                PropValue::U64(v) => local.u64(&prop, v),
                PropValue::Str(v) if prop.contains(':') => local.user(&prop, &v),
                PropValue::Str(v) => local.string(&prop, &v),
            };
        }
        Ok(local)
    }

    /// Every property of `dataset` (a filesystem, volume or snapshot) with its source, in
    /// one read of its objset: native properties (index ones as numbers), the read-only
    /// ones (`used`, `origin`, `volsize`, ...) with an empty source, and user properties.
    ///
    /// Unlike a channel program ([`Zfs::get_properties`]), this ioctl is not written into
    /// the pool's history (`docs/zfs-facts.md` §1.7): a read that changes nothing on disk.
    /// It costs one hold of the dataset's objset, with whatever cold reads that takes.
    ///
    /// Errors: `ENOENT` (no such dataset); `ENOTSUP` on a zfs module outside the versions
    /// whose `zfs_cmd_t` layout was verified (see [`Zfs::pool_status`]).
    ///
    /// ```no_run
    /// let all = libzfs_core::Zfs::get()?.objset_properties("tank/vol")?;
    /// println!("origin: {:?}", all.get("origin").and_then(|r| r.as_str()));
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn objset_properties(&self, dataset: &str) -> Result<BTreeMap<String, PropRead>> {
        let c = name(dataset)?;
        let checked = self.legacy_layout(Op::GetProperties, dataset, "ZFS_IOC_OBJSET_STATS")?;
        let (r, _, all) = self.ioctl_nvlist_out(&checked, sys::ZFS_IOC_OBJSET_STATS, &c)?;
        if let Err(e) = r {
            return Err(Error::zfs(Op::GetProperties, dataset, e));
        }
        let mut props = BTreeMap::new();
        for (prop, entry) in all.unwrap_or_default() {
            if let Some(read) = prop_read(&entry) {
                props.insert(prop, read);
            }
        }
        Ok(props)
    }
}
