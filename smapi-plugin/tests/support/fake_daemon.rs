//! A stand-in for `xapi-storage-script` that drives installed plugin entries exactly as the
//! daemon's `fork_exec_rpc` does (contract §2.1–§2.3), so tests exercise the real binary through
//! the real install layout:
//!
//! * the entry is looked up in `<root>/volume/org.xen.xapi.storage.zvol/` or `<root>/datapath/zvol/`
//!   through a **case-insensitive** map of the directory (`Plugin.query` finds `Plugin.Query`);
//!   missing → `SCRIPT_MISSING`, not a regular executable file (symlinks followed) →
//!   `SCRIPT_NOT_EXECUTABLE`;
//! * it is executed with argv `[<entry path>, "--json"]`, the test process's environment plus any
//!   [`FakeDaemon::env`] additions, cwd `/` (the daemon runs under systemd);
//! * the params object is written to stdin as compact JSON (no trailing newline) and stdin is
//!   closed; stdout and stderr are collected completely;
//! * exit 0 → stdout must parse as exactly one JSON value (else `SCRIPT_FAILED "bad json on
//!   stdout"`); non-zero → stdout must be the `{code, params, backtrace}` error (else
//!   `SCRIPT_FAILED "non-zero exit and bad json on stdout"`); killed → `SCRIPT_FAILED "signalled"`.
//!
//! Unlike the daemon it also **validates** every answer with [`super::contract`] (success values
//! by the method's IDL result type, errors with `validate_error`) and records each violation in
//! [`FakeDaemon::violations`]; tests assert that list is empty. It has a safety timeout (the real
//! daemon has none) so a hung plugin fails the test instead of hanging it.

#![allow(dead_code)]

use std::cell::RefCell;
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::contract;

/// Volume plugin directory name (fixed by the project).
pub const VOLUME_DIR: &str = "org.xen.xapi.storage.zvol";
/// Datapath plugin directory name (= URI scheme).
pub const DATAPATH_DIR: &str = "zvol";

/// Which plugin directory a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    /// `<root>/volume/org.xen.xapi.storage.zvol`.
    Volume,
    /// `<root>/datapath/zvol`.
    Datapath,
}

/// How a call failed, as the daemon would report it.
#[derive(Debug, Clone, PartialEq)]
pub enum DaemonError {
    /// No entry for the method (`SCRIPT_MISSING`).
    ScriptMissing(PathBuf),
    /// The entry is not an executable regular file (`SCRIPT_NOT_EXECUTABLE`).
    ScriptNotExecutable(PathBuf, String),
    /// The plugin failed properly: non-zero exit with a decodable error object.
    Plugin {
        /// Error code.
        code: String,
        /// Error params.
        params: Vec<String>,
        /// The whole error object as printed.
        raw: Value,
        /// Exit status.
        exit: i32,
    },
    /// The daemon could not make sense of the output (`SCRIPT_FAILED [...]`): the params as the
    /// daemon would build them (reason first).
    ScriptFailed(Vec<String>),
    /// The safety timeout of this harness expired (the process was killed).
    Timeout(Duration),
    /// The process could not be started.
    Spawn(String),
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::ScriptMissing(p) => write!(f, "SCRIPT_MISSING {}", p.display()),
            DaemonError::ScriptNotExecutable(p, e) => {
                write!(f, "SCRIPT_NOT_EXECUTABLE {}: {e}", p.display())
            }
            DaemonError::Plugin {
                code, params, exit, ..
            } => write!(f, "{code} {params:?} (exit {exit})"),
            DaemonError::ScriptFailed(p) => write!(f, "SCRIPT_FAILED {p:?}"),
            DaemonError::Timeout(d) => write!(f, "timed out after {d:?}"),
            DaemonError::Spawn(e) => write!(f, "cannot start: {e}"),
        }
    }
}

impl DaemonError {
    /// The error code if this is a proper plugin error.
    pub fn code(&self) -> Option<&str> {
        match self {
            DaemonError::Plugin { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The error params if this is a proper plugin error.
    pub fn params(&self) -> Option<&[String]> {
        match self {
            DaemonError::Plugin { params, .. } => Some(params),
            _ => None,
        }
    }
}

static RESUME_SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// What [`FakeDaemon::call_at_fault`] does when the plugin reaches the armed point.
pub enum AtFault<'a> {
    /// SIGKILL the plugin there.
    Kill,
    /// Run this while the plugin waits there, then let it go on.
    Run(&'a dyn Fn()),
}

/// How a [`FakeDaemon::call_at_fault`] call ended.
#[derive(Debug)]
pub enum FaultOutcome {
    /// Killed at the point (the record of the call).
    Killed(CallRecord),
    /// Ran to its end (the point was not reached, or the plugin was let go on).
    Finished(Result<Value, DaemonError>),
}

/// Everything observed about one call.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// Plugin directory.
    pub plugin: Plugin,
    /// Method as requested.
    pub method: String,
    /// Bytes written to stdin.
    pub stdin: Vec<u8>,
    /// Exit code, if it exited.
    pub exit: Option<i32>,
    /// Signal, if killed.
    pub signal: Option<i32>,
    /// Full stdout.
    pub stdout: Vec<u8>,
    /// Full stderr (the daemon only logs it).
    pub stderr: Vec<u8>,
    /// Wall time.
    pub elapsed: Duration,
}

/// The fake daemon; see the module docs.
pub struct FakeDaemon {
    root: PathBuf,
    env: Vec<(String, String)>,
    timeout: Duration,
    violations: RefCell<Vec<String>>,
    records: RefCell<Vec<CallRecord>>,
}

impl FakeDaemon {
    /// A daemon serving the plugins installed under `root`.
    pub fn new(root: impl Into<PathBuf>) -> FakeDaemon {
        FakeDaemon {
            root: root.into(),
            env: Vec::new(),
            timeout: Duration::from_secs(120),
            violations: RefCell::new(Vec::new()),
            records: RefCell::new(Vec::new()),
        }
    }

    /// Adds an environment variable for every plugin process (e.g. `XAPI_ZVOL_ZVOL_ROOT`).
    pub fn env(mut self, key: &str, value: impl Into<String>) -> FakeDaemon {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Sets the harness's safety timeout per call (default 120 s).
    pub fn timeout(mut self, t: Duration) -> FakeDaemon {
        self.timeout = t;
        self
    }

    /// The plugin directory of `plugin`.
    pub fn dir(&self, plugin: Plugin) -> PathBuf {
        match plugin {
            Plugin::Volume => self.root.join("volume").join(VOLUME_DIR),
            Plugin::Datapath => self.root.join("datapath").join(DATAPATH_DIR),
        }
    }

    /// Contract violations seen so far, each prefixed with the call (`Plugin.method: ...`).
    pub fn violations(&self) -> Vec<String> {
        self.violations.borrow().clone()
    }

    /// Panics listing the violations, if any.
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(v.is_empty(), "contract violations:\n  {}", v.join("\n  "));
    }

    /// Every call made so far.
    pub fn records(&self) -> Vec<CallRecord> {
        self.records.borrow().clone()
    }

    /// The last call's record.
    pub fn last(&self) -> Option<CallRecord> {
        self.records.borrow().last().cloned()
    }

    fn violation(&self, method: &str, what: impl AsRef<str>) {
        self.violations
            .borrow_mut()
            .push(format!("{method}: {}", what.as_ref()));
    }

    /// Resolves `method` in the plugin directory the way the daemon does (lower-case map).
    fn resolve(&self, plugin: Plugin, method: &str) -> Result<PathBuf, DaemonError> {
        let dir = self.dir(plugin);
        let want = method.to_lowercase();
        let found = fs::read_dir(&dir)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().to_lowercase() == want)
            .map(|e| e.path());
        let path = found.ok_or_else(|| DaemonError::ScriptMissing(dir.join(method)))?;
        let meta = fs::metadata(&path)
            .map_err(|e| DaemonError::ScriptNotExecutable(path.clone(), e.to_string()))?;
        if !meta.is_file() {
            return Err(DaemonError::ScriptNotExecutable(
                path,
                "not a regular file".into(),
            ));
        }
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(DaemonError::ScriptNotExecutable(
                path,
                "not executable".into(),
            ));
        }
        Ok(path)
    }

    /// Calls `method` with the named-params object `params`; see [`FakeDaemon::call_raw`].
    pub fn call(&self, plugin: Plugin, method: &str, params: Value) -> Result<Value, DaemonError> {
        self.call_raw(plugin, method, params.to_string().as_bytes())
    }

    /// Calls `method` with exactly `stdin` as its input (e.g. bytes replayed from a transcript).
    /// Returns the decoded success value or the daemon-level error; validates either and records
    /// violations.
    pub fn call_raw(
        &self,
        plugin: Plugin,
        method: &str,
        stdin: &[u8],
    ) -> Result<Value, DaemonError> {
        match self.run(plugin, method, stdin, None)? {
            FaultOutcome::Finished(r) => r,
            FaultOutcome::Killed(_) => unreachable!("no fault point armed"),
        }
    }

    /// Calls `method` with the fault point `point` armed in `hang` mode
    /// (`XAPI_ZVOL_FAULT_MODE`, see `zfs_volume::sr::fault`). When the plugin reports that it
    /// reached the point: with [`AtFault::Kill`] it is SIGKILLed there (as the daemon's timeout
    /// or the OOM killer would) and [`FaultOutcome::Killed`] is returned; with
    /// [`AtFault::Run`] the closure runs while the plugin waits (export the pool, fill it...),
    /// then the plugin is let go on and its answer is decoded as usual. A call that finishes
    /// without reaching the point is decoded as usual too ([`FaultOutcome::Finished`]).
    pub fn call_at_fault(
        &self,
        plugin: Plugin,
        method: &str,
        params: Value,
        point: &str,
        at: AtFault<'_>,
    ) -> Result<FaultOutcome, DaemonError> {
        self.run(
            plugin,
            method,
            params.to_string().as_bytes(),
            Some((point, at)),
        )
    }

    fn run(
        &self,
        plugin: Plugin,
        method: &str,
        stdin: &[u8],
        fault: Option<(&str, AtFault<'_>)>,
    ) -> Result<FaultOutcome, DaemonError> {
        let path = self.resolve(plugin, method)?;
        let started = Instant::now();
        let mut cmd = Command::new(&path);
        cmd.arg("--json")
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let resume = fault.as_ref().map(|(point, _)| {
            let f = std::env::temp_dir().join(format!(
                "xzvol-resume-{}-{}",
                std::process::id(),
                RESUME_SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            ));
            let _ = fs::remove_file(&f);
            cmd.env("XAPI_ZVOL_FAULT", point)
                .env("XAPI_ZVOL_FAULT_MODE", "hang")
                .env("XAPI_ZVOL_FAULT_RESUME", &f);
            f
        });
        let mut child = cmd
            .spawn()
            .map_err(|e| DaemonError::Spawn(format!("{}: {e}", path.display())))?;
        let mut child_stdin = child.stdin.take().expect("piped stdin");
        let input = stdin.to_vec();
        let writer = thread::spawn(move || {
            // A plugin may exit without reading everything (EPIPE): that is its business.
            let _ = child_stdin.write_all(&input);
            // Dropping closes stdin, as the daemon does.
        });
        let mut out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let out_t = thread::spawn(move || {
            let mut b = Vec::new();
            let _ = out.read_to_end(&mut b);
            b
        });
        // stderr is read line by line so that a fault point's report is seen while it waits.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let err_t = thread::spawn(move || {
            let mut b = Vec::new();
            let mut r = std::io::BufReader::new(err);
            loop {
                let mut line = Vec::new();
                match std::io::BufRead::read_until(&mut r, b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                        b.extend_from_slice(&line);
                    }
                }
            }
            b
        });
        let mut fault = fault;
        let mut killed = false;
        let status = loop {
            if let Some((point, _)) = &fault {
                let want = format!("fault point {point} reached");
                if rx.try_iter().any(|l| l.contains(&want)) {
                    let (_, at) = fault.take().unwrap();
                    match at {
                        AtFault::Kill => {
                            let _ = child.kill(); // SIGKILL
                            killed = true;
                        }
                        AtFault::Run(f) => {
                            f();
                            fs::write(resume.as_ref().unwrap(), b"go")
                                .expect("write the resume file");
                        }
                    }
                }
            }
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if started.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.violation(method, format!("no answer within {:?}", self.timeout));
                    return Err(DaemonError::Timeout(self.timeout));
                }
                Ok(None) => thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(DaemonError::Spawn(e.to_string())),
            }
        };
        if let Some(f) = &resume {
            let _ = fs::remove_file(f);
        }
        let _ = writer.join();
        let stdout = out_t.join().unwrap_or_default();
        let stderr = err_t.join().unwrap_or_default();
        let record = CallRecord {
            plugin,
            method: method.to_string(),
            stdin: stdin.to_vec(),
            exit: status.code(),
            signal: status.signal(),
            stdout: stdout.clone(),
            stderr,
            elapsed: started.elapsed(),
        };
        self.records.borrow_mut().push(record.clone());
        if killed {
            assert_eq!(
                record.signal,
                Some(9),
                "{method}: expected death by SIGKILL, got {:?}",
                record.exit
            );
            return Ok(FaultOutcome::Killed(record));
        }
        Ok(FaultOutcome::Finished(self.decode(
            method,
            &path,
            status.code(),
            status.signal(),
            &stdout,
        )))
    }

    /// Applies the daemon's decoding rules to one finished call, validating as it goes.
    fn decode(
        &self,
        method: &str,
        path: &Path,
        exit: Option<i32>,
        signal: Option<i32>,
        stdout: &[u8],
    ) -> Result<Value, DaemonError> {
        let script = path.display().to_string();
        let text = String::from_utf8_lossy(stdout).into_owned();
        if let Some(sig) = signal {
            self.violation(method, format!("killed by signal {sig}"));
            return Err(DaemonError::ScriptFailed(vec![
                script,
                "signalled".into(),
                sig.to_string(),
            ]));
        }
        let exit = exit.unwrap_or(-1);
        let parsed = contract::parse_stdout(stdout);
        if exit == 0 {
            return match parsed {
                Ok(v) => {
                    for e in contract::validate_result(method, &v) {
                        self.violation(method, e);
                    }
                    Ok(v)
                }
                Err(why) => {
                    self.violation(method, format!("exit 0 with bad stdout: {why}"));
                    Err(DaemonError::ScriptFailed(vec![
                        script,
                        "bad json on stdout".into(),
                        text,
                    ]))
                }
            };
        }
        if exit != 1 {
            self.violation(
                method,
                format!("failure exit status is {exit}, the contract says 1"),
            );
        }
        let bad = |why: String| {
            self.violation(method, format!("exit {exit} with bad error JSON: {why}"));
            DaemonError::ScriptFailed(vec![
                script.clone(),
                "non-zero exit and bad json on stdout".into(),
                exit.to_string(),
                text.clone(),
                text.clone(),
            ])
        };
        let v = parsed.map_err(bad)?;
        let violations = contract::validate_error(&v);
        // The daemon's decoder (error_of_rpc) needs code, params and backtrace with their types;
        // unequal backtrace lengths only blow up later in xapi: report both as violations.
        for e in &violations {
            self.violation(method, e);
        }
        let code = v.get("code").and_then(Value::as_str).map(str::to_string);
        let params: Option<Vec<String>> = v
            .get("params")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|p| p.as_str().map(str::to_string)).collect());
        match (code, params, v.get("backtrace").map(Value::is_object)) {
            (Some(code), Some(params), Some(true)) => Err(DaemonError::Plugin {
                code,
                params,
                raw: v,
                exit,
            }),
            _ => Err(DaemonError::ScriptFailed(vec![
                script,
                "non-zero exit and bad json on stdout".into(),
                exit.to_string(),
                text.clone(),
                text,
            ])),
        }
    }
}
