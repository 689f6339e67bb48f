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
//! This only makes listing fast: every failure here is logged and ignored. Only SR.attach
//! mounts (under the SR lock), so that reads never change anything and never race
//! SR.detach and SR.destroy, which unmount (a mounted container could not be destroyed).
//! An SR whose containers are not mounted (a pool imported by hand since its attach) is
//! listed correctly, only more slowly, until its next attach.

use super::layout::{SNAP, VOL};
use super::{lock, Sr};
use std::path::PathBuf;

/// Containers worth holding: the ones SR.ls lists.
const HELD: [&str; 2] = [VOL, SNAP];

/// Where the containers of SR dataset `sr` are mounted.
fn dir(sr: &str) -> PathBuf {
    lock::run_dir().join("hold").join(sr.replace('/', "+"))
}

/// ZFS filesystems mounted in this namespace, as (source, mount point) pairs.
fn zfs_mounts() -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return vec![];
    };
    text.lines()
        .filter_map(|l| {
            // "<id> <parent> <dev> <root> <mount point> <options> [optional...] - <type> <source> <super options>"
            let (head, tail) = l.split_once(" - ")?;
            let point = head.split(' ').nth(4)?;
            let mut t = tail.split(' ');
            (t.next()? == "zfs").then(|| (unescape(t.next().unwrap_or("")), unescape(point)))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal `\NNN`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push(((b[i + 1] - b'0') << 6) | ((b[i + 2] - b'0') << 3) | (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

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
            let r =
                std::fs::create_dir_all(&d).and_then(|()| crate::lzc::mount_zfs_readonly(&ds, &d));
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
        release(self.dataset());
    }
}

/// Unmount the held containers of SR dataset `sr` and remove their directories. Mounts
/// made under another run directory (`XAPI_ZVOL_RUN_DIR` of another call) are found by the
/// `hold/<SR dataset>/<container>` tail of their mount point.
pub(crate) fn release(sr: &str) {
    let enc = sr.replace('/', "+");
    for (src, point) in zfs_mounts() {
        let ours = HELD
            .iter()
            .any(|c| src == format!("{sr}/{c}") && point.ends_with(&format!("/hold/{enc}/{c}")));
        if !ours {
            continue;
        }
        let p = PathBuf::from(&point);
        if let Err(e) = crate::lzc::unmount(&p, false) {
            // Busy (someone is inside the empty directory): detach it from the tree; the
            // kernel lets the dataset go when the last user leaves.
            log::warn!("unmount {point}: {e}; detaching it");
            let _ = crate::lzc::unmount(&p, true);
        }
        let _ = std::fs::remove_dir(&p);
        if let Some(parent) = p.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/run/a\040b"), "/run/a b");
        assert_eq!(unescape(r"a\134b"), r"a\b");
        assert_eq!(unescape(r"a\04"), r"a\04");
        assert_eq!(unescape("plain"), "plain");
    }

    #[test]
    fn hold_dir_is_one_level_per_sr() {
        let d = dir("tank/x/zvol-sr-1");
        assert!(d.ends_with("hold/tank+x+zvol-sr-1"), "{}", d.display());
    }
}
