//! The per-SR lock (invariant I10): calls that change an SR's dataset tree hold an
//! exclusive `flock` on `/run/xapi-zvol/<sr>.lock` for their whole duration. Reads
//! (stat, ls) take no lock: each is one in-kernel program that sees a consistent txg.
//!
//! The wait is bounded: past it the call fails with [`Error::Busy`], which xapi shows
//! and may retry, instead of hanging (the daemon has no timeout). flock locks die with
//! the process, so a killed call never leaves the SR locked.

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Default directory of lock files (tmpfs: locks vanish on reboot, as they should).
pub const DEFAULT_RUN_DIR: &str = "/run/xapi-zvol";

/// Default bounded wait; `XAPI_ZVOL_LOCK_WAIT_SECS` overrides it.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// A held SR lock; released on drop (or when the process dies).
#[derive(Debug)]
pub struct SrLock {
    _file: File,
}

pub(crate) fn run_dir() -> PathBuf {
    std::env::var_os("XAPI_ZVOL_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_DIR))
}

/// The bounded wait in effect (environment override or default).
pub fn wait_limit() -> Duration {
    std::env::var("XAPI_ZVOL_LOCK_WAIT_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WAIT)
}

impl SrLock {
    /// Take the lock of the SR whose dataset is `sr`, waiting at most `wait`.
    ///
    /// ```no_run
    /// let _l = zfs_volume::sr::lock::SrLock::acquire("tank/zvol-sr-1", std::time::Duration::from_secs(5))?;
    /// # Ok::<(), zfs_volume::Error>(())
    /// ```
    pub fn acquire(sr: &str, wait: Duration) -> Result<SrLock> {
        let dir = run_dir();
        fs::create_dir_all(&dir).map_err(|source| Error::Io {
            what: format!("create {}", dir.display()),
            source,
        })?;
        let path = dir.join(format!("{}.lock", sr.replace('/', "+")));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io {
                what: format!("open {}", path.display()),
                source,
            })?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            if flock_nb(&file) {
                return Ok(SrLock { _file: file });
            }
            if start.elapsed() >= wait {
                return Err(Error::Busy {
                    sr: sr.to_string(),
                    waited_secs: wait.as_secs(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

fn flock_nb(f: &File) -> bool {
    crate::lzc::flock_exclusive_nb(f.as_raw_fd())
}
