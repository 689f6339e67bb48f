//! Unit tests of [`super::run_with`] against [`TestBackend`].
//!
//! `TestBackend` is a **protocol-only test double**: it returns canned, well-formed values and
//! records the typed arguments it was called with. It has nothing to do with ZFS and proves
//! nothing about storage semantics; it exists to test decoding, validation, encoding, exit codes
//! and panic containment of the dispatcher. Results are checked with the strict validators of
//! `tests/support/contract.rs`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::backend::AdminCmd;
use crate::types::{Configuration, Health, ProbeResult, SrStat, Volume};

#[path = "../tests/support/contract.rs"]
mod contract;

/// What the double should do on every call.
#[derive(Clone, Default)]
enum Mode {
    #[default]
    Succeed,
    Fail(PluginError),
    Panic,
}

/// Protocol-only backend double (see the module docs). `calls` receives one line per call with
/// the typed arguments, e.g. `volume_create(d, sr1, n, "", 1024, false)`.
struct TestBackend {
    calls: Rc<RefCell<Vec<String>>>,
    mode: Mode,
}

impl TestBackend {
    fn go<T>(&self, call: String, value: T) -> Result<T, PluginError> {
        self.calls.borrow_mut().push(call);
        match &self.mode {
            Mode::Succeed => Ok(value),
            Mode::Fail(e) => Err(e.clone()),
            Mode::Panic => panic!("TestBackend was told to panic"),
        }
    }
}

fn volume(key: &str, read_write: bool) -> Volume {
    Volume {
        key: key.into(),
        uuid: Some(key.into()),
        name: "n".into(),
        description: "d".into(),
        read_write,
        sharable: false,
        virtual_size: 1 << 20,
        physical_utilisation: 4096,
        uri: vec![format!("zvol:///dev/zvol/tank/sr/{key}")],
        keys: BTreeMap::from([("vdi-type".into(), "user".into())]),
        volume_type: None,
        cbt_enabled: None,
    }
}

fn sr_stat(sr: &str) -> SrStat {
    SrStat {
        sr: sr.into(),
        name: "sr".into(),
        uuid: None,
        description: "".into(),
        free_space: 10,
        total_space: 20,
        datasources: vec![],
        clustered: false,
        health: Health::Healthy("".into()),
    }
}

impl VolumeBackend for TestBackend {
    fn diagnostics(&self, dbg: &str) -> Result<String, PluginError> {
        self.go(format!("diagnostics({dbg})"), "all fine".into())
    }
    fn sr_probe(&self, dbg: &str, c: &Configuration) -> Result<Vec<ProbeResult>, PluginError> {
        let mut found = c.clone();
        found.insert("sr_uuid".into(), "u1".into());
        self.go(
            format!("sr_probe({dbg}, {c:?})"),
            vec![
                ProbeResult {
                    configuration: c.clone(),
                    complete: false,
                    sr: None,
                    extra_info: BTreeMap::new(),
                },
                ProbeResult {
                    configuration: found,
                    complete: true,
                    sr: Some(sr_stat("s")),
                    extra_info: BTreeMap::new(),
                },
            ],
        )
    }
    fn sr_create(
        &self,
        dbg: &str,
        uuid: &str,
        c: &Configuration,
        n: &str,
        d: &str,
    ) -> Result<Configuration, PluginError> {
        let mut out = c.clone();
        out.insert("sr_uuid".into(), uuid.into());
        self.go(format!("sr_create({dbg}, {uuid}, {c:?}, {n}, {d})"), out)
    }
    fn sr_attach(&self, dbg: &str, c: &Configuration) -> Result<String, PluginError> {
        self.go(format!("sr_attach({dbg}, {c:?})"), "zvol:///tank/sr".into())
    }
    fn sr_detach(&self, dbg: &str, sr: &str) -> Result<(), PluginError> {
        self.go(format!("sr_detach({dbg}, {sr})"), ())
    }
    fn sr_destroy(&self, dbg: &str, sr: &str) -> Result<(), PluginError> {
        self.go(format!("sr_destroy({dbg}, {sr})"), ())
    }
    fn sr_stat(&self, dbg: &str, sr: &str) -> Result<SrStat, PluginError> {
        self.go(format!("sr_stat({dbg}, {sr})"), sr_stat(sr))
    }
    fn sr_set_name(&self, dbg: &str, sr: &str, n: &str) -> Result<(), PluginError> {
        self.go(format!("sr_set_name({dbg}, {sr}, {n})"), ())
    }
    fn sr_set_description(&self, dbg: &str, sr: &str, d: &str) -> Result<(), PluginError> {
        self.go(format!("sr_set_description({dbg}, {sr}, {d})"), ())
    }
    fn sr_ls(&self, dbg: &str, sr: &str) -> Result<Vec<Volume>, PluginError> {
        self.go(
            format!("sr_ls({dbg}, {sr})"),
            vec![volume("a", true), volume("b", false)],
        )
    }
    fn volume_create(
        &self,
        dbg: &str,
        sr: &str,
        n: &str,
        d: &str,
        size: i64,
        sh: bool,
    ) -> Result<Volume, PluginError> {
        self.go(
            format!("volume_create({dbg}, {sr}, {n}, {d:?}, {size}, {sh})"),
            volume("new", true),
        )
    }
    fn volume_snapshot(&self, dbg: &str, sr: &str, key: &str) -> Result<Volume, PluginError> {
        self.go(
            format!("volume_snapshot({dbg}, {sr}, {key})"),
            volume("snap", false),
        )
    }
    fn volume_clone(&self, dbg: &str, sr: &str, key: &str) -> Result<Volume, PluginError> {
        self.go(
            format!("volume_clone({dbg}, {sr}, {key})"),
            volume("clone", true),
        )
    }
    fn volume_destroy(&self, dbg: &str, sr: &str, key: &str) -> Result<(), PluginError> {
        self.go(format!("volume_destroy({dbg}, {sr}, {key})"), ())
    }
    fn volume_revert(
        &self,
        dbg: &str,
        sr: &str,
        snapshot: &str,
        key: &str,
    ) -> Result<(), PluginError> {
        self.go(format!("volume_revert({dbg}, {sr}, {snapshot}, {key})"), ())
    }
    fn volume_set_name(&self, dbg: &str, sr: &str, key: &str, n: &str) -> Result<(), PluginError> {
        self.go(format!("volume_set_name({dbg}, {sr}, {key}, {n})"), ())
    }
    fn volume_set_description(
        &self,
        dbg: &str,
        sr: &str,
        key: &str,
        d: &str,
    ) -> Result<(), PluginError> {
        self.go(
            format!("volume_set_description({dbg}, {sr}, {key}, {d})"),
            (),
        )
    }
    fn volume_set(
        &self,
        dbg: &str,
        sr: &str,
        key: &str,
        k: &str,
        v: &str,
    ) -> Result<(), PluginError> {
        self.go(format!("volume_set({dbg}, {sr}, {key}, {k}, {v})"), ())
    }
    fn volume_unset(&self, dbg: &str, sr: &str, key: &str, k: &str) -> Result<(), PluginError> {
        self.go(format!("volume_unset({dbg}, {sr}, {key}, {k})"), ())
    }
    fn volume_resize(&self, dbg: &str, sr: &str, key: &str, n: i64) -> Result<(), PluginError> {
        self.go(format!("volume_resize({dbg}, {sr}, {key}, {n})"), ())
    }
    fn volume_stat(&self, dbg: &str, sr: &str, key: &str) -> Result<Volume, PluginError> {
        self.go(
            format!("volume_stat({dbg}, {sr}, {key})"),
            volume(key, true),
        )
    }
    fn admin(&self, cmd: AdminCmd) -> Result<String, PluginError> {
        self.go(format!("admin({cmd})"), String::new())
    }
}

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
    calls: Vec<String>,
    factory_called: bool,
}

fn call_with(e: &Env, dir: &str, entry: &str, args: &[&str], stdin: &[u8], mode: Mode) -> Outcome {
    let calls = Rc::new(RefCell::new(Vec::new()));
    let factory_called = Rc::new(RefCell::new(false));
    let (c2, f2) = (calls.clone(), factory_called.clone());
    let mut out = Vec::new();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let code = run_with(
        &e.dp,
        &Path::new(dir).join(entry),
        &args,
        stdin,
        &mut out,
        move || {
            *f2.borrow_mut() = true;
            Box::new(TestBackend { calls: c2, mode })
        },
    );
    let stdout = String::from_utf8(out).unwrap();
    let value =
        contract::parse_stdout(stdout.as_bytes()).unwrap_or_else(|err| panic!("{entry}: {err}"));
    assert!(
        stdout.ends_with('\n') && stdout.matches('\n').count() == 1,
        "{entry}: not one line: {stdout:?}"
    );
    let calls = calls.borrow().clone();
    let factory_called = *factory_called.borrow();
    Outcome {
        code,
        stdout,
        value,
        calls,
        factory_called,
    }
}

fn call(e: &Env, dir: &str, entry: &str, params: Value) -> Outcome {
    call_with(
        e,
        dir,
        entry,
        &["--json"],
        params.to_string().as_bytes(),
        Mode::Succeed,
    )
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

/// Minimal valid params for every method, plus the backend call line expected from them.
fn sample(m: Method, uri: &str) -> (Value, Option<&'static str>) {
    let cfg = json!({"pool": "tank"});
    match m {
        Method::PluginQuery => (json!({"dbg": "d"}), None),
        Method::PluginDiagnostics => (json!({"dbg": "d"}), Some("diagnostics(d)")),
        Method::SrProbe => (
            json!({"dbg": "d", "configuration": cfg}),
            Some("sr_probe(d, {\"pool\": \"tank\"})"),
        ),
        Method::SrCreate => (
            json!({"dbg": "d", "uuid": "u1", "configuration": cfg, "name": "n", "description": "x"}),
            Some("sr_create(d, u1, {\"pool\": \"tank\"}, n, x)"),
        ),
        Method::SrAttach => (
            json!({"dbg": "d", "configuration": cfg}),
            Some("sr_attach(d, {\"pool\": \"tank\"})"),
        ),
        Method::SrDetach => (json!({"dbg": "d", "sr": "s"}), Some("sr_detach(d, s)")),
        Method::SrDestroy => (json!({"dbg": "d", "sr": "s"}), Some("sr_destroy(d, s)")),
        Method::SrStat => (json!({"dbg": "d", "sr": "s"}), Some("sr_stat(d, s)")),
        Method::SrSetName => (
            json!({"dbg": "d", "sr": "s", "new_name": "nn"}),
            Some("sr_set_name(d, s, nn)"),
        ),
        Method::SrSetDescription => (
            json!({"dbg": "d", "sr": "s", "new_description": "dd"}),
            Some("sr_set_description(d, s, dd)"),
        ),
        Method::SrLs => (json!({"dbg": "d", "sr": "s"}), Some("sr_ls(d, s)")),
        Method::VolumeCreate => (
            json!({"dbg": "d", "sr": "s", "name": "n", "description": "", "size": "1024", "sharable": false}),
            Some("volume_create(d, s, n, \"\", 1024, false)"),
        ),
        Method::VolumeSnapshot => (
            json!({"dbg": "d", "sr": "s", "key": "k"}),
            Some("volume_snapshot(d, s, k)"),
        ),
        Method::VolumeClone => (
            json!({"dbg": "d", "sr": "s", "key": "k"}),
            Some("volume_clone(d, s, k)"),
        ),
        Method::VolumeDestroy => (
            json!({"dbg": "d", "sr": "s", "key": "k"}),
            Some("volume_destroy(d, s, k)"),
        ),
        Method::VolumeRevert => (
            json!({"dbg": "d", "sr": "s", "snapshot": "sn", "key": "k"}),
            Some("volume_revert(d, s, sn, k)"),
        ),
        Method::VolumeSetName => (
            json!({"dbg": "d", "sr": "s", "key": "k", "new_name": "nn"}),
            Some("volume_set_name(d, s, k, nn)"),
        ),
        Method::VolumeSetDescription => (
            json!({"dbg": "d", "sr": "s", "key": "k", "new_description": "dd"}),
            Some("volume_set_description(d, s, k, dd)"),
        ),
        Method::VolumeSet => (
            json!({"dbg": "d", "sr": "s", "key": "k", "k": "vdi-type", "v": "user"}),
            Some("volume_set(d, s, k, vdi-type, user)"),
        ),
        Method::VolumeUnset => (
            json!({"dbg": "d", "sr": "s", "key": "k", "k": "clone-on-boot"}),
            Some("volume_unset(d, s, k, clone-on-boot)"),
        ),
        Method::VolumeResize => (
            json!({"dbg": "d", "sr": "s", "key": "k", "new_size": 4096}),
            Some("volume_resize(d, s, k, 4096)"),
        ),
        Method::VolumeStat => (
            json!({"dbg": "d", "sr": "s", "key": "k"}),
            Some("volume_stat(d, s, k)"),
        ),
        Method::DatapathOpen => (json!({"dbg": "d", "uri": uri, "persistent": true}), None),
        Method::DatapathAttach
        | Method::DatapathActivate
        | Method::DatapathDeactivate
        | Method::DatapathDetach => (json!({"dbg": "d", "uri": uri, "domain": "7"}), None),
        Method::DatapathClose => (json!({"dbg": "d", "uri": uri}), None),
    }
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
fn every_method_succeeds_with_a_contract_valid_result() {
    let e = env();
    let uri = format!("zvol://{}/tank/sr/v1", e.dp.zvol_root.display());
    for &m in Method::ALL {
        if m == Method::DatapathAttach {
            // Succeeds only for a real zvol of an SR: proven in the VM (tests/vm_*.rs, through
            // the fake daemon, which validates every answer against the contract).
            continue;
        }
        let (params, expected_call) = sample(m, &uri);
        for dir in dirs_for(m) {
            let o = call(&e, dir, m.entry_name(), params.clone());
            assert_eq!(o.code, EXIT_OK, "{} in {dir}: {}", m.name(), o.stdout);
            let violations = contract::validate_result(m.name(), &o.value);
            assert!(
                violations.is_empty(),
                "{} in {dir}: {violations:?}\n{}",
                m.name(),
                o.stdout
            );
            let via_backend = dir == VOL_DIR && expected_call.is_some();
            assert_eq!(
                o.factory_called,
                via_backend,
                "{} in {dir}: backend built?",
                m.name()
            );
            if via_backend {
                assert_eq!(o.calls, [expected_call.unwrap()], "{}", m.name());
            } else {
                assert!(o.calls.is_empty(), "{}: {:?}", m.name(), o.calls);
            }
        }
    }
}

#[test]
fn unit_results_are_exactly_null_newline() {
    let e = env();
    let uri = format!("zvol://{}/tank/sr/v1", e.dp.zvol_root.display());
    let mut n = 0;
    for &m in Method::ALL {
        let (params, _) = sample(m, &uri);
        let dir = dirs_for(m)[0];
        let o = call(&e, dir, m.entry_name(), params);
        if contract::validate_result(m.name(), &Value::Null).is_empty() {
            assert_eq!(o.stdout, "null\n", "{}", m.name());
            n += 1;
        }
    }
    assert_eq!(n, 16, "number of unit-result methods");
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
        let (params, _) = sample(m, &uri);
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
            assert!(
                o.calls.is_empty(),
                "backend called despite missing {}",
                spec.name
            );
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
        assert!(o.calls.is_empty());
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
        assert!(o.calls.is_empty());
    }
    // Zero is valid (the daemon's self-test creates size 0).
    let o = call(
        &e,
        VOL_DIR,
        "Volume.create",
        json!({"dbg": "d", "sr": "s", "name": "n", "description": "", "size": 0, "sharable": false}),
    );
    assert_eq!(o.code, EXIT_OK);
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
    assert!(!o.factory_called);
}

#[test]
fn bad_stdin_is_an_unmarshal_error() {
    let e = env();
    for stdin in [&b""[..], b"[1]", b"{\"dbg\":", b"{} {}", b"\xff"] {
        let o = call_with(&e, VOL_DIR, "SR.ls", &["--json"], stdin, Mode::Succeed);
        assert_eq!(assert_error(&o).1[0], "UnmarshalException", "{stdin:?}");
    }
    // Unknown keys ignored, names case-insensitive, no trailing newline needed.
    let o = call_with(
        &e,
        VOL_DIR,
        "sr.LS",
        &["--json"],
        br#"{"DBG":"d","Sr":"s","extra":[null]}"#,
        Mode::Succeed,
    );
    assert_eq!(o.code, EXIT_OK);
    assert_eq!(o.calls, ["sr_ls(d, s)"]);
}

#[test]
fn backend_errors_pass_through_with_their_code() {
    let e = env();
    let stdin = json!({"dbg": "d", "sr": "s", "key": "gone"}).to_string();
    let o = call_with(
        &e,
        VOL_DIR,
        "Volume.stat",
        &["--json"],
        stdin.as_bytes(),
        Mode::Fail(PluginError::volume_does_not_exist("gone")),
    );
    assert_eq!(
        assert_error(&o),
        (
            "SR_BACKEND_FAILURE".to_string(),
            vec!["Volume_does_not_exist".to_string(), "gone".to_string()]
        )
    );
    let o = call_with(
        &e,
        VOL_DIR,
        "Volume.resize",
        &["--json"],
        json!({"dbg": "d", "sr": "s", "key": "k", "new_size": 1})
            .to_string()
            .as_bytes(),
        Mode::Fail(PluginError::invalid_size("shrinking not allowed")),
    );
    assert_eq!(assert_error(&o).0, "SR_BACKEND_FAILURE_79");
}

#[test]
fn a_panicking_backend_still_yields_one_error_json() {
    let e = env();
    let stdin = json!({"dbg": "d", "sr": "s"}).to_string();
    let o = call_with(
        &e,
        VOL_DIR,
        "SR.stat",
        &["--json"],
        stdin.as_bytes(),
        Mode::Panic,
    );
    let (code, ps) = assert_error(&o);
    assert_eq!(code, "SR_BACKEND_FAILURE");
    assert_eq!(ps[0], "Internal_error");
    assert!(ps[1].contains("TestBackend was told to panic"), "{ps:?}");
    assert_eq!(o.calls, ["sr_stat(d, s)"]);
}

#[test]
fn a_panicking_factory_is_contained_and_query_never_builds_the_backend() {
    let e = env();
    let mut out = Vec::new();
    let argv0 = Path::new(VOL_DIR).join("SR.ls");
    let code = run_with(
        &e.dp,
        &argv0,
        &["--json".to_string()],
        &br#"{"dbg":"d","sr":"s"}"#[..],
        &mut out,
        || panic!("no ZFS here"),
    );
    assert_eq!(code, EXIT_FAILURE);
    let v = contract::parse_stdout(&out).unwrap();
    assert!(contract::validate_error(&v).is_empty());
    assert!(v["params"][1].as_str().unwrap().contains("no ZFS here"));

    let mut out = Vec::new();
    let argv0 = Path::new(VOL_DIR).join("Plugin.Query");
    let code = run_with(
        &e.dp,
        &argv0,
        &["--json".to_string()],
        &br#"{"dbg":"d"}"#[..],
        &mut out,
        || panic!("must not be built"),
    );
    assert_eq!(code, EXIT_OK);
    assert!(contract::validate_query_result(&contract::parse_stdout(&out).unwrap()).is_empty());
}

#[test]
fn without_json_flag_it_is_a_usage_error_exit_2() {
    let e = env();
    for args in [&[][..], &["--xml"][..], &["--json", "extra"][..]] {
        let o = call_with(&e, VOL_DIR, "SR.ls", args, b"{}", Mode::Succeed);
        assert_eq!(o.code, EXIT_USAGE, "{args:?}");
        assert!(contract::validate_error(&o.value).is_empty());
        assert_eq!(o.value["params"][0], "Usage");
        assert!(!o.factory_called);
    }
}

#[test]
fn env_overrides_for_tests() {
    let cfg = datapath_config_from(|k| match k {
        ENV_ATTACH_WAIT_MS => Some("250".into()),
        "XAPI_ZVOL_ZVOL_ROOT" => Some("/tmp/fake".into()),
        _ => None,
    });
    // The device-link root is not configurable: a test hook that pointed the datapath at
    // regular files, gone with the checks of Datapath.attach (only VDIs of our SRs).
    assert_eq!(cfg.zvol_root, PathBuf::from(datapath::DEFAULT_ZVOL_ROOT));
    assert_eq!(cfg.wait, Duration::from_millis(250));
    let cfg = datapath_config_from(|k| (k == ENV_ATTACH_WAIT_MS).then(|| "soon".to_string()));
    assert_eq!(cfg, DatapathConfig::default());
}
