//! Keep an attached SR's containers (`vol`, `snap`) resident in the kernel.
//!
//! Why: ZFS evicts a dataset from memory as soon as its last hold goes, and listing the
//! children of a container holds and releases the container at every step, so each step
//! rebuilds the container's objset from disk blocks (walking the inheritance of a dozen
//! properties): 4.6 ms per VDI in the test VM, most of what SR.ls cost. A mounted
//! filesystem is held for as long as it is mounted; with the containers mounted the same
//! step costs 0.13 ms. So while an SR is attached its containers are mounted, read-only
//! and nosuid/nodev/noexec, under `/run/xapi-zvol/hold/<SR dataset>/`. They are empty
//! (VDIs are zvols) and `mountpoint=none` stays: `zfs mount -a` and the admin see nothing
//! change, `zpool export` unmounts them like any other filesystem of the pool.
//!
//! The same holds for `gc`, listed by every changing call. This only makes listing fast: every failure here is logged and ignored. Only SR.attach
//! mounts (under the SR lock), so that reads never change anything and never race
//! SR.detach and SR.destroy, which unmount (a mounted container could not be destroyed).
//! An SR whose containers are not mounted (a pool imported by hand since its attach) is
//! listed correctly, only more slowly, until its next attach.

use super::layout::{GC, SNAP, VOL};
use super::Sr;
use crate::host::mounts::{dir, mount_zfs_readonly, release, zfs_mounts};

/// Containers worth holding: the ones SR.ls lists, and `gc`, whose children every changing
/// call lists (the recovery check) and a revert's swap is looked for in.
const HELD: [&str; 3] = [VOL, SNAP, GC];

impl Sr {
    /// Mount the containers that are not mounted anywhere yet (see the module docs).
    pub(crate) fn hold_containers(&self) {
        let mounts = zfs_mounts();
        for c in HELD {
            let ds = self.layout.container(c);
            if mounts.iter().any(|(src, _)| *src == ds) || !self.zfs.exists(&ds) {
                continue;
            }
            let d = dir(self.dataset()).join(c);
            let r = std::fs::create_dir_all(&d).and_then(|()| mount_zfs_readonly(&ds, &d));
            if let Err(e) = r {
                log::warn!(
                    "cannot mount {ds} at {} to keep it resident ({e}); SR.ls will be slower",
                    d.display()
                );
            }
        }
    }

    /// Unmount what [`Sr::hold_containers`] mounted.
    pub(crate) fn release_containers(&self) {
        release(self.dataset(), &HELD);
    }
}
