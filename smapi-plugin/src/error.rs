//! The plugin's error type and its wire encoding (contract §2.3).
//!
//! On failure a plugin executable exits non-zero and prints
//! `{"code": str, "params": [str], "backtrace": {"error": str, "files": [str], "lines": [int]}}`.
//! xapi turns `code`/`params` into the `Server_error` the user sees, and `List.combine`s
//! `files` with `lines`: if their lengths differ the whole error degrades into an
//! INTERNAL_ERROR, so [`WireBacktrace`] is only ever built with equal-length lists.
//!
//! Code choice:
//! * well-known conditions use the SMAPIv1 numbered codes that peers (libcow, zfs-vol, zfs-live)
//!   emit, so XenCenter/XO show their friendly text: `SR_BACKEND_FAILURE_<n>` with
//!   `params = [<short description>, <detail>]`;
//! * typed IDL conditions use what the Python bindings' `handle_exception` prints:
//!   `SR_BACKEND_FAILURE` with `params = [<IDL exception name>, <detail>]`. The daemon
//!   special-cases exactly `["Activated_on_another_host", host_uuid]`;
//! * bad requests mirror the generated Python dispatcher's exception names
//!   (`UnmarshalException`, `TypeError`, `UnknownMethod`), again as `[name, message]`.

use std::fmt;
use std::panic::Location;

use serde::{Deserialize, Serialize};

/// Generic code used for typed IDL errors, request errors and otherwise unclassified failures.
pub const CODE_GENERIC: &str = "SR_BACKEND_FAILURE";

/// What went wrong. Each variant maps to one fixed `code` and `params` shape
/// (see [`ErrorKind::code`] and [`ErrorKind::params`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// Invalid or refused size, e.g. shrinking a volume or a negative size.
    /// `SR_BACKEND_FAILURE_79`, params `["VDI Invalid size", detail]`.
    #[error("invalid volume size: {0}")]
    InvalidSize(String),

    /// The volume is in use (attached/active) and the operation needs it idle.
    /// `SR_BACKEND_FAILURE_24`, params `["VDIInUse", detail]`.
    #[error("volume in use: {0}")]
    InUse(String),

    /// Bad or missing SR configuration (device-config) key.
    /// `SR_BACKEND_FAILURE_109`, params `["Invalid configuration", "<key>: <detail>"]`.
    #[error("invalid SR configuration key {key:?}: {detail}")]
    BadConfiguration {
        /// The device-config key at fault; named in the message so the admin knows what to fix.
        key: String,
        /// What is wrong with it.
        detail: String,
    },

    /// A resize was valid but could not be carried out.
    /// `SR_BACKEND_FAILURE_110`, params `["VDI resize failed", detail]`.
    #[error("volume resize failed: {0}")]
    ResizeFailed(String),

    /// Not enough space in the pool/SR.
    /// `SR_BACKEND_FAILURE_44`, params `["There is insufficient space", detail]`
    /// (xapi special-cases code 44 in VM revert as "not enough space").
    #[error("insufficient space: {0}")]
    NoSpace(String),

    /// The volume's device is not available (e.g. it did not appear under /dev/zvol).
    /// `SR_BACKEND_FAILURE_46`, params `["The VDI is not available", detail]`.
    #[error("volume not available: {0}")]
    VolumeUnavailable(String),

    /// A lock could not be taken in time (another call holds the SR).
    /// `SR_BACKEND_FAILURE_201`, params `["Currently unavailable, try again", detail]`.
    #[error("busy, try again: {0}")]
    Busy(String),

    /// IDL `Volume_does_not_exist`: `SR_BACKEND_FAILURE`, params `["Volume_does_not_exist", key]`.
    #[error("volume {0} does not exist")]
    VolumeDoesNotExist(String),

    /// IDL `Sr_not_attached`: `SR_BACKEND_FAILURE`, params `["Sr_not_attached", sr]`.
    #[error("SR {0} is not attached")]
    SrNotAttached(String),

    /// IDL `SR_does_not_exist`: `SR_BACKEND_FAILURE`, params `["SR_does_not_exist", detail]`.
    #[error("SR does not exist: {0}")]
    SrDoesNotExist(String),

    /// IDL `Unimplemented`: `SR_BACKEND_FAILURE`, params `["Unimplemented", what]`.
    #[error("unimplemented: {0}")]
    Unimplemented(String),

    /// IDL `Cancelled`: `SR_BACKEND_FAILURE`, params `["Cancelled", detail]`.
    #[error("cancelled: {0}")]
    Cancelled(String),

    /// IDL `Activated_on_another_host`: params exactly `["Activated_on_another_host", host_uuid]`,
    /// which the daemon turns into the typed SMAPIv2 error.
    #[error("volume is activated on another host ({0})")]
    ActivatedOnAnotherHost(String),

    /// A required request parameter is absent.
    /// `SR_BACKEND_FAILURE`, params `["UnmarshalException", message]`.
    #[error("{method}: missing required parameter {name:?} (expected {expected})")]
    MissingParam {
        /// Method being called.
        method: String,
        /// Parameter name as in the IDL.
        name: String,
        /// Expected JSON type, for the human.
        expected: String,
    },

    /// A request parameter has the wrong type or an unusable value.
    /// `SR_BACKEND_FAILURE`, params `["TypeError", message]`.
    #[error("{method}: parameter {name:?}: expected {expected}, got {got}")]
    BadParam {
        /// Method being called.
        method: String,
        /// Parameter name as in the IDL.
        name: String,
        /// Expected JSON type.
        expected: String,
        /// Short rendering of what was received.
        got: String,
    },

    /// stdin is not a single JSON object.
    /// `SR_BACKEND_FAILURE`, params `["UnmarshalException", message]`.
    #[error("bad request on stdin: {0}")]
    BadRequest(String),

    /// The entry point name is not a method this plugin serves.
    /// `SR_BACKEND_FAILURE`, params `["UnknownMethod", message]`.
    #[error("unknown method {0:?}")]
    UnknownMethod(String),

    /// Invoked without the `--json` argument (or with unexpected arguments).
    /// `SR_BACKEND_FAILURE`, params `["Usage", message]`.
    #[error("usage: {0}")]
    Usage(String),

    /// Any other backend failure, carrying the underlying message.
    /// `SR_BACKEND_FAILURE`, params `["Backend_failure", message]`.
    #[error("{0}")]
    Backend(String),

    /// Escape hatch for a condition with a specific code/params not covered above.
    #[error("{message}")]
    Custom {
        /// Error code reported to xapi.
        code: String,
        /// Error params reported to xapi.
        params: Vec<String>,
        /// Human message for `backtrace.error` and the logs.
        message: String,
    },
}

impl ErrorKind {
    /// The `code` field of the wire error.
    pub fn code(&self) -> String {
        match self {
            ErrorKind::InvalidSize(_) => "SR_BACKEND_FAILURE_79".into(),
            ErrorKind::InUse(_) => "SR_BACKEND_FAILURE_24".into(),
            ErrorKind::BadConfiguration { .. } => "SR_BACKEND_FAILURE_109".into(),
            ErrorKind::ResizeFailed(_) => "SR_BACKEND_FAILURE_110".into(),
            ErrorKind::NoSpace(_) => "SR_BACKEND_FAILURE_44".into(),
            ErrorKind::VolumeUnavailable(_) => "SR_BACKEND_FAILURE_46".into(),
            ErrorKind::Busy(_) => "SR_BACKEND_FAILURE_201".into(),
            ErrorKind::Custom { code, .. } => code.clone(),
            _ => CODE_GENERIC.into(),
        }
    }

    /// The `params` field of the wire error.
    pub fn params(&self) -> Vec<String> {
        let pair = |a: &str, b: &str| vec![a.to_string(), b.to_string()];
        match self {
            ErrorKind::InvalidSize(d) => pair("VDI Invalid size", d),
            ErrorKind::InUse(d) => pair("VDIInUse", d),
            ErrorKind::BadConfiguration { key, detail } => {
                pair("Invalid configuration", &format!("{key}: {detail}"))
            }
            ErrorKind::ResizeFailed(d) => pair("VDI resize failed", d),
            ErrorKind::NoSpace(d) => pair("There is insufficient space", d),
            ErrorKind::VolumeUnavailable(d) => pair("The VDI is not available", d),
            ErrorKind::Busy(d) => pair("Currently unavailable, try again", d),
            ErrorKind::VolumeDoesNotExist(k) => pair("Volume_does_not_exist", k),
            ErrorKind::SrNotAttached(s) => pair("Sr_not_attached", s),
            ErrorKind::SrDoesNotExist(s) => pair("SR_does_not_exist", s),
            ErrorKind::Unimplemented(s) => pair("Unimplemented", s),
            ErrorKind::Cancelled(s) => pair("Cancelled", s),
            ErrorKind::ActivatedOnAnotherHost(h) => pair("Activated_on_another_host", h),
            ErrorKind::MissingParam { .. } | ErrorKind::BadRequest(_) => {
                pair("UnmarshalException", &self.to_string())
            }
            ErrorKind::BadParam { .. } => pair("TypeError", &self.to_string()),
            ErrorKind::UnknownMethod(_) => pair("UnknownMethod", &self.to_string()),
            ErrorKind::Usage(_) => pair("Usage", &self.to_string()),
            ErrorKind::Backend(m) => pair("Backend_failure", m),
            ErrorKind::Custom { params, .. } => params.clone(),
        }
    }
}

/// An error a plugin call fails with: an [`ErrorKind`] plus the Rust source location where it
/// was raised (reported in `backtrace.files`/`backtrace.lines` to speed up debugging from SMlog).
///
/// Constructors are `#[track_caller]`, so the location is the caller's, not this file's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    kind: ErrorKind,
    file: &'static str,
    line: u32,
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for PluginError {}

impl From<ErrorKind> for PluginError {
    #[track_caller]
    fn from(kind: ErrorKind) -> Self {
        PluginError::new(kind)
    }
}

impl PluginError {
    /// Wraps `kind`, recording the caller's source location.
    #[track_caller]
    pub fn new(kind: ErrorKind) -> Self {
        let loc = Location::caller();
        PluginError {
            kind,
            file: loc.file(),
            line: loc.line(),
        }
    }

    /// [`ErrorKind::InvalidSize`].
    #[track_caller]
    pub fn invalid_size(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidSize(detail.into()))
    }

    /// [`ErrorKind::InUse`].
    #[track_caller]
    pub fn in_use(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InUse(detail.into()))
    }

    /// [`ErrorKind::BadConfiguration`]; `key` is the device-config key at fault.
    #[track_caller]
    pub fn bad_configuration(key: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadConfiguration {
            key: key.into(),
            detail: detail.into(),
        })
    }

    /// [`ErrorKind::ResizeFailed`].
    #[track_caller]
    pub fn resize_failed(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResizeFailed(detail.into()))
    }

    /// [`ErrorKind::NoSpace`].
    #[track_caller]
    pub fn no_space(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NoSpace(detail.into()))
    }

    /// [`ErrorKind::VolumeUnavailable`].
    #[track_caller]
    pub fn volume_unavailable(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::VolumeUnavailable(detail.into()))
    }

    /// [`ErrorKind::Busy`].
    #[track_caller]
    pub fn busy(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Busy(detail.into()))
    }

    /// [`ErrorKind::VolumeDoesNotExist`]; `key` is the volume key.
    #[track_caller]
    pub fn volume_does_not_exist(key: impl Into<String>) -> Self {
        Self::new(ErrorKind::VolumeDoesNotExist(key.into()))
    }

    /// [`ErrorKind::SrNotAttached`]; `sr` is the opaque SR string.
    #[track_caller]
    pub fn sr_not_attached(sr: impl Into<String>) -> Self {
        Self::new(ErrorKind::SrNotAttached(sr.into()))
    }

    /// [`ErrorKind::SrDoesNotExist`].
    #[track_caller]
    pub fn sr_does_not_exist(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::SrDoesNotExist(detail.into()))
    }

    /// [`ErrorKind::Unimplemented`].
    #[track_caller]
    pub fn unimplemented(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unimplemented(what.into()))
    }

    /// [`ErrorKind::Cancelled`].
    #[track_caller]
    pub fn cancelled(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Cancelled(detail.into()))
    }

    /// [`ErrorKind::ActivatedOnAnotherHost`]; `host_uuid` is the other host's uuid.
    #[track_caller]
    pub fn activated_on_another_host(host_uuid: impl Into<String>) -> Self {
        Self::new(ErrorKind::ActivatedOnAnotherHost(host_uuid.into()))
    }

    /// [`ErrorKind::Backend`]: a generic failure carrying the underlying message.
    #[track_caller]
    pub fn backend(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Backend(message.into()))
    }

    /// [`ErrorKind::Custom`]: explicit code and params.
    #[track_caller]
    pub fn custom(
        code: impl Into<String>,
        params: Vec<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(ErrorKind::Custom {
            code: code.into(),
            params,
            message: message.into(),
        })
    }

    /// The condition.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Source file where the error was raised.
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// Source line where the error was raised.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The `code` field reported to xapi.
    pub fn code(&self) -> String {
        self.kind.code()
    }

    /// The `params` field reported to xapi.
    pub fn params(&self) -> Vec<String> {
        self.kind.params()
    }

    /// The wire form printed on stdout; `files`/`lines` always have equal length (one entry).
    pub fn to_wire(&self) -> WireError {
        WireError {
            code: self.code(),
            params: self.params(),
            backtrace: WireBacktrace::single(self.kind.to_string(), self.file, self.line),
        }
    }
}

/// The error object printed on stdout on failure (`Private.Lib.Types.error` in the daemon).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// Error code, e.g. `SR_BACKEND_FAILURE_79`.
    pub code: String,
    /// Error parameters shown to the user.
    pub params: Vec<String>,
    /// Where and why; xapi parses it with `Backtrace.Interop.of_json`.
    pub backtrace: WireBacktrace,
}

/// The `backtrace` member of [`WireError`].
///
/// Fields are private so that the equal-length invariant of `files`/`lines` cannot be broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireBacktrace {
    error: String,
    files: Vec<String>,
    lines: Vec<i64>,
}

impl WireBacktrace {
    /// A backtrace with no frames (`files: [], lines: []`).
    pub fn empty(error: impl Into<String>) -> Self {
        WireBacktrace {
            error: error.into(),
            files: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// A backtrace with exactly one frame.
    pub fn single(error: impl Into<String>, file: &str, line: u32) -> Self {
        WireBacktrace {
            error: error.into(),
            files: vec![file.to_string()],
            lines: vec![i64::from(line)],
        }
    }

    /// Builds a backtrace from frames; equal lengths by construction.
    pub fn from_frames(error: impl Into<String>, frames: &[(&str, u32)]) -> Self {
        WireBacktrace {
            error: error.into(),
            files: frames.iter().map(|(f, _)| f.to_string()).collect(),
            lines: frames.iter().map(|(_, l)| i64::from(*l)).collect(),
        }
    }

    /// The human message.
    pub fn error(&self) -> &str {
        &self.error
    }

    /// Source files, one per frame.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Source lines, one per frame.
    pub fn lines(&self) -> &[i64] {
        &self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_kinds() -> Vec<ErrorKind> {
        vec![
            ErrorKind::InvalidSize("shrinking not allowed".into()),
            ErrorKind::InUse("attached".into()),
            ErrorKind::BadConfiguration {
                key: "pool".into(),
                detail: "missing".into(),
            },
            ErrorKind::ResizeFailed("x".into()),
            ErrorKind::NoSpace("x".into()),
            ErrorKind::VolumeUnavailable("x".into()),
            ErrorKind::Busy("x".into()),
            ErrorKind::VolumeDoesNotExist("k".into()),
            ErrorKind::SrNotAttached("s".into()),
            ErrorKind::SrDoesNotExist("s".into()),
            ErrorKind::Unimplemented("Volume.compose".into()),
            ErrorKind::Cancelled("c".into()),
            ErrorKind::ActivatedOnAnotherHost("h".into()),
            ErrorKind::MissingParam {
                method: "m".into(),
                name: "sr".into(),
                expected: "string".into(),
            },
            ErrorKind::BadParam {
                method: "m".into(),
                name: "size".into(),
                expected: "int64".into(),
                got: "1.5".into(),
            },
            ErrorKind::BadRequest("x".into()),
            ErrorKind::UnknownMethod("x".into()),
            ErrorKind::Usage("x".into()),
            ErrorKind::Backend("x".into()),
            ErrorKind::Custom {
                code: "C".into(),
                params: vec![],
                message: "m".into(),
            },
        ]
    }

    #[test]
    fn every_kind_serialises_to_the_full_error_shape() {
        for kind in all_kinds() {
            let e = PluginError::new(kind.clone());
            let v = serde_json::to_value(e.to_wire()).unwrap();
            let obj = v.as_object().unwrap();
            assert_eq!(obj.len(), 3, "{kind:?}");
            assert!(obj["code"].is_string());
            assert!(obj["params"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p.is_string()));
            let bt = obj["backtrace"].as_object().unwrap();
            assert!(bt["error"].is_string());
            let files = bt["files"].as_array().unwrap();
            let lines = bt["lines"].as_array().unwrap();
            assert_eq!(files.len(), lines.len(), "{kind:?}");
            assert!(lines.iter().all(|l| l.is_i64()));
            assert!(files.iter().all(|f| f.is_string()));
        }
    }

    #[test]
    fn numbered_codes_and_params() {
        let e = PluginError::invalid_size("shrinking not allowed");
        assert_eq!(e.code(), "SR_BACKEND_FAILURE_79");
        assert_eq!(e.params(), ["VDI Invalid size", "shrinking not allowed"]);
        assert_eq!(PluginError::in_use("x").code(), "SR_BACKEND_FAILURE_24");
        assert_eq!(PluginError::in_use("x").params()[0], "VDIInUse");
        let c = PluginError::bad_configuration("provisioning", "must be thin or thick");
        assert_eq!(c.code(), "SR_BACKEND_FAILURE_109");
        assert!(c.params()[1].contains("provisioning"));
        assert!(c.to_string().contains("provisioning"));
        assert_eq!(
            PluginError::resize_failed("x").code(),
            "SR_BACKEND_FAILURE_110"
        );
        assert_eq!(PluginError::busy("x").code(), "SR_BACKEND_FAILURE_201");
    }

    #[test]
    fn typed_idl_errors_use_generic_code_and_name_detail_pair() {
        let e = PluginError::volume_does_not_exist("6f1c");
        assert_eq!(e.code(), "SR_BACKEND_FAILURE");
        assert_eq!(e.params(), ["Volume_does_not_exist", "6f1c"]);
        assert_eq!(
            PluginError::sr_not_attached("s").params(),
            ["Sr_not_attached", "s"]
        );
        assert_eq!(
            PluginError::sr_does_not_exist("s").params(),
            ["SR_does_not_exist", "s"]
        );
        assert_eq!(
            PluginError::unimplemented("u").params(),
            ["Unimplemented", "u"]
        );
        // Exactly two elements: the daemon pattern-matches this form.
        assert_eq!(
            PluginError::activated_on_another_host("host-uuid").params(),
            ["Activated_on_another_host", "host-uuid"]
        );
    }

    #[test]
    fn location_is_the_callers() {
        let line = line!() + 1;
        let e = PluginError::backend("boom");
        assert!(e.file().ends_with("error.rs"));
        assert_eq!(e.line(), line);
        let wire = e.to_wire();
        assert_eq!(wire.backtrace.lines(), [i64::from(line)]);
        assert_eq!(wire.backtrace.error(), "boom");
        assert_eq!(wire.params, ["Backend_failure", "boom"]);
    }

    #[test]
    fn question_mark_conversion_records_location() {
        fn f() -> Result<(), PluginError> {
            Err(ErrorKind::Cancelled("c".into()))?;
            Ok(())
        }
        let e = f().unwrap_err();
        assert!(e.file().ends_with("error.rs"));
    }

    #[test]
    fn backtrace_constructors_keep_lengths_equal() {
        let b = WireBacktrace::from_frames("e", &[("a.rs", 1), ("b.rs", 2)]);
        assert_eq!(b.files().len(), b.lines().len());
        let b = WireBacktrace::empty("e");
        assert!(b.files().is_empty() && b.lines().is_empty());
    }
}
