//! The block devices behind zvols, as xapi's datapath hands them to blkback.
//!
//! A zvol's device is `/dev/zdN` (made by the kernel's devtmpfs as soon as ZFS creates the
//! minor); the `/dev/zvol/<dataset>` link to it is made and moved by udev, asynchronously,
//! after ZFS creates or renames the zvol. A link can therefore be missing (a zvol just
//! made) or stale (right after a revert renamed two zvols: the link of `vol/<key>` still
//! names the old content's device for a while). So the device is resolved from the zvol
//! itself: the link is only a hint, checked with `BLKZNAME` (the ioctl udev's own
//! `zvol_id` names links with); when it does not hold, the `zd` devices of the right size
//! are asked in turn. Nothing ever waits for udev, and no call waits at all unless the
//! minor does not exist yet.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::layout::{self, Layout};
use super::Sr;
use crate::error::Error;
use crate::lzc::zvol_name;

/// How often [`find`] looks again for a minor that does not exist yet.
const POLL: Duration = Duration::from_millis(50);

/// The `/dev/zvol/...` link of a dataset.
pub fn link(dataset: &str) -> PathBuf {
    PathBuf::from(Layout::device_path(dataset))
}

/// Whether `dev` is the device of zvol `dataset`.
fn is_device_of(dev: &Path, dataset: &str) -> bool {
    zvol_name(dev).is_ok_and(|n| n == dataset)
}

/// The whole-disk `zd` devices (`/sys/block` lists no partitions) of `bytes` bytes (any size
/// with `None`), newest minor first (a zvol just made or swapped in has the highest). Sizes
/// come from sysfs, so only devices that could be the one are opened.
fn candidates(bytes: Option<u64>) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir("/sys/block") else {
        return vec![];
    };
    let mut found: Vec<(u64, PathBuf)> = dir
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let n: u64 = name.strip_prefix("zd")?.parse().ok()?;
            let sectors: u64 = std::fs::read_to_string(format!("/sys/block/{name}/size"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            (bytes.is_none() || sectors.checked_mul(512) == bytes)
                .then(|| (n, PathBuf::from("/dev").join(name)))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// The device of zvol `dataset`, whose size is `bytes` (when known: only devices of that
/// size are asked): the link if it names the right zvol, else the `zd` device that says it
/// is that zvol. Waits (polling, at most `wait`) only while no such device exists: ZFS
/// makes a new zvol's minor shortly after the transaction that created it.
pub fn find(dataset: &str, bytes: Option<u64>, wait: Duration) -> Option<PathBuf> {
    let start = Instant::now();
    loop {
        if let Ok(dev) = std::fs::canonicalize(link(dataset)) {
            if is_device_of(&dev, dataset) {
                return Some(dev);
            }
        }
        if let Some(dev) = candidates(bytes)
            .into_iter()
            .find(|d| is_device_of(d, dataset))
        {
            return Some(dev);
        }
        if start.elapsed() >= wait {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Drop cached pages of the device behind `dataset` (after its content changed in place).
///
/// OpenZFS 2.1 can fail a zvol open with ERESTARTSYS (512) while another thread
/// creates or destroys a pool; that is transient, so the open is retried (bounded).
pub fn flush(dataset: &str, bytes: u64) {
    let Some(d) = find(dataset, Some(bytes), Duration::ZERO) else {
        return;
    };
    for _ in 0..50 {
        match crate::lzc::flush_block_device(&d) {
            Err(e) if e.raw_os_error() == Some(512) || e.raw_os_error() == Some(libc::EINTR) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => return,
        }
    }
}

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
    /// ZFS could not be asked.
    Zfs(Error),
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceError::NotOurs(why) | DeviceError::Missing(why) | DeviceError::NoDevice(why) => {
                f.write_str(why)
            }
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
        let v = match sr.stat_raw(key) {
            Ok(Some(v)) if v.kind == kind => v,
            Ok(_) => return Err(missing()),
            Err(e) => return Err(DeviceError::Zfs(e)),
        };
        if !sr.zfs.exists(dataset) {
            // Reported by stat from a revert killed between its renames: the next change
            // to the SR (or SR.attach) finishes it.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_live_under_dev_zvol() {
        assert_eq!(link("tank/sr/vol/k"), Path::new("/dev/zvol/tank/sr/vol/k"));
    }
}
