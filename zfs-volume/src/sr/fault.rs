//! Fault points for crash-injection tests (invariant I9).
//!
//! Every compound operation calls [`point`] after each ZFS step. When the environment
//! variable `XAPI_ZVOL_FAULT` names that point (a comma-separated list may name several),
//! the process aborts right there, as a SIGKILL would stop it. Production never sets it;
//! the check is one environment lookup. The tests run the real operations with it set,
//! then check that the next call recovers.

/// Every fault point, in the order the operations reach them.
pub const ALL: &[&str] = &[
    "sr-create:after-pool",
    "sr-create:after-root",
    "sr-create:after-containers",
    "snapshot:after-snapshot",
    "clone:after-snapshot",
    "revert:after-clone",
    "revert:after-rename-old",
    "revert:after-rename-new",
    "destroy:after-destroy",
    "resize:after-resize",
    "sr-destroy:after-volumes",
    "sr-destroy:after-root",
    "recover:after-step",
];

/// The environment variable that arms fault points.
pub const ENV: &str = "XAPI_ZVOL_FAULT";

/// Abort the process here if `name` is armed.
///
/// ```
/// zfs_volume::sr::fault::point("snapshot:after-snapshot"); // not armed: returns
/// ```
pub fn point(name: &str) {
    debug_assert!(ALL.contains(&name), "unknown fault point {name}");
    if let Some(v) = std::env::var_os(ENV) {
        if v.to_string_lossy().split(',').any(|p| p == name) {
            eprintln!("xapi-zvol: fault point {name} armed: aborting");
            std::process::abort();
        }
    }
}
