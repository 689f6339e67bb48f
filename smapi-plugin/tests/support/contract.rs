//! Strict validators for what a plugin prints on stdout, per the xapi-storage wire contract
//! (`docs/contract.md` §2.2, §2.3, §3, §4).
//!
//! Every validator returns the list of violations (empty = valid), each naming the JSON path at
//! fault, so a test can print all problems at once. "Strict" means stricter than the daemon where
//! the daemon would silently accept something we never intend to emit:
//! * `null` is refused everywhere (rpclib rejects `null` for options; we omit them instead);
//! * integers must be JSON integers in the int64 range (never floats, never strings);
//! * unknown object keys are reported (the daemon ignores them, but we know our exact shape);
//! * semantic rules the daemon enforces later are checked too (probe consistency, equal-length
//!   backtrace lists, a `XenDisk` implementation in a datapath backend, `free <= total`).
//!
//! Used by the unit tests of `dispatch` (included with `#[path]`) and by the integration tests
//! through `tests/support/mod.rs`; it depends on `serde_json` only.

#![allow(dead_code)]

use serde_json::{Map, Value};

/// Collected violations, each prefixed with a JSON path.
type Out = Vec<String>;

fn push(out: &mut Out, path: &str, msg: impl AsRef<str>) {
    out.push(format!("{path}: {}", msg.as_ref()));
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// Field rule for [`object`].
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int64,
    Bool,
    StrList,
    StrMap,
}

fn check_kind(out: &mut Out, path: &str, v: &Value, kind: Kind) {
    match (kind, v) {
        (_, Value::Null) => push(out, path, "is null (options must be omitted, never null)"),
        (Kind::Str, Value::String(_)) | (Kind::Bool, Value::Bool(_)) => {}
        (Kind::Int64, Value::Number(n)) if n.is_i64() => {}
        (Kind::Int64, Value::Number(n)) => {
            push(out, path, format!("{n} is not an int64 JSON integer"))
        }
        (Kind::StrList, Value::Array(a)) => {
            for (i, x) in a.iter().enumerate() {
                check_kind(out, &format!("{path}[{i}]"), x, Kind::Str);
            }
        }
        (Kind::StrMap, Value::Object(m)) => {
            for (k, x) in m {
                check_kind(out, &format!("{path}.{k}"), x, Kind::Str);
            }
        }
        (k, other) => push(
            out,
            path,
            format!(
                "expected {}, got {}",
                match k {
                    Kind::Str => "a string",
                    Kind::Int64 => "an integer",
                    Kind::Bool => "a boolean",
                    Kind::StrList => "an array of strings",
                    Kind::StrMap => "an object of strings",
                },
                short(other)
            ),
        ),
    }
}

/// Checks `v` is an object with `required` fields, `optional` fields (absent or non-null), and
/// no other keys (`extra` names are allowed without a type check, e.g. sub-objects checked by
/// the caller). Returns the object for further checks.
fn object<'a>(
    out: &mut Out,
    path: &str,
    v: &'a Value,
    required: &[(&str, Kind)],
    optional: &[(&str, Kind)],
    extra: &[&str],
) -> Option<&'a Map<String, Value>> {
    let Value::Object(m) = v else {
        push(out, path, format!("expected an object, got {}", short(v)));
        return None;
    };
    for (name, kind) in required {
        match m.get(*name) {
            Some(x) => check_kind(out, &format!("{path}.{name}"), x, *kind),
            None => push(out, path, format!("missing required field {name:?}")),
        }
    }
    for (name, kind) in optional {
        if let Some(x) = m.get(*name) {
            check_kind(out, &format!("{path}.{name}"), x, *kind);
        }
    }
    for k in m.keys() {
        let known = required.iter().any(|(n, _)| n == k)
            || optional.iter().any(|(n, _)| n == k)
            || extra.contains(&k.as_str());
        if !known {
            push(out, path, format!("unexpected field {k:?}"));
        }
    }
    Some(m)
}

fn validate_volume_at(out: &mut Out, path: &str, v: &Value) {
    let Some(m) = object(
        out,
        path,
        v,
        &[
            ("key", Kind::Str),
            ("name", Kind::Str),
            ("description", Kind::Str),
            ("read_write", Kind::Bool),
            ("sharable", Kind::Bool),
            ("virtual_size", Kind::Int64),
            ("physical_utilisation", Kind::Int64),
            ("uri", Kind::StrList),
            ("keys", Kind::StrMap),
        ],
        &[("uuid", Kind::Str), ("cbt_enabled", Kind::Bool)],
        &["volume_type"],
    ) else {
        return;
    };
    if let Some(Value::String(k)) = m.get("key") {
        if k.is_empty() {
            push(out, &format!("{path}.key"), "is empty");
        }
    }
    for f in ["virtual_size", "physical_utilisation"] {
        if let Some(n) = m.get(f).and_then(Value::as_i64) {
            if n < 0 {
                push(out, &format!("{path}.{f}"), format!("is negative ({n})"));
            }
        }
    }
    if let Some(Value::Array(uris)) = m.get("uri") {
        for (i, u) in uris.iter().enumerate() {
            if let Some(s) = u.as_str() {
                if !s.contains("://") {
                    push(
                        out,
                        &format!("{path}.uri[{i}]"),
                        format!("{s:?} has no scheme://"),
                    );
                }
            }
        }
    }
    if let Some(t) = m.get("volume_type") {
        if !matches!(
            t.as_str(),
            Some("Data" | "CBT_Metadata" | "Data_and_CBT_Metadata")
        ) {
            push(
                out,
                &format!("{path}.volume_type"),
                format!("not a volume_type variant: {}", short(t)),
            );
        }
    }
}

/// A `volume` (Volume.create/snapshot/clone/stat result, SR.ls element).
pub fn validate_volume(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    validate_volume_at(&mut out, "$", v);
    out
}

/// A list of volumes (SR.ls); keys must be unique.
pub fn validate_volume_list(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Value::Array(a) = v else {
        push(
            &mut out,
            "$",
            format!("expected an array of volumes, got {}", short(v)),
        );
        return out;
    };
    let mut keys = std::collections::BTreeSet::new();
    for (i, x) in a.iter().enumerate() {
        validate_volume_at(&mut out, &format!("$[{i}]"), x);
        if let Some(k) = x.get("key").and_then(Value::as_str) {
            if !keys.insert(k.to_string()) {
                push(
                    &mut out,
                    &format!("$[{i}].key"),
                    format!("duplicate key {k:?}"),
                );
            }
        }
    }
    out
}

fn validate_sr_stat_at(out: &mut Out, path: &str, v: &Value) {
    let Some(m) = object(
        out,
        path,
        v,
        &[
            ("sr", Kind::Str),
            ("name", Kind::Str),
            ("description", Kind::Str),
            ("free_space", Kind::Int64),
            ("total_space", Kind::Int64),
            ("datasources", Kind::StrList),
            ("clustered", Kind::Bool),
        ],
        &[("uuid", Kind::Str)],
        &["health"],
    ) else {
        return;
    };
    let free = m.get("free_space").and_then(Value::as_i64);
    let total = m.get("total_space").and_then(Value::as_i64);
    if let (Some(f), Some(t)) = (free, total) {
        if f < 0 || t < 0 || f > t {
            push(
                out,
                path,
                format!("need 0 <= free_space <= total_space, got free {f}, total {t}"),
            );
        }
    }
    match m.get("health") {
        None => push(out, path, "missing required field \"health\""),
        Some(Value::Array(a))
            if a.len() == 2
                && matches!(a[0].as_str(), Some("Healthy" | "Recovering" | "Unreachable" | "Unavailable"))
                && a[1].is_string() => {}
        Some(h) => push(
            out,
            &format!("{path}.health"),
            format!("expected [\"Healthy\"|\"Recovering\"|\"Unreachable\"|\"Unavailable\", string], got {}", short(h)),
        ),
    }
}

/// An `sr_stat` (SR.stat result).
pub fn validate_sr_stat(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    validate_sr_stat_at(&mut out, "$", v);
    out
}

fn validate_probe_result_at(out: &mut Out, path: &str, v: &Value) {
    let Some(m) = object(
        out,
        path,
        v,
        &[
            ("configuration", Kind::StrMap),
            ("complete", Kind::Bool),
            ("extra_info", Kind::StrMap),
        ],
        &[],
        &["sr"],
    ) else {
        return;
    };
    let has_uuid = m
        .get("configuration")
        .and_then(Value::as_object)
        .is_some_and(|c| c.contains_key("sr_uuid"));
    if has_uuid && m.get("complete") != Some(&Value::Bool(true)) {
        push(out, path, "a configuration with sr_uuid must be complete (daemon: \"A configuration with a uuid cannot be incomplete\")");
    }
    if let Some(sr) = m.get("sr") {
        validate_sr_stat_at(out, &format!("{path}.sr"), sr);
        if !has_uuid {
            push(
                out,
                path,
                "a result with sr must have sr_uuid in its configuration (daemon: \"not attachable without a uuid\")",
            );
        }
    }
}

/// One `probe_result`.
pub fn validate_probe_result(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    validate_probe_result_at(&mut out, "$", v);
    out
}

/// The SR.probe result: a list of `probe_result`.
pub fn validate_probe_results(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                validate_probe_result_at(&mut out, &format!("$[{i}]"), x);
            }
        }
        other => push(
            &mut out,
            "$",
            format!("expected an array, got {}", short(other)),
        ),
    }
    out
}

/// A `query_result` (Plugin.query).
pub fn validate_query_result(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(m) = object(
        &mut out,
        "$",
        v,
        &[
            ("plugin", Kind::Str),
            ("name", Kind::Str),
            ("description", Kind::Str),
            ("vendor", Kind::Str),
            ("copyright", Kind::Str),
            ("version", Kind::Str),
            ("required_api_version", Kind::Str),
            ("features", Kind::StrList),
            ("configuration", Kind::StrMap),
            ("required_cluster_stack", Kind::StrList),
        ],
        &[],
        &[],
    ) else {
        return out;
    };
    if let Some(p) = m.get("plugin").and_then(Value::as_str) {
        if p.is_empty() || p.contains('.') || p != p.to_lowercase() {
            push(
                &mut out,
                "$.plugin",
                format!("{p:?} must be non-empty, lower-case, without '.'"),
            );
        }
    }
    if let Some(r) = m.get("required_api_version").and_then(Value::as_str) {
        if r != "5.0" && r != "3.0" {
            push(
                &mut out,
                "$.required_api_version",
                format!("{r:?} is not a supported API version (\"3.0\" or \"5.0\")"),
            );
        }
    }
    out
}

/// A datapath `backend` (Datapath.attach): implementations as `[tag, payload]`, at least one
/// `XenDisk` (xenopsd requires it) with a known `backend_type`.
pub fn validate_backend(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(m) = object(&mut out, "$", v, &[], &[], &["implementations"]) else {
        return out;
    };
    let Some(imps) = m.get("implementations") else {
        push(&mut out, "$", "missing required field \"implementations\"");
        return out;
    };
    let Value::Array(imps) = imps else {
        push(
            &mut out,
            "$.implementations",
            format!("expected an array, got {}", short(imps)),
        );
        return out;
    };
    let mut xendisk = false;
    for (i, imp) in imps.iter().enumerate() {
        let path = format!("$.implementations[{i}]");
        let (Some(tag), Some(payload), 2) = (
            imp.get(0).and_then(Value::as_str),
            imp.get(1),
            imp.as_array().map_or(0, Vec::len),
        ) else {
            push(
                &mut out,
                &path,
                format!("expected [tag, payload], got {}", short(imp)),
            );
            continue;
        };
        let p = format!("{path}[1]");
        match tag {
            "XenDisk" => {
                xendisk = true;
                if let Some(o) = object(
                    &mut out,
                    &p,
                    payload,
                    &[
                        ("params", Kind::Str),
                        ("extra", Kind::StrMap),
                        ("backend_type", Kind::Str),
                    ],
                    &[],
                    &[],
                ) {
                    if let Some(bt) = o.get("backend_type").and_then(Value::as_str) {
                        if !["vbd", "vbd3", "qdisk", "9pfs"].contains(&bt) {
                            push(
                                &mut out,
                                &format!("{p}.backend_type"),
                                format!("{bt:?} is not a supported VBD backend"),
                            );
                        }
                    }
                }
            }
            "BlockDevice" | "File" => {
                object(&mut out, &p, payload, &[("path", Kind::Str)], &[], &[]);
            }
            "Nbd" => {
                object(&mut out, &p, payload, &[("uri", Kind::Str)], &[], &[]);
            }
            other => push(
                &mut out,
                &path,
                format!("unknown implementation tag {other:?}"),
            ),
        }
    }
    if !xendisk {
        push(
            &mut out,
            "$.implementations",
            "no XenDisk implementation (xenopsd: \"Could not find XenDisk implementation\")",
        );
    }
    out
}

/// The error object printed on a non-zero exit (`{code, params, backtrace{error, files,
/// lines}}`), including the equal-length rule xapi's `List.combine` needs and a code made of
/// `[A-Z0-9_]` starting with a letter (e.g. `SR_BACKEND_FAILURE_79`).
pub fn validate_error(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(m) = object(
        &mut out,
        "$",
        v,
        &[("code", Kind::Str), ("params", Kind::StrList)],
        &[],
        &["backtrace"],
    ) else {
        return out;
    };
    if let Some(code) = m.get("code").and_then(Value::as_str) {
        let ok = code.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            push(
                &mut out,
                "$.code",
                format!("{code:?} is not an upper-case error code"),
            );
        }
    }
    match m.get("backtrace") {
        None => push(&mut out, "$", "missing required field \"backtrace\""),
        Some(bt) => {
            if let Some(b) = object(
                &mut out,
                "$.backtrace",
                bt,
                &[("error", Kind::Str), ("files", Kind::StrList)],
                &[],
                &["lines"],
            ) {
                match b.get("lines") {
                    None => push(&mut out, "$.backtrace", "missing required field \"lines\""),
                    Some(Value::Array(lines)) => {
                        for (i, l) in lines.iter().enumerate() {
                            if !l.is_i64() {
                                push(
                                    &mut out,
                                    &format!("$.backtrace.lines[{i}]"),
                                    format!("{} is not an integer", short(l)),
                                );
                            }
                        }
                        let files = b.get("files").and_then(Value::as_array).map_or(0, Vec::len);
                        if files != lines.len() {
                            push(
                                &mut out,
                                "$.backtrace",
                                format!("files ({files}) and lines ({}) differ in length: xapi turns this into INTERNAL_ERROR", lines.len()),
                            );
                        }
                    }
                    Some(other) => push(
                        &mut out,
                        "$.backtrace.lines",
                        format!("expected an array, got {}", short(other)),
                    ),
                }
            }
        }
    }
    out
}

fn validate_null(v: &Value) -> Vec<String> {
    if v.is_null() {
        Vec::new()
    } else {
        vec![format!("$: a unit result must be null, got {}", short(v))]
    }
}

fn validate_string(v: &Value) -> Vec<String> {
    if v.is_string() {
        Vec::new()
    } else {
        vec![format!("$: expected a string, got {}", short(v))]
    }
}

/// `changed_blocks` (`control.ml`): `{granularity: int, bitmap: base64 string}`.
fn validate_changed_blocks(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(m) = object(
        &mut out,
        "$",
        v,
        &[("granularity", Kind::Int64), ("bitmap", Kind::Str)],
        &[],
        &[],
    ) else {
        return out;
    };
    if let Some(g) = m.get("granularity").and_then(Value::as_i64) {
        if g <= 0 {
            push(&mut out, "$.granularity", format!("is not positive ({g})"));
        }
    }
    if let Some(b) = m.get("bitmap").and_then(Value::as_str) {
        use base64::Engine;
        if base64::engine::general_purpose::STANDARD.decode(b).is_err() {
            push(&mut out, "$.bitmap", "is not base64");
        }
    }
    out
}

fn validate_configuration(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check_kind(&mut out, "$", v, Kind::StrMap);
    out
}

/// Validates the success value of `method` (IDL name, case-insensitive) by its IDL result type.
/// Returns one violation for a method it does not know.
pub fn validate_result(method: &str, v: &Value) -> Vec<String> {
    match method.to_ascii_lowercase().as_str() {
        "plugin.query" => validate_query_result(v),
        "plugin.diagnostics" | "sr.attach" => validate_string(v),
        "sr.create" => validate_configuration(v),
        "sr.probe" => validate_probe_results(v),
        "sr.stat" => validate_sr_stat(v),
        "sr.ls" => validate_volume_list(v),
        "volume.create" | "volume.snapshot" | "volume.clone" | "volume.stat" => validate_volume(v),
        "datapath.attach" => validate_backend(v),
        "volume.list_changed_blocks" => validate_changed_blocks(v),
        "sr.detach"
        | "sr.destroy"
        | "sr.set_name"
        | "sr.set_description"
        | "volume.destroy"
        | "volume.revert"
        | "volume.set_name"
        | "volume.set_description"
        | "volume.set"
        | "volume.unset"
        | "volume.resize"
        | "volume.enable_cbt"
        | "volume.disable_cbt"
        | "volume.data_destroy"
        | "datapath.open"
        | "datapath.activate"
        | "datapath.activate_readonly"
        | "datapath.deactivate"
        | "datapath.detach"
        | "datapath.close" => validate_null(v),
        other => vec![format!("no validator for method {other:?}")],
    }
}

/// Parses a plugin's stdout the way the daemon does (Yojson strict): exactly one JSON value,
/// surrounding whitespace allowed; empty output is an error ("bad json on stdout").
pub fn parse_stdout(stdout: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(stdout).map_err(|e| format!("stdout is not UTF-8: {e}"))?;
    if text.trim().is_empty() {
        return Err("empty stdout".into());
    }
    serde_json::from_str(text)
        .map_err(|e| format!("stdout is not exactly one JSON value: {e}: {text:?}"))
}

#[cfg(test)]
mod self_tests {
    use super::*;
    use serde_json::json;

    fn vol() -> Value {
        json!({"key": "k", "uuid": "k", "name": "n", "description": "", "read_write": true, "sharable": false,
               "virtual_size": 0, "physical_utilisation": 0, "uri": ["zvol:///dev/zvol/t/k"], "keys": {}})
    }

    #[test]
    fn volume_validator_catches_each_rule() {
        assert!(validate_volume(&vol()).is_empty());
        for (patch, needle) in [
            (json!({"uuid": null}), "is null"),
            (json!({"virtual_size": 1.0}), "not an int64"),
            (json!({"virtual_size": "5"}), "expected an integer"),
            (json!({"keys": {"a": 1}}), "$.keys.a"),
            (json!({"junk": 1}), "unexpected field"),
            (json!({"volume_type": "data"}), "volume_type"),
            (json!({"uri": ["/dev/zd0"]}), "no scheme"),
            (json!({"physical_utilisation": -1}), "negative"),
        ] {
            let mut v = vol();
            for (k, x) in patch.as_object().unwrap() {
                v[k] = x.clone();
            }
            let errs = validate_volume(&v);
            assert!(
                errs.iter().any(|e| e.contains(needle)),
                "{patch} -> {errs:?}"
            );
        }
        let mut v = vol();
        v.as_object_mut().unwrap().remove("sharable");
        assert!(validate_volume(&v)
            .iter()
            .any(|e| e.contains("\"sharable\"")));
    }

    #[test]
    fn error_validator_checks_backtrace_lengths_and_code() {
        let good = json!({"code": "SR_BACKEND_FAILURE_79", "params": ["a"], "backtrace": {"error": "e", "files": ["f"], "lines": [1]}});
        assert!(validate_error(&good).is_empty());
        let bad = json!({"code": "oops", "params": ["a"], "backtrace": {"error": "e", "files": ["f"], "lines": []}});
        let errs = validate_error(&bad);
        assert!(
            errs.iter().any(|e| e.contains("differ in length")),
            "{errs:?}"
        );
        assert!(errs.iter().any(|e| e.contains("upper-case")), "{errs:?}");
        assert!(!validate_error(&json!({"code": "X", "params": []})).is_empty());
    }

    #[test]
    fn probe_and_backend_rules() {
        let stat = json!({"sr": "s", "name": "n", "description": "", "free_space": 1, "total_space": 2,
                          "datasources": [], "clustered": false, "health": ["Healthy", ""]});
        assert!(validate_sr_stat(&stat).is_empty());
        let p = json!({"configuration": {}, "complete": false, "extra_info": {}, "sr": stat});
        assert!(validate_probe_result(&p)
            .iter()
            .any(|e| e.contains("sr_uuid")));
        let p = json!({"configuration": {"sr_uuid": "u"}, "complete": false, "extra_info": {}});
        assert!(validate_probe_result(&p)
            .iter()
            .any(|e| e.contains("complete")));
        assert!(validate_backend(
            &json!({"implementations": [["BlockDevice", {"path": "/dev/zd0"}]]})
        )
        .iter()
        .any(|e| e.contains("XenDisk")));
        assert!(validate_result("SR.detach", &json!({}))
            .iter()
            .any(|e| e.contains("null")));
        assert!(parse_stdout(b"").is_err());
        assert!(parse_stdout(b"null\nnull\n").is_err());
        assert_eq!(parse_stdout(b" null\n").unwrap(), Value::Null);
    }
}
