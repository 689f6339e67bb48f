//! Real-ZFS tests of the safe libzfs_core layer (`zfs_volume::lzc`), run inside the test
//! VM on OpenZFS 2.1 and 2.4 (`scripts/test --vm-only`). Every public function of
//! [`Zfs`] is exercised on success and on each documented error path; errors are checked
//! for their exact errno and for a message that names the target and says why.
//!
//! On a host without ZFS every test here is listed as ignored.

mod support;

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::process::Command;
use std::sync::{RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use support::*;
use zfs_volume::lzc::reservation::thick_refreservation;
use zfs_volume::lzc::{
    module_version, parse_version, BlockBitmap, Compression, DatasetKind, Limits, ListEntry,
    ListOptions, NvList, NvValue, PoolHealth, Program, PropValue, Props, SendFlags, TopVdev,
    VolMode, VolumeSpec,
};
use zfs_volume::lzc::{Errno, Error, Zfs};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The benchmark takes this for writing (alone in the VM); every other test for reading.
static SERIAL: RwLock<()> = RwLock::new(());

/// A test pool that also keeps the benchmark out while the test runs.
struct Pool {
    p: TestPool,
    _g: RwLockReadGuard<'static, ()>,
}

impl std::ops::Deref for Pool {
    type Target = TestPool;
    fn deref(&self) -> &TestPool {
        &self.p
    }
}

fn pool(tag: &str, mib: u64) -> Pool {
    let g = SERIAL.read().unwrap_or_else(|e| e.into_inner());
    Pool {
        p: TestPool::new(tag, mib),
        _g: g,
    }
}

fn layout(tag: &str, mib: u64, opts: &[&str], kind: &[&str], n: usize) -> Pool {
    let g = SERIAL.read().unwrap_or_else(|e| e.into_inner());
    Pool {
        p: TestPool::with_options(tag, mib, opts, kind, n),
        _g: g,
    }
}

fn zfs() -> &'static Zfs {
    Zfs::get().expect("libzfs_core init")
}

/// The error of `r`, which must be a ZFS/program error with `errno`, and whose message
/// must contain every string of `words` (the target, the reason...).
#[track_caller]
fn expect_err<T: std::fmt::Debug>(
    r: zfs_volume::lzc::Result<T>,
    errno: i32,
    words: &[&str],
) -> Error {
    let e = match r {
        Ok(v) => panic!(
            "expected {} but the call succeeded: {v:?}",
            Errno(errno).name()
        ),
        Err(e) => e,
    };
    let msg = e.to_string();
    assert!(
        e.is_errno(errno),
        "expected {}, got {:?}: {msg}",
        Errno(errno).name(),
        e.errno()
    );
    assert!(
        msg.contains(&Errno(errno).name()),
        "message does not show the errno name: {msg}"
    );
    for w in words {
        assert!(msg.contains(w), "message does not contain {w:?}: {msg}");
    }
    eprintln!("expected error: {msg}");
    e
}

/// The per-item errors of an [`Error::Zfs`].
fn items(e: &Error) -> Vec<(String, Errno)> {
    match e {
        Error::Zfs { items, .. } => items.clone(),
        _ => panic!("not a ZFS error: {e:?}"),
    }
}

fn settle() {
    let _ = Command::new("udevadm")
        .args(["settle", "-t", "20"])
        .status();
}

/// Size in bytes of the zvol's block device, from /sys/block/zdN/size.
fn dev_size(ds: &str) -> u64 {
    let link = wait_dev(ds);
    let real = std::fs::canonicalize(&link).unwrap();
    let n = real.file_name().unwrap().to_str().unwrap().to_string();
    let s = std::fs::read_to_string(format!("/sys/block/{n}/size")).unwrap();
    s.trim().parse::<u64>().unwrap() * 512
}

/// Read 4 KiB at `off` with O_DIRECT (no page cache: what the zvol holds now).
fn read_direct(ds: &str, off: u64) -> Vec<u8> {
    let p = wait_dev(ds);
    let f = open_retry(
        &p,
        OpenOptions::new().read(true).custom_flags(libc::O_DIRECT),
    );
    let mut v = vec![0u8; 8192];
    let a = v.as_ptr().align_offset(4096);
    f.read_exact_at(&mut v[a..a + 4096], off).unwrap();
    v[a..a + 4096].to_vec()
}

/// A zvol of `size` bytes (thin), with its device link present.
fn vol(ds: &str, size: u64) {
    zfs().create_volume(ds, &VolumeSpec::new(size)).unwrap();
    wait_dev(ds);
}

/// A filesystem with mountpoint=none.
fn fs(ds: &str) {
    zfs().create_filesystem(ds, &Props::new()).unwrap();
}

fn zfs_version() -> (u32, u32, u32) {
    parse_version(&module_version().unwrap())
}

// ---------------------------------------------------------------------------------------
// Zfs::get, exists

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn get_is_one_handle_and_exists_sees_datasets_snapshots() {
    let p = pool("ex", 256);
    let a = Zfs::get().unwrap();
    let b = Zfs::get().unwrap();
    assert!(
        std::ptr::eq(a, b),
        "Zfs::get must return the one process-wide handle"
    );
    let z = zfs();
    assert!(z.exists(&p.name), "pool root");
    assert!(!z.exists(&p.ds("nope")));
    assert!(!z.exists("nosuchpool"));
    assert!(!z.exists(""));
    assert!(!z.exists("bad\0name"));
    assert!(!z.exists(&"x".repeat(300)));
    vol(&p.ds("v"), 16 * MIB);
    assert!(z.exists(&p.ds("v")));
    z.snapshot([&p.ds("v@s1")], &[]).unwrap();
    assert!(z.exists(&p.ds("v@s1")));
    assert!(!z.exists(&p.ds("v@s2")));
}

// ---------------------------------------------------------------------------------------
// create_volume, create_filesystem

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn create_volume_thin_has_no_refreservation_and_a_device() {
    let p = pool("cvt", 256);
    let v = p.ds("thin");
    zfs()
        .create_volume(
            &v,
            &VolumeSpec::new(64 * MIB)
                .volblocksize(16384)
                .props(Props::new().user("xz:k", "val")),
        )
        .unwrap();
    assert_eq!(
        zfs_get(&v, "refreservation"),
        "0",
        "lzc_create makes sparse volumes"
    );
    assert_eq!(zfs_get(&v, "volsize"), (64 * MIB).to_string());
    assert_eq!(zfs_get(&v, "volblocksize"), "16384");
    assert_eq!(zfs_get(&v, "xz:k"), "val");
    assert!(
        std::path::Path::new(&wait_dev(&v)).exists(),
        "/dev/zvol link"
    );
    assert_eq!(dev_size(&v), 64 * MIB);
    // The default block size is the kernel's (8K on 2.1, 16K from 2.2).
    let d = p.ds("dflt");
    zfs().create_volume(&d, &VolumeSpec::new(8 * MIB)).unwrap();
    let want = if zfs_version() >= (2, 2, 0) {
        "16384"
    } else {
        "8192"
    };
    assert_eq!(zfs_get(&d, "volblocksize"), want);
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn create_volume_thick_sets_the_refreservation() {
    let p = pool("cvk", 512);
    let v = p.ds("thick");
    let st = zfs().pool_status(&p.name).unwrap();
    let r = thick_refreservation(64 * MIB, 8192, &st.top_vdevs(), 1);
    zfs()
        .create_volume(
            &v,
            &VolumeSpec::new(64 * MIB)
                .volblocksize(8192)
                .refreservation(r),
        )
        .unwrap();
    assert_eq!(zfs_get(&v, "refreservation"), r.to_string());
    let by_resv: u64 = zfs_get(&v, "usedbyrefreservation").parse().unwrap();
    let by_data: u64 = zfs_get(&v, "usedbydataset").parse().unwrap();
    assert_eq!(
        by_resv + by_data,
        r,
        "the reservation covers the data written so far"
    );
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn create_volume_errors() {
    let p = pool("cve", 256);
    let z = zfs();
    let v = p.ds("v");
    z.create_volume(&v, &VolumeSpec::new(16 * MIB)).unwrap();
    expect_err(
        z.create_volume(&v, &VolumeSpec::new(16 * MIB)),
        libc::EEXIST,
        &[&v, "exists"],
    );
    let orphan = p.ds("nope/v");
    expect_err(
        z.create_volume(&orphan, &VolumeSpec::new(16 * MIB)),
        libc::ENOENT,
        &[&orphan, "parent"],
    );
    let bad = p.ds("badbs");
    expect_err(
        z.create_volume(&bad, &VolumeSpec::new(16 * MIB).volblocksize(3000)),
        libc::EDOM,
        &[&bad, "volblocksize"],
    );
    let odd = p.ds("odd");
    expect_err(
        z.create_volume(&odd, &VolumeSpec::new(16 * MIB + 512).volblocksize(8192)),
        libc::EINVAL,
        &[&odd, "multiple of volblocksize"],
    );
    // Too big a reservation for the pool.
    let big = p.ds("big");
    expect_err(
        z.create_volume(&big, &VolumeSpec::new(GIB).refreservation(GIB + 64 * MIB)),
        libc::ENOSPC,
        &[&big],
    );
    // Refused before reaching ZFS.
    match z.create_volume(&p.ds("zero"), &VolumeSpec::new(0)) {
        Err(Error::Invalid { .. }) => {}
        other => panic!("size 0 must be refused: {other:?}"),
    }
    // A bad property: the kernel creates then destroys the volume; a udev probe of the new
    // device can make that destroy fail, which create_volume then finishes.
    let bp = p.ds("badprop");
    expect_err(
        z.create_volume(
            &bp,
            &VolumeSpec::new(16 * MIB).props(Props::new().u64("volmode", 77)),
        ),
        libzfs_core_sys::ZFS_ERR_BADPROP as i32,
        &[&bp],
    );
    for n in [&bad, &odd, &big, &orphan, &bp] {
        assert!(!z.exists(n), "{n} must not exist after a failed create");
    }
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn create_filesystem_success_and_errors() {
    let p = pool("cfs", 256);
    let z = zfs();
    let f = p.ds("sr");
    z.create_filesystem(
        &f,
        &Props::new()
            .user("xz:marker", "1")
            .compression(Compression::Lz4),
    )
    .unwrap();
    assert_eq!(zfs_get(&f, "type"), "filesystem");
    assert_eq!(zfs_get(&f, "xz:marker"), "1");
    assert_eq!(zfs_get(&f, "compression"), "lz4");
    assert_eq!(
        zfs_get(&f, "mountpoint"),
        "none",
        "inherited from the pool root"
    );
    expect_err(
        z.create_filesystem(&f, &Props::new()),
        libc::EEXIST,
        &[&f, "exists"],
    );
    let orphan = p.ds("a/b/c");
    expect_err(
        z.create_filesystem(&orphan, &Props::new()),
        libc::ENOENT,
        &[&orphan, "parent"],
    );
    // A bad property value fails the create and leaves nothing behind.
    let bp = p.ds("badprop");
    let e = z
        .create_filesystem(&bp, &Props::new().u64("compression", 999))
        .unwrap_err();
    eprintln!("bad compression at create: {e} ({:?})", e.errno());
    assert!(e.to_string().contains(&bp), "{e}");
    assert!(e.errno().is_some(), "{e:?}");
    assert!(!z.exists(&bp));
}

// ---------------------------------------------------------------------------------------
// snapshot, destroy_snapshots, snaprange_space

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn snapshot_batch_is_one_txg_with_user_props() {
    let p = pool("snb", 256);
    let z = zfs();
    let (a, b) = (p.ds("a"), p.ds("b"));
    vol(&a, 16 * MIB);
    fs(&b);
    let (sa, sb) = (format!("{a}@s1"), format!("{b}@s1"));
    z.snapshot([&sa, &sb], &[("xz:why", "backup"), ("xz:n", "2")])
        .unwrap();
    assert_eq!(
        zfs_get(&sa, "createtxg"),
        zfs_get(&sb, "createtxg"),
        "one txg for the whole batch"
    );
    for s in [&sa, &sb] {
        assert_eq!(zfs_get(s, "xz:why"), "backup");
        assert_eq!(zfs_get(s, "xz:n"), "2");
        assert_eq!(
            run("zfs", &["get", "-H", "-o", "source", "xz:why", s]).trim(),
            "local"
        );
    }
    // An empty batch is a no-op.
    z.snapshot(&[] as &[&str], &[]).unwrap();
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn snapshot_errors_are_all_or_nothing_and_named() {
    let p = pool("sne", 256);
    let z = zfs();
    let (a, b) = (p.ds("a"), p.ds("b"));
    vol(&a, 16 * MIB);
    vol(&b, 16 * MIB);
    z.snapshot([&format!("{b}@s1")], &[]).unwrap();
    // EEXIST for b@s1: a@s1 must not be created either, and the item names b@s1.
    let (sa, sb) = (format!("{a}@s1"), format!("{b}@s1"));
    let e = expect_err(
        z.snapshot([&sa, &sb], &[]),
        libc::EEXIST,
        &[&sb, "already exists"],
    );
    assert_eq!(items(&e), vec![(sb.clone(), Errno(libc::EEXIST))]);
    assert!(
        !e.to_string().contains(&sa),
        "only the failing snapshot is named: {e}"
    );
    assert!(!z.exists(&sa), "an lzc_snapshot batch is all or nothing");
    // Two snapshots of one dataset in one call.
    let (x1, x2) = (format!("{a}@x1"), format!("{a}@x2"));
    expect_err(
        z.snapshot([&x1, &x2], &[]),
        libc::EXDEV,
        &[&x1, "one per dataset"],
    );
    assert!(!z.exists(&x1) && !z.exists(&x2));
    // Missing dataset.
    let m = p.ds("missing@s");
    let e = expect_err(z.snapshot([&m], &[]), libc::ENOENT, &[&m, "does not exist"]);
    assert_eq!(items(&e), vec![(m.clone(), Errno(libc::ENOENT))]);
    // Native properties cannot be set on snapshots by lzc_snapshot.
    expect_err(
        z.snapshot([&format!("{a}@p")], &[("compression", "lz4")]),
        libc::EINVAL,
        &[&a],
    );
    // A name without '@' is refused before reaching ZFS.
    assert!(matches!(z.snapshot([&a], &[]), Err(Error::Invalid { .. })));
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn destroy_snapshots_defer_and_clones() {
    let p = pool("dss", 256);
    let z = zfs();
    let v = p.ds("v");
    vol(&v, 16 * MIB);
    let s1 = format!("{v}@s1");
    z.snapshot([&s1], &[]).unwrap();
    let c = p.ds("c");
    z.clone(&c, &s1, &Props::new()).unwrap();
    // Without defer: EEXIST (dependent clone), nothing destroyed.
    let e = expect_err(
        z.destroy_snapshots([&s1], false),
        libc::EEXIST,
        &[&s1, "dependent clones"],
    );
    assert_eq!(items(&e), vec![(s1.clone(), Errno(libc::EEXIST))]);
    assert!(
        !e.to_string().contains("dataset already exists"),
        "the item reason must be the operation's: {e}"
    );
    assert!(z.exists(&s1));
    // With defer: marked, kept while the clone lives, gone with it.
    z.destroy_snapshots([&s1], true).unwrap();
    assert!(z.exists(&s1));
    assert_eq!(zfs_get(&s1, "defer_destroy"), "on");
    settle();
    z.destroy(&c).unwrap();
    assert!(
        !z.exists(&s1),
        "a deferred snapshot goes with its last clone"
    );
    // Missing snapshots are ignored; an empty list is a no-op.
    z.destroy_snapshots([&format!("{v}@never")], false).unwrap();
    z.destroy_snapshots(&[] as &[&str], false).unwrap();
    // Several at once.
    z.snapshot([&format!("{v}@a")], &[]).unwrap();
    z.snapshot([&format!("{v}@b")], &[]).unwrap();
    z.destroy_snapshots([&format!("{v}@a"), &format!("{v}@b")], false)
        .unwrap();
    assert!(zfs_list_all(&v).len() == 1, "{:?}", zfs_list_all(&v));
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn snaprange_space_counts_unique_blocks() {
    let p = pool("srs", 256);
    let z = zfs();
    let v = p.ds("v");
    vol(&v, 32 * MIB);
    z.snapshot([&format!("{v}@s1")], &[]).unwrap();
    for i in 0..64 {
        write_block(&v, i * 4096, i + 1);
    }
    z.snapshot([&format!("{v}@s2")], &[]).unwrap();
    for i in 0..64 {
        write_block(&v, i * 4096, i + 100);
    }
    z.snapshot([&format!("{v}@s3")], &[]).unwrap();
    let s2 = z
        .snaprange_space(&format!("{v}@s2"), &format!("{v}@s2"))
        .unwrap();
    let all = z
        .snaprange_space(&format!("{v}@s1"), &format!("{v}@s3"))
        .unwrap();
    eprintln!("snaprange: s2 alone {s2}, s1..s3 {all}");
    assert!(s2 >= 64 * 4096, "s2 alone holds the first 64 blocks: {s2}");
    assert!(all >= s2);
    let m = format!("{v}@missing");
    expect_err(z.snaprange_space(&m, &m), libc::ENOENT, &[&m]);
}

// ---------------------------------------------------------------------------------------
// clone, promote, rename, destroy, rollback_to

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn clone_applies_props_and_names_errors() {
    let p = pool("cln", 256);
    let z = zfs();
    let v = p.ds("v");
    let st = z.pool_status(&p.name).unwrap();
    let r = thick_refreservation(16 * MIB, 8192, &st.top_vdevs(), 1);
    z.create_volume(
        &v,
        &VolumeSpec::new(16 * MIB)
            .volblocksize(8192)
            .refreservation(r),
    )
    .unwrap();
    write_block(&v, 0, 7);
    let s = format!("{v}@s");
    z.snapshot([&s], &[]).unwrap();
    let c = p.ds("c");
    z.clone(
        &c,
        &s,
        &Props::new().user("xz:name", "copy").volmode(VolMode::Dev),
    )
    .unwrap();
    assert_eq!(zfs_get(&c, "origin"), s);
    assert_eq!(zfs_get(&c, "xz:name"), "copy");
    assert_eq!(zfs_get(&c, "volmode"), "dev");
    assert_eq!(
        zfs_get(&c, "refreservation"),
        "0",
        "a clone gets no refreservation unless passed"
    );
    assert_eq!(read_direct(&c, 0), pattern(7));
    // With a refreservation passed.
    let c2 = p.ds("c2");
    z.clone(&c2, &s, &Props::new().u64("refreservation", r))
        .unwrap();
    assert_eq!(zfs_get(&c2, "refreservation"), r.to_string());
    // Errors.
    let m = format!("{v}@missing");
    let c3 = p.ds("c3");
    expect_err(z.clone(&c3, &m, &Props::new()), libc::ENOENT, &[&c3, &m]);
    expect_err(
        z.clone(&c, &s, &Props::new()),
        libc::EEXIST,
        &[&c, "exists"],
    );
    // A bad property destroys the clone.
    let c4 = p.ds("c4");
    let e = z
        .clone(&c4, &s, &Props::new().u64("volmode", 77))
        .unwrap_err();
    eprintln!("bad volmode at clone: {e}");
    assert!(e.to_string().contains(&c4));
    assert!(!z.exists(&c4));
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn promote_moves_snapshots_and_names_conflicts() {
    let p = pool("prm", 256);
    let z = zfs();
    let v = p.ds("v");
    vol(&v, 16 * MIB);
    z.snapshot([&format!("{v}@s0")], &[]).unwrap();
    z.snapshot([&format!("{v}@s1")], &[]).unwrap();
    z.snapshot([&format!("{v}@s2")], &[]).unwrap();
    let c = p.ds("c");
    z.clone(&c, &format!("{v}@s1"), &Props::new()).unwrap();
    z.promote(&c).unwrap();
    assert!(
        z.exists(&format!("{c}@s0")) && z.exists(&format!("{c}@s1")),
        "{:?}",
        zfs_list_all(&p.name)
    );
    assert!(!z.exists(&format!("{v}@s1")));
    assert!(z.exists(&format!("{v}@s2")), "later snapshots stay");
    assert_eq!(zfs_get(&v, "origin"), format!("{c}@s1"));
    assert_eq!(zfs_get(&c, "origin"), "-");
    // Non-clone.
    expect_err(z.promote(&c), libc::EINVAL, &[&c, "not a clone"]);
    // Conflict: the clone already has a snapshot of a name that would move.
    let w = p.ds("w");
    vol(&w, 16 * MIB);
    z.snapshot([&format!("{w}@base")], &[]).unwrap();
    let d = p.ds("d");
    z.clone(&d, &format!("{w}@base"), &Props::new()).unwrap();
    z.snapshot([&format!("{d}@base")], &[]).unwrap();
    expect_err(
        z.promote(&d),
        libc::EEXIST,
        &[&d, &format!("{d}@base"), "rename"],
    );
    // Missing.
    let m = p.ds("missing");
    expect_err(z.promote(&m), libc::ENOENT, &[&m]);
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn rename_datasets_and_snapshots() {
    let p = pool("ren", 256);
    let z = zfs();
    let (a, b) = (p.ds("a"), p.ds("b"));
    vol(&a, 16 * MIB);
    settle();
    z.rename(&a, &b).unwrap();
    assert!(!z.exists(&a) && z.exists(&b));
    wait_dev(&b);
    assert!(wait_no_dev(&a), "the old device link goes");
    z.snapshot([&format!("{b}@s1")], &[]).unwrap();
    z.rename(&format!("{b}@s1"), &format!("{b}@s2")).unwrap();
    assert!(z.exists(&format!("{b}@s2")));
    // Errors name both names.
    let c = p.ds("c");
    vol(&c, 16 * MIB);
    expect_err(z.rename(&c, &b), libc::EEXIST, &[&c, &b]);
    let m = p.ds("missing");
    expect_err(z.rename(&m, &p.ds("x")), libc::ENOENT, &[&m]);
    let (from, to) = (format!("{b}@s2"), format!("{c}@s2"));
    expect_err(
        z.rename(&from, &to),
        libc::EXDEV,
        &[&from, &to, "within its dataset"],
    );
    let orphan = p.ds("no/such");
    expect_err(z.rename(&c, &orphan), libc::ENOENT, &[&c, &orphan]);
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn destroy_datasets_and_errors() {
    let p = pool("des", 256);
    let z = zfs();
    let v = p.ds("v");
    vol(&v, 16 * MIB);
    let s = format!("{v}@s");
    z.snapshot([&s], &[]).unwrap();
    settle();
    expect_err(z.destroy(&v), libc::EBUSY, &[&v, "snapshots"]);
    z.destroy(&s).unwrap();
    assert!(!z.exists(&s));
    settle();
    z.destroy(&v).unwrap();
    assert!(!z.exists(&v));
    assert!(wait_no_dev(&v), "device link removed");
    expect_err(z.destroy(&v), libc::ENOENT, &[&v, "does not exist"]);
    // A filesystem with children.
    let f = p.ds("f");
    fs(&f);
    fs(&p.ds("f/child"));
    expect_err(z.destroy(&f), libc::EEXIST, &[&f, "children"]);
    // An open zvol is busy.
    let o = p.ds("open");
    vol(&o, 16 * MIB);
    let dev = open_retry(&wait_dev(&o), OpenOptions::new().read(true));
    expect_err(z.destroy(&o), libc::EBUSY, &[&o, "open"]);
    drop(dev);
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn rollback_to_latest_restores_data() {
    let p = pool("rbk", 256);
    let z = zfs();
    let v = p.ds("v");
    vol(&v, 16 * MIB);
    write_block(&v, 8192, 1);
    let s1 = format!("{v}@s1");
    z.snapshot([&s1], &[]).unwrap();
    write_block(&v, 8192, 2);
    assert_eq!(read_direct(&v, 8192), pattern(2));
    z.rollback_to(&v, &s1).unwrap();
    assert_eq!(
        read_direct(&v, 8192),
        pattern(1),
        "the device shows the snapshot's data"
    );
    // Older snapshot: EEXIST, nothing changes.
    let s2 = format!("{v}@s2");
    z.snapshot([&s2], &[]).unwrap();
    write_block(&v, 8192, 3);
    expect_err(
        z.rollback_to(&v, &s1),
        libc::EEXIST,
        &[&v, &s1, "more recent"],
    );
    assert_eq!(read_direct(&v, 8192), pattern(3));
    // A snapshot of another dataset / missing.
    let w = p.ds("w");
    vol(&w, 16 * MIB);
    z.snapshot([&format!("{w}@s")], &[]).unwrap();
    let other = format!("{w}@s");
    expect_err(z.rollback_to(&v, &other), libc::ESRCH, &[&v, &other]);
    let ms = format!("{v}@missing");
    expect_err(z.rollback_to(&v, &ms), libc::ESRCH, &[&v, &ms]);
    let m = p.ds("missing");
    expect_err(z.rollback_to(&m, &format!("{m}@s")), libc::ENOENT, &[&m]);
}

// ---------------------------------------------------------------------------------------
// hold, release, get_holds

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn holds_block_destroy_until_released() {
    let p = pool("hld", 256);
    let z = zfs();
    let v = p.ds("v");
    vol(&v, 16 * MIB);
    let s = format!("{v}@s");
    z.snapshot([&s], &[]).unwrap();
    let missing = format!("{v}@missing");
    let skipped = z
        .hold([(&s, "backup"), (&missing, "backup")], None)
        .unwrap();
    assert_eq!(
        skipped,
        vec![(missing.clone(), Errno(libc::ENOENT))],
        "missing snapshots are reported"
    );
    let holds = z.get_holds(&s).unwrap();
    assert_eq!(holds.keys().collect::<Vec<_>>(), vec!["backup"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        holds["backup"] > 0 && holds["backup"] <= now + 5,
        "{holds:?}"
    );
    assert!(run("zfs", &["holds", "-H", &s]).contains("backup"));
    expect_err(
        z.destroy_snapshots([&s], false),
        libc::EBUSY,
        &[&s, "holds"],
    );
    expect_err(z.destroy(&s), libc::EBUSY, &[&s]);
    expect_err(
        z.hold([(&s, "backup")], None),
        libc::EEXIST,
        &[&s, "already has a hold"],
    );
    // One tag per snapshot per call (a second one would silently replace the first).
    match z.hold([(&s, "t1"), (&s, "t2")], None) {
        Err(Error::Invalid { reason, .. }) => assert!(reason.contains(&s), "{reason}"),
        other => panic!("a snapshot listed twice must be refused: {other:?}"),
    }
    assert_eq!(
        z.get_holds(&s).unwrap().len(),
        1,
        "nothing held by the refused call"
    );
    z.hold([(&s, "t1")], None).unwrap();
    z.hold([(&s, "t2")], None).unwrap();
    assert_eq!(z.get_holds(&s).unwrap().len(), 3, "{:?}", z.get_holds(&s));
    // Several tags of one snapshot released at once.
    z.release([(&s, "t1"), (&s, "t2")]).unwrap();
    // Releasing an absent tag or a missing snapshot does not fail: it is reported.
    let mut not_released = z
        .release([(&s, "nosuchtag"), (&missing, "backup")])
        .unwrap();
    not_released.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        not_released,
        vec![
            (missing.clone(), Errno(libc::ENOENT)),
            (format!("{s}#nosuchtag"), Errno(libc::ENOENT))
        ]
    );
    assert_eq!(z.release([(&s, "backup")]).unwrap(), vec![]);
    assert!(z.get_holds(&s).unwrap().is_empty());
    expect_err(z.get_holds(&missing), libc::ENOENT, &[&missing]);
    z.destroy(&s).unwrap();
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn holds_with_cleanup_fd_go_when_it_closes() {
    let p = pool("hlc", 256);
    let z = zfs();
    let v = p.ds("v");
    vol(&v, 16 * MIB);
    let s = format!("{v}@s");
    z.snapshot([&s], &[]).unwrap();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_EXCL)
        .open("/dev/zfs")
        .unwrap();
    z.hold([(&s, "tmp")], Some(f.as_fd())).unwrap();
    assert!(z.get_holds(&s).unwrap().contains_key("tmp"));
    drop(f);
    let t = Instant::now();
    while !z.get_holds(&s).unwrap().is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "temporary hold not released on close"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A deferred destroy of a held snapshot happens on release.
    z.hold([(&s, "keep")], None).unwrap();
    z.destroy_snapshots([&s], true).unwrap();
    assert!(z.exists(&s));
    z.release([(&s, "keep")]).unwrap();
    assert!(!z.exists(&s), "deferred destroy on last release");
}

// ---------------------------------------------------------------------------------------
// bookmarks

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn bookmarks_create_list_destroy() {
    let p = pool("bmk", 256);
    let z = zfs();
    let v = p.ds("v");
    vol(&v, 16 * MIB);
    let s1 = format!("{v}@s1");
    z.snapshot([&s1], &[]).unwrap();
    let b1 = format!("{v}#b1");
    z.bookmark([(&b1, &s1)]).unwrap();
    let bms = z.get_bookmarks(&v).unwrap();
    assert_eq!(bms.keys().collect::<Vec<_>>(), vec!["b1"], "{bms:?}");
    assert_eq!(bms["b1"]["guid"].to_string(), zfs_get(&s1, "guid"));
    assert_eq!(
        bms["b1"]["createtxg"].to_string(),
        zfs_get(&s1, "createtxg")
    );
    assert!(bms["b1"]["creation"] > 0);
    assert!(run(
        "zfs",
        &["list", "-H", "-t", "bookmark", "-o", "name", "-r", &v]
    )
    .contains(&b1));
    assert!(z.exists(&b1), "lzc_exists sees bookmarks");
    // A bookmark survives its snapshot and is an incremental source.
    z.destroy(&s1).unwrap();
    write_block(&v, 0, 5);
    let s2 = format!("{v}@s2");
    z.snapshot([&s2], &[]).unwrap();
    let inc = z.send_space(&s2, Some(&b1), SendFlags::default()).unwrap();
    assert!(inc > 0);
    // Errors.
    expect_err(z.bookmark([(&b1, &s2)]), libc::EEXIST, &[&b1]);
    let b2 = format!("{v}#b2");
    let missing = format!("{v}@missing");
    expect_err(z.bookmark([(&b2, &missing)]), libc::ENOENT, &[&b2]);
    assert!(
        matches!(
            z.bookmark([(&b2, &s2), (&b2, &s2)]),
            Err(Error::Invalid { .. })
        ),
        "a bookmark listed twice"
    );
    assert!(!z.exists(&b2));
    let m = p.ds("missing");
    expect_err(z.get_bookmarks(&m), libc::ENOENT, &[&m]);
    // Destroy (missing ones ignored).
    z.destroy_bookmarks([&b1, &format!("{v}#never")]).unwrap();
    assert!(z.get_bookmarks(&v).unwrap().is_empty());
    z.destroy_bookmarks(&[] as &[&str]).unwrap();
}

// ---------------------------------------------------------------------------------------
// send, send_space

const DMU_BACKUP_MAGIC: u64 = 0x2_F5BA_CBAC;

fn send_to_pipe(snap: &str, from: Option<&str>) -> zfs_volume::lzc::Result<Vec<u8>> {
    let (r, w) = pipe();
    let reader = std::thread::spawn(move || {
        let mut f = r;
        let mut v = vec![];
        f.read_to_end(&mut v).unwrap();
        v
    });
    let res = zfs().send(snap, from, &w, SendFlags::default());
    drop(w);
    let data = reader.join().unwrap();
    res.map(|_| data)
}

fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid 2-int array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    use std::os::fd::FromRawFd;
    // SAFETY: fresh descriptors we own.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn send_full_and_incremental_streams() {
    let p = pool("snd", 256);
    let z = zfs();
    let v = p.ds("v");
    vol(&v, 16 * MIB);
    for i in 0..32 {
        write_block(&v, i * 4096, i);
    }
    let s1 = format!("{v}@s1");
    z.snapshot([&s1], &[]).unwrap();
    let est = z.send_space(&s1, None, SendFlags::default()).unwrap();
    let stream = send_to_pipe(&s1, None).unwrap();
    eprintln!("full send: estimate {est}, stream {} bytes", stream.len());
    assert!(est > 0 && stream.len() > 32 * 4096);
    assert_eq!(
        u32::from_le_bytes(stream[0..4].try_into().unwrap()),
        0,
        "DRR_BEGIN record first"
    );
    assert_eq!(
        u64::from_le_bytes(stream[8..16].try_into().unwrap()),
        DMU_BACKUP_MAGIC
    );
    // To a regular file, and received back.
    let path = format!("/var/tmp/{}-s1.zstream", p.name);
    let f = std::fs::File::create(&path).unwrap();
    z.send(
        &s1,
        None,
        &f,
        SendFlags::default().compress(true).embed_data(true),
    )
    .unwrap();
    drop(f);
    assert!(std::fs::metadata(&path).unwrap().len() > 0);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("zfs receive {}/copy < {path}", p.name))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "receive: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&path);
    assert_eq!(read_direct(&p.ds("copy"), 31 * 4096), pattern(31));
    // Incremental.
    write_block(&v, 0, 99);
    let s2 = format!("{v}@s2");
    z.snapshot([&s2], &[]).unwrap();
    let inc_est = z.send_space(&s2, Some(&s1), SendFlags::default()).unwrap();
    let inc = send_to_pipe(&s2, Some(&s1)).unwrap();
    eprintln!("incremental: estimate {inc_est}, stream {}", inc.len());
    assert!(inc_est > 0 && inc.len() < stream.len());
    // Errors.
    let m = format!("{v}@missing");
    expect_err(send_to_pipe(&m, None), libc::ENOENT, &[&m]);
    expect_err(
        z.send_space(&m, None, SendFlags::default()),
        libc::ENOENT,
        &[&m],
    );
    expect_err(send_to_pipe(&s1, Some(&s2)), libc::EXDEV, &[&s1]);
    // No EBADF case: send takes a borrowed descriptor (AsFd), so a closed or -1 one cannot
    // be passed, and one open read-only makes 2.1's in-kernel write warn (WARN_ON_ONCE).
}

// ---------------------------------------------------------------------------------------
// changed_blocks (CBT: the blocks an incremental send writes or frees)

/// The granularity of xapi's changed-block bitmaps.
const CBT: u64 = 64 << 10;

/// `len` bytes of incompressible data from `seed`.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_ne_bytes());
    }
    v.truncate(len);
    v
}

/// Write `data` at `offset` of the zvol's device and flush it, so that the zvol holds it
/// before the next snapshot. Any offset and length: the page cache reads and rewrites
/// the partial sectors.
fn write_at(ds: &str, offset: u64, data: &[u8]) {
    let f = open_retry(&wait_dev(ds), OpenOptions::new().write(true));
    f.write_all_at(data, offset).unwrap();
    f.sync_all().unwrap();
}

/// Discard `[offset, offset + len)` of the zvol (BLKDISCARD): ZFS frees the whole volume
/// blocks inside the range.
fn discard(ds: &str, offset: u64, len: u64) {
    const BLKDISCARD: libc::c_ulong = 0x1277; // _IO(0x12, 119), linux/fs.h
    let f = open_retry(&wait_dev(ds), OpenOptions::new().write(true));
    let range = [offset, len];
    // SAFETY: f is an open block device; BLKDISCARD reads two u64 (start, length).
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), BLKDISCARD, range.as_ptr()) };
    assert_eq!(rc, 0, "BLKDISCARD: {}", std::io::Error::last_os_error());
    f.sync_all().unwrap();
}

/// The first `len` bytes of the zvol as it holds them now (O_DIRECT, not the page cache).
fn read_image(ds: &str, len: u64) -> Vec<u8> {
    const CHUNK: usize = 1 << 20;
    let f = open_retry(
        &wait_dev(ds),
        OpenOptions::new().read(true).custom_flags(libc::O_DIRECT),
    );
    let mut buf = vec![0u8; CHUNK + 4096];
    let a = buf.as_ptr().align_offset(4096);
    let mut out = Vec::with_capacity(len as usize);
    while (out.len() as u64) < len {
        let n = CHUNK.min((len - out.len() as u64) as usize);
        f.read_exact_at(&mut buf[a..a + n], out.len() as u64)
            .unwrap();
        out.extend_from_slice(&buf[a..a + n]);
    }
    out
}

/// The marked blocks.
fn marked(b: &BlockBitmap) -> BTreeSet<u64> {
    (0..b.blocks()).filter(|i| b.is_set(*i)).collect()
}

/// The 64 KiB blocks whose bytes differ between two images (`before` read as zeros past
/// its end: a grown volume).
fn differing(before: &[u8], after: &[u8]) -> BTreeSet<u64> {
    let zeros = [0u8; CBT as usize];
    after
        .chunks(CBT as usize)
        .enumerate()
        .filter(|(i, a)| {
            let lo = (*i as u64 * CBT) as usize;
            let b = before
                .get(lo..(lo + a.len()).min(before.len()))
                .unwrap_or(&[]);
            let b_full: Vec<u8> = b
                .iter()
                .chain(zeros.iter())
                .take(a.len())
                .copied()
                .collect();
            b_full != *a
        })
        .map(|(i, _)| i as u64)
        .collect()
}

/// The 64 KiB blocks that the volume blocks (`vbs` bytes each) under `ranges` cover: what
/// ZFS rewrites or frees for those writes and discards.
fn touched(ranges: &[(u64, u64)], vbs: u64, size: u64) -> BTreeSet<u64> {
    let mut s = BTreeSet::new();
    for &(o, l) in ranges {
        let (lo, hi) = (o / vbs * vbs, ((o + l).div_ceil(vbs) * vbs).min(size));
        s.extend(lo / CBT..=(hi - 1) / CBT);
    }
    s
}

/// `a..=b` runs of a set, for readable messages.
fn runs(s: &BTreeSet<u64>) -> String {
    let mut out: Vec<String> = vec![];
    let mut it = s.iter().copied().peekable();
    while let Some(a) = it.next() {
        let mut b = a;
        while it.peek() == Some(&(b + 1)) {
            b = it.next().unwrap();
        }
        out.push(if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        });
    }
    format!("[{}]", out.join(" "))
}

/// Append a line to `target/vm-results/changed-blocks-zfs<version>.txt` (the repository is
/// shared into the VM, and scripts/test prints it whatever libtest captures).
fn record_result(line: &str) {
    eprintln!("{line}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/vm-results");
    let _ = std::fs::create_dir_all(&dir);
    let v = module_version().unwrap_or_default();
    let v = v.split('-').next().unwrap_or("unknown").to_string();
    if let Ok(mut f) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("changed-blocks-zfs{v}.txt")))
    {
        let _ = writeln!(f, "{line}");
    }
}

/// The records of `zfs send -Lce -i from to` other than WRITEs, and the WRITEs' count, as
/// `zstream dump -v` prints them (a diagnostic for the results file).
fn stream_dump(to: &str, from: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zfs send -L -c -e -i {from} {to} | zstream dump -v"
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let writes = text.lines().filter(|l| l.starts_with("WRITE ")).count();
    let others: Vec<&str> = text
        .lines()
        .filter(|l| {
            [
                "FREE ",
                "FREEOBJECTS ",
                "OBJECT ",
                "WRITE_EMBEDDED ",
                "SPILL ",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .collect();
    format!("{writes} WRITE records; {}", others.join(" | "))
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn changed_blocks_of_a_written_volume_are_the_written_blocks() {
    let p = pool("cbw", 512);
    let z = zfs();
    let v = p.ds("v");
    // 16 KiB past 16 MiB: the last 64 KiB block is partial. (16 MiB, not more: the volume
    // is written and read in full twice under emulation.)
    let size = 16 * MIB + 16 * 1024;
    let vbs = 16 * 1024;
    z.create_volume(&v, &VolumeSpec::new(size).volblocksize(vbs))
        .unwrap();
    // Every block written: no hole at either point, so no FREE record covers a hole and
    // the marked blocks must be exactly those written.
    for (i, off) in (0..size).step_by(MIB as usize).enumerate() {
        write_at(&v, off, &noise(i as u64 + 1, MIB.min(size - off) as usize));
    }
    let (s1, b1) = (format!("{v}@s1"), format!("{v}#b1"));
    z.snapshot([&s1], &[]).unwrap();
    z.bookmark([(&b1, &s1)]).unwrap();
    let before = read_image(&v, size);
    // From a bookmark alone: the snapshot goes.
    z.destroy(&s1).unwrap();

    let mut ranges: Vec<(u64, u64)> = vec![];
    let mut write = |off: u64, data: &[u8]| {
        write_at(&v, off, data);
        ranges.push((off, data.len() as u64));
    };
    write(10 * CBT, &noise(100, CBT as usize)); // one aligned 64 KiB block
    write(300_000, &noise(101, 5000)); // unaligned, inside block 4
    write(20 * CBT - 4096, &noise(102, 8192)); // across the 19/20 boundary
    write(16 * MIB, &noise(103, 16 * 1024)); // the last, partial block
    write(30 * CBT, &[0u8; CBT as usize]); // zeros over data
    let same = before[(40 * CBT) as usize..(40 * CBT + 8192) as usize].to_vec();
    write(40 * CBT, &same); // the same bytes again: rewritten, not different
    write(60 * CBT + 1536, &noise(104, 512)); // one sector
    write(70 * CBT, &noise(105, 4096)); // two records of one block
    write(70 * CBT + 48 * 1024, &noise(106, 4096));
    discard(&v, 50 * CBT, 4 * CBT);
    ranges.push((50 * CBT, 4 * CBT));
    let s2 = format!("{v}@s2");
    z.snapshot([&s2], &[]).unwrap();
    let after = read_image(&v, size);

    let mut bm = BlockBitmap::new(CBT, size);
    let t = Instant::now();
    let st = z.changed_blocks(&s2, &b1, &mut bm).unwrap();
    let took = t.elapsed();
    assert_eq!((bm.blocks(), bm.as_bytes().len()), (257, 33));
    let got = marked(&bm);
    let diff = differing(&before, &after);
    let want = touched(&ranges, vbs, size);
    assert!(diff.contains(&256) && diff.contains(&19) && diff.contains(&20));
    assert!(!diff.contains(&40), "the rewrite of the same bytes");
    assert!(
        diff.is_subset(&got),
        "blocks that differ but are not marked: {}",
        runs(&diff.difference(&got).copied().collect())
    );
    assert!(
        want.is_subset(&got),
        "written blocks not marked: {}",
        runs(&want.difference(&got).copied().collect())
    );
    let extra: BTreeSet<u64> = got.difference(&want).copied().collect();
    record_result(&format!(
        "written volume (volsize 16 MiB + 16 KiB, volblocksize 16K), from a bookmark: {} of {} \
         blocks marked, written {}, differing {}, extra {} {}; {st:?}; {took:?}",
        got.len(),
        bm.blocks(),
        runs(&want),
        runs(&diff),
        extra.len(),
        runs(&extra)
    ));
    record_result(&format!("  stream: {}", stream_dump(&s2, &b1)));
    assert!(
        extra.is_empty(),
        "a fully written volume has no holes: only written blocks are marked"
    );
    assert!(st.writes >= 10 && st.frees >= 1, "{st:?}");

    // From a snapshot, and from a bookmark of the same snapshot: the same blocks.
    write_at(&v, 80 * CBT + 4096, &noise(107, 4096));
    let (s3, b2) = (format!("{v}@s3"), format!("{v}#b2"));
    z.snapshot([&s3], &[]).unwrap();
    z.bookmark([(&b2, &s2)]).unwrap();
    let mut from_snap = BlockBitmap::new(CBT, size);
    let st_snap = z.changed_blocks(&s3, &s2, &mut from_snap).unwrap();
    let mut from_bm = BlockBitmap::new(CBT, size);
    let st_bm = z.changed_blocks(&s3, &b2, &mut from_bm).unwrap();
    assert_eq!(marked(&from_snap), BTreeSet::from([80]));
    assert_eq!(from_snap, from_bm);
    assert_eq!(st_snap.writes, st_bm.writes);
    // The stream names its two points by guid, from a bookmark as from its snapshot (the
    // plugin checks a CBT point's bookmark by this guid).
    let guid = |s: &str| zfs_get(s, "guid").parse::<u64>().unwrap();
    assert_eq!(st_snap.from_guid, guid(&s2));
    assert_eq!(st_bm.from_guid, guid(&s2));
    assert_eq!((st_snap.to_guid, st_bm.to_guid), (guid(&s3), guid(&s3)));
    // Nothing changed: nothing marked.
    let s4 = format!("{v}@s4");
    z.snapshot([&s4], &[]).unwrap();
    let mut none = BlockBitmap::new(CBT, size);
    let st = z.changed_blocks(&s4, &s3, &mut none).unwrap();
    record_result(&format!("  no change between two snapshots: {st:?}"));
    assert_eq!(none.count(), 0, "{st:?}");
    // A grow alone: nothing below the old size is marked, and the new part is, because
    // every volsize change frees the data object past the new size
    // (zvol_update_volsize), which the stream sends as a FREE from the old end.
    let grown = size + MIB;
    z.set_properties(&v, &Props::new().u64("volsize", grown))
        .unwrap();
    let s5 = format!("{v}@s5");
    z.snapshot([&s5], &[]).unwrap();
    let mut bm = BlockBitmap::new(CBT, grown);
    let st = z.changed_blocks(&s5, &s4, &mut bm).unwrap();
    let got = marked(&bm);
    record_result(&format!(
        "  grown by 1 MiB, nothing written: marked {} of the {} blocks at or past the old \
         end; {st:?}",
        got.len(),
        bm.blocks() - size / CBT
    ));
    assert_eq!(
        got,
        (size / CBT..bm.blocks()).collect::<BTreeSet<u64>>(),
        "a grow marks the new part, from the old end, and nothing else; {st:?}"
    );
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn changed_blocks_of_a_thin_volume_that_grew() {
    let p = pool("cbg", 512);
    let z = zfs();
    let v = p.ds("v");
    let vbs = 128 * 1024;
    let (old, new) = (64 * MIB, 96 * MIB);
    z.create_volume(&v, &VolumeSpec::new(old).volblocksize(vbs))
        .unwrap();
    write_at(&v, 0, &noise(1, MIB as usize));
    write_at(&v, 10 * MIB, &noise(2, CBT as usize));
    write_at(&v, 30 * MIB, &noise(3, CBT as usize));
    let (s1, b1) = (format!("{v}@s1"), format!("{v}#b1"));
    z.snapshot([&s1], &[]).unwrap();
    z.bookmark([(&b1, &s1)]).unwrap();
    let before = read_image(&v, old);
    z.destroy(&s1).unwrap();

    let mut ranges: Vec<(u64, u64)> = vec![];
    let mut write = |off: u64, data: &[u8]| {
        write_at(&v, off, data);
        ranges.push((off, data.len() as u64));
    };
    write(5 * MIB + 4096, &noise(10, 4096)); // never written: one 128K record, 2 blocks
    write(160 * 1024, &noise(11, 12 * 1024)); // inside written data
    discard(&v, 512 * 1024, vbs); // written data freed
    ranges.push((512 * 1024, vbs));
    discard(&v, 40 * MIB, 256 * 1024); // never written: nothing to free
    z.set_properties(&v, &Props::new().u64("volsize", new))
        .unwrap();
    let t = Instant::now();
    while dev_size(&v) != new {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "device size after grow"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    write_at(&v, 80 * MIB, &noise(12, CBT as usize)); // in the grown part
    ranges.push((80 * MIB, CBT));
    let s2 = format!("{v}@s2");
    z.snapshot([&s2], &[]).unwrap();
    let after = read_image(&v, new);

    let mut bm = BlockBitmap::new(CBT, new);
    let st = z.changed_blocks(&s2, &b1, &mut bm).unwrap();
    assert_eq!((bm.blocks(), bm.as_bytes().len()), (1536, 192));
    let got = marked(&bm);
    let diff = differing(&before, &after);
    let want = touched(&ranges, vbs, new);
    assert!(diff.contains(&80) && diff.contains(&8) && diff.contains(&1280));
    assert!(
        diff.is_subset(&got),
        "blocks that differ but are not marked: {}",
        runs(&diff.difference(&got).copied().collect())
    );
    assert!(
        want.is_subset(&got),
        "written blocks not marked: {}",
        runs(&want.difference(&got).copied().collect())
    );
    let extra: BTreeSet<u64> = got.difference(&want).copied().collect();
    let grown = (old / CBT..new / CBT).filter(|i| got.contains(i)).count();
    record_result(&format!(
        "thin volume (64 MiB grown to 96 MiB, volblocksize 128K), from a bookmark: {} of {} \
         blocks marked, written {}, extra (hole FREEs) {} {}, grown part marked {grown} of {}; \
         {st:?}",
        got.len(),
        bm.blocks(),
        runs(&want),
        extra.len(),
        runs(&extra),
        (new - old) / CBT
    ));
    record_result(&format!("  stream: {}", stream_dump(&s2, &b1)));
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn changed_blocks_errors_name_the_send_failure() {
    let p = pool("cbe", 256);
    let z = zfs();
    let v = p.ds("v");
    vol(&v, 16 * MIB);
    let (s1, s2) = (format!("{v}@s1"), format!("{v}@s2"));
    z.snapshot([&s1], &[]).unwrap();
    write_block(&v, 0, 1);
    z.snapshot([&s2], &[]).unwrap();
    let b2 = format!("{v}#b2");
    z.bookmark([(&b2, &s2)]).unwrap();
    let w = p.ds("w");
    vol(&w, 16 * MIB);
    let ws = format!("{w}@s");
    z.snapshot([&ws], &[]).unwrap();
    let check = |to: &str, from: &str, errno: i32, why: &str| {
        let mut bm = BlockBitmap::new(CBT, 16 * MIB);
        let e = expect_err(z.changed_blocks(to, from, &mut bm), errno, &[to, from, why]);
        assert!(
            matches!(e, Error::Zfs { .. }),
            "the send's error, not the stream's: {e:?}"
        );
        assert_eq!(bm.count(), 256, "an error leaves every bit set");
    };
    let missing = format!("{v}@missing");
    check(&s2, &missing, libc::ENOENT, "no such snapshot or bookmark");
    // A missing bookmark is ESRCH (dsl_bookmark_lookup), not ENOENT.
    check(
        &s2,
        &format!("{v}#missing"),
        libc::ESRCH,
        "no such bookmark",
    );
    check(&format!("{v}@gone"), &s1, libc::ENOENT, "no such");
    // From a newer point than `to`.
    check(&s1, &s2, libc::EXDEV, "not an earlier snapshot or bookmark");
    check(&s1, &b2, libc::EXDEV, "not an earlier");
    // From another volume.
    check(&s2, &ws, libc::EXDEV, "not an earlier");
    // Names refused before lzc: a NUL, a live volume as either point (lzc_send would send
    // the live volume for `to`).
    for (to, from) in [("bad\0name@s", s1.as_str()), (&v, &s1), (&s2, &v)] {
        let mut bm = BlockBitmap::new(CBT, 16 * MIB);
        let r = z.changed_blocks(to, from, &mut bm);
        assert!(
            matches!(r, Err(Error::Invalid { .. })),
            "{to} {from}: {r:?}"
        );
        assert_eq!(bm.count(), 256, "an error leaves every bit set");
    }
    // After all that, it works (no thread or descriptor left in a bad state).
    let mut bm = BlockBitmap::new(CBT, 16 * MIB);
    z.changed_blocks(&s2, &s1, &mut bm).unwrap();
    assert!(bm.is_set(0), "{bm:?}");
}

/// A field of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn changed_blocks_of_a_2gib_sparse_volume_in_little_memory() {
    // Alone in this binary, so that the memory measured is this call's.
    let _alone = SERIAL.write().unwrap_or_else(|e| e.into_inner());
    let p = TestPool::new("cbm", 512);
    let z = zfs();
    let v = p.ds("v");
    let size = 2 * GIB;
    vol(&v, size);
    write_at(&v, 0, &noise(1, 4096));
    write_at(&v, size - 8192, &noise(2, 8192));
    let (s1, b1) = (format!("{v}@s1"), format!("{v}#b1"));
    z.snapshot([&s1], &[]).unwrap();
    z.bookmark([(&b1, &s1)]).unwrap();
    z.destroy(&s1).unwrap();
    let big = 16 * MIB;
    write_at(&v, 512 * MIB + 4096, &noise(3, 4096));
    write_at(&v, GIB, &noise(4, big as usize));
    let s2 = format!("{v}@s2");
    z.snapshot([&s2], &[]).unwrap();

    let mut bm = BlockBitmap::new(CBT, size);
    // Peak RSS from now on (5 resets VmHWM, Linux 4.0+).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let rss = status_kib("VmRSS:");
    let t = Instant::now();
    let st = z.changed_blocks(&s2, &b1, &mut bm).unwrap();
    let took = t.elapsed();
    let peak = status_kib("VmHWM:");
    assert_eq!((bm.blocks(), bm.as_bytes().len()), (32768, 4096));
    let got = marked(&bm);
    let want: BTreeSet<u64> = std::iter::once(512 * MIB / CBT)
        .chain(GIB / CBT..(GIB + big) / CBT)
        .collect();
    assert!(
        want.is_subset(&got),
        "written blocks not marked: {}",
        runs(&want.difference(&got).copied().collect())
    );
    let extra: BTreeSet<u64> = got.difference(&want).copied().collect();
    // The same stream through the CLI into a pipe, for scale (the test build is unoptimised).
    let t = Instant::now();
    let cli = run(
        "sh",
        &["-c", &format!("zfs send -L -c -e -i {b1} {s2} | wc -c")],
    );
    let cli_took = t.elapsed();
    record_result(&format!(
        "2 GiB thin volume, 16 MiB + 4 KiB written: {} of {} blocks marked, extra {} {}; \
         stream {} bytes read in {took:?} (zfs send | wc -c: {} bytes in {cli_took:?}); peak \
         RSS +{} KiB over {rss} KiB; {st:?}",
        got.len(),
        bm.blocks(),
        extra.len(),
        runs(&extra),
        st.bytes,
        cli.trim(),
        peak.saturating_sub(rss)
    ));
    assert!(st.bytes > big, "{st:?}");
    assert!(
        peak.saturating_sub(rss) < 16 << 10,
        "reading a {} byte stream raised the peak RSS from {rss} to {peak} KiB",
        st.bytes
    );
}

// ---------------------------------------------------------------------------------------
// sync, pool_status

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn sync_pool() {
    let p = pool("syn", 256);
    let z = zfs();
    z.sync(&p.name, true).unwrap();
    z.sync(&p.name, false).unwrap();
    expect_err(z.sync("nosuchpool", true), libc::ENOENT, &["nosuchpool"]);
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn pool_status_health_and_top_vdevs() {
    let z = zfs();
    let cases: Vec<(&[&str], usize, Vec<TopVdev>)> = vec![
        (
            &[],
            1,
            vec![TopVdev {
                nparity: 0,
                children: 0,
                ashift: 9,
                raidz: false,
            }],
        ),
        (
            &[],
            2,
            vec![
                TopVdev {
                    nparity: 0,
                    children: 0,
                    ashift: 9,
                    raidz: false
                };
                2
            ],
        ),
        (
            &["mirror"],
            2,
            vec![TopVdev {
                nparity: 0,
                children: 2,
                ashift: 9,
                raidz: false,
            }],
        ),
        (
            &["raidz1"],
            3,
            vec![TopVdev {
                nparity: 1,
                children: 3,
                ashift: 9,
                raidz: true,
            }],
        ),
        (
            &["raidz2"],
            5,
            vec![TopVdev {
                nparity: 2,
                children: 5,
                ashift: 9,
                raidz: true,
            }],
        ),
    ];
    for (kind, n, want) in cases {
        let p = layout("pst", 128, &[], kind, n);
        let st = z.pool_status(&p.name).unwrap();
        assert_eq!(st.health, PoolHealth::Online, "{kind:?}");
        assert_eq!(st.load_error, Errno(0));
        assert!(!st.resilvering);
        assert_eq!(st.top_vdevs(), want, "{kind:?} x{n}");
        assert!(matches!(st.config.get("name"), Some(NvValue::Str(s)) if *s == p.name));
    }
    // ashift is read from the config.
    let p = layout("pst", 128, &["-o", "ashift=12"], &["raidz1"], 3);
    assert_eq!(z.pool_status(&p.name).unwrap().top_vdevs()[0].ashift, 12);
    // Degraded mirror.
    let p = layout("pst", 128, &[], &["mirror"], 2);
    run("zpool", &["offline", &p.name, &p.files()[1]]);
    assert_eq!(z.pool_status(&p.name).unwrap().health, PoolHealth::Degraded);
    // Errors.
    expect_err(z.pool_status("nosuchpool"), libc::ENOENT, &["nosuchpool"]);
    assert!(matches!(
        z.pool_status(&p.ds("x")),
        Err(Error::Invalid { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// set_properties

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn set_properties_volsize_grow_is_seen_by_the_device() {
    let p = pool("spv", 512);
    let z = zfs();
    let v = p.ds("v");
    z.create_volume(&v, &VolumeSpec::new(32 * MIB).volblocksize(8192))
        .unwrap();
    assert_eq!(dev_size(&v), 32 * MIB);
    z.set_properties(&v, &Props::new().u64("volsize", 64 * MIB))
        .unwrap();
    assert_eq!(zfs_get(&v, "volsize"), (64 * MIB).to_string());
    let t = Instant::now();
    while dev_size(&v) != 64 * MIB {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "device size {} after grow",
            dev_size(&v)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Thick: volsize and refreservation in one call.
    let k = p.ds("k");
    let top = z.pool_status(&p.name).unwrap().top_vdevs();
    let r1 = thick_refreservation(32 * MIB, 8192, &top, 1);
    z.create_volume(
        &k,
        &VolumeSpec::new(32 * MIB)
            .volblocksize(8192)
            .refreservation(r1),
    )
    .unwrap();
    let r2 = thick_refreservation(96 * MIB, 8192, &top, 1);
    z.set_properties(
        &k,
        &Props::new()
            .u64("volsize", 96 * MIB)
            .u64("refreservation", r2),
    )
    .unwrap();
    assert_eq!(zfs_get(&k, "volsize"), (96 * MIB).to_string());
    assert_eq!(zfs_get(&k, "refreservation"), r2.to_string());
    // A size that is not a multiple of the block size.
    expect_err(
        z.set_properties(&v, &Props::new().u64("volsize", 64 * MIB + 512)),
        libc::EINVAL,
        &[&v, "volsize"],
    );
    assert_eq!(zfs_get(&v, "volsize"), (64 * MIB).to_string());
    // Growing past what the reservation can hold.
    expect_err(
        z.set_properties(
            &k,
            &Props::new()
                .u64("volsize", 2 * GIB)
                .u64("refreservation", 2 * GIB),
        ),
        libc::ENOSPC,
        &[&k, "refreservation"],
    );
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn set_properties_readonly_volmode_user_and_errors() {
    let p = pool("spr", 256);
    let z = zfs();
    let v = p.ds("v");
    vol(&v, 16 * MIB);
    settle();
    assert!(writable(&v));
    z.set_properties(&v, &Props::new().readonly(true)).unwrap();
    assert_eq!(zfs_get(&v, "readonly"), "on");
    settle();
    assert!(!writable(&v), "readonly=on makes the device unwritable");
    z.set_properties(&v, &Props::new().readonly(false)).unwrap();
    settle();
    assert!(writable(&v), "readonly=off makes it writable again");
    // volmode=none hides the device; dev brings it back. (udev re-probes a device after
    // a write: let it finish, an open zvol keeps its minor.)
    settle();
    z.set_properties(&v, &Props::new().volmode(VolMode::None))
        .unwrap();
    assert_eq!(zfs_get(&v, "volmode"), "none");
    assert!(wait_no_dev(&v), "volmode=none removes the device");
    z.set_properties(&v, &Props::new().volmode(VolMode::Dev))
        .unwrap();
    assert_eq!(zfs_get(&v, "volmode"), "dev");
    wait_dev(&v);
    // User properties and string native ones, several in one call.
    z.set_properties(
        &v,
        &Props::new()
            .user("xz:a", "1")
            .user("xz:b", "two words")
            .compression(Compression::Zle),
    )
    .unwrap();
    assert_eq!(zfs_get(&v, "xz:a"), "1");
    assert_eq!(zfs_get(&v, "xz:b"), "two words");
    assert_eq!(zfs_get(&v, "compression"), "zle");
    // Empty set: no-op.
    z.set_properties(&v, &Props::new()).unwrap();
    // Bad values name the property.
    expect_err(
        z.set_properties(&v, &Props::new().u64("volmode", 99)),
        libzfs_core_sys::ZFS_ERR_BADPROP as i32,
        &[&v, "volmode"],
    );
    expect_err(
        z.set_properties(&v, &Props::new().u64("nosuchprop", 1)),
        libc::EINVAL,
        &[&v, "nosuchprop"],
    );
    expect_err(
        z.set_properties(&v, &Props::new().string("compression", "lz4")),
        libc::EINVAL,
        &[&v, "compression"],
    );
    let m = p.ds("missing");
    expect_err(
        z.set_properties(&m, &Props::new().user("xz:a", "1")),
        libc::ENOENT,
        &[&m],
    );
    // Read-only and create-only properties are refused before reaching the kernel (which
    // would store them).
    let vbs = zfs_get(&v, "volblocksize");
    for ro in ["used", "volblocksize", "guid"] {
        match z.set_properties(&v, &Props::new().u64(ro, 16384)) {
            Err(Error::Invalid { reason, .. }) => {
                assert!(reason.contains(ro) && reason.contains(&v), "{reason}")
            }
            other => panic!("{ro} must be refused: {other:?}"),
        }
    }
    assert_eq!(zfs_get(&v, "volblocksize"), vbs);
    // Not atomic: a bad value does not stop the other (generic) properties of the call.
    let e = z
        .set_properties(
            &v,
            &Props::new().user("xz:partial", "yes").u64("volmode", 99),
        )
        .unwrap_err();
    assert!(e.is_errno(libzfs_core_sys::ZFS_ERR_BADPROP as i32), "{e}");
    assert_eq!(
        zfs_get(&v, "xz:partial"),
        "yes",
        "documented: set_properties is not atomic"
    );
}

// ---------------------------------------------------------------------------------------
// get_properties, user_properties, update_user_properties

/// A filesystem `f` (compression=lz4, user property xz:inh=parent) holding a 16 MiB volume
/// `f/v` (volblocksize 8K, its own xz:loc=mine): properties set locally and inherited.
fn properties_fixture(p: &Pool) -> (String, String) {
    let f = p.ds("f");
    fs(&f);
    let v = p.ds("f/v");
    zfs()
        .create_volume(&v, &VolumeSpec::new(16 * MIB).volblocksize(8192))
        .unwrap();
    run("zfs", &["set", "compression=lz4", &f]);
    run("zfs", &["set", "xz:inh=parent", &f]);
    run("zfs", &["set", "xz:loc=mine", &v]);
    (f, v)
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn get_properties_values_and_sources() {
    let p = pool("gpr", 256);
    let z = zfs();
    let (f, v) = properties_fixture(&p);
    let got = z.get_properties(
        &v,
        [
            "volsize",
            "volblocksize",
            "compression",
            "refreservation",
            "xz:inh",
            "mountpoint",
        ],
    );
    let got = got.unwrap();
    assert!(
        !got.contains_key("mountpoint"),
        "a property that does not apply to a volume is left out: {got:?}"
    );
    eprintln!("{got:?}");
    assert_eq!(got["volsize"].as_u64(), Some(16 * MIB));
    assert_eq!(got["volblocksize"].as_u64(), Some(8192));
    assert_eq!(got["compression"].as_str(), Some("lz4"));
    assert_eq!(
        got["compression"].source, f,
        "inherited: source is the ancestor"
    );
    assert_eq!(got["refreservation"].as_u64(), Some(0));
    run("zfs", &["set", "compression=zle", &v]);
    let got = z.get_properties(&v, ["compression"]).unwrap();
    assert_eq!(got["compression"].as_str(), Some("zle"));
    assert_eq!(
        got["compression"].source, v,
        "local: source is the dataset itself"
    );
    // user_properties: local vs inherited.
    let u = z.user_properties(&v).unwrap();
    assert_eq!(u["xz:loc"].value, PropValue::Str("mine".into()));
    assert_eq!(u["xz:loc"].source, v);
    assert_eq!(u["xz:inh"].value, PropValue::Str("parent".into()));
    assert_eq!(u["xz:inh"].source, f);
    // Snapshots too.
    z.snapshot([&format!("{v}@s")], &[("xz:snap", "1")])
        .unwrap();
    let s = z
        .get_properties(&format!("{v}@s"), ["createtxg", "used"])
        .unwrap();
    assert!(s["createtxg"].as_u64().unwrap() > 0);
    assert_eq!(
        z.user_properties(&format!("{v}@s")).unwrap()["xz:snap"].value,
        PropValue::Str("1".into())
    );
    // Missing dataset.
    let m = p.ds("missing");
    expect_err(
        z.get_properties(&m, ["volsize"]),
        libc::ENOENT,
        &[&m, "does not exist"],
    );
    expect_err(
        z.get_properties(&v, ["volsize", "nosuch"]),
        libc::EINVAL,
        &[&v, "nosuch", "not a valid property"],
    );
    expect_err(z.user_properties(&m), libc::ENOENT, &[&m]);
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn objset_properties_read_everything_and_write_no_history() {
    let p = pool("osp", 256);
    let z = zfs();
    let (f, v) = properties_fixture(&p);
    z.snapshot([&format!("{v}@s")], &[]).unwrap();
    let c = p.ds("f/c");
    z.clone(&c, &format!("{v}@s"), &Props::new()).unwrap();

    let got = z.objset_properties(&c).unwrap();
    // Read-only values, with no source.
    assert_eq!(
        got["origin"].as_str(),
        Some(format!("{v}@s").as_str()),
        "{got:?}"
    );
    assert_eq!(got["volsize"].as_u64(), Some(16 * MIB), "{got:?}");
    // Index properties as their numbers, with the ancestor that set them.
    assert_eq!(
        got["compression"].as_u64(),
        Some(Compression::Lz4.index()),
        "{got:?}"
    );
    assert_eq!(got["compression"].source, f);
    // User properties: inherited from f; v's own is not the clone's.
    assert_eq!(got["xz:inh"].as_str(), Some("parent"));
    assert_eq!(got["xz:inh"].source, f);
    assert!(!got.contains_key("xz:loc"), "{got:?}");
    let got = z.objset_properties(&v).unwrap();
    assert_eq!(got["xz:loc"].as_str(), Some("mine"));
    assert_eq!(got["xz:loc"].source, v);
    assert!(!got.contains_key("origin"), "not a clone: {got:?}");
    // local_properties is the part set on the dataset itself.
    let local = z.local_properties(&v).unwrap();
    assert_eq!(
        local.iter().find(|(k, _)| *k == "xz:loc").map(|(_, v)| v),
        Some(&PropValue::Str("mine".into()))
    );
    assert!(local
        .iter()
        .all(|(k, _)| k != "compression" && k != "xz:inh"));

    // Not written into the pool's history, where a channel program is (zfs-facts §1.7). A
    // record is written when its txg syncs: the pool is synced before each look.
    let history = || {
        z.sync(&p.name, true).unwrap();
        run("zpool", &["history", "-il", &p.name]).len()
    };
    let before = history();
    for _ in 0..10 {
        z.objset_properties(&c).unwrap();
    }
    assert_eq!(
        history(),
        before,
        "objset_properties wrote to the pool's history"
    );
    z.get_properties(&c, ["volsize"]).unwrap();
    assert!(
        history() > before,
        "a channel program is written into the history (the reason for this read)"
    );

    let m = p.ds("missing");
    expect_err(z.objset_properties(&m), libc::ENOENT, &[&m]);
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn update_user_properties_is_atomic() {
    let p = pool("uup", 256);
    let z = zfs();
    let v = p.ds("v");
    vol(&v, 16 * MIB);
    z.update_user_properties(&v, &[("xz:a", "1"), ("xz:b", "2")], &[])
        .unwrap();
    assert_eq!(zfs_get(&v, "xz:a"), "1");
    z.update_user_properties(&v, &[("xz:c", "3")], &["xz:a", "xz:never"])
        .unwrap();
    assert_eq!(zfs_get(&v, "xz:a"), "-", "unset");
    assert_eq!(zfs_get(&v, "xz:b"), "2");
    assert_eq!(zfs_get(&v, "xz:c"), "3");
    // A name without ':' is refused before anything happens.
    match z.update_user_properties(&v, &[("xz:d", "4"), ("nocolon", "x")], &["xz:b"]) {
        Err(Error::Invalid { what, reason }) => {
            assert!(reason.contains("nocolon"), "{what}: {reason}")
        }
        other => panic!("expected Invalid: {other:?}"),
    }
    // A name the kernel refuses (upper case): nothing changes either.
    expect_err(
        z.update_user_properties(&v, &[("xz:d", "4"), ("xz:BAD", "x")], &["xz:b"]),
        libc::EINVAL,
        &[&v, "xz:BAD"],
    );
    assert_eq!(zfs_get(&v, "xz:d"), "-");
    assert_eq!(zfs_get(&v, "xz:b"), "2");
    let m = p.ds("missing");
    expect_err(
        z.update_user_properties(&m, &[("xz:a", "1")], &[]),
        libc::ENOENT,
        &[&m],
    );
}

// ---------------------------------------------------------------------------------------
// program_sync, program_nosync, capabilities

static ECHO: Program = Program::from_static(
    "echo",
    r#"local a = ...
return { s = a.s, n = a.n + 1, b = not a.b, l = a.l.k, count = #a.arr, first = a.arr[1], i2 = a.ia[2],
         nested = { x = 1, y = "z" } }"#,
);

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn programs_typed_args_and_output() {
    let p = pool("prg", 256);
    let z = zfs();
    let mut inner = NvList::new().unwrap();
    inner.add_string("k", "v").unwrap();
    let mut args = NvList::new().unwrap();
    args.add_string("s", "x").unwrap();
    args.add_int64("n", 41).unwrap();
    args.add_boolean_value("b", false).unwrap();
    args.add_nvlist("l", &inner).unwrap();
    args.add_string_array("arr", &["p", "q", "r"]).unwrap();
    args.add_int64_array("ia", &[5, 6]).unwrap();
    for sync in [false, true] {
        let out = if sync {
            z.program_sync(&p.name, &ECHO, &args, Limits::default())
        } else {
            z.program_nosync(&p.name, &ECHO, &args, Limits::default())
        }
        .unwrap();
        let NvValue::List(t) = out else {
            panic!("{out:?}")
        };
        assert_eq!(t.get("s"), Some(&NvValue::Str("x".into())));
        assert_eq!(t.get("n"), Some(&NvValue::I64(42)));
        assert_eq!(t.get("b"), Some(&NvValue::Bool(true)));
        assert_eq!(t.get("l"), Some(&NvValue::Str("v".into())));
        assert_eq!(t.get("count"), Some(&NvValue::I64(3)));
        assert_eq!(t.get("first"), Some(&NvValue::Str("p".into())));
        assert_eq!(t.get("i2"), Some(&NvValue::I64(6)));
        let Some(NvValue::List(n)) = t.get("nested") else {
            panic!("{t:?}")
        };
        assert_eq!(n.get("y"), Some(&NvValue::Str("z".into())));
    }
    // No return value.
    let none = Program::new("none", "local x = 1");
    assert_eq!(
        z.program_nosync(&p.name, &none, &NvList::new().unwrap(), Limits::default())
            .unwrap(),
        NvValue::Flag
    );
    // A sync program changes things in one txg.
    let v = p.ds("v");
    vol(&v, 16 * MIB);
    let snap2 = Program::new(
        "snap2",
        "local a = ... ; local e = zfs.sync.snapshot(a.s) ; return e",
    );
    let mut a = NvList::new().unwrap();
    a.add_string("s", &format!("{v}@cp")).unwrap();
    assert_eq!(
        z.program_sync(&p.name, &snap2, &a, Limits::default())
            .unwrap(),
        NvValue::I64(0)
    );
    assert!(z.exists(&format!("{v}@cp")));
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn program_errors() {
    let p = pool("pge", 256);
    let z = zfs();
    let empty = NvList::new().unwrap();
    // Lua runtime error: the message comes back.
    let boom = Program::new("boom", "error('boom: the frobnicator is missing')");
    let e = expect_err(
        z.program_nosync(&p.name, &boom, &empty, Limits::default()),
        libc::ECHRNG,
        &["boom", &p.name],
    );
    assert!(e.to_string().contains("the frobnicator is missing"), "{e}");
    assert!(matches!(e, Error::Program { .. }));
    // Compile error.
    let bad = Program::new("bad", "this is not lua");
    let e = expect_err(
        z.program_sync(&p.name, &bad, &empty, Limits::default()),
        libc::EINVAL,
        &["bad", &p.name],
    );
    assert!(matches!(e, Error::Program { .. }));
    // Instruction limit.
    let spin = Program::new("spin", "while true do end");
    expect_err(
        z.program_nosync(
            &p.name,
            &spin,
            &empty,
            Limits {
                instructions: 10_000,
                memory: 10 << 20,
            },
        ),
        libc::ETIME,
        &["spin", "instruction limit"],
    );
    // Memory limit.
    let hog = Program::new(
        "hog",
        "local t = {} for i = 1, 10000000 do t[i] = string.rep('x', 100) .. i end",
    );
    let e = z
        .program_nosync(
            &p.name,
            &hog,
            &empty,
            Limits {
                instructions: 100_000_000,
                memory: 1 << 20,
            },
        )
        .unwrap_err();
    eprintln!("memory limit: {e}");
    expect_err(Err::<(), _>(e), libc::ENOSPC, &["hog", "memory"]);
    // A sync function in a nosync program.
    let snap = Program::new("nosyncsnap", "return zfs.sync.snapshot('x@y')");
    let e = z
        .program_nosync(&p.name, &snap, &empty, Limits::default())
        .unwrap_err();
    eprintln!("sync call in nosync program: {e}");
    assert!(matches!(e, Error::Program { .. }), "{e:?}");
    // A uint64 argument is not accepted by channel programs.
    let mut a = NvList::new().unwrap();
    a.add_uint64("u", 1).unwrap();
    let e = z
        .program_nosync(&p.name, &ECHO, &a, Limits::default())
        .unwrap_err();
    eprintln!("uint64 argument: {e}");
    assert!(e.is_errno(libc::EINVAL), "{e}");
    // Limits refused before the call / by the kernel.
    assert!(matches!(
        z.program_nosync(
            &p.name,
            &ECHO,
            &empty,
            Limits {
                instructions: 0,
                memory: 1 << 20
            }
        ),
        Err(Error::Invalid { .. })
    ));
    for l in [
        Limits {
            instructions: 10_000,
            memory: 1 << 40,
        },
        Limits {
            instructions: 1 << 40,
            memory: 1 << 20,
        },
    ] {
        match z.program_nosync(&p.name, &spin, &empty, l) {
            Err(Error::Invalid { reason, .. }) => {
                assert!(reason.contains("zfs_lua_max"), "{reason}")
            }
            other => panic!("limits above the module maximum must be refused: {other:?}"),
        }
    }
    // No such pool.
    expect_err(
        z.program_nosync("nosuchpool", &ECHO, &empty, Limits::default()),
        libc::ENOENT,
        &["nosuchpool"],
    );
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn capabilities_match_the_module_version() {
    let p = pool("cap", 128);
    let ver = std::fs::read_to_string("/sys/module/zfs/version")
        .unwrap()
        .trim()
        .to_string();
    let caps = zfs().capabilities().unwrap();
    eprintln!("capabilities: {caps:?}");
    assert_eq!(caps.version, ver);
    assert_eq!(caps.numeric, parse_version(&ver));
    let (maj, min, _) = caps.numeric;
    assert_eq!(maj, 2);
    assert_eq!(caps.sync_clone, min >= 4, "zfs.sync.clone from 2.4");
    assert_eq!(
        caps.sync_rename_snapshot,
        min >= 2,
        "zfs.sync.rename_snapshot from 2.2"
    );
    if ver.starts_with("2.1") {
        assert!(!caps.sync_clone);
    }
    if ver.starts_with("2.4") {
        assert!(caps.sync_clone);
    }
    // Cached: the same answer for another call.
    assert!(std::ptr::eq(caps, zfs().capabilities().unwrap()));
    // The version table is what the kernel really has (the probe looks the functions up).
    let probed = zfs().probe_capabilities(&p.name).unwrap();
    assert_eq!(
        &probed, caps,
        "capabilities from the version table differ from the kernel's"
    );
}

// ---------------------------------------------------------------------------------------
// thick_refreservation vs `zfs create -V` (non-sparse)

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn thick_refreservation_equals_zfs_create() {
    let z = zfs();
    let ver = module_version().unwrap();
    let layouts: Vec<(&str, &[&str], &[&str], usize)> = vec![
        ("stripe", &[], &[], 1),
        ("stripe-a12", &["-o", "ashift=12"], &[], 2),
        ("mirror", &[], &["mirror"], 2),
        ("raidz1-3", &[], &["raidz1"], 3),
        ("raidz1-3-a12", &["-o", "ashift=12"], &["raidz1"], 3),
        ("raidz2-4", &[], &["raidz2"], 4),
        ("raidz2-5-a12", &["-o", "ashift=12"], &["raidz2"], 5),
    ];
    let sizes = [64 * MIB, GIB, 5 * GIB + 384 * 1024];
    let blocks = [4096u64, 8192, 16384, 65536, 131072];
    let mut table = vec![
        format!("# thick_refreservation vs zfs create -V (zfs {ver})"),
        "layout\tvolsize\tvolblocksize\tzfs_create\tlzc_formula\tequal".to_string(),
    ];
    let mut mismatches = vec![];
    for (lname, opts, kind, n) in layouts {
        let p = layout("trf", 16 * 1024, opts, kind, n);
        let top = z.pool_status(&p.name).unwrap().top_vdevs();
        for size in sizes {
            for b in blocks {
                let ds = p.ds(&format!("v{size}-{b}"));
                run(
                    "zfs",
                    &[
                        "create",
                        "-V",
                        &size.to_string(),
                        "-o",
                        &format!("volblocksize={b}"),
                        &ds,
                    ],
                );
                let cli: u64 = zfs_get(&ds, "refreservation").parse().unwrap();
                let ours = thick_refreservation(size, b, &top, 1);
                table.push(format!(
                    "{lname}\t{size}\t{b}\t{cli}\t{ours}\t{}",
                    cli == ours
                ));
                if cli != ours {
                    mismatches.push(format!("{lname} {size} {b}: cli {cli} ours {ours}"));
                }
                settle();
                let _ = z.destroy(&ds);
            }
        }
        // And through lzc: what we pass is what ZFS keeps.
        let ds = p.ds("lzc");
        let r = thick_refreservation(GIB, 16384, &top, 1);
        z.create_volume(
            &ds,
            &VolumeSpec::new(GIB).volblocksize(16384).refreservation(r),
        )
        .unwrap();
        assert_eq!(zfs_get(&ds, "refreservation"), r.to_string());
    }
    let text = table.join("\n") + "\n";
    eprintln!("{text}");
    let out = format!(
        "{}/../target/refres-{}.txt",
        env!("CARGO_MANIFEST_DIR"),
        ver
    );
    let _ = std::fs::write(&out, &text);
    assert!(
        mismatches.is_empty(),
        "thick_refreservation differs from zfs create -V:\n{}",
        mismatches.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// threads

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn zfs_is_send_sync_and_works_from_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Zfs>();
    assert_send_sync::<&'static Zfs>();
    let p = pool("thr", 256);
    let dss: Vec<String> = (0..4).map(|i| p.ds(&format!("t{i}"))).collect();
    for d in &dss {
        vol(d, 8 * MIB);
    }
    let z = zfs();
    std::thread::scope(|sc| {
        for d in &dss {
            sc.spawn(move || {
                for i in 0..5 {
                    z.snapshot([&format!("{d}@s{i}")], &[("xz:i", &i.to_string())])
                        .unwrap();
                    assert!(z.exists(&format!("{d}@s{i}")));
                    let _ = z.get_properties(d, ["used"]).unwrap();
                }
            });
        }
        // Meanwhile a reader.
        sc.spawn(|| {
            for _ in 0..20 {
                z.pool_status(&p.name).unwrap();
                z.user_properties(&dss[0]).unwrap();
            }
        });
    });
    for d in &dss {
        let snaps: Vec<_> = zfs_list_all(d)
            .into_iter()
            .filter(|n| n.contains('@'))
            .collect();
        assert_eq!(snaps.len(), 5, "{snaps:?}");
    }
    // And Zfs::get from many threads at once gives one handle.
    let ptrs: Vec<usize> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| sc.spawn(|| Zfs::get().unwrap() as *const Zfs as usize))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ptrs.windows(2).all(|w| w[0] == w[1]));
}

// ---------------------------------------------------------------------------------------
// latency (prints, never asserts timing)

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn bench_lzc_snapshot_vs_cli() {
    let _alone = SERIAL.write().unwrap_or_else(|e| e.into_inner());
    let p = TestPool::new("bench", 256);
    let z = zfs();
    let v = p.ds("v");
    vol(&v, 64 * MIB);
    const N: usize = 30;
    for i in 0..3 {
        z.snapshot([&format!("{v}@w{i}")], &[]).unwrap();
        run("zfs", &["snapshot", &format!("{v}@cw{i}")]);
    }
    let mut lzc = vec![];
    let mut cli = vec![];
    for i in 0..N {
        let s = format!("{v}@l{i}");
        let t = Instant::now();
        z.snapshot([&s], &[]).unwrap();
        lzc.push(t.elapsed());
        let s = format!("{v}@c{i}");
        let t = Instant::now();
        let st = Command::new("zfs").args(["snapshot", &s]).status().unwrap();
        cli.push(t.elapsed());
        assert!(st.success());
    }
    let (lm, ln, lx) = stats(lzc);
    let (cm, cn, cx) = stats(cli);
    let ver = module_version().unwrap();
    let line = format!(
        "lzc-vs-cli: lzc_snapshot median {lm} us ({ln}, {lx}) ; zfs snapshot median {cm} us ({cn}, {cx}) ; ratio Y/X {:.2} [zfs {ver}, n={N}]",
        cm as f64 / lm as f64
    );
    eprintln!("{line}");
    let out = format!(
        "{}/../target/bench-lzc-{ver}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

// ---------------------------------------------------------------------------------------
// list, typed property reads, batch errors, the program conventions, the examples (issue 17)

/// A tree to list: `p/t` (filesystem) holding volume `a` with two marked snapshots and a
/// bookmark, and filesystem `f` holding volume `b`. Returns (t, a, f, b).
fn list_tree(p: &TestPool) -> (String, String, String, String) {
    let z = zfs();
    let (t, a, f, b) = (p.ds("t"), p.ds("t/a"), p.ds("t/f"), p.ds("t/f/b"));
    fs(&t);
    vol(&a, 16 * MIB);
    fs(&f);
    vol(&b, 8 * MIB);
    z.snapshot([format!("{a}@s1")], &[("xz:tag", "one")])
        .unwrap();
    z.snapshot([format!("{a}@s2")], &[("xz:tag", "two")])
        .unwrap();
    z.bookmark([(format!("{a}#b1"), format!("{a}@s1"))])
        .unwrap();
    (t, a, f, b)
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn list_a_missing_dataset_is_enoent_before_any_lua() {
    let p = pool("lsm", 256);
    let z = zfs();
    let all = ListOptions::new()
        .itself(true)
        .children(true)
        .recursive(true)
        .snapshots(true)
        .bookmarks(true)
        .props(["used"]);
    let m = p.ds("missing");
    let e = expect_err(
        z.list(&m, &all),
        libc::ENOENT,
        &["cannot list", &m, "dataset does not exist"],
    );
    assert!(matches!(e, Error::Zfs { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("cannot list {m}: dataset does not exist (ENOENT)")
    );
    // A pool that is not imported: the same sentence, no channel-program error.
    let e = expect_err(
        z.list("xznosuchpool/x", &all),
        libc::ENOENT,
        &["xznosuchpool/x"],
    );
    assert!(!e.to_string().contains("traceback"), "{e}");
    // A name that is not a property: EINVAL naming it, not a Lua trace.
    fs(&p.ds("f"));
    let e = expect_err(
        z.list(
            &p.name,
            &ListOptions::new().children(true).props(["nosuchprop"]),
        ),
        libc::EINVAL,
        &["nosuchprop", "not a valid property"],
    );
    assert!(!e.to_string().contains("traceback"), "{e}");
    // Snapshot and bookmark names are refused before any ioctl.
    for n in [format!("{}@s", p.name), format!("{}#b", p.name)] {
        assert!(
            matches!(z.list(&n, &all), Err(Error::Invalid { .. })),
            "{n}"
        );
    }
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn list_children_snapshots_bookmarks_with_properties() {
    let p = pool("lst", 256);
    let z = zfs();
    let (t, a, f, b) = list_tree(&p);
    let names = |v: &[ListEntry]| v.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    let kind_of = |v: &[ListEntry], n: &str| v.iter().find(|e| e.name == n).map(|e| e.kind);

    // Direct children only, with their kinds.
    let c = z.list(&t, &ListOptions::new().children(true)).unwrap();
    let mut got = names(&c);
    got.sort();
    assert_eq!(got, vec![a.clone(), f.clone()]);
    assert_eq!(kind_of(&c, &a), Some(DatasetKind::Volume));
    assert_eq!(kind_of(&c, &f), Some(DatasetKind::Filesystem));
    assert!(c.iter().all(|e| e.props.is_empty()));

    // Recursive: the grandchild too.
    let r = z
        .list(&t, &ListOptions::new().children(true).recursive(true))
        .unwrap();
    assert!(names(&r).contains(&b), "{:?}", names(&r));
    assert_eq!(kind_of(&r, &b), Some(DatasetKind::Volume));

    // Snapshots with native and user properties, typed.
    let props = ["createtxg", "guid", "xz:tag", "used"];
    let mut s = z
        .list(&a, &ListOptions::new().snapshots(true).props(props))
        .unwrap();
    s.sort_by_key(|e| e.get_u64("createtxg"));
    assert_eq!(names(&s), [format!("{a}@s1"), format!("{a}@s2")]);
    for (e, tag) in s.iter().zip(["one", "two"]) {
        assert_eq!(e.kind, DatasetKind::Snapshot);
        assert_eq!(e.dataset(), a);
        assert_eq!(e.get_str("xz:tag"), Some(tag));
        // Set on the snapshot itself: the source is its own name.
        assert_eq!(e.get("xz:tag").unwrap().source, e.name);
        assert_eq!(
            e.get_u64("createtxg").unwrap().to_string(),
            zfs_get(&e.name, "createtxg")
        );
        // A guid above i64::MAX arrives negative from Lua: read back as the u64 it is.
        assert_eq!(
            e.get_u64("guid").unwrap().to_string(),
            zfs_get(&e.name, "guid")
        );
        assert!(e.get_u64("used").is_some());
    }

    // Bookmarks, with the properties a bookmark has.
    let bm = z
        .list(
            &a,
            &ListOptions::new()
                .bookmarks(true)
                .props(["createtxg", "guid", "volsize"]),
        )
        .unwrap();
    assert_eq!(names(&bm), [format!("{a}#b1")]);
    assert_eq!(bm[0].kind, DatasetKind::Bookmark);
    assert_eq!(bm[0].short_name(), "b1");
    assert_eq!(bm[0].get_u64("createtxg"), s[0].get_u64("createtxg"));
    assert_eq!(bm[0].get_u64("guid"), s[0].get_u64("guid"));
    assert_eq!(bm[0].get_u64("volsize"), None, "not a bookmark property");

    // Everything, as zfs list -t all -r sees it, each dataset before what it holds.
    let all = z
        .list(
            &t,
            &ListOptions::new()
                .itself(true)
                .children(true)
                .recursive(true)
                .snapshots(true)
                .bookmarks(true)
                .props(["volsize", "mountpoint"]),
        )
        .unwrap();
    let got = names(&all);
    let mut sorted = got.clone();
    sorted.sort();
    let mut want = zfs_list_all(&t);
    want.extend(
        run(
            "zfs",
            &["list", "-H", "-t", "bookmark", "-o", "name", "-r", &t],
        )
        .lines()
        .map(String::from),
    );
    want.sort();
    want.dedup();
    assert_eq!(sorted, want);
    assert_eq!(got[0], t);
    let pos = |n: &str| got.iter().position(|x| x == n).unwrap();
    assert!(pos(&a) < pos(&format!("{a}@s1")) && pos(&a) < pos(&format!("{a}#b1")));
    assert!(pos(&f) < pos(&b));
    for e in &all {
        match e.kind {
            DatasetKind::Volume => assert!(e.get_u64("volsize").is_some(), "{}", e.name),
            DatasetKind::Filesystem => {
                assert_eq!(e.get_u64("volsize"), None, "{}", e.name);
                assert_eq!(e.get_str("mountpoint"), Some("none"), "{}", e.name);
            }
            DatasetKind::Bookmark => assert!(e.props.is_empty(), "{}", e.name),
            DatasetKind::Snapshot => {}
        }
    }

    // Nothing to list is an empty list.
    assert!(z
        .list(&f, &ListOptions::new().snapshots(true).bookmarks(true))
        .unwrap()
        .is_empty());
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn typed_property_reads() {
    let p = pool("tpr", 256);
    let z = zfs();
    let (t, a, _, _) = list_tree(&p);
    assert_eq!(z.get_u64(&a, "volsize").unwrap(), Some(16 * MIB));
    assert_eq!(z.get_u64(&t, "volsize").unwrap(), None, "not a volume");
    assert_eq!(
        z.get_string(&format!("{a}@s1"), "xz:tag")
            .unwrap()
            .as_deref(),
        Some("one")
    );
    assert_eq!(z.get_string(&a, "xz:never").unwrap(), None);
    assert_eq!(
        z.get_string(&a, "compression").unwrap(),
        Some(zfs_get(&a, "compression"))
    );
    assert!(matches!(
        z.get_u64(&a, "compression"),
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        z.get_string(&a, "volsize"),
        Err(Error::Invalid { .. })
    ));
    let m = p.ds("missing");
    expect_err(z.get_u64(&m, "used"), libc::ENOENT, &[&m]);
    expect_err(z.get_u64(&a, "nosuchprop"), libc::EINVAL, &["nosuchprop"]);
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn a_failed_batch_names_only_its_culprits() {
    let p = pool("bat", 256);
    let z = zfs();
    let (a, b) = (p.ds("a"), p.ds("b"));
    vol(&a, 16 * MIB);
    vol(&b, 16 * MIB);
    let (sa, sb) = (format!("{a}@s"), format!("{b}@s"));
    z.snapshot([&sa, &sb], &[]).unwrap();
    z.hold([(&sb, "keep")], None).unwrap();
    let e = expect_err(z.destroy_snapshots([&sa, &sb], false), libc::EBUSY, &[&sb]);
    assert!(!e.to_string().contains(&sa), "{e}");
    assert!(z.exists(&sa) && z.exists(&sb), "all or nothing");
    z.release([(&sb, "keep")]).unwrap();
    z.destroy_snapshots([&sa, &sb], false).unwrap();
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn program_conventions_as_documented() {
    let p = pool("pcv", 256);
    let z = zfs();
    let (t, _, _, _) = list_tree(&p);
    let empty = NvList::new().unwrap();
    let run = |src: &str, args: &NvList| {
        // Owned source: built at run time, not leaked.
        let prog = Program::new(format!("conv{}", src.len()), src.to_string());
        z.program_nosync(&p.name, &prog, args, Limits::default())
            .unwrap()
    };
    assert_eq!(run("return 7", &empty), NvValue::I64(7));
    assert_eq!(run("return 'x'", &empty), NvValue::Str("x".into()));
    assert_eq!(run("return true", &empty), NvValue::Bool(true));
    assert_eq!(run("return nil", &empty), NvValue::Flag);
    assert_eq!(run("local x = 1", &empty), NvValue::Flag);
    assert_eq!(run("return {}", &empty), NvValue::List(Default::default()));
    let arr = run("return {'a', 'b', 'c'}", &empty);
    let items: Vec<&str> = arr
        .as_lua_array()
        .unwrap()
        .into_iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(items, ["a", "b", "c"]);
    // Arguments are one table through `...`.
    let mut args = NvList::new().unwrap();
    args.add_string("dataset", &t).unwrap();
    args.add_int64("n", 41).unwrap();
    assert_eq!(
        run("local args = ... return args.dataset", &args),
        NvValue::Str(t.clone())
    );
    assert_eq!(
        run("local args = ... return args.n + 1", &args),
        NvValue::I64(42)
    );
    // A list of presence flags only arrives as an array of its names.
    let mut flags = NvList::new().unwrap();
    flags.add_boolean("x").unwrap();
    flags.add_boolean("y").unwrap();
    let got = run("return ...", &flags);
    let mut names: Vec<&str> = got
        .as_lua_array()
        .unwrap()
        .into_iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["x", "y"]);
    // The program_nosync doc example: count the children.
    let count = Program::from_static(
        "count_children",
        "local args = ...
         local n = 0
         for _ in zfs.list.children(args.dataset) do n = n + 1 end
         return n",
    );
    let mut a = NvList::new().unwrap();
    a.add_string("dataset", &t).unwrap();
    let out = z
        .program_nosync(&p.name, &count, &a, Limits::default())
        .unwrap();
    assert_eq!(out.as_u64(), Some(2));
    // The program_sync doc example: a snapshot, its errno back as a number.
    let snap = Program::from_static(
        "snap",
        "local args = ... return zfs.sync.snapshot(args.snapshot)",
    );
    let mut a = NvList::new().unwrap();
    a.add_string("snapshot", &format!("{t}@now")).unwrap();
    assert_eq!(
        z.program_sync(&p.name, &snap, &a, Limits::default())
            .unwrap(),
        NvValue::I64(0)
    );
    assert!(z.exists(&format!("{t}@now")));
}

/// An example binary of libzfs-core, built by `cargo build --workspace --all-targets` (as
/// scripts/test does) or `cargo build -p libzfs-core --examples`, next to this test's
/// `deps` directory.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: build the examples first (cargo build -p libzfs-core --examples)",
        path.display()
    );
    path
}

/// Run an example; (exit code, stdout, stderr).
fn run_example(name: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(example(name)).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn example_rotate_keeps_the_newest_marked_snapshots() {
    let p = pool("rot", 256);
    let z = zfs();
    let (t, a, _, b) = list_tree(&p);
    // Not ours: unmarked, and another tag; neither may be touched.
    z.snapshot([format!("{b}@manual")], &[]).unwrap();
    let mark = "libzfs-core:rotate";
    z.snapshot([format!("{b}@other")], &[(mark, "weekly")])
        .unwrap();
    for round in 0..3 {
        if round > 0 {
            // The names carry the unix time in seconds.
            std::thread::sleep(Duration::from_millis(1100));
        }
        let (code, out, err) = run_example("rotate", &[&t, "2", "daily"]);
        assert_eq!(code, 0, "round {round}: {out}{err}");
        assert_eq!(out.matches("took ").count(), 2, "{out}");
        eprintln!("round {round}:\n{out}");
        if round == 2 {
            assert_eq!(out.matches("destroyed ").count(), 2, "{out}");
        }
    }
    for v in [&a, &b] {
        let daily: Vec<String> = zfs_list_all(v)
            .into_iter()
            .filter(|n| n.contains("@daily-"))
            .collect();
        assert_eq!(daily.len(), 2, "{v}: {daily:?}");
        for s in &daily {
            assert_eq!(zfs_get(s, mark), "daily");
        }
    }
    assert!(z.exists(&format!("{b}@manual")) && z.exists(&format!("{b}@other")));
    assert!(z.exists(&format!("{a}@s1")) && z.exists(&format!("{a}#b1")));
    // Errors: a sentence on stderr and exit 1; usage: exit 2.
    let m = p.ds("missing");
    let (code, _, err) = run_example("rotate", &[&m, "2"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("cannot list {m}: dataset does not exist")),
        "{err}"
    );
    assert!(!err.contains("traceback"), "{err}");
    assert_eq!(run_example("rotate", &[&t]).0, 2);
    assert_eq!(run_example("rotate", &[&t, "0"]).0, 2);
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn example_list_prints_what_zfs_list_does() {
    let p = pool("lex", 256);
    let (t, a, f, b) = list_tree(&p);
    let (code, out, err) = run_example("list", &["-r", "-t", "all", "-o", "name,type,volsize", &t]);
    assert_eq!(code, 0, "{err}");
    eprintln!("{out}");
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "TYPE", "VOLSIZE"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let row = |n: &str| {
        rows.iter()
            .find(|r| r[0] == n)
            .unwrap_or_else(|| panic!("{n}: {out}"))
    };
    assert_eq!(row(&t)[1..], ["filesystem", "-"]);
    assert_eq!(row(&a)[1..], ["volume", &(16 * MIB).to_string()]);
    assert_eq!(row(&f)[1], "filesystem");
    assert_eq!(row(&b)[1], "volume");
    assert_eq!(row(&format!("{a}@s1"))[1], "snapshot");
    assert_eq!(row(&format!("{a}#b1"))[1], "bookmark");
    // Default types: no snapshots; without -r only the dataset itself.
    let (_, out, _) = run_example("list", &["-r", &t]);
    assert!(!out.contains('@') && out.contains(&b), "{out}");
    let (_, out, _) = run_example("list", &[&t]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let m = p.ds("missing");
    let (code, _, err) = run_example("list", &[&m]);
    assert_eq!(code, 1);
    assert!(err.contains("dataset does not exist"), "{err}");
    assert_eq!(run_example("list", &[]).0, 2);
}
