//! Unit tests of the dispatcher ([`super::run`]): decoding, validation, encoding, exit
//! codes and panic containment, with no ZFS. Methods that need ZFS are exercised here only up to
//! their request struct ([`Method::decode_only`]) or with parameters refused before any pool is
//! looked at; their calls into `zfs_volume::sr` are proven in the test VM through the installed
//! binary (`tests/vm_*.rs`, whose fake daemon validates every answer against the contract).
//! Results are checked with the strict validators of `tests/support/contract.rs`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::request::ParamType;
use crate::wire::Params;

#[path = "../tests/support/contract.rs"]
mod contract;

/// A fake zvol root: `<tmp>/zd0` (regular file) and `<tmp>/zvol/tank/sr/v1 -> ../../../zd0`.
struct Env {
    _tmp: tempfile::TempDir,
    dp: DatapathConfig,
    dev: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(tmp.path()).unwrap();
    let dev = base.join("zd0");
    fs::write(&dev, b"").unwrap();
    let root = base.join("zvol");
    fs::create_dir_all(root.join("tank/sr")).unwrap();
    symlink("../../../zd0", root.join("tank/sr/v1")).unwrap();
    let dp = DatapathConfig {
        zvol_root: root,
        wait: Duration::from_millis(100),
    };
    Env { _tmp: tmp, dp, dev }
}

const VOL_DIR: &str = "/r/volume/org.xen.xapi.storage.zvol";
const DP_DIR: &str = "/r/datapath/zvol";

struct Outcome {
    code: i32,
    stdout: String,
    value: Value,
}

fn call_in(
    table: &[Method],
    e: &Env,
    dir: &str,
    entry: &str,
    args: &[&str],
    stdin: &[u8],
) -> Outcome {
    let mut out = Vec::new();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let code = run_table(
        table,
        &e.dp,
        &Path::new(dir).join(entry),
        &args,
        stdin,
        &mut out,
    );
    let stdout = String::from_utf8(out).unwrap();
    let value =
        contract::parse_stdout(stdout.as_bytes()).unwrap_or_else(|err| panic!("{entry}: {err}"));
    assert!(
        stdout.ends_with('\n') && stdout.matches('\n').count() == 1,
        "{entry}: not one line: {stdout:?}"
    );
    Outcome {
        code,
        stdout,
        value,
    }
}

fn call_with(e: &Env, dir: &str, entry: &str, args: &[&str], stdin: &[u8]) -> Outcome {
    call_in(Method::ALL, e, dir, entry, args, stdin)
}

fn call(e: &Env, dir: &str, entry: &str, params: Value) -> Outcome {
    call_with(e, dir, entry, &["--json"], params.to_string().as_bytes())
}

/// Asserts a failed call: exit 1, valid error JSON, and returns (code, params).
fn assert_error(o: &Outcome) -> (String, Vec<String>) {
    assert_eq!(o.code, EXIT_FAILURE, "{}", o.stdout);
    let violations = contract::validate_error(&o.value);
    assert!(violations.is_empty(), "{violations:?} in {}", o.stdout);
    let params = o.value["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    (o.value["code"].as_str().unwrap().to_string(), params)
}

fn m(name: &str) -> Method {
    Method::named(name).unwrap()
}

/// Valid parameters for every parameter `m` declares: a distinct value per field, so that the
/// decoded request shows which field each one landed in.
fn sample(m: Method, uri: &str) -> Value {
    let mut p = serde_json::Map::new();
    for spec in m.params() {
        let v = match (spec.name, spec.ty) {
            ("uri", _) => json!(uri),
            (_, ParamType::String) => json!(format!("<{}>", spec.name)),
            (_, ParamType::Int64 | ParamType::Size) => json!(4096),
            (_, ParamType::Bool) => json!(true),
            (_, ParamType::Configuration) => json!({"pool": "tank"}),
        };
        p.insert(spec.name.to_string(), v);
    }
    Value::Object(p)
}

fn dirs_for(m: Method) -> Vec<&'static str> {
    [VOL_DIR, DP_DIR]
        .into_iter()
        .filter(|d| {
            m.installed_in(PluginKind::from_dir_name(
                Path::new(d).file_name().unwrap().to_str().unwrap(),
            ))
        })
        .collect()
}

#[test]
fn every_method_decodes_each_parameter_into_its_own_field() {
    let uri = "zvol:///dev/zvol/tank/sr/v1";
    for &m in Method::ALL {
        let params = sample(m, uri);
        // The daemon's names, also in another case: the fields are matched case-insensitively.
        for upper in [false, true] {
            let map = params
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (if upper { k.to_uppercase() } else { k.clone() }, v.clone()))
                .collect();
            let shown = m
                .decode_only(&Params::from_map(m.name(), map))
                .unwrap_or_else(|e| panic!("{}: {e}", m.name()));
            for spec in m.params() {
                let want = match (spec.name, spec.ty) {
                    ("uri", _) => format!("uri: {uri:?}"),
                    (n, ParamType::String) => format!("{n}: \"<{n}>\""),
                    (n, ParamType::Int64) => format!("{n}: 4096"),
                    (n, ParamType::Size) => format!("{n}: Size(4096)"),
                    (n, ParamType::Bool) => format!("{n}: true"),
                    (n, ParamType::Configuration) => format!("{n}: {{\"pool\": \"tank\"}}"),
                };
                assert!(shown.contains(&want), "{}: {want} not in {shown}", m.name());
            }
        }
    }
}

#[test]
fn methods_without_zfs_succeed_with_contract_valid_results() {
    let e = env();
    let uri = format!("zvol://{}/tank/sr/v1", e.dp.zvol_root.display());
    let mut n = 0;
    for &m in Method::ALL {
        // Datapath.attach and activate_readonly succeed only for a real zvol of an SR: proven
        // in the VM.
        if matches!(m.name(), "Datapath.attach" | "Datapath.activate_readonly") {
            continue;
        }
        for dir in dirs_for(m) {
            let zfs_free = m.name().starts_with("Datapath.")
                || m.name() == "Plugin.query"
                || (m.name() == "Plugin.diagnostics" && dir == DP_DIR);
            if !zfs_free {
                continue;
            }
            let o = call(&e, dir, m.entry_name(), sample(m, &uri));
            assert_eq!(o.code, EXIT_OK, "{} in {dir}: {}", m.name(), o.stdout);
            let violations = contract::validate_result(m.name(), &o.value);
            assert!(
                violations.is_empty(),
                "{} in {dir}: {violations:?}\n{}",
                m.name(),
                o.stdout
            );
            if o.value.is_null() {
                assert_eq!(o.stdout, "null\n", "{}", m.name());
            }
            n += 1;
        }
    }
    // Plugin.query in both directories; the datapath's diagnostics, open, activate, deactivate,
    // detach, close.
    assert_eq!(n, 8);
}

#[test]
fn errors_of_a_method_reach_the_wire_with_their_code() {
    let e = env();
    // An `sr` that cannot name an SR is refused before any pool is looked at.
    for entry in [
        "SR.stat",
        "SR.ls",
        "SR.set_name",
        "Volume.stat",
        "Volume.snapshot",
    ] {
        let mut p = sample(m(entry), "");
        p["sr"] = json!("not an sr");
        let o = call(&e, VOL_DIR, entry, p);
        let (code, ps) = assert_error(&o);
        assert_eq!(
            (code.as_str(), ps[0].as_str()),
            ("SR_BACKEND_FAILURE", "SR_does_not_exist"),
            "{entry}"
        );
        assert!(
            ps[1].contains("SR not an sr does not exist"),
            "{entry}: {ps:?}"
        );
    }
    let o = call(
        &e,
        DP_DIR,
        "Datapath.close",
        json!({"dbg": "d", "uri": "file:///etc/passwd"}),
    );
    let (code, ps) = assert_error(&o);
    assert_eq!(
        (code.as_str(), ps[0].as_str()),
        ("SR_BACKEND_FAILURE", "Backend_failure")
    );
    assert!(ps[1].contains("invalid volume URI"), "{ps:?}");
}

#[test]
fn a_panicking_method_still_yields_one_error_json() {
    let e = env();
    let table = [Method::for_tests("SR.stat", |_, _| {
        panic!("the method was told to panic")
    })];
    let o = call_in(
        &table,
        &e,
        VOL_DIR,
        "SR.stat",
        &["--json"],
        br#"{"dbg":"d","sr":"s"}"#,
    );
    let (code, ps) = assert_error(&o);
    assert_eq!(code, "SR_BACKEND_FAILURE");
    assert_eq!(ps[0], "Internal_error");
    assert!(ps[1].contains("the method was told to panic"), "{ps:?}");
}

#[test]
fn query_answers_differ_per_plugin_and_match_the_contract() {
    let e = env();
    let v = call(&e, VOL_DIR, "Plugin.Query", json!({"dbg": "d"})).value;
    assert_eq!(v["plugin"], "zvol");
    assert_eq!(v["required_api_version"], "5.0");
    assert_eq!(
        v["features"],
        serde_json::to_value(crate::query::VOLUME_FEATURES).unwrap()
    );
    let d = call(&e, DP_DIR, "plugin.query", json!({"dbg": "d"})).value;
    assert_eq!(d["features"], json!([]));
    assert_eq!(d["required_api_version"], "5.0");
    let diag = call(&e, DP_DIR, "Plugin.diagnostics", json!({"dbg": "d"})).value;
    assert!(diag.as_str().unwrap().contains("datapath plugin 'zvol'"));
}

#[test]
fn datapath_attach_refuses_what_is_not_a_vdi_and_detach_never_fails() {
    let e = env();
    // The fake root has a file at tank/sr/v1; it is no VDI of an SR, so nothing is handed
    // out (attach of real VDIs is proven in the VM).
    let uri = format!("zvol://{}/tank/sr/v1", e.dp.zvol_root.display());
    let o = call(
        &e,
        DP_DIR,
        "Datapath.attach",
        json!({"dbg": "d", "uri": uri, "domain": "3"}),
    );
    let (code, params) = assert_error(&o);
    assert_eq!(code, "SR_BACKEND_FAILURE_46");
    assert!(
        params[1].contains("not a volume of an xapi-zvol SR"),
        "{params:?}"
    );
    assert!(!e.dev.to_str().unwrap().is_empty());
    // detach never fails, even with garbage.
    let o = call(
        &e,
        DP_DIR,
        "Datapath.detach",
        json!({"dbg": "d", "uri": "garbage", "domain": "3"}),
    );
    assert_eq!((o.code, o.stdout.as_str()), (EXIT_OK, "null\n"));
}

#[test]
fn missing_parameter_is_named_for_every_method_and_field() {
    let e = env();
    let uri = format!("zvol://{}/tank/sr/v1", e.dp.zvol_root.display());
    for &m in Method::ALL {
        let params = sample(m, &uri);
        for spec in m.params() {
            let mut p = params.clone();
            p.as_object_mut().unwrap().remove(spec.name);
            let o = call(&e, dirs_for(m)[0], m.entry_name(), p);
            let (code, ps) = assert_error(&o);
            assert_eq!(code, "SR_BACKEND_FAILURE");
            assert_eq!(
                ps[0],
                "UnmarshalException",
                "{} without {}",
                m.name(),
                spec.name
            );
            assert!(
                ps[1].contains(&format!("missing required parameter \"{}\"", spec.name)),
                "{ps:?}"
            );
            assert!(ps[1].contains(m.name()), "{ps:?}");
        }
    }
}

#[test]
fn wrong_types_are_named() {
    let e = env();
    for (entry, params, field) in [
        (
            "Volume.create",
            json!({"dbg": "d", "sr": "s", "name": "n", "description": "", "size": 1.5, "sharable": false}),
            "size",
        ),
        (
            "Volume.create",
            json!({"dbg": "d", "sr": "s", "name": "n", "description": "", "size": 1, "sharable": "no"}),
            "sharable",
        ),
        (
            "SR.attach",
            json!({"dbg": "d", "configuration": "pool=tank"}),
            "configuration",
        ),
        (
            "SR.attach",
            json!({"dbg": "d", "configuration": {"pool": 1}}),
            "configuration",
        ),
        ("SR.ls", json!({"dbg": "d", "sr": 5}), "sr"),
        (
            "Volume.resize",
            json!({"dbg": "d", "sr": "s", "key": "k", "new_size": "big"}),
            "new_size",
        ),
    ] {
        let o = call(&e, VOL_DIR, entry, params);
        let (code, ps) = assert_error(&o);
        assert_eq!(
            (code.as_str(), ps[0].as_str()),
            ("SR_BACKEND_FAILURE", "TypeError"),
            "{entry}"
        );
        assert!(ps[1].contains(&format!("\"{field}\"")), "{ps:?}");
    }
}

#[test]
fn negative_sizes_are_invalid_size_79() {
    let e = env();
    for (entry, params) in [
        (
            "Volume.create",
            json!({"dbg": "d", "sr": "s", "name": "n", "description": "", "size": -1, "sharable": false}),
        ),
        (
            "Volume.resize",
            json!({"dbg": "d", "sr": "s", "key": "k", "new_size": "-4096"}),
        ),
    ] {
        let o = call(&e, VOL_DIR, entry, params);
        let (code, ps) = assert_error(&o);
        assert_eq!(code, "SR_BACKEND_FAILURE_79", "{entry}");
        assert_eq!(ps[0], "VDI Invalid size");
        assert!(ps[1].contains("must not be negative"), "{ps:?}");
    }
    // Zero is valid (the daemon's self-test creates size 0).
    let p = json!({"dbg": "d", "sr": "s", "name": "n", "description": "", "size": 0, "sharable": false});
    let shown = m("Volume.create")
        .decode_only(&Params::from_map(
            "Volume.create",
            p.as_object().unwrap().clone(),
        ))
        .unwrap();
    assert!(shown.contains("size: Size(0)"), "{shown}");
}

#[test]
fn unknown_unimplemented_and_misplaced_methods() {
    let e = env();
    let o = call(&e, VOL_DIR, "Volume.frobnicate", json!({"dbg": "d"}));
    assert_eq!(assert_error(&o).1[0], "UnknownMethod");
    let o = call(&e, VOL_DIR, "Volume.compose", json!({"dbg": "d"}));
    assert_eq!(assert_error(&o).1, ["Unimplemented", "Volume.compose"]);
    let o = call(
        &e,
        VOL_DIR,
        "Datapath.attach",
        json!({"dbg": "d", "uri": "u", "domain": "1"}),
    );
    assert!(assert_error(&o).1[1].contains("not served by the volume plugin"));
    let o = call(&e, DP_DIR, "SR.ls", json!({"dbg": "d", "sr": "s"}));
    assert!(assert_error(&o).1[1].contains("not served by the datapath plugin"));
}

#[test]
fn bad_stdin_is_an_unmarshal_error() {
    let e = env();
    for stdin in [&b""[..], b"[1]", b"{\"dbg\":", b"{} {}", b"\xff"] {
        let o = call_with(&e, VOL_DIR, "SR.ls", &["--json"], stdin);
        assert_eq!(assert_error(&o).1[0], "UnmarshalException", "{stdin:?}");
    }
    // Unknown keys ignored, names case-insensitive, no trailing newline needed.
    let p = Params::parse("SR.ls", br#"{"DBG":"d","Sr":"s","extra":[null]}"#).unwrap();
    assert_eq!(
        m("SR.ls").decode_only(&p).unwrap(),
        r#"SrArgs { dbg: "d", sr: "s" }"#
    );
    let o = call_with(
        &e,
        DP_DIR,
        "plugin.QUERY",
        &["--json"],
        br#"{"DBG":"d","x":1}"#,
    );
    assert_eq!(o.code, EXIT_OK);
}

#[test]
fn without_json_flag_it_is_a_usage_error_exit_2() {
    let e = env();
    for args in [&[][..], &["--xml"][..], &["--json", "extra"][..]] {
        let o = call_with(&e, VOL_DIR, "SR.ls", args, b"{}");
        assert_eq!(o.code, EXIT_USAGE, "{args:?}");
        assert!(contract::validate_error(&o.value).is_empty());
        assert_eq!(o.value["params"][0], "Usage");
    }
}
