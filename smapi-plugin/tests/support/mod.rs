//! Shared test support for the integration tests (`mod support;` in each test file):
//!
//! * [`contract`]: strict validators of results and errors (wire contract §2–§4);
//! * [`fake_daemon`]: runs installed entries exactly as `xapi-storage-script` does, validating
//!   every answer;
//! * helpers to locate the built binary and install it into a temporary root.
//!
//! Nothing here needs ZFS. Conformance sequences that do (run in the test VM) build on the same
//! pieces: install into a temporary root, drive it with [`fake_daemon::FakeDaemon`], and assert
//! `assert_no_violations()` at the end.

#![allow(dead_code)]

pub mod contract;
pub mod fake_daemon;
pub mod vm;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `xapi-zvol` binary built by cargo for this test run. In the test VM (a zfs module is
/// loaded), a copy on the guest's local disk: the build directory is the host's, shared over
/// 9p, and every page of a process started from there is fetched through 9p (measured: 90 ms
/// instead of 17 ms per start), a cost no installed plugin pays and the tests pay per call.
pub fn binary() -> PathBuf {
    static LOCAL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let built = PathBuf::from(env!("CARGO_BIN_EXE_xapi-zvol"));
    if !Path::new("/sys/module/zfs").exists() {
        return built;
    }
    LOCAL
        .get_or_init(|| {
            let dir = PathBuf::from(format!("/var/tmp/xzvt-bin-{}", std::process::id()));
            let local = dir.join("xapi-zvol");
            let tmp = dir.join(".xapi-zvol.part");
            let copied = std::fs::create_dir_all(&dir)
                .and_then(|_| std::fs::copy(&built, &tmp))
                .and_then(|_| std::fs::rename(&tmp, &local));
            match copied {
                Ok(()) => local,
                Err(e) => {
                    eprintln!(
                        "tests: cannot copy {} to {}: {e}; running it from the share",
                        built.display(),
                        local.display()
                    );
                    built
                }
            }
        })
        .clone()
}

/// Runs the admin CLI (`xapi-zvol <args>`) and returns its output.
pub fn admin(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .output()
        .expect("run xapi-zvol")
}

/// `xapi-zvol install --root <root> [--shims]`, asserting success.
pub fn install(root: &Path, shims: bool) -> Output {
    let root = root.to_str().expect("UTF-8 root");
    let mut args = vec!["install", "--root", root];
    if shims {
        args.push("--shims");
    }
    let out = admin(&args);
    assert!(
        out.status.success(),
        "install failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A temporary plugin root with xapi-zvol installed (symlinks or shims). Keep the `TempDir`
/// alive for as long as the root is used.
pub fn installed_root(shims: bool) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("xapi-storage-script");
    install(&root, shims);
    (tmp, root)
}
