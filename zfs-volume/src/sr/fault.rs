//! Fault points for crash-injection tests (invariant I9).
//!
//! Every compound operation calls [`point`] after each ZFS step. When the environment
//! variable `XAPI_ZVOL_FAULT` names that point (a comma-separated list may name several),
//! the process stops right there. Production never sets it; the check is one environment
//! lookup. The tests run the real operations with it set, then check that the next call
//! recovers.
//!
//! How it stops is chosen by `XAPI_ZVOL_FAULT_MODE`:
//! * unset or `abort`: `abort()` at once (in-process tests);
//! * `hang`: print `xapi-zvol: fault point NAME reached` on stderr and wait, so that a harness
//!   outside can SIGKILL the process exactly there (as xapi-storage-script's timeout or an
//!   OOM kill would), or change the world under it (export the pool, fill it) and let it go on
//!   by creating the file named by `XAPI_ZVOL_FAULT_RESUME`.

/// Every fault point, in the order the operations reach them.
pub const ALL: &[&str] = &[
    "sr-create:after-pool",
    "sr-create:after-root",
    "sr-create:after-containers",
    "snapshot:after-snapshot",
    "clone:after-snapshot",
    "revert:after-clone",
    "revert:after-destroy",
    "revert:after-rename-old",
    "revert:after-rename-new",
    "destroy:after-destroy",
    "data-destroy:after-metadata",
    "data-destroy:after-bookmark",
    "data-destroy:after-destroy",
    "resize:after-reservation",
    "resize:after-resize",
    "sr-destroy:after-volumes",
    "sr-destroy:after-root",
    "recover:after-step",
];

/// The environment variable that arms fault points.
pub const ENV: &str = "XAPI_ZVOL_FAULT";

/// The environment variable choosing how an armed point stops the process (`abort`, `hang`).
pub const MODE_ENV: &str = "XAPI_ZVOL_FAULT_MODE";

/// In `hang` mode, the process goes on once this file exists.
pub const RESUME_ENV: &str = "XAPI_ZVOL_FAULT_RESUME";

/// Stop the process here if `name` is armed (see the module docs for how).
///
/// Only with the `fault-injection` cargo feature, which the test builds enable (through
/// dev-dependencies) and release builds never do: without it this is an empty function
/// and the binary reads no fault variable at all (`scripts/check-release` checks that).
///
/// ```
/// zfs_volume::sr::fault::point("snapshot:after-snapshot"); // not armed: returns
/// ```
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(name: &str) {
    debug_assert!(ALL.contains(&name), "unknown fault point {name}");
}

/// See the version without the `fault-injection` feature.
#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    debug_assert!(ALL.contains(&name), "unknown fault point {name}");
    if let Some(v) = std::env::var_os(ENV) {
        if v.to_string_lossy().split(',').any(|p| p == name) {
            if std::env::var(MODE_ENV).as_deref() == Ok("hang") {
                eprintln!("xapi-zvol: fault point {name} reached");
                let resume = std::env::var_os(RESUME_ENV).map(std::path::PathBuf::from);
                loop {
                    if resume.as_ref().is_some_and(|f| f.exists()) {
                        eprintln!("xapi-zvol: fault point {name}: resumed");
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
            eprintln!("xapi-zvol: fault point {name} armed: aborting");
            std::process::abort();
        }
    }
}
