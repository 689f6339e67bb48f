//! The run directory (`/run/xapi-zvol`, [`HostSettings`]) and what the SR layer keeps in it:
//! the SR locks, the journal records (`sr/journal.rs`), the hold mounts (`mounts.rs`).
//!
//! The per-SR lock (invariant I10): calls that change an SR's dataset tree hold an
//! exclusive `flock` on `/run/xapi-zvol/<sr>.lock` for their whole duration. Reads
//! (stat, ls) take no lock: each is one in-kernel program that sees a consistent txg.
//!
//! The wait is bounded: past it the call fails with [`Error::Busy`], which xapi shows
//! and may retry, instead of hanging (the daemon has no timeout). flock locks die with
//! the process, so a killed call never leaves the SR locked.

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Default directory of lock files (tmpfs: locks vanish on reboot, as they should).
pub const DEFAULT_RUN_DIR: &str = "/run/xapi-zvol";

/// Default bounded wait for an SR lock.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// The host settings of the SR layer: where its lock, hold and intent files live, and how long
/// a changing call waits for an SR lock. A process sets them once, before its first call
/// ([`HostSettings::install`]; the plugin's `main` does, from its configuration); otherwise the
/// defaults apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSettings {
    /// Directory of lock files, the SR.attach hold marks and intent records (tmpfs).
    pub run_dir: PathBuf,
    /// Bounded wait for an SR lock; past it a call fails with [`Error::Busy`].
    pub lock_wait: Duration,
}

impl Default for HostSettings {
    fn default() -> Self {
        HostSettings {
            run_dir: PathBuf::from(DEFAULT_RUN_DIR),
            lock_wait: DEFAULT_WAIT,
        }
    }
}

static SETTINGS: std::sync::OnceLock<HostSettings> = std::sync::OnceLock::new();

impl HostSettings {
    /// Makes these the settings of this process. Only the first call counts (settings never
    /// change under a running call); a later one gets its settings back as the error.
    pub fn install(self) -> std::result::Result<(), HostSettings> {
        SETTINGS.set(self)
    }

    /// The settings in effect: the installed ones, or the defaults.
    pub fn current() -> &'static HostSettings {
        SETTINGS.get_or_init(HostSettings::default)
    }
}

/// A held SR lock; released on drop (or when the process dies).
#[derive(Debug)]
pub struct SrLock {
    _file: File,
}

/// The directory of the SR layer's files in /run ([`HostSettings::run_dir`]).
pub(crate) fn run_dir() -> PathBuf {
    HostSettings::current().run_dir.clone()
}

/// The lock file of the SR whose dataset is `sr`.
fn lock_path(sr: &str) -> PathBuf {
    run_dir().join(format!("{}.lock", sr.replace('/', "+")))
}

/// The bounded wait in effect ([`HostSettings`]).
pub fn wait_limit() -> Duration {
    HostSettings::current().lock_wait
}

impl SrLock {
    /// Take the lock of the SR whose dataset is `sr`, waiting at most `wait`.
    ///
    /// ```no_run
    /// let _l = zfs_volume::host::lock::SrLock::acquire("tank/zvol-sr-1", std::time::Duration::from_secs(5))?;
    /// # Ok::<(), zfs_volume::Error>(())
    /// ```
    pub fn acquire(sr: &str, wait: Duration) -> Result<SrLock> {
        let dir = run_dir();
        fs::create_dir_all(&dir).map_err(|source| Error::Io {
            what: format!("create {}", dir.display()),
            source,
        })?;
        let path = lock_path(sr);
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
        SrLock::wait_for(file, sr, wait)
    }

    /// As [`SrLock::acquire`], but only when the SR's lock file is there already (a call on
    /// the SR since boot made it: SR.attach does); `None`, with nothing created, otherwise.
    /// For a call that locks before it has read the SR's marker: a foreign or mistyped `sr`
    /// leaves no file behind.
    pub fn acquire_existing(sr: &str, wait: Duration) -> Result<Option<SrLock>> {
        let path = lock_path(sr);
        match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => SrLock::wait_for(file, sr, wait).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io {
                what: format!("open {}", path.display()),
                source,
            }),
        }
    }

    fn wait_for(file: File, sr: &str, wait: Duration) -> Result<SrLock> {
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

/// Writes `text` to file `name` of the run directory atomically: to a temporary name first,
/// renamed into place, so a kill while it is written leaves the previous state.
pub(crate) fn write_atomic(name: &str, text: &str) -> Result<()> {
    let dir = run_dir();
    let p = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let io = |what: &PathBuf| {
        let what = what.display().to_string();
        move |source| Error::Io {
            what: format!("write {what}"),
            source,
        }
    };
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    fs::write(&tmp, text).map_err(io(&tmp))?;
    fs::rename(&tmp, &p).map_err(io(&p))
}

/// File `name` of the run directory, if it exists and can be read.
pub(crate) fn read(name: &str) -> Option<String> {
    fs::read_to_string(run_dir().join(name)).ok()
}

/// Removes file `name` of the run directory (absent is fine).
pub(crate) fn remove(name: &str) {
    let _ = fs::remove_file(run_dir().join(name));
}

/// Try to take an exclusive `flock` without blocking.
fn flock_nb(f: &File) -> bool {
    rustix::fs::flock(f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
}
