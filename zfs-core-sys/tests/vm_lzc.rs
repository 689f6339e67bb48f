//! First real-ZFS checks of the raw bindings, run inside the test VM (scripts/test).
//!
//! They call libzfs_core through the generated declarations only, so they prove the
//! bindings themselves (types, constants, linkage) against the kernel module of each
//! supported OpenZFS version. The safe layer has its own, broader suite in zfs-volume.
//! On a host without ZFS they are ignored (run them with `scripts/test`).

use libzfs_core_sys as sys;
use std::ffi::{CStr, CString};
use std::path::Path;
use std::process::Command;
use std::ptr;
use std::time::{Duration, Instant};

const NEEDS_ZFS: &str = "needs the ZFS kernel module: runs in the test VM (scripts/test)";

/// A pool on a sparse file vdev, destroyed on drop.
struct TestPool {
    name: String,
    file: String,
}

impl TestPool {
    fn new(tag: &str) -> TestPool {
        assert!(
            Path::new("/dev/zfs").exists(),
            "/dev/zfs is missing: this test needs the ZFS kernel module (run it with scripts/test)"
        );
        let name = format!("xzsys{}{}", tag, std::process::id());
        let file = format!("/var/tmp/{name}.vdev");
        let f = std::fs::File::create(&file).unwrap();
        f.set_len(256 << 20).unwrap();
        run(
            "zpool",
            &["create", "-f", "-O", "mountpoint=none", &name, &file],
        );
        TestPool { name, file }
    }
    fn ds(&self, rel: &str) -> String {
        format!("{}/{}", self.name, rel)
    }
}

impl Drop for TestPool {
    fn drop(&mut self) {
        let _ = Command::new("zpool")
            .args(["destroy", "-f", &self.name])
            .status();
        let _ = std::fs::remove_file(&self.file);
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Owned nvlist for these raw tests.
struct Nv(*mut sys::nvlist_t);
impl Nv {
    fn new() -> Nv {
        let mut p = ptr::null_mut();
        assert_eq!(
            unsafe { sys::nvlist_alloc(&mut p, sys::NV_UNIQUE_NAME, 0) },
            0
        );
        Nv(p)
    }
    fn u64(self, k: &str, v: u64) -> Nv {
        assert_eq!(
            unsafe { sys::nvlist_add_uint64(self.0, c(k).as_ptr(), v) },
            0
        );
        self
    }
    fn flag(self, k: &str) -> Nv {
        assert_eq!(unsafe { sys::nvlist_add_boolean(self.0, c(k).as_ptr()) }, 0);
        self
    }
    fn bool_value(self, k: &str, v: bool) -> Nv {
        let v = if v { sys::B_TRUE } else { sys::B_FALSE };
        assert_eq!(
            unsafe { sys::nvlist_add_boolean_value(self.0, c(k).as_ptr(), v) },
            0
        );
        self
    }
    fn string(self, k: &str, v: &str) -> Nv {
        assert_eq!(
            unsafe { sys::nvlist_add_string(self.0, c(k).as_ptr(), c(v).as_ptr()) },
            0
        );
        self
    }
    fn keys(&self) -> Vec<String> {
        let mut out = vec![];
        let mut p = unsafe { sys::nvlist_next_nvpair(self.0, ptr::null_mut()) };
        while !p.is_null() {
            out.push(
                unsafe { CStr::from_ptr(sys::nvpair_name(p)) }
                    .to_string_lossy()
                    .into_owned(),
            );
            p = unsafe { sys::nvlist_next_nvpair(self.0, p) };
        }
        out
    }
}
impl Drop for Nv {
    fn drop(&mut self) {
        if !self.0.is_null() {
            unsafe { sys::nvlist_free(self.0) }
        }
    }
}

fn init() {
    assert_eq!(
        unsafe { sys::libzfs_core_init() },
        0,
        "libzfs_core_init failed"
    );
}

fn exists(name: &str) -> bool {
    unsafe { sys::lzc_exists(c(name).as_ptr()) != 0 }
}

fn create_zvol(name: &str, size: u64) -> i32 {
    let props = Nv::new().u64("volsize", size).u64("volblocksize", 16384);
    unsafe {
        sys::lzc_create(
            c(name).as_ptr(),
            sys::LZC_DATSET_TYPE_ZVOL,
            props.0,
            ptr::null_mut(),
            0,
        )
    }
}

fn snapshot(name: &str) -> (i32, Nv) {
    let snaps = Nv::new().flag(name);
    let mut errlist = ptr::null_mut();
    let rc = unsafe { sys::lzc_snapshot(snaps.0, ptr::null_mut(), &mut errlist) };
    (rc, Nv(errlist))
}

fn wait_for(path: &str) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        if Path::new(path).exists() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn init_reports_zfs_and_header_version() {
    let _ = NEEDS_ZFS;
    init();
    let v = std::fs::read_to_string("/sys/module/zfs/version").unwrap();
    eprintln!(
        "kernel module zfs {} ; bindings from headers {}",
        v.trim(),
        sys::HEADER_VERSION
    );
    assert!(v.starts_with("2."), "unexpected module version {v}");
    unsafe { sys::libzfs_core_fini() };
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn zvol_lifecycle_create_snapshot_clone_promote_destroy() {
    init();
    let pool = TestPool::new("life");
    let vol = pool.ds("vol");
    assert_eq!(create_zvol(&vol, 32 << 20), 0);
    assert!(exists(&vol));
    let link = format!("/dev/zvol/{vol}");
    let waited = wait_for(&link).unwrap_or_else(|| panic!("{link} did not appear within 20 s"));
    let target = std::fs::canonicalize(&link).unwrap();
    eprintln!("{link} -> {} after {waited:?}", target.display());
    assert!(
        target.to_string_lossy().starts_with("/dev/zd"),
        "{link} -> {target:?}"
    );

    let snap = format!("{vol}@s1");
    let (rc, errs) = snapshot(&snap);
    assert_eq!(rc, 0);
    assert!(errs.0.is_null() || errs.keys().is_empty());
    assert!(exists(&snap));

    let clone = pool.ds("clone");
    let props = Nv::new();
    assert_eq!(
        unsafe { sys::lzc_clone(c(&clone).as_ptr(), c(&snap).as_ptr(), props.0) },
        0
    );
    assert!(exists(&clone));

    // Promote moves s1 to the clone; the old parent becomes its dependent.
    let mut buf = [0 as std::os::raw::c_char; 256];
    assert_eq!(
        unsafe { sys::lzc_promote(c(&clone).as_ptr(), buf.as_mut_ptr(), buf.len() as i32) },
        0
    );
    assert!(exists(&format!("{clone}@s1")));
    assert!(!exists(&snap));
    let origin = run("zfs", &["get", "-H", "-o", "value", "origin", &vol]);
    assert_eq!(origin.trim(), format!("{clone}@s1"));

    // The old parent is now a leaf clone: destroyable.
    assert_eq!(unsafe { sys::lzc_destroy(c(&vol).as_ptr()) }, 0);
    assert!(!exists(&vol));
    let snaps = Nv::new().flag(&format!("{clone}@s1"));
    let mut errlist = ptr::null_mut();
    assert_eq!(
        unsafe { sys::lzc_destroy_snaps(snaps.0, 0, &mut errlist) },
        0
    );
    drop(Nv(errlist));
    assert_eq!(unsafe { sys::lzc_destroy(c(&clone).as_ptr()) }, 0);
    assert!(!exists(&clone));
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn nosync_channel_program_lists_children() {
    init();
    let pool = TestPool::new("zcp");
    for v in ["a", "b", "c"] {
        assert_eq!(create_zvol(&pool.ds(v), 8 << 20), 0);
    }
    let prog = c(r#"
        local args = ...
        local out = {}
        for child in zfs.list.children(args["root"]) do
            out[child] = zfs.get_prop(child, "volsize")
        end
        return out
    "#);
    let args = Nv::new().string("root", &pool.name);
    let mut out = ptr::null_mut();
    let rc = unsafe {
        sys::lzc_channel_program_nosync(
            c(&pool.name).as_ptr(),
            prog.as_ptr(),
            sys::ZCP_DEFAULT_INSTRLIMIT as u64,
            sys::ZCP_DEFAULT_MEMLIMIT as u64,
            args.0,
            &mut out,
        )
    };
    let out = Nv(out);
    assert_eq!(rc, 0);
    let mut ret = ptr::null_mut();
    assert_eq!(
        unsafe { sys::nvlist_lookup_nvlist(out.0, c("return").as_ptr(), &mut ret) },
        0
    );
    let ret = std::mem::ManuallyDrop::new(Nv(ret)); // borrowed from `out`
    let mut keys = ret.keys();
    keys.sort();
    assert_eq!(keys, vec![pool.ds("a"), pool.ds("b"), pool.ds("c")]);
    let mut size: i64 = 0;
    assert_eq!(
        unsafe { sys::nvlist_lookup_int64(ret.0, c(&pool.ds("a")).as_ptr(), &mut size) },
        0
    );
    assert_eq!(size, 8 << 20);
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn errors_come_back_as_errno() {
    init();
    let pool = TestPool::new("err");
    let vol = pool.ds("vol");
    assert_eq!(create_zvol(&vol, 8 << 20), 0);
    // EEXIST: create over an existing dataset.
    assert_eq!(create_zvol(&vol, 8 << 20), libc::EEXIST);
    // ENOENT: destroy of a missing dataset; snapshot of a missing dataset, with errlist.
    assert_eq!(
        unsafe { sys::lzc_destroy(c(&pool.ds("nope")).as_ptr()) },
        libc::ENOENT
    );
    let (rc, errs) = snapshot(&pool.ds("nope@s"));
    assert_eq!(rc, libc::ENOENT);
    assert_eq!(errs.keys(), vec![pool.ds("nope@s")]);
    // EBUSY: a dataset that has a snapshot cannot be destroyed.
    assert_eq!(snapshot(&format!("{vol}@s1")).0, 0);
    assert_eq!(unsafe { sys::lzc_destroy(c(&vol).as_ptr()) }, libc::EBUSY);
    // EEXIST: a snapshot with a clone cannot be destroyed (without defer).
    let props = Nv::new();
    assert_eq!(
        unsafe {
            sys::lzc_clone(
                c(&pool.ds("cl")).as_ptr(),
                c(&format!("{vol}@s1")).as_ptr(),
                props.0,
            )
        },
        0
    );
    let snaps = Nv::new().flag(&format!("{vol}@s1"));
    let mut errlist = ptr::null_mut();
    assert_eq!(
        unsafe { sys::lzc_destroy_snaps(snaps.0, 0, &mut errlist) },
        libc::EEXIST
    );
    drop(Nv(errlist));
    // EINVAL: volsize not a multiple of volblocksize.
    assert_eq!(create_zvol(&pool.ds("odd"), (8 << 20) + 1), libc::EINVAL);
    // ZFS-specific codes (>= 1024) are visible too: an unknown key to lzc_sync.
    let bad = Nv::new().bool_value("force", false).flag("no-such-arg");
    let mut outnvl = ptr::null_mut();
    let rc = unsafe { sys::lzc_sync(c(&pool.name).as_ptr(), bad.0, &mut outnvl) };
    drop(Nv(outnvl));
    assert_eq!(rc, sys::ZFS_ERR_IOC_ARG_UNAVAIL as i32);
}
