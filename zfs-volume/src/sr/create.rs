//! Volume.create: one `lzc_create` with every property (size rounded up to the
//! volblocksize, a thick volume's refreservation, the VDI's metadata and listing record), so
//! the new VDI appears whole in one txg or not at all.

use super::record::VdiInfo;
use super::volume::{new_key, round_size, space_error, NewVdi};
use super::{meta, Kind, Provisioning, Sr};
use crate::error::Result;

impl Sr {
    /// Volume.create: a zvol of at least `size` bytes (rounded up to the volblocksize),
    /// thin or thick per the SR, with its metadata, in one ioctl.
    pub fn volume_create(
        &self,
        name: &str,
        description: &str,
        size: u64,
        sharable: bool,
    ) -> Result<VdiInfo> {
        meta::check_value("name", name)?;
        meta::check_value("description", description)?;
        let volsize = round_size(size, self.volblocksize)?;
        let _l = self.lock()?;
        self.recover()?;
        let key = new_key();
        let thick = self.provisioning == Provisioning::Thick;
        let mut props = NewVdi {
            key: &key,
            name,
            description,
            sharable,
            thick,
            snapshot_of: None,
            volsize,
            referenced: None,
            keys: &[],
            cbt: false,
        }
        .props()?;
        if thick {
            props = props.u64("refreservation", self.thick_refreservation(volsize)?);
        }
        let ds = self.vdi_dataset(&key, Kind::Volume);
        let spec = crate::lzc::VolumeSpec::new(volsize)
            .volblocksize(self.volblocksize)
            .props(props);
        self.zfs
            .create_volume(&ds, &spec)
            .map_err(|e| space_error(e, "create", volsize))?;
        self.stat_existing(&key)
    }
}
