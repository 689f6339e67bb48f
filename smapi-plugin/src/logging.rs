//! Logging: syslog facility `local2` (which XCP-ng/XenServer route to `/var/log/SMlog`, like the
//! Python SMAPIv3 plugins) with ident `xapi-zvol`, plus stderr. **Never stdout**: stdout is the
//! protocol channel.
//!
//! Why `libc::syslog` rather than the `syslog` crate: glibc already handles `/dev/log`
//! (datagram vs. stream socket, reconnection) and drops messages silently when there is no
//! syslog daemon, which is the fallback we want; it adds no dependency, and `openlog`/`syslog`
//! are ancient symbols, so the binary still loads on old dom0 glibc. We still skip the call
//! entirely when `/dev/log` is absent (e.g. a test VM), and never pass `LOG_CONS`.
//!
//! Until [`init`] is called, every logging function is a no-op: unit tests of the pure
//! dispatcher therefore neither spam stderr nor touch syslog.

use std::ffi::{CStr, CString};
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use crate::error::PluginError;

/// syslog ident.
pub const IDENT: &CStr = c"xapi-zvol";

/// The socket glibc's syslog writes to.
const DEV_LOG: &str = "/dev/log";

#[derive(Debug, Clone, Copy)]
struct Sinks {
    syslog: bool,
    stderr: bool,
}

static SINKS: OnceLock<Sinks> = OnceLock::new();

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Normal operation (each call's summary).
    Info,
    /// Something odd but handled (e.g. a bad URI on detach).
    Warning,
    /// A call failed.
    Error,
}

impl Level {
    fn priority(self) -> libc::c_int {
        match self {
            Level::Info => libc::LOG_INFO,
            Level::Warning => libc::LOG_WARNING,
            Level::Error => libc::LOG_ERR,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

/// Enables logging to syslog (local2, if `/dev/log` exists) and to stderr. Idempotent.
pub fn init() {
    SINKS.get_or_init(|| {
        let syslog = Path::new(DEV_LOG).exists();
        if syslog {
            // SAFETY: IDENT is a 'static NUL-terminated string, as openlog requires (it keeps the pointer).
            unsafe { libc::openlog(IDENT.as_ptr(), libc::LOG_PID, libc::LOG_LOCAL2) };
        }
        Sinks {
            syslog,
            stderr: true,
        }
    });
}

/// Logs one line at `level` to the enabled sinks.
pub fn log(level: Level, msg: &str) {
    let Some(sinks) = SINKS.get() else { return };
    if sinks.syslog {
        // Interior NULs would truncate the C string; replace them rather than drop the message.
        if let Ok(c) = CString::new(msg.replace('\0', "\\0")) {
            // SAFETY: "%s" with one valid C string argument; the message is never used as the format.
            unsafe { libc::syslog(level.priority(), c"%s".as_ptr(), c.as_ptr()) };
        }
    }
    if sinks.stderr {
        let _ = writeln!(
            std::io::stderr().lock(),
            "xapi-zvol[{}]: {}: {msg}",
            std::process::id(),
            level.label()
        );
    }
}

/// Logs at [`Level::Info`].
pub fn info(msg: &str) {
    log(Level::Info, msg);
}

/// Logs at [`Level::Warning`].
pub fn warn(msg: &str) {
    log(Level::Warning, msg);
}

/// Logs at [`Level::Error`].
pub fn error(msg: &str) {
    log(Level::Error, msg);
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

    #[test]
    fn logging_before_init_is_a_no_op() {
        // Must not panic nor require a syslog daemon.
        info("hello");
        warn("with\0nul");
        log_call("SR.ls", "dbg=\"x\"", Duration::from_millis(3), Ok(()));
        log_call("SR.ls", "", Duration::ZERO, Err(&PluginError::backend("x")));
        assert_eq!(IDENT.to_str().unwrap(), "xapi-zvol");
    }
}
