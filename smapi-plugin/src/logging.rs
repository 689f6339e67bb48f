//! Logging: syslog facility `local2` (which XCP-ng/XenServer route to `/var/log/SMlog`, like the
//! Python SMAPIv3 plugins) with ident `xapi-zvol`, plus stderr. **Never stdout**: stdout is the
//! protocol channel.
//!
//! One [`log::Log`] implementation carries everything: the libraries' records (zfs-volume logs
//! through the `log` facade, e.g. `log::warn!` with its module path as target) and this crate's
//! own lines ([`info`], [`warn`], [`error`], [`log_call`] are thin wrappers over the `log`
//! macros). [`init`] installs it with the maximum level [`MAX_LEVEL`] (Info: Debug and Trace
//! records are dropped); one function, `emit`, formats and writes every line.
//!
//! Why `libc::syslog` rather than the `syslog` crate: glibc already handles `/dev/log`
//! (datagram vs. stream socket, reconnection) and drops messages silently when there is no
//! syslog daemon, which is the fallback we want; it adds no dependency, and `openlog`/`syslog`
//! are ancient symbols, so the binary still loads on old dom0 glibc. We still skip the call
//! entirely when `/dev/log` is absent (e.g. a test VM), and never pass `LOG_CONS`.
//!
//! Until [`init`] is called, nothing is logged (the `log` facade's level is `Off` and no logger
//! is installed): unit tests of the pure dispatcher therefore neither spam stderr nor touch
//! syslog.

use std::ffi::{CStr, CString};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::error::PluginError;

/// syslog ident.
pub const IDENT: &CStr = c"xapi-zvol";

/// The socket glibc's syslog writes to.
const DEV_LOG: &str = "/dev/log";

/// The most verbose level logged once [`init`] has run.
pub const MAX_LEVEL: LevelFilter = LevelFilter::Info;

/// Set by [`init`]: whether lines also go to syslog (they always go to stderr).
static SYSLOG: OnceLock<bool> = OnceLock::new();

/// The `log` facade's sink: syslog (if enabled) and stderr, once [`init`] has run.
struct Logger;

static LOGGER: Logger = Logger;

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        SYSLOG.get().is_some() && passes(metadata)
    }

    fn log(&self, record: &Record) {
        if let Some(&syslog) = SYSLOG.get() {
            if passes(record.metadata()) {
                emit(syslog, record);
            }
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// The level filter, independent of [`init`].
fn passes(metadata: &Metadata) -> bool {
    metadata.level() <= MAX_LEVEL
}

/// syslog priority of a record.
fn priority(level: Level) -> libc::c_int {
    match level {
        Level::Error => libc::LOG_ERR,
        Level::Warn => libc::LOG_WARNING,
        Level::Info => libc::LOG_INFO,
        Level::Debug | Level::Trace => libc::LOG_DEBUG,
    }
}

/// Level label of a stderr line.
fn label(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARNING",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
        Level::Trace => "TRACE",
    }
}

/// Whether `target` is this plugin's own code (the library or the binary), whose lines keep the
/// bare message; other crates' lines are prefixed with their target (a module path).
fn is_own(target: &str) -> bool {
    matches!(
        target.split("::").next(),
        Some("smapi_plugin" | "xapi_zvol")
    )
}

/// The text of a record's line (the syslog message; stderr adds `xapi-zvol[pid]: LEVEL: `):
/// `target: message` for other crates (e.g. `zfs_volume::sr::mounts: cannot mount ...`), the bare
/// message for the plugin's own. Newlines, carriage returns and NULs are escaped (`\n`, `\r`,
/// `\0`), so that a record is exactly one line and a valid C string.
fn format_message(record: &Record) -> String {
    let mut raw = String::new();
    if !is_own(record.target()) {
        raw.push_str(record.target());
        raw.push_str(": ");
    }
    let _ = write!(raw, "{}", record.args());
    let mut line = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\0' => line.push_str("\\0"),
            c => line.push(c),
        }
    }
    line
}

/// Writes one record to the sinks: the only place lines are formatted and written.
fn emit(syslog: bool, record: &Record) {
    let msg = format_message(record);
    if syslog {
        // format_message escapes NULs, so this cannot fail.
        if let Ok(c) = CString::new(msg.as_str()) {
            // SAFETY: "%s" with one valid C string argument; the message is never used as the format.
            unsafe { libc::syslog(priority(record.level()), c"%s".as_ptr(), c.as_ptr()) };
        }
    }
    // One write per line (stderr is unbuffered: writeln! would make one per piece).
    let line = format!(
        "xapi-zvol[{}]: {}: {msg}\n",
        std::process::id(),
        label(record.level())
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Enables logging to syslog (local2, if `/dev/log` exists) and to stderr, for this crate's
/// functions and for every `log` record (up to [`MAX_LEVEL`]). Idempotent.
pub fn init() {
    init_with(Path::new(DEV_LOG).exists());
}

fn init_with(syslog: bool) {
    SYSLOG.get_or_init(|| {
        if syslog {
            // SAFETY: IDENT is a 'static NUL-terminated string, as openlog requires (it keeps the pointer).
            unsafe { libc::openlog(IDENT.as_ptr(), libc::LOG_PID, libc::LOG_LOCAL2) };
        }
        // Fails only if a logger is already installed (not done by this binary): keep that one.
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(MAX_LEVEL);
        }
        syslog
    });
}

/// Logs at Info.
pub fn info(msg: &str) {
    log::info!("{msg}");
}

/// Logs at Warn (label `WARNING`).
pub fn warn(msg: &str) {
    log::warn!("{msg}");
}

/// Logs at Error.
pub fn error(msg: &str) {
    log::error!("{msg}");
}

/// Logs the summary of one plugin call: method, params, duration, outcome.
pub fn log_call(method: &str, params: &str, elapsed: Duration, outcome: Result<(), &PluginError>) {
    let ms = elapsed.as_secs_f64() * 1000.0;
    match outcome {
        Ok(()) => info(&format!("{method} {params} -> ok ({ms:.1} ms)")),
        Err(e) => error(&format!(
            "{method} {params} -> error {} {:?}: {e} [{}:{}] ({ms:.1} ms)",
            e.code(),
            e.params(),
            e.file(),
            e.line()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `format_message` of a record built from its parts.
    fn message(level: Level, target: &str, args: std::fmt::Arguments) -> String {
        format_message(
            &Record::builder()
                .level(level)
                .target(target)
                .args(args)
                .build(),
        )
    }

    fn meta(level: Level, target: &str) -> Metadata<'_> {
        Metadata::builder().level(level).target(target).build()
    }

    #[test]
    fn library_records_carry_their_target_and_own_lines_do_not() {
        assert_eq!(
            message(
                Level::Warn,
                "zfs_volume::sr::mounts",
                format_args!("cannot mount {} at {}", "tank/sr", "/run/x")
            ),
            "zfs_volume::sr::mounts: cannot mount tank/sr at /run/x"
        );
        assert_eq!(
            message(
                Level::Info,
                "smapi_plugin::logging",
                format_args!("SR.ls -> ok")
            ),
            "SR.ls -> ok"
        );
        assert_eq!(
            message(Level::Error, "xapi_zvol", format_args!("panic: x")),
            "panic: x"
        );
        assert_eq!(
            message(Level::Info, "smapi_plugin_other", format_args!("m")),
            "smapi_plugin_other: m"
        );
    }

    #[test]
    fn a_record_is_one_line_and_a_valid_c_string() {
        let m = message(
            Level::Warn,
            "zfs_volume::sr::volume",
            format_args!("a\nb\r\nc\0d"),
        );
        assert_eq!(m, "zfs_volume::sr::volume: a\\nb\\r\\nc\\0d");
        assert!(CString::new(m).is_ok());
    }

    #[test]
    fn levels_map_to_syslog_priorities_and_labels() {
        let table = [
            (Level::Error, libc::LOG_ERR, "ERROR"),
            (Level::Warn, libc::LOG_WARNING, "WARNING"),
            (Level::Info, libc::LOG_INFO, "INFO"),
            (Level::Debug, libc::LOG_DEBUG, "DEBUG"),
            (Level::Trace, libc::LOG_DEBUG, "TRACE"),
        ];
        for (level, prio, lab) in table {
            assert_eq!((priority(level), label(level)), (prio, lab), "{level}");
        }
    }

    #[test]
    fn library_warnings_pass_the_filter_but_debug_does_not_and_nothing_before_init() {
        let t = "zfs_volume::sr::mounts";
        assert!(passes(&meta(Level::Error, t)));
        assert!(passes(&meta(Level::Warn, t)));
        assert!(passes(&meta(Level::Info, t)));
        assert!(!passes(&meta(Level::Debug, t)));
        assert!(!passes(&meta(Level::Trace, t)));
        // No unit test of this process calls init (the end-to-end one does so in a child).
        assert!(!LOGGER.enabled(&meta(Level::Error, t)));
        assert_eq!(log::max_level(), LevelFilter::Off);
        warn("before init: must not panic nor be written");
    }

    const CHILD_ENV: &str = "XAPI_ZVOL_LOGGING_TEST_CHILD";
    const CHILD_TEST: &str = "logging::tests::facade_reaches_stderr_only_after_init";

    /// Runs in a child test process: logs before and after init (stderr only, never the host's syslog).
    fn child() {
        log::warn!(target: "zfs_volume::sr::mounts", "before init");
        warn("before init");
        init_with(false);
        log::warn!(target: "zfs_volume::sr::mounts", "cannot mount tank/sr at /run/x");
        log::debug!(target: "zfs_volume::sr::mounts", "debug detail");
        log::info!(target: "zfs_volume::sr::volume", "two\nlines");
        log_call("SR.ls", "dbg=\"x\"", Duration::from_millis(3), Ok(()));
        init_with(false); // idempotent
        log::error!("own error");
    }

    #[test]
    fn facade_reaches_stderr_only_after_init() {
        if std::env::var_os(CHILD_ENV).is_some() {
            return child();
        }
        let proc = std::process::Command::new(std::env::current_exe().unwrap())
            .args([CHILD_TEST, "--exact", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let prefix = format!("xapi-zvol[{}]: ", proc.id());
        let out = proc.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "child test not run: {stdout}");
        assert!(!stdout.contains("xapi-zvol["), "logged to stdout: {stdout}");
        let lines: Vec<&str> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect();
        assert_eq!(
            lines,
            [
                "WARNING: zfs_volume::sr::mounts: cannot mount tank/sr at /run/x",
                "INFO: zfs_volume::sr::volume: two\\nlines",
                "INFO: SR.ls dbg=\"x\" -> ok (3.0 ms)",
                "ERROR: own error",
            ],
            "stderr: {stderr}"
        );
    }
}
