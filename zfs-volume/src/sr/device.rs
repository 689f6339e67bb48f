//! The block device of a VDI, for `Datapath.attach`: only a VDI of an SR of ours is handed out.
//! How a zvol's device is found (from the zvol itself, never waiting for udev) is a host
//! concern: [`crate::host::device`].

use std::path::PathBuf;
use std::time::Duration;

use super::layout;
use super::Sr;
use crate::error::Error;
pub use crate::host::device::{
    find, flush, is_marked_read_only, is_read_only, link, mark_read_only, set_read_only,
    unmark_read_only,
};

/// Why [`Sr::vdi_device`] found no device.
#[derive(Debug)]
pub enum DeviceError {
    /// The dataset is not a VDI of an SR of ours (no SR marker, or not a VDI's name): its
    /// device must never be handed to a VM.
    NotOurs(String),
    /// A VDI's name in an SR of ours, but no such zvol.
    Missing(String),
    /// The VDI exists but its device did not appear within the wait.
    NoDevice(String),
    /// The VDI is CBT metadata: its data was destroyed, it has no device.
    NoData(String),
    /// ZFS could not be asked.
    Zfs(Error),
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceError::NotOurs(why)
            | DeviceError::Missing(why)
            | DeviceError::NoDevice(why)
            | DeviceError::NoData(why) => f.write_str(why),
            DeviceError::Zfs(e) => e.fmt(f),
        }
    }
}

impl Sr {
    /// The block device (`/dev/zdN`) of the VDI whose dataset is `dataset`, for
    /// `Datapath.attach`: only a VDI of an SR carrying our marker, never any other zvol of
    /// the host (a forged or stale URI must not give a VM another pool's disk). Waits at
    /// most `wait` for a minor that does not exist yet; a VDI that does not exist fails at
    /// once.
    pub fn vdi_device(dataset: &str, wait: Duration) -> std::result::Result<PathBuf, DeviceError> {
        let not_ours = || {
            DeviceError::NotOurs(format!(
                "{dataset} is not a volume of an xapi-zvol SR (not <pool>/.../zvol-sr-<uuid>/vol|snap/<key> \
                 with the SR's marker); refusing to hand it out"
            ))
        };
        let (sr_dataset, kind, key) = layout::split_vdi(dataset).ok_or_else(not_ours)?;
        let sr = match Sr::open(sr_dataset) {
            Ok(sr) => sr,
            Err(Error::SrNotFound(_) | Error::NotOurs(_)) => return Err(not_ours()),
            Err(e) => return Err(DeviceError::Zfs(e)),
        };
        let missing = || {
            DeviceError::Missing(format!(
                "zvol {dataset} does not exist: the volume was destroyed, or the URI is stale \
                 (check with: zfs list -t volume -r {sr_dataset})"
            ))
        };
        let (v, swapping) = match sr.stat_for_device(key) {
            Ok(Some((v, swapping))) if v.kind == kind => (v, swapping),
            Ok(_) => return Err(missing()),
            Err(e) => return Err(DeviceError::Zfs(e)),
        };
        if !v.holds_data() {
            return Err(DeviceError::NoData(format!(
                "VDI {key} is CBT metadata only: its data was destroyed (VDI.data_destroy), so it \
                 has no device to attach; read the snapshot VDIs that still hold data"
            )));
        }
        if swapping {
            // Reported by stat from a revert killed in its swap (`vol/<key>` is missing):
            // the next change to the SR (or SR.attach) finishes it.
            return Err(DeviceError::NoDevice(format!(
                "volume {key} is in the middle of an interrupted revert; re-attach the SR \
                 (xe pbd-unplug / pbd-plug) or make any change to it, then retry"
            )));
        }
        find(dataset, Some(v.virtual_size), wait).ok_or_else(|| {
            DeviceError::NoDevice(format!(
                "the device of zvol {dataset} did not appear within {:.1} s; check that its volmode \
                 is not 'none' (zfs get volmode {dataset})",
                wait.as_secs_f64()
            ))
        })
    }
}
