//! Shared helpers of the real-ZFS (VM) test suites: throw-away pools on file vdevs, and
//! reading/writing zvol devices. Every test that uses them is `#[ignore = NEEDS_ZFS]`,
//! so a host-only `cargo test` lists them as ignored and `scripts/test` runs them in the
//! VM on each OpenZFS version.
#![allow(dead_code)]

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The ignore reason of every VM test.
pub const NEEDS_ZFS: &str = "needs the ZFS kernel module: runs in the test VM (scripts/test)";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A pool on sparse file vdevs, destroyed (with its files) on drop.
pub struct TestPool {
    /// Pool name.
    pub name: String,
    files: Vec<String>,
}

impl TestPool {
    /// A single-file pool of `mib` MiB.
    pub fn new(tag: &str, mib: u64) -> TestPool {
        TestPool::with_layout(tag, mib, &[], 1)
    }

    /// A pool of `n` files of `mib` MiB each, `kind` being e.g. `[]` (stripe),
    /// `["mirror"]`, `["raidz1"]`.
    pub fn with_layout(tag: &str, mib: u64, kind: &[&str], n: usize) -> TestPool {
        TestPool::with_options(tag, mib, &[], kind, n)
    }

    /// Like [`TestPool::with_layout`], with extra `zpool create` options before the pool
    /// name (e.g. `["-o", "ashift=12"]`).
    pub fn with_options(tag: &str, mib: u64, opts: &[&str], kind: &[&str], n: usize) -> TestPool {
        assert!(
            Path::new("/dev/zfs").exists(),
            "/dev/zfs is missing: this test needs the ZFS kernel module (run it with scripts/test)"
        );
        let name = format!(
            "xz{tag}{}n{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let mut files = vec![];
        for i in 0..n {
            let f = format!("/var/tmp/{name}-{i}.vdev");
            std::fs::File::create(&f)
                .unwrap()
                .set_len(mib << 20)
                .unwrap();
            files.push(f);
        }
        let mut args: Vec<&str> = vec!["create", "-f", "-O", "mountpoint=none"];
        args.extend_from_slice(opts);
        args.push(&name);
        args.extend_from_slice(kind);
        args.extend(files.iter().map(|s| s.as_str()));
        run("zpool", &args);
        TestPool { name, files }
    }

    /// `pool/rel`.
    pub fn ds(&self, rel: &str) -> String {
        format!("{}/{}", self.name, rel)
    }

    /// The vdev files.
    pub fn files(&self) -> &[String] {
        &self.files
    }
}

impl Drop for TestPool {
    fn drop(&mut self) {
        let _ = Command::new("zpool")
            .args(["destroy", "-f", &self.name])
            .status();
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Run a command, panic with its stderr on failure, return stdout.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `zpool export pool` after `udevadm settle`, retried for up to 60 s while the pool is busy:
/// udev opens a zvol's device to probe it after a write-close, and an export during that
/// probe fails with "pool is busy" (seen in CI on 2.4).
pub fn export_pool(pool: &str) {
    let start = Instant::now();
    loop {
        let _ = Command::new("udevadm")
            .args(["settle", "-t", "120"])
            .status();
        let out = Command::new("zpool")
            .args(["export", pool])
            .output()
            .unwrap();
        if out.status.success() {
            return;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("busy") && start.elapsed() < Duration::from_secs(60),
            "zpool export {pool} failed: {err}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every dataset and snapshot under `root` (recursive), via the zfs CLI: the outside
/// view the external harness also uses.
pub fn zfs_list_all(root: &str) -> Vec<String> {
    let out = Command::new("zfs")
        .args(["list", "-H", "-o", "name", "-t", "all", "-r", root])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// A `zfs get -Hp -o value` of one property.
pub fn zfs_get(ds: &str, prop: &str) -> String {
    run("zfs", &["get", "-Hp", "-o", "value", prop, ds])
        .trim()
        .to_string()
}

/// The block device of a zvol (bounded wait for its minor); returns its path. Found as
/// `Datapath.attach` finds it, from the zvol itself (BLKZNAME), not from the `/dev/zvol`
/// link: udev makes and moves links late (after a revert swapped two zvols the link still
/// names the old device for a while), and on OpenZFS 2.1 its `zvol_id` can fail outright
/// when a concurrent pool operation makes the open fail with ERESTARTSYS (512).
pub fn wait_dev(dataset: &str) -> String {
    zfs_volume::sr::device::find(dataset, None, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the device of zvol {dataset} did not appear within 30 s"))
        .display()
        .to_string()
}

/// Open a device, retrying the spurious ERESTARTSYS (512) of OpenZFS 2.1's zvol_open
/// (see [`wait_dev`]).
pub fn open_retry(path: &str, opts: &std::fs::OpenOptions) -> std::fs::File {
    let start = Instant::now();
    loop {
        match opts.open(path) {
            Ok(f) => return f,
            Err(e)
                if e.raw_os_error() == Some(512) && start.elapsed() < Duration::from_secs(30) =>
            {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("open {path}: {e}"),
        }
    }
}

/// Wait (bounded) until the device link is gone.
pub fn wait_no_dev(dataset: &str) -> bool {
    let p = format!("/dev/zvol/{dataset}");
    let start = Instant::now();
    while Path::new(&p).exists() {
        if start.elapsed() > Duration::from_secs(20) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A 4 KiB block filled from `seed`.
pub fn pattern(seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Write one 4 KiB pattern block at `offset` of a zvol (opened O_DIRECT-free, then
/// fsync'd so the data is in the zvol before any snapshot).
pub fn write_block(dataset: &str, offset: u64, seed: u64) {
    let p = wait_dev(dataset);
    let mut f = open_retry(&p, std::fs::OpenOptions::new().write(true));
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&pattern(seed)).unwrap();
    f.sync_all().unwrap();
}

/// Read 4 KiB at `offset`.
pub fn read_block(dataset: &str, offset: u64) -> Vec<u8> {
    read_blocks(dataset, &[offset]).remove(0)
}

/// The 4 KiB blocks at `offsets`, read through one open of the device (each first open of a
/// zvol makes ZFS own its dataset).
pub fn read_blocks(dataset: &str, offsets: &[u64]) -> Vec<Vec<u8>> {
    let p = wait_dev(dataset);
    let mut f = open_retry(&p, std::fs::OpenOptions::new().read(true));
    offsets
        .iter()
        .map(|&offset| {
            f.seek(SeekFrom::Start(offset)).unwrap();
            let mut b = vec![0u8; 4096];
            f.read_exact(&mut b).unwrap();
            b
        })
        .collect()
}

/// True if the device can be opened for writing and written (snapshot VDIs must not).
pub fn writable(dataset: &str) -> bool {
    let p = wait_dev(dataset);
    let mut opened = std::fs::OpenOptions::new().write(true).open(&p);
    let start = Instant::now();
    while matches!(&opened, Err(e) if e.raw_os_error() == Some(512))
        && start.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(50));
        opened = std::fs::OpenOptions::new().write(true).open(&p);
    }
    match opened {
        Err(_) => false,
        Ok(mut f) => f.write_all(&[0u8; 4096]).and_then(|_| f.sync_all()).is_ok(),
    }
}

/// Median, min and max of durations in microseconds.
pub fn stats(mut v: Vec<Duration>) -> (u128, u128, u128) {
    v.sort();
    (
        v[v.len() / 2].as_micros(),
        v[0].as_micros(),
        v[v.len() - 1].as_micros(),
    )
}

/// Which pattern seed (0..1000) a block holds, if any (for readable failures).
pub fn which_seed(b: &[u8]) -> Option<u64> {
    (0..1000).find(|s| pattern(*s) == b)
}

/// Assert that the block at `offset` of `dataset` holds `pattern(seed)`.
#[track_caller]
pub fn assert_block(dataset: &str, offset: u64, seed: u64, ctx: &str) {
    let b = read_block(dataset, offset);
    if b != pattern(seed) {
        let zero = b.iter().all(|x| *x == 0);
        panic!(
            "{ctx}: {dataset} @{offset}: expected pattern {seed}, found {}",
            if zero {
                "zeros".to_string()
            } else {
                format!("{:?}", which_seed(&b))
            }
        );
    }
}
