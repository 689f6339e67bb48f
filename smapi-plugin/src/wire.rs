//! The stdin/stdout wire format of one plugin invocation (contract §2, §3).
//!
//! * stdin: the daemon writes the **named-params object only** (not a JSON-RPC envelope) and
//!   closes stdin. We read all of it and parse exactly one JSON object.
//! * Parameter names are matched case-insensitively (rpclib does so for record fields); an exact
//!   match wins; two keys that differ only in case and no exact match is an error rather than a guess.
//!   Unknown keys are ignored.
//! * `int64` accepts a JSON integer or a numeric string (rpclib's unmarshaller does); floats are
//!   refused. `bool` accepts only `true`/`false`.
//! * stdout: exactly one compact JSON value followed by a newline; `null` for unit.

use std::io::Read;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{ErrorKind, PluginError};
use crate::types::Configuration;

/// Upper bound on the request size. Real requests are well under a kilobyte; the cap only
/// stops a runaway writer from exhausting memory.
pub const MAX_REQUEST_BYTES: u64 = 16 * 1024 * 1024;

/// Reads all of `input` (up to [`MAX_REQUEST_BYTES`]).
pub fn read_request(mut input: impl Read) -> Result<Vec<u8>, PluginError> {
    let mut buf = Vec::new();
    (&mut input)
        .take(MAX_REQUEST_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| PluginError::new(ErrorKind::BadRequest(format!("cannot read stdin: {e}"))))?;
    if buf.len() as u64 > MAX_REQUEST_BYTES {
        return Err(PluginError::new(ErrorKind::BadRequest(format!(
            "request on stdin exceeds {MAX_REQUEST_BYTES} bytes"
        ))));
    }
    Ok(buf)
}

/// The named parameters of one call.
#[derive(Debug, Clone)]
pub struct Params {
    method: String,
    map: Map<String, Value>,
}

/// Short, single-line rendering of a JSON value for error messages and logs.
pub fn describe(v: &Value) -> String {
    let kind = match v {
        Value::Null => return "null".into(),
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    format!("{kind} {}", truncate(&v.to_string(), 80))
}

/// Truncates `s` to at most `max` characters, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

impl Params {
    /// Parses the request bytes of a call to `method` (used in error messages).
    pub fn parse(method: &str, input: &[u8]) -> Result<Params, PluginError> {
        let text = std::str::from_utf8(input).map_err(|e| {
            PluginError::new(ErrorKind::BadRequest(format!(
                "{method}: stdin is not UTF-8: {e}"
            )))
        })?;
        if text.trim().is_empty() {
            return Err(PluginError::new(ErrorKind::BadRequest(format!(
                "{method}: expected a JSON object of named parameters on stdin (e.g. {{\"dbg\": \"x\"}}), got nothing"
            ))));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| {
            PluginError::new(ErrorKind::BadRequest(format!(
                "{method}: stdin is not valid JSON: {e}"
            )))
        })?;
        match value {
            Value::Object(map) => Ok(Params {
                method: method.to_string(),
                map,
            }),
            other => Err(PluginError::new(ErrorKind::BadRequest(format!(
                "{method}: expected a JSON object of named parameters on stdin, got {}",
                describe(&other)
            )))),
        }
    }

    /// Builds params from an already parsed object (tests, tools).
    pub fn from_map(method: &str, map: Map<String, Value>) -> Params {
        Params {
            method: method.to_string(),
            map,
        }
    }

    /// The method these params are for.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The raw object.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.map
    }

    #[track_caller]
    fn lookup(&self, name: &str) -> Result<Option<&Value>, PluginError> {
        if let Some(v) = self.map.get(name) {
            return Ok(Some(v));
        }
        let mut found = self
            .map
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name));
        match (found.next(), found.next()) {
            (None, _) => Ok(None),
            (Some((_, v)), None) => Ok(Some(v)),
            (Some((a, _)), Some((b, _))) => Err(self.bad(
                name,
                "exactly one key with this name",
                format!("several keys differing only in case ({a:?}, {b:?})"),
            )),
        }
    }

    #[track_caller]
    fn missing(&self, name: &str, expected: &str) -> PluginError {
        PluginError::new(ErrorKind::MissingParam {
            method: self.method.clone(),
            name: name.to_string(),
            expected: expected.to_string(),
        })
    }

    #[track_caller]
    fn bad(&self, name: &str, expected: &str, got: String) -> PluginError {
        PluginError::new(ErrorKind::BadParam {
            method: self.method.clone(),
            name: name.to_string(),
            expected: expected.to_string(),
            got,
        })
    }

    #[track_caller]
    fn required(&self, name: &str, expected: &str) -> Result<&Value, PluginError> {
        self.lookup(name)?
            .ok_or_else(|| self.missing(name, expected))
    }

    /// A required `string` parameter.
    #[track_caller]
    pub fn string(&self, name: &str) -> Result<String, PluginError> {
        const EXPECTED: &str = "a JSON string";
        match self.required(name, EXPECTED)? {
            Value::String(s) => Ok(s.clone()),
            other => Err(self.bad(name, EXPECTED, describe(other))),
        }
    }

    /// A required `int64` parameter: a JSON integer in the i64 range or a decimal numeric string.
    #[track_caller]
    pub fn int64(&self, name: &str) -> Result<i64, PluginError> {
        const EXPECTED: &str = "an int64 (JSON integer or decimal numeric string)";
        let v = self.required(name, EXPECTED)?;
        match v {
            Value::Number(n) => n.as_i64().ok_or_else(|| {
                if n.is_f64() {
                    self.bad(name, EXPECTED, describe(v))
                } else {
                    self.bad(name, EXPECTED, format!("{n} (out of the int64 range)"))
                }
            }),
            Value::String(s) => {
                let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(self.bad(name, EXPECTED, describe(v)));
                }
                s.parse::<i64>().map_err(|_| {
                    self.bad(
                        name,
                        EXPECTED,
                        format!("{} (out of the int64 range)", describe(v)),
                    )
                })
            }
            other => Err(self.bad(name, EXPECTED, describe(other))),
        }
    }

    /// A required `bool` parameter (`true`/`false` only).
    #[track_caller]
    pub fn bool(&self, name: &str) -> Result<bool, PluginError> {
        const EXPECTED: &str = "a JSON boolean (true or false)";
        match self.required(name, EXPECTED)? {
            Value::Bool(b) => Ok(*b),
            other => Err(self.bad(name, EXPECTED, describe(other))),
        }
    }

    /// A required `(string * string) list` parameter: a JSON object whose values are strings.
    #[track_caller]
    pub fn configuration(&self, name: &str) -> Result<Configuration, PluginError> {
        const EXPECTED: &str = "a JSON object of string values";
        match self.required(name, EXPECTED)? {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => {
                        Err(self.bad(name, EXPECTED, format!("key {k:?} = {}", describe(other))))
                    }
                })
                .collect(),
            other => Err(self.bad(name, EXPECTED, describe(other))),
        }
    }

    /// One-line summary for logs: every key with its value shortened.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .map
            .iter()
            .map(|(k, v)| {
                let shown = match v {
                    // dbg may carry a trace context after a newline: keep the first line only.
                    Value::String(s) if k.eq_ignore_ascii_case("dbg") => {
                        format!("{:?}", truncate(s.lines().next().unwrap_or(""), 60))
                    }
                    _ => truncate(&v.to_string(), 120),
                };
                format!("{k}={shown}")
            })
            .collect();
        parts.join(" ")
    }
}

/// Renders a successful result: compact JSON plus a newline (`()` renders as `null`).
pub fn render_success<T: Serialize + ?Sized>(value: &T) -> Result<String, PluginError> {
    let mut s = serde_json::to_string(value)
        .map_err(|e| PluginError::backend(format!("cannot serialise the result: {e}")))?;
    s.push('\n');
    Ok(s)
}

/// Renders an error: the `{code, params, backtrace}` object plus a newline.
pub fn render_error(err: &PluginError) -> String {
    let mut s = serde_json::to_string(&err.to_wire()).unwrap_or_else(|_| {
        // Serialising plain strings cannot fail; keep a hard-coded valid fallback anyway.
        r#"{"code":"SR_BACKEND_FAILURE","params":["Internal_error","cannot serialise error"],"backtrace":{"error":"cannot serialise error","files":[],"lines":[]}}"#.to_string()
    });
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Params {
        Params::parse("Volume.create", v.to_string().as_bytes()).unwrap()
    }

    fn err_params(e: &PluginError) -> Vec<String> {
        e.params()
    }

    #[test]
    fn parses_object_and_ignores_unknown_keys() {
        let x = p(json!({"dbg": "d", "sr": "s", "junk": [1, 2], "json": true}));
        assert_eq!(x.string("dbg").unwrap(), "d");
        assert_eq!(x.string("sr").unwrap(), "s");
    }

    #[test]
    fn keys_are_case_insensitive_exact_wins_ambiguous_refused() {
        let x = p(json!({"DBG": "d", "Sr": "s"}));
        assert_eq!(x.string("dbg").unwrap(), "d");
        assert_eq!(x.string("sr").unwrap(), "s");
        let y = p(json!({"sr": "exact", "SR": "other"}));
        assert_eq!(y.string("sr").unwrap(), "exact");
        let z = p(json!({"Sr": "a", "SR": "b"}));
        let e = z.string("sr").unwrap_err();
        assert_eq!(e.code(), "SR_BACKEND_FAILURE");
        assert_eq!(err_params(&e)[0], "TypeError");
        assert!(e.to_string().contains("differing only in case"));
    }

    #[test]
    fn int64_accepts_integers_and_numeric_strings() {
        let x = p(
            json!({"a": 5, "b": "42", "c": "-7", "d": -3, "e": "9223372036854775807", "f": "+8"}),
        );
        assert_eq!(x.int64("a").unwrap(), 5);
        assert_eq!(x.int64("b").unwrap(), 42);
        assert_eq!(x.int64("c").unwrap(), -7);
        assert_eq!(x.int64("d").unwrap(), -3);
        assert_eq!(x.int64("e").unwrap(), i64::MAX);
        assert_eq!(x.int64("f").unwrap(), 8);
    }

    #[test]
    fn int64_rejects_floats_garbage_and_overflow_naming_the_field() {
        let x = p(
            json!({"f": 1.5, "g": 1.0, "s": "12abc", "t": "", "u": " 1", "o": 18446744073709551615u64,
                          "os": "9223372036854775808", "b": true, "n": null, "h": "0x10", "e": "1e3"}),
        );
        for name in ["f", "g", "s", "t", "u", "o", "os", "b", "n", "h", "e"] {
            let e = x.int64(name).unwrap_err();
            assert_eq!(err_params(&e)[0], "TypeError", "{name}");
            let msg = e.to_string();
            assert!(msg.contains(&format!("\"{name}\"")), "{msg}");
            assert!(msg.contains("Volume.create"), "{msg}");
        }
        assert!(x.int64("f").unwrap_err().to_string().contains("float 1.5"));
    }

    #[test]
    fn bool_is_strict() {
        let x = p(json!({"t": true, "f": false, "s": "true", "i": 1}));
        assert!(x.bool("t").unwrap());
        assert!(!x.bool("f").unwrap());
        assert!(x.bool("s").is_err());
        assert!(x.bool("i").is_err());
    }

    #[test]
    fn missing_param_is_named() {
        let x = p(json!({"dbg": "d"}));
        let e = x.string("sr").unwrap_err();
        assert_eq!(e.code(), "SR_BACKEND_FAILURE");
        assert_eq!(
            e.params(),
            [
                "UnmarshalException",
                "Volume.create: missing required parameter \"sr\" (expected a JSON string)"
            ]
        );
    }

    #[test]
    fn configuration_must_be_object_of_strings() {
        let x = p(json!({"c": {"a": "1", "b": "2"}, "bad": {"a": 1}, "arr": []}));
        let c = x.configuration("c").unwrap();
        assert_eq!(c.get("a").unwrap(), "1");
        let e = x.configuration("bad").unwrap_err();
        assert!(e.to_string().contains("key \"a\""));
        assert!(x.configuration("arr").is_err());
        assert!(x.string("c").is_err());
    }

    #[test]
    fn non_object_or_bad_json_is_rejected() {
        for input in [
            "",
            "  \n",
            "[1]",
            "\"x\"",
            "null",
            "{",
            "{} {}",
            "{\"a\":1} x",
        ] {
            let e = Params::parse("SR.ls", input.as_bytes()).unwrap_err();
            assert_eq!(e.params()[0], "UnmarshalException", "{input:?}");
            assert!(e.to_string().contains("SR.ls"));
        }
        assert!(Params::parse("SR.ls", b"\xff\xfe").is_err());
        // Trailing whitespace and newline are fine (the daemon writes one line).
        assert!(Params::parse("SR.ls", b"{\"dbg\":\"x\"}\n").is_ok());
    }

    #[test]
    fn read_request_reads_everything() {
        let data = vec![b' '; 100_000];
        assert_eq!(read_request(&data[..]).unwrap().len(), 100_000);
    }

    #[test]
    fn render_unit_is_null_newline() {
        assert_eq!(render_success(&()).unwrap(), "null\n");
        assert_eq!(render_success("x").unwrap(), "\"x\"\n");
    }

    #[test]
    fn render_error_shape() {
        let s = render_error(&PluginError::volume_does_not_exist("k"));
        assert!(s.ends_with('\n'));
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["code"], "SR_BACKEND_FAILURE");
        assert_eq!(v["params"], json!(["Volume_does_not_exist", "k"]));
        assert_eq!(
            v["backtrace"]["files"].as_array().unwrap().len(),
            v["backtrace"]["lines"].as_array().unwrap().len()
        );
    }

    #[test]
    fn summary_keeps_first_dbg_line_and_truncates() {
        let long = "v".repeat(500);
        let x = p(json!({"dbg": "OpaqueRef:1\n{\"traceparent\":\"00-...\"}", "v": long}));
        let s = x.summary();
        assert!(s.contains("dbg=\"OpaqueRef:1\""));
        assert!(!s.contains("traceparent"));
        assert!(s.len() < 300);
    }
}
