//! One plugin invocation, end to end (contract §2).
//!
//! `xapi-storage-script` runs `<plugin dir>/<Interface.method> --json`, writes the named-params
//! object on stdin and closes it. [`run`]:
//!
//! 1. takes the method from `basename(argv0)` (case-insensitively, [`Method::resolve`]) and the
//!    plugin from the parent directory's name ([`PluginKind::from_dir_name`]);
//! 2. requires the single argument `--json` (anything else: usage on stderr, a `Usage` error on
//!    stdout, exit [`EXIT_USAGE`]; the daemon always passes exactly `--json`);
//! 3. reads all of stdin and parses one JSON object;
//! 4. calls the method's row of the table ([`Method::call`]): it validates every declared
//!    parameter before anything else runs (a missing or mistyped parameter is reported by name,
//!    the method's function never sees a half-valid request), decodes them into the function's
//!    request struct, calls it and renders the result;
//! 5. writes exactly one JSON value plus a newline on stdout and returns [`EXIT_OK`]; on any
//!    failure — including a panic anywhere in steps 3–4 — writes the error object
//!    `{code, params, backtrace{error, files, lines}}` and returns [`EXIT_FAILURE`] (1);
//! 6. logs one line per call (method, parameters, elapsed time, outcome) to syslog/stderr via
//!    [`crate::logging`], never to stdout.

use std::any::Any;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Instant;

use crate::api::context::{Context, DatapathConfig};
use crate::error::{ErrorKind, PluginError};
use crate::logging;
use crate::methods::{Method, PluginKind, Resolution};
use crate::wire::{self, render_error, Params};

/// Exit status of a successful call.
pub const EXIT_OK: i32 = 0;
/// Exit status of a failed call (the error object is on stdout). Contract §11: "exit 1".
pub const EXIT_FAILURE: i32 = 1;
/// Exit status when invoked without `--json` (never happens under the daemon). The `Usage` error
/// object is still printed on stdout so that any caller gets parsable output.
pub const EXIT_USAGE: i32 = 2;

/// The only argument the daemon passes (`main.ml`: `let args = ["--json"]`).
pub const JSON_FLAG: &str = "--json";

/// Runs one plugin invocation (see the module docs) with the datapath settings `main` read
/// ([`crate::config::Config`]). Returns the process exit status.
///
/// `argv0` is the entry path the daemon executed (its file name is the method, its parent
/// directory the plugin); `args` are the remaining arguments (`["--json"]`).
pub fn run(
    dp: &DatapathConfig,
    argv0: &Path,
    args: &[String],
    stdin: impl Read,
    stdout: impl Write,
) -> i32 {
    run_table(Method::ALL, dp, argv0, args, stdin, stdout)
}

/// [`run`] over the methods of `table` (the dispatcher's own tests give it other rows).
fn run_table(
    table: &[Method],
    dp: &DatapathConfig,
    argv0: &Path,
    args: &[String],
    stdin: impl Read,
    mut stdout: impl Write,
) -> i32 {
    let started = Instant::now();
    let entry = file_name(argv0);
    let dir = argv0.parent().map(file_name).unwrap_or_default();
    let kind = PluginKind::from_dir_name(&dir);

    if args.len() != 1 || args[0] != JSON_FLAG {
        // eprintln! (not a raw stderr handle) so the test harness captures it.
        eprintln!(
            "usage: {entry} --json  (SMAPIv3 call: named-params JSON object on stdin)\n\
             this is an xapi-storage-script entry point; for the admin CLI run `xapi-zvol --help`"
        );
        let err = PluginError::new(ErrorKind::Usage(format!(
            "{entry}: expected exactly one argument \"--json\", got {args:?}"
        )));
        logging::log_call(&entry, "", started.elapsed(), Err(&err));
        return emit(&mut stdout, &entry, Err(err), EXIT_USAGE);
    }

    let mut summary = String::new();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let method = resolve(table, &entry, kind, &dir)?;
        let raw = wire::read_request(stdin)?;
        let params = Params::parse(method.name(), &raw)?;
        summary = params.summary();
        let cx = Context {
            plugin: kind,
            datapath: dp.clone(),
        };
        method.call(&cx, &params)
    }))
    .unwrap_or_else(|payload| Err(panic_error(&entry, payload.as_ref())));

    logging::log_call(
        &entry,
        &summary,
        started.elapsed(),
        outcome.as_ref().map(|_| ()),
    );
    emit(&mut stdout, &entry, outcome, EXIT_FAILURE)
}

/// Writes the rendered result (or the error object) as one write, then flushes.
fn emit(
    stdout: &mut impl Write,
    entry: &str,
    outcome: Result<String, PluginError>,
    fail_code: i32,
) -> i32 {
    let (text, code) = match outcome {
        Ok(text) => (text, EXIT_OK),
        Err(e) => (render_error(&e), fail_code),
    };
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => code,
        Err(e) => {
            logging::error(&format!("{entry}: cannot write the result to stdout: {e}"));
            EXIT_FAILURE
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(OsStr::to_string_lossy)
        .map(|s| s.into_owned())
        .unwrap_or_default()
}

/// Maps the entry name to a method this plugin directory serves.
fn resolve(
    table: &[Method],
    entry: &str,
    kind: PluginKind,
    dir: &str,
) -> Result<Method, PluginError> {
    match Method::resolve_in(table, entry) {
        Resolution::Known(m) if m.installed_in(kind) => Ok(m),
        Resolution::Known(m) => Err(PluginError::unimplemented(format!(
            "{} is not served by the {} plugin (directory {dir:?})",
            m.name(),
            match kind {
                PluginKind::Volume => "volume",
                PluginKind::Datapath => "datapath",
            }
        ))),
        Resolution::Unimplemented(name) => Err(PluginError::unimplemented(name)),
        Resolution::Unknown => Err(PluginError::new(ErrorKind::UnknownMethod(
            entry.to_string(),
        ))),
    }
}

/// The error reported when the call panicked: the panic message, code `SR_BACKEND_FAILURE`,
/// params `["Internal_error", message]`.
fn panic_error(entry: &str, payload: &(dyn Any + Send)) -> PluginError {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string());
    let message = format!("{entry}: internal error (panic): {msg}");
    PluginError::custom(
        crate::error::CODE_GENERIC,
        vec!["Internal_error".into(), message.clone()],
        message,
    )
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
