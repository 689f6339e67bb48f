//! Volume.set_name, set_description, set, unset: user properties of the VDI and its listing
//! record, changed together in one sync channel program (one txg, all or nothing).

use super::layout::check_key;
use super::record::VdiInfo;
use super::{meta, record, Sr};
use crate::error::Result;

impl Sr {
    /// Change user properties of a VDI and its listing record in one txg.
    fn set_user(&self, key: &str, set: &[(&str, &str)], unset: &[&str]) -> Result<()> {
        check_key(key)?;
        let _l = self.lock()?;
        let v = self.recover_and_stat(key)?;
        self.set_user_props_of(&v, set, unset)
    }

    /// Change user properties of the VDI `v` and its listing record in one txg (the caller
    /// holds the lock and has just read `v`).
    pub(super) fn set_user_props_of(
        &self,
        v: &VdiInfo,
        set: &[(&str, &str)],
        unset: &[&str],
    ) -> Result<()> {
        let record = record::after_change(v, set, unset);
        let mut set = set.to_vec();
        let mut unset = unset.to_vec();
        match &record {
            Some(r) => set.push((record::PROP, r)),
            None => unset.push(record::PROP),
        }
        self.zfs
            .update_user_properties(&v.dataset, &set, &unset)
            .map_err(crate::Error::from)
    }

    /// Volume.set_name.
    pub fn volume_set_name(&self, key: &str, name: &str) -> Result<()> {
        meta::check_value("name", name)?;
        self.set_user(key, &[(meta::VDI_NAME, name)], &[])
    }

    /// Volume.set_description.
    pub fn volume_set_description(&self, key: &str, d: &str) -> Result<()> {
        meta::check_value("description", d)?;
        self.set_user(key, &[(meta::VDI_DESCRIPTION, d)], &[])
    }

    /// Volume.set: store xapi key `k` = `v` (encoded property name, I6).
    pub fn volume_set(&self, key: &str, k: &str, v: &str) -> Result<()> {
        let p = meta::encode_key(k)?;
        meta::check_value("value", v)?;
        self.set_user(key, &[(&p, v)], &[])
    }

    /// Volume.unset: remove xapi key `k` (absent keys are fine).
    pub fn volume_unset(&self, key: &str, k: &str) -> Result<()> {
        let p = meta::encode_key(k)?;
        self.set_user(key, &[], &[&p])
    }
}
