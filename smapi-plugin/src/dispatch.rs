//! One plugin invocation, end to end (contract §2).
//!
//! `xapi-storage-script` runs `<plugin dir>/<Interface.method> --json`, writes the named-params
//! object on stdin and closes it. [`run`]:
//!
//! 1. takes the method from `basename(argv0)` (case-insensitively, [`Method::resolve`]) and the
//!    plugin from the parent directory's name ([`PluginKind::from_dir_name`]);
//! 2. requires the single argument `--json` (anything else: usage on stderr, a `Usage` error on
//!    stdout, exit [`EXIT_USAGE`]; the daemon always passes exactly `--json`);
//! 3. reads all of stdin, parses one JSON object and validates every declared parameter
//!    ([`Method::params`]) before anything else runs, so a missing or mistyped parameter is
//!    reported by name and the backend never sees a half-valid request;
//! 4. answers `Plugin.query` and the datapath plugin itself, and calls the [`VolumeBackend`] for
//!    the rest (built lazily by `backend_factory`, so `Plugin.query` works even without ZFS);
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
use std::time::{Duration, Instant};

use crate::backend::VolumeBackend;
use crate::datapath::{self, DatapathConfig};
use crate::error::{ErrorKind, PluginError};
use crate::logging;
use crate::methods::{Method, ParamType, PluginKind, Resolution};
use crate::query;
use crate::wire::{self, render_error, render_success, Params};

/// Exit status of a successful call.
pub const EXIT_OK: i32 = 0;
/// Exit status of a failed call (the error object is on stdout). Contract §11: "exit 1".
pub const EXIT_FAILURE: i32 = 1;
/// Exit status when invoked without `--json` (never happens under the daemon). The `Usage` error
/// object is still printed on stdout so that any caller gets parsable output.
pub const EXIT_USAGE: i32 = 2;

/// The only argument the daemon passes (`main.ml`: `let args = ["--json"]`).
pub const JSON_FLAG: &str = "--json";

/// Environment variable overriding how long `Datapath.attach` waits for the device of an
/// existing zvol to appear, in milliseconds (default [`datapath::DEFAULT_WAIT`]).
pub const ENV_ATTACH_WAIT_MS: &str = "XAPI_ZVOL_ATTACH_WAIT_MS";

/// The datapath settings from the process environment (see [`ENV_ATTACH_WAIT_MS`]).
pub fn datapath_config_from_env() -> DatapathConfig {
    datapath_config_from(|k| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()))
}

/// The datapath settings from `lookup` (an environment accessor); unset or empty variables keep
/// the defaults, an unparsable wait is ignored (with a warning in the log).
pub fn datapath_config_from(lookup: impl Fn(&str) -> Option<String>) -> DatapathConfig {
    let mut cfg = DatapathConfig::default();
    if let Some(ms) = lookup(ENV_ATTACH_WAIT_MS).filter(|r| !r.is_empty()) {
        match ms.trim().parse::<u64>() {
            Ok(ms) => cfg.wait = Duration::from_millis(ms),
            Err(e) => logging::warn(&format!("ignoring {ENV_ATTACH_WAIT_MS}={ms:?}: {e}")),
        }
    }
    cfg
}

/// Runs one plugin invocation with the datapath settings from the environment
/// ([`datapath_config_from_env`]); see the module docs. Returns the process exit status.
///
/// `argv0` is the entry path the daemon executed (its file name is the method, its parent
/// directory the plugin); `args` are the remaining arguments (`["--json"]`).
pub fn run(
    argv0: &Path,
    args: &[String],
    stdin: impl Read,
    stdout: impl Write,
    backend_factory: impl FnOnce() -> Box<dyn VolumeBackend>,
) -> i32 {
    run_with(
        &datapath_config_from_env(),
        argv0,
        args,
        stdin,
        stdout,
        backend_factory,
    )
}

/// [`run`] with explicit datapath settings (tests).
pub fn run_with(
    dp: &DatapathConfig,
    argv0: &Path,
    args: &[String],
    stdin: impl Read,
    mut stdout: impl Write,
    backend_factory: impl FnOnce() -> Box<dyn VolumeBackend>,
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
        let method = resolve(&entry, kind, &dir)?;
        let raw = wire::read_request(stdin)?;
        let params = Params::parse(method.name(), &raw)?;
        summary = params.summary();
        validate(method, &params)?;
        execute(method, kind, &params, dp, backend_factory)
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
fn resolve(entry: &str, kind: PluginKind, dir: &str) -> Result<Method, PluginError> {
    match Method::resolve(entry) {
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

/// Checks every declared parameter's presence and type (getters report the field by name).
fn validate(method: Method, p: &Params) -> Result<(), PluginError> {
    for spec in method.params() {
        match spec.ty {
            ParamType::String => p.string(spec.name).map(drop)?,
            ParamType::Int64 => p.int64(spec.name).map(drop)?,
            ParamType::Bool => p.bool(spec.name).map(drop)?,
            ParamType::Configuration => p.configuration(spec.name).map(drop)?,
        }
    }
    Ok(())
}

/// A size parameter: an int64 that must not be negative (`SR_BACKEND_FAILURE_79`).
fn size(p: &Params, name: &str) -> Result<i64, PluginError> {
    let n = p.int64(name)?;
    if n < 0 {
        return Err(PluginError::invalid_size(format!(
            "{}: {name} must not be negative, got {n}",
            p.method()
        )));
    }
    Ok(n)
}

/// Calls the implementation of `method` and renders its result.
fn execute(
    method: Method,
    kind: PluginKind,
    p: &Params,
    dp: &DatapathConfig,
    backend_factory: impl FnOnce() -> Box<dyn VolumeBackend>,
) -> Result<String, PluginError> {
    let s = |name: &str| p.string(name);
    // Methods answered without the backend.
    match method {
        Method::PluginQuery => {
            return render_success(&match kind {
                PluginKind::Volume => query::volume_query(),
                PluginKind::Datapath => query::datapath_query(),
            })
        }
        Method::PluginDiagnostics if kind == PluginKind::Datapath => {
            return render_success(&datapath::diagnostics(dp))
        }
        Method::DatapathOpen => {
            return render_success(&datapath::open(dp, &s("uri")?, p.bool("persistent")?)?)
        }
        Method::DatapathAttach => {
            return render_success(&datapath::attach(dp, &s("uri")?, &s("domain")?)?)
        }
        Method::DatapathActivate => {
            return render_success(&datapath::activate(dp, &s("uri")?, &s("domain")?)?)
        }
        Method::DatapathDeactivate => {
            return render_success(&datapath::deactivate(dp, &s("uri")?, &s("domain")?)?)
        }
        Method::DatapathDetach => {
            datapath::detach(dp, &s("uri")?, &s("domain")?);
            return render_success(&());
        }
        Method::DatapathClose => return render_success(&datapath::close(dp, &s("uri")?)?),
        _ => {}
    }

    let b = backend_factory();
    let dbg = s("dbg")?;
    let dbg = dbg.as_str();
    match method {
        Method::PluginDiagnostics => render_success(&b.diagnostics(dbg)?),
        Method::SrProbe => render_success(&b.sr_probe(dbg, &p.configuration("configuration")?)?),
        Method::SrCreate => render_success(&b.sr_create(
            dbg,
            &s("uuid")?,
            &p.configuration("configuration")?,
            &s("name")?,
            &s("description")?,
        )?),
        Method::SrAttach => render_success(&b.sr_attach(dbg, &p.configuration("configuration")?)?),
        Method::SrDetach => render_success(&b.sr_detach(dbg, &s("sr")?)?),
        Method::SrDestroy => render_success(&b.sr_destroy(dbg, &s("sr")?)?),
        Method::SrStat => render_success(&b.sr_stat(dbg, &s("sr")?)?),
        Method::SrSetName => render_success(&b.sr_set_name(dbg, &s("sr")?, &s("new_name")?)?),
        Method::SrSetDescription => {
            render_success(&b.sr_set_description(dbg, &s("sr")?, &s("new_description")?)?)
        }
        Method::SrLs => render_success(&b.sr_ls(dbg, &s("sr")?)?),
        Method::VolumeCreate => render_success(&b.volume_create(
            dbg,
            &s("sr")?,
            &s("name")?,
            &s("description")?,
            size(p, "size")?,
            p.bool("sharable")?,
        )?),
        Method::VolumeSnapshot => render_success(&b.volume_snapshot(dbg, &s("sr")?, &s("key")?)?),
        Method::VolumeClone => render_success(&b.volume_clone(dbg, &s("sr")?, &s("key")?)?),
        Method::VolumeDestroy => render_success(&b.volume_destroy(dbg, &s("sr")?, &s("key")?)?),
        Method::VolumeRevert => {
            render_success(&b.volume_revert(dbg, &s("sr")?, &s("snapshot")?, &s("key")?)?)
        }
        Method::VolumeSetName => {
            render_success(&b.volume_set_name(dbg, &s("sr")?, &s("key")?, &s("new_name")?)?)
        }
        Method::VolumeSetDescription => render_success(&b.volume_set_description(
            dbg,
            &s("sr")?,
            &s("key")?,
            &s("new_description")?,
        )?),
        Method::VolumeSet => {
            render_success(&b.volume_set(dbg, &s("sr")?, &s("key")?, &s("k")?, &s("v")?)?)
        }
        Method::VolumeUnset => {
            render_success(&b.volume_unset(dbg, &s("sr")?, &s("key")?, &s("k")?)?)
        }
        Method::VolumeResize => {
            render_success(&b.volume_resize(dbg, &s("sr")?, &s("key")?, size(p, "new_size")?)?)
        }
        Method::VolumeStat => render_success(&b.volume_stat(dbg, &s("sr")?, &s("key")?)?),
        Method::PluginQuery
        | Method::DatapathOpen
        | Method::DatapathAttach
        | Method::DatapathActivate
        | Method::DatapathDeactivate
        | Method::DatapathDetach
        | Method::DatapathClose => Err(PluginError::backend(format!(
            "internal error: {} reached the backend dispatch",
            method.name()
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
