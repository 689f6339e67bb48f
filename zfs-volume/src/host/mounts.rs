//! Mounts of ZFS filesystems under the run directory: the mechanics of keeping an attached SR's
//! containers resident (why, and which: `sr/mounts.rs`).

use std::path::{Path, PathBuf};

/// Where the containers of SR dataset `sr` are mounted.
pub(crate) fn dir(sr: &str) -> PathBuf {
    super::lock::run_dir()
        .join("hold")
        .join(sr.replace('/', "+"))
}

/// ZFS filesystems mounted in this namespace, as (source, mount point) pairs.
pub(crate) fn zfs_mounts() -> Vec<(String, String)> {
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

/// Mount ZFS filesystem `dataset` read-only (and nosuid, nodev, noexec) at `dir` with
/// mount(2) itself: no `mount.zfs` helper, which refuses datasets whose `mountpoint` is
/// `none`.
pub(crate) fn mount_zfs_readonly(dataset: &str, dir: &Path) -> std::io::Result<()> {
    use rustix::mount::MountFlags as F;
    let flags = F::RDONLY | F::NOSUID | F::NODEV | F::NOEXEC;
    rustix::mount::mount(dataset, dir, "zfs", flags, None)?;
    Ok(())
}

/// Unmount what is mounted at `dir` (umount2(2)); `lazy` detaches it even while busy.
pub(crate) fn unmount(dir: &Path, lazy: bool) -> std::io::Result<()> {
    use rustix::mount::UnmountFlags;
    let flags = if lazy {
        UnmountFlags::DETACH
    } else {
        UnmountFlags::empty()
    };
    rustix::mount::unmount(dir, flags)?;
    Ok(())
}

/// Unmount the held containers of SR dataset `sr` and remove their directories. Mounts
/// made under another run directory (`XAPI_ZVOL_RUN_DIR` of another call) are found by the
/// `hold/<SR dataset>/<container>` tail of their mount point.
pub(crate) fn release(sr: &str, held: &[&str]) {
    let enc = sr.replace('/', "+");
    for (src, point) in zfs_mounts() {
        let ours = held
            .iter()
            .any(|c| src == format!("{sr}/{c}") && point.ends_with(&format!("/hold/{enc}/{c}")));
        if !ours {
            continue;
        }
        let p = PathBuf::from(&point);
        if let Err(e) = unmount(&p, false) {
            // Busy (someone is inside the empty directory): detach it from the tree; the
            // kernel lets the dataset go when the last user leaves.
            log::warn!("unmount {point}: {e}; detaching it");
            let _ = unmount(&p, true);
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
