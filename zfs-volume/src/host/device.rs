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

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libzfs_core_sys as sys;
use rustix::ioctl::{ioctl, opcode, Getter, NoArg, Setter};

/// Where udev links zvols by dataset name.
pub const ZVOL_DIR: &str = "/dev/zvol";

/// How often [`find`] looks again for a minor that does not exist yet.
const POLL: Duration = Duration::from_millis(50);

/// The `/dev/zvol/...` link of a dataset.
pub fn link(dataset: &str) -> PathBuf {
    Path::new(ZVOL_DIR).join(dataset)
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

/// Opens block device `path` for an ioctl.
///
/// OpenZFS 2.1 fails a zvol's first open with ERESTARTSYS (512) when it cannot take the pool
/// namespace lock within `zvol_open_timeout_ms` (1 s), e.g. while another call creates or
/// destroys a pool or holds the lock under load (`zvol_os.c`, `zvol_open`). That is
/// transient, so the open is retried, for about another second, as is EINTR.
fn open_device(path: &Path) -> std::io::Result<File> {
    let mut tries = 0;
    loop {
        match File::open(path) {
            Err(e) if matches!(e.raw_os_error(), Some(512) | Some(libc::EINTR)) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20))
            }
            r => return r,
        }
    }
}

/// Drop cached pages of the device behind `dataset` (after its content changed in place).
pub fn flush(dataset: &str, bytes: u64) {
    if let Some(d) = find(dataset, Some(bytes), Duration::ZERO) {
        let _ = flush_block_device(&d);
    }
}

/// Drop the page cache of a block device (`BLKFLSBUF`, `_IO(0x12, 97)` from linux/fs.h), so
/// that readers of a zvol whose content changed underneath (rollback) see the new data.
fn flush_block_device(path: &Path) -> std::io::Result<()> {
    const BLKFLSBUF: rustix::ioctl::Opcode = opcode::none(0x12, 97);
    let f = open_device(path)?;
    // SAFETY: BLKFLSBUF takes no argument and the opcode is the kernel's.
    unsafe { ioctl(&f, NoArg::<BLKFLSBUF>::new()) }?;
    Ok(())
}

/// `BLKROSET`, `_IO(0x12, 93)` from linux/fs.h: set a block device read-only (an `int` passed by
/// pointer). It sets the device's own flag, not the disk's, which ZFS sets for a dataset with
/// `readonly=on`: clearing it again never makes a snapshot VDI's device writable.
const BLKROSET: rustix::ioctl::Opcode = opcode::none(0x12, 93);
/// `BLKROGET`, `_IO(0x12, 94)`: whether a block device is read-only (the device's flag or the
/// disk's), an `int` written through a pointer.
const BLKROGET: rustix::ioctl::Opcode = opcode::none(0x12, 94);

/// Make block device `dev` read-only (`on`) or writable again: writes to it then fail in the
/// kernel, whoever opened it (`Datapath.activate_readonly`).
pub fn set_read_only(dev: &Path, on: bool) -> std::io::Result<()> {
    let f = open_device(dev)?;
    // SAFETY: the opcode is the kernel's and takes a pointer to an int, which Setter passes.
    unsafe {
        ioctl(
            &f,
            Setter::<BLKROSET, libc::c_int>::new(libc::c_int::from(on)),
        )
    }?;
    Ok(())
}

/// The run-directory file ([`crate::host::lock`]) that says the device of zvol `dataset` was
/// made read-only by [`set_read_only`] for `Datapath.activate_readonly` and not yet made
/// writable again.
fn read_only_mark(dataset: &str) -> String {
    format!("{}.readonly", dataset.replace('/', "+"))
}

/// Records that the device of zvol `dataset` is about to be made read-only: written before
/// the flag is set, so a process killed in between leaves a mark and no unmarked flag.
///
/// Why a mark, not udev's link: `Datapath.activate` and `deactivate` must undo the flag, and
/// the only cheap way to their device is the `/dev/zvol` link, which udev can leave missing
/// or naming another zvol's device (OpenZFS 2.1 on Debian 12: a link still missing 120 s
/// after concurrent calls, 2026-12-07). A stat of this file says whether there is anything
/// to undo; only then is the device found from the zvol itself ([`find`]).
pub fn mark_read_only(dataset: &str) -> crate::Result<()> {
    super::lock::write_atomic(&read_only_mark(dataset), "")
}

/// Whether [`mark_read_only`] marked zvol `dataset` and [`unmark_read_only`] has not removed
/// the mark since (marks live in tmpfs: a reboot, which also drops the flag, clears them).
pub fn is_marked_read_only(dataset: &str) -> bool {
    super::lock::run_dir()
        .join(read_only_mark(dataset))
        .exists()
}

/// Removes [`mark_read_only`]'s mark of zvol `dataset`, once its device is writable again
/// (absent is fine).
pub fn unmark_read_only(dataset: &str) {
    super::lock::remove(&read_only_mark(dataset))
}

/// Whether block device `dev` (or a link to one) refuses writes.
///
/// Read from sysfs (`/sys/class/block/<name>/ro`, which the kernel computes as `BLKROGET`
/// does for a whole disk: the device's own flag or the disk's), so that nothing opens the
/// device: the first open of a zvol makes ZFS own its dataset and rebuild its objset, the
/// most expensive part of asking. `BLKROGET` when sysfs cannot say.
pub fn is_read_only(dev: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::FileTypeExt;
    let real = std::fs::canonicalize(dev)?;
    // Only a block device's name is looked up in sysfs (a stat, not an open): another file
    // of that name must not answer for it.
    let block = std::fs::metadata(&real).is_ok_and(|m| m.file_type().is_block_device());
    if let Some(name) = real.file_name().filter(|_| block) {
        let ro = Path::new("/sys/class/block").join(name).join("ro");
        if let Ok(text) = std::fs::read_to_string(ro) {
            match text.trim() {
                "0" => return Ok(false),
                "1" => return Ok(true),
                _ => {}
            }
        }
    }
    let f = open_device(&real)?;
    // SAFETY: the opcode is the kernel's; it writes one int, which Getter provides room for.
    let ro = unsafe { ioctl(&f, Getter::<BLKROGET, libc::c_int>::new()) }?;
    Ok(ro != 0)
}

/// Length of the name buffer of `BLKZNAME` (`ZFS_MAX_DATASET_NAME_LEN`).
const NAME_LEN: usize = sys::ZFS_MAX_DATASET_NAME_LEN as usize;

/// `BLKZNAME` from OpenZFS's `sys/fs/zfs.h`: `_IOR(0x12, 125, char[ZFS_MAX_DATASET_NAME_LEN])`,
/// the ioctl udev's `zvol_id` names `/dev/zvol` links with (a C macro, so bindgen cannot see it).
pub(crate) const BLKZNAME: rustix::ioctl::Opcode = opcode::read::<[u8; NAME_LEN]>(0x12, 125);

/// The dataset name of the zvol behind block device `dev` (`/dev/zdN`), asked of the zvol
/// itself (`BLKZNAME`): unlike a `/dev/zvol` link, it cannot be stale or missing while
/// udev catches up. Errors: ENOTTY for a device that is not a zvol.
pub(crate) fn zvol_name(dev: &Path) -> std::io::Result<String> {
    let f = File::open(dev)?;
    // SAFETY: the opcode is the kernel's and its output is a byte array of the size it writes.
    let buf = unsafe { ioctl(&f, Getter::<BLKZNAME, [u8; NAME_LEN]>::new()) }?;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_named_like_a_disk_is_not_answered_for_by_sysfs() {
        // A regular file named after a block device of this host: sysfs is not asked, and
        // BLKROGET on a file fails (ENOTTY) instead of reporting that disk's flag.
        let dir = std::env::temp_dir().join(format!("xzvt-ro-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let name = std::fs::read_dir("/sys/class/block")
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.file_name())
            .unwrap_or_else(|| "sda".into());
        let f = dir.join(name);
        std::fs::write(&f, b"").unwrap();
        assert!(is_read_only(&f).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn read_only_marks_are_one_flat_file_per_zvol() {
        // `+` is not a character of ZFS names, so no two datasets share a mark.
        assert_eq!(read_only_mark("tank/sr/vol/k"), "tank+sr+vol+k.readonly");
    }

    #[test]
    fn links_live_under_dev_zvol() {
        assert_eq!(link("tank/sr/vol/k"), Path::new("/dev/zvol/tank/sr/vol/k"));
    }

    #[test]
    fn blkroset_and_blkroget_are_the_kernels() {
        // _IO(0x12, 93) and _IO(0x12, 94) as linux/fs.h defines them.
        assert_eq!(BLKROSET as u64, 0x125d);
        assert_eq!(BLKROGET as u64, 0x125e);
    }

    #[test]
    fn blkzname_is_ior_0x12_125_of_256_bytes() {
        // _IOR(0x12, 125, char[256]) as linux/ioctl.h computes it on x86_64.
        assert_eq!(BLKZNAME as u64, 0x8100_127d);
    }
}
