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

/// The `xapi-zvol` binary built by cargo for this test run.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xapi-zvol"))
}

/// Runs the admin CLI (`xapi-zvol <args>`) and returns its output.
pub fn admin(args: &[&str]) -> Output {
    Command::new(binary()).args(args).output().expect("run xapi-zvol")
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
