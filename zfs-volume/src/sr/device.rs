//! The block devices behind zvols, as xapi's datapath sees them: `/dev/zvol/<dataset>`
//! links that udev creates and moves asynchronously after ZFS creates or renames a zvol.
//! Operations that swap a volume's content (revert) wait, bounded, until the link points
//! at the right device and drop stale cached pages, so the next attach reads the truth.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait for udev (a loaded host can take seconds; never unbounded).
pub const LINK_WAIT: Duration = Duration::from_secs(10);

/// The `/dev/zvol/...` link of a dataset.
pub fn link(dataset: &str) -> PathBuf {
    PathBuf::from(format!("/dev/zvol/{dataset}"))
}

/// The device (`/dev/zdN`) a dataset's link points at now, if any.
pub fn resolve(dataset: &str) -> Option<PathBuf> {
    std::fs::canonicalize(link(dataset)).ok()
}

/// Wait until the link of `dataset` exists (and, with `want`, points at that device).
/// Returns the device, or `None` past the bounded wait.
pub fn wait(dataset: &str, want: Option<&Path>, limit: Duration) -> Option<PathBuf> {
    let start = Instant::now();
    loop {
        let now = resolve(dataset);
        match (&now, want) {
            (Some(d), Some(w)) if d == w => return now,
            (Some(_), None) => return now,
            _ => {}
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Drop cached pages of the device behind `dataset` (after its content changed).
///
/// OpenZFS 2.1 can fail a zvol open with ERESTARTSYS (512) while another thread
/// creates or destroys a pool; that is transient, so the open is retried (bounded).
pub fn flush(dataset: &str) {
    let Some(d) = resolve(dataset) else { return };
    for _ in 0..50 {
        match crate::lzc::flush_block_device(&d) {
            Err(e) if e.raw_os_error() == Some(512) || e.raw_os_error() == Some(libc::EINTR) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => return,
        }
    }
}
