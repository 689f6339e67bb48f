//! Install layout and end-to-end wire behaviour of the real `xapi-zvol` binary, driven through
//! [`support::fake_daemon::FakeDaemon`]. Runs on any host and changes no pool: calls that need
//! ZFS reach the ZFS backend, which fails with a valid error JSON either way, naming /dev/zfs
//! without ZFS and a pool that does not exist with it; each test asserts the behaviour of the
//! machine it runs on, and one ignored twin asserts the with-ZFS one in the test VM.

mod support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use smapi_plugin::methods::{Method, PluginKind};
use smapi_plugin::query::VOLUME_FEATURES;

use support::contract;
use support::fake_daemon::{DaemonError, FakeDaemon, Plugin};

fn sorted_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn sorted_entries(kind: PluginKind) -> Vec<String> {
    let mut v: Vec<String> = Method::entries(kind)
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn install_creates_symlinks_to_the_binary_is_idempotent_and_uninstalls() {
    let (_tmp, root) = support::installed_root(false);
    let bin = fs::canonicalize(support::binary()).unwrap();
    let d = FakeDaemon::new(&root);
    for (plugin, kind) in [
        (Plugin::Volume, PluginKind::Volume),
        (Plugin::Datapath, PluginKind::Datapath),
    ] {
        let dir = d.dir(plugin);
        assert_eq!(
            sorted_names(&dir),
            sorted_entries(kind),
            "{}",
            dir.display()
        );
        for name in sorted_names(&dir) {
            assert_eq!(fs::read_link(dir.join(&name)).unwrap(), bin, "{name}");
        }
    }
    // Not implemented → not installed (the daemon derives features from entries).
    for absent in ["Volume.compare", "Volume.similar_content", "Plugin.ls"] {
        assert!(!d.dir(Plugin::Volume).join(absent).exists(), "{absent}");
    }
    // Served → installed (the CBT entries advertise nothing by themselves: Plugin.query
    // declares VDI_CONFIG_CBT).
    for present in ["Volume.enable_cbt", "Volume.list_changed_blocks"] {
        assert!(d.dir(Plugin::Volume).join(present).exists(), "{present}");
    }
    assert!(d
        .dir(Plugin::Datapath)
        .join("Datapath.activate_readonly")
        .exists());

    let again = support::install(&root, false);
    let text = String::from_utf8_lossy(&again.stdout);
    assert_eq!(text.matches(": unchanged").count(), 2, "{text}");
    assert_eq!(
        sorted_names(&root),
        ["datapath", "volume"],
        "no staging leftovers"
    );

    let out = support::admin(&["uninstall", "--root", root.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("removed ")
            .count(),
        2
    );
    assert!(!d.dir(Plugin::Volume).exists() && !d.dir(Plugin::Datapath).exists());
    assert!(
        root.join("volume").is_dir() && root.join("datapath").is_dir(),
        "roots must stay"
    );
    let out = support::admin(&["uninstall", "--root", root.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to remove"));
}

#[test]
fn install_refuses_to_replace_a_foreign_plugin_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    let foreign = root.join("datapath/zvol");
    fs::create_dir_all(&foreign).unwrap();
    symlink("/usr/bin/python3", foreign.join("Plugin.Query")).unwrap();
    let out = support::admin(&["install", "--root", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("does not look like an xapi-zvol installation"));
    assert_eq!(
        fs::read_link(foreign.join("Plugin.Query")).unwrap(),
        Path::new("/usr/bin/python3")
    );
}

fn check_queries(d: &FakeDaemon) {
    let v = d
        .call(Plugin::Volume, "Plugin.query", json!({"dbg": "t"}))
        .unwrap();
    assert_eq!(v["plugin"], "zvol");
    assert_eq!(v["required_api_version"], "5.0");
    assert_eq!(
        v["features"],
        serde_json::to_value(VOLUME_FEATURES).unwrap()
    );
    assert_eq!(
        v["features"],
        json!([
            "SR_PROBE",
            "VDI_CREATE",
            "VDI_DESTROY",
            "VDI_SNAPSHOT",
            "VDI_CLONE",
            "VDI_RESIZE",
            "VDI_UPDATE",
            "VDI_REVERT",
            "VDI_ACTIVATE_READONLY",
            "VDI_CONFIG_CBT",
            "THIN_PROVISIONING",
            "LARGE_VDI"
        ])
    );
    let p = d
        .call(Plugin::Datapath, "Plugin.Query", json!({"dbg": "t"}))
        .unwrap();
    assert_eq!(p["plugin"], "zvol");
    assert_eq!(p["features"], json!([]));
    assert_eq!(p["required_api_version"], "5.0");
    let diag = d
        .call(Plugin::Datapath, "Plugin.diagnostics", json!({"dbg": "t"}))
        .unwrap();
    assert!(diag.is_string());
}

#[test]
fn queries_through_the_fake_daemon_validate() {
    let (_tmp, root) = support::installed_root(false);
    let d = FakeDaemon::new(&root);
    check_queries(&d);
    // Plugin mode never logs to stdout but does log the call on stderr.
    let rec = d.last().unwrap();
    assert!(
        String::from_utf8_lossy(&rec.stderr).contains("Plugin.diagnostics"),
        "{:?}",
        String::from_utf8_lossy(&rec.stderr)
    );
    assert_eq!(rec.stdout.iter().filter(|&&b| b == b'\n').count(), 1);
    d.assert_no_violations();
}

/// The datapath calls through the real binary, for the URI of a VDI of an SR on a pool that
/// does not exist: the calls that need nothing are no-ops that validate the URI; attach hands
/// out a device only for a VDI of an SR of ours, so here it fails, saying why (`/dev/zfs`
/// without ZFS, "not a volume of an xapi-zvol SR" with it: the SR is not there). Attaching real
/// VDIs is proven in the VM (vm_conformance.rs).
#[test]
fn datapath_sequence_through_the_binary() {
    check_datapath(zfs_loaded());
}

fn check_datapath(zfs: bool) {
    let (_tmp, root) = support::installed_root(false);
    let d = FakeDaemon::new(&root).env(smapi_plugin::config::ENV_ATTACH_WAIT_MS, "200");
    let sr = format!("{NO_POOL}/zvol-sr-5e0a3e4c-1f7b-4c1e-8f1a-0d3c2b1a0f9e");
    let uri = format!("zvol:///dev/zvol/{sr}/vol/0f8c3d1e-6a57-4b1c-9d0e-2f3a4b5c6d7e");
    let p = json!({"dbg": "t", "uri": uri, "domain": "12"});
    assert_eq!(
        d.call(
            Plugin::Datapath,
            "Datapath.open",
            json!({"dbg": "t", "uri": uri, "persistent": true})
        )
        .unwrap(),
        Value::Null
    );
    for m in [
        "Datapath.activate",
        "Datapath.deactivate",
        "Datapath.detach",
    ] {
        assert_eq!(
            d.call(Plugin::Datapath, m, p.clone()).unwrap(),
            Value::Null,
            "{m}"
        );
    }
    assert_eq!(
        d.call(
            Plugin::Datapath,
            "Datapath.close",
            json!({"dbg": "t", "uri": uri})
        )
        .unwrap(),
        Value::Null
    );
    let e = d
        .call(Plugin::Datapath, "Datapath.attach", p.clone())
        .unwrap_err();
    let p1 = &e.params().unwrap_or_else(|| panic!("{e}"))[1];
    if zfs {
        assert_eq!(e.code(), Some("SR_BACKEND_FAILURE_46"), "{e}");
        assert!(p1.contains("not a volume of an xapi-zvol SR"), "{e}");
    } else {
        assert_eq!(e.code(), Some("SR_BACKEND_FAILURE"), "{e}");
        assert!(p1.contains("/dev/zfs"), "{e}");
    }
    // A zvol that is not a VDI's (no SR layout): refused before ZFS is asked, on any host.
    let foreign =
        json!({"dbg": "t", "uri": format!("zvol:///dev/zvol/{NO_POOL}/disk"), "domain": "12"});
    let e = d
        .call(Plugin::Datapath, "Datapath.attach", foreign)
        .unwrap_err();
    assert_eq!(e.code(), Some("SR_BACKEND_FAILURE_46"), "{e}");
    assert!(
        e.params().unwrap()[1].contains("not a volume of an xapi-zvol SR"),
        "{e}"
    );
    // Outside /dev/zvol: refused by every call but detach, which never fails (it logs).
    let outside = json!({"dbg": "t", "uri": "zvol:///tmp/zvol/tank/v", "domain": "12"});
    let e = d
        .call(Plugin::Datapath, "Datapath.activate", outside.clone())
        .unwrap_err();
    assert!(
        e.params().unwrap()[1].contains("is not under /dev/zvol"),
        "{e}"
    );
    assert_eq!(
        d.call(Plugin::Datapath, "Datapath.detach", outside)
            .unwrap(),
        Value::Null
    );
    d.assert_no_violations();
}

/// A pool no host has: with ZFS loaded, calls naming it fail on the missing pool, so they
/// can run on any machine (a developer's `tank` included) without touching its pools.
const NO_POOL: &str = "xzvol-test-no-such-pool";

/// Whether this machine has ZFS loaded: backend calls then reach ZFS instead of failing on
/// `/dev/zfs`. The non-ignored tests assert whichever behaviour applies; the ignored twin
/// [`backend_calls_with_zfs_fail_with_valid_error_json`] makes the test VM assert the ZFS one.
fn zfs_loaded() -> bool {
    Path::new("/dev/zfs").exists()
}

/// Every backend call answers with a proper error object that says why: without ZFS, that
/// `/dev/zfs` is missing; with ZFS, that the pool or SR does not exist (as `SR_does_not_exist`
/// where the call names an SR). Configuration problems are found before ZFS is needed, and
/// Plugin.diagnostics always answers, saying whether the kernel module is there.
fn check_backend_errors(zfs: bool) {
    let (_tmp, root) = support::installed_root(false);
    let d = FakeDaemon::new(&root);
    let sr = format!("{NO_POOL}/zvol-sr-u");
    for (method, params) in [
        (
            "SR.create",
            json!({"dbg": "t", "uuid": "u", "configuration": {"pool": NO_POOL}, "name": "n", "description": ""}),
        ),
        (
            "SR.attach",
            json!({"dbg": "t", "configuration": {"pool": NO_POOL, "sr_uuid": "u"}}),
        ),
        ("SR.ls", json!({"dbg": "t", "sr": sr})),
        (
            "Volume.create",
            json!({"dbg": "t", "sr": sr, "name": "n", "description": "", "size": 0, "sharable": false}),
        ),
        ("Volume.stat", json!({"dbg": "t", "sr": sr, "key": "k"})),
    ] {
        let e = d.call(Plugin::Volume, method, params).unwrap_err();
        let DaemonError::Plugin {
            code, params, exit, ..
        } = &e
        else {
            panic!("{method}: {e}")
        };
        assert_eq!(*exit, 1, "{method}");
        let (code, p0, p1) = (code.as_str(), params[0].as_str(), params[1].as_str());
        if !zfs {
            assert_eq!(
                (code, p0),
                ("SR_BACKEND_FAILURE", "Backend_failure"),
                "{method}"
            );
            assert!(p1.contains("/dev/zfs"), "{method}: {params:?}");
            continue;
        }
        assert!(!p1.contains("/dev/zfs"), "{method}: {params:?}");
        match method {
            // The pool is checked (and an import tried) before anything is created.
            "SR.create" => {
                assert_eq!(code, "SR_BACKEND_FAILURE_109", "{method}: {params:?}");
                assert!(
                    p1.starts_with("pool: ") && p1.contains(NO_POOL),
                    "{method}: {params:?}"
                );
            }
            // Attach imports the pool of a known SR; that import fails, and says on which pool.
            "SR.attach" => {
                assert_eq!(
                    (code, p0),
                    ("SR_BACKEND_FAILURE", "Backend_failure"),
                    "{method}"
                );
                assert!(p1.contains(NO_POOL), "{method}: {params:?}");
            }
            _ => {
                assert_eq!(
                    (code, p0),
                    ("SR_BACKEND_FAILURE", "SR_does_not_exist"),
                    "{method}"
                );
                assert!(p1.contains(&sr), "{method}: {params:?}");
            }
        }
    }
    // Configuration problems are found before ZFS is needed, and name the key.
    let e = d
        .call(
            Plugin::Volume,
            "SR.attach",
            json!({"dbg": "t", "configuration": {"pool": NO_POOL}}),
        )
        .unwrap_err();
    assert_eq!(e.code(), Some("SR_BACKEND_FAILURE_109"));
    assert!(e.params().unwrap()[1].starts_with("sr_uuid: "), "{e}");
    let e = d
        .call(
            Plugin::Volume,
            "SR.create",
            json!({"dbg": "t", "uuid": "u", "configuration": {}, "name": "n", "description": ""}),
        )
        .unwrap_err();
    assert_eq!(e.code(), Some("SR_BACKEND_FAILURE_109"));
    assert!(e.params().unwrap()[1].starts_with("device: "), "{e}");
    let v = d
        .call(Plugin::Volume, "Plugin.diagnostics", json!({"dbg": "t"}))
        .unwrap();
    let text = v.as_str().unwrap();
    if zfs {
        let module = text
            .lines()
            .find_map(|l| l.strip_prefix("zfs kernel module: "))
            .unwrap_or_else(|| panic!("no module line: {text}"));
        assert!(
            module.starts_with(|c: char| c.is_ascii_digit()),
            "module version expected: {text}"
        );
        assert!(text.contains("\nSRs found: "), "{text}");
    } else {
        assert!(text.contains("zfs kernel module: unavailable"), "{text}");
    }
    d.assert_no_violations();
}

#[test]
fn calls_reaching_the_backend_fail_with_valid_error_json() {
    check_backend_errors(zfs_loaded());
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn backend_calls_with_zfs_fail_with_valid_error_json() {
    assert!(zfs_loaded(), "/dev/zfs is missing: this test needs ZFS");
    check_backend_errors(true);
    check_admin_backend_commands(true);
    check_datapath(true);
}

#[test]
fn protocol_errors_through_the_real_binary() {
    let (_tmp, root) = support::installed_root(false);
    let d = FakeDaemon::new(&root);
    // Validation happens before the backend: the field is named, even with no ZFS.
    let e = d
        .call(
            Plugin::Volume,
            "Volume.create",
            json!({"dbg": "t", "sr": "s", "name": "n", "description": "", "sharable": false}),
        )
        .unwrap_err();
    assert_eq!(e.params().unwrap()[0], "UnmarshalException");
    assert!(e.params().unwrap()[1].contains("\"size\""));
    let e = d
        .call(
            Plugin::Volume,
            "Volume.resize",
            json!({"dbg": "t", "sr": "s", "key": "k", "new_size": -1}),
        )
        .unwrap_err();
    assert_eq!(e.code(), Some("SR_BACKEND_FAILURE_79"));
    let e = d
        .call_raw(Plugin::Volume, "SR.ls", b"not json")
        .unwrap_err();
    assert_eq!(e.params().unwrap()[0], "UnmarshalException");
    // Not installed → the daemon's own error, never reaching us.
    assert!(matches!(
        d.call(Plugin::Volume, "Volume.compare", json!({})),
        Err(DaemonError::ScriptMissing(_))
    ));
    assert!(matches!(
        d.call(Plugin::Datapath, "SR.ls", json!({})),
        Err(DaemonError::ScriptMissing(_))
    ));
    d.assert_no_violations();

    // Without --json (never done by the daemon): usage on stderr, error JSON on stdout, exit 2.
    let out = Command::new(d.dir(Plugin::Volume).join("SR.ls"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
    let v = contract::parse_stdout(&out.stdout).unwrap();
    assert!(contract::validate_error(&v).is_empty());
}

#[test]
fn shims_work_directly_and_under_the_observer_runpy_path() {
    let (_tmp, root) = support::installed_root(true);
    let d = FakeDaemon::new(&root);
    let entry = d.dir(Plugin::Volume).join("Plugin.Query");
    let text = fs::read_to_string(&entry).unwrap();
    assert!(text.starts_with("#!/bin/bash\n") && text.contains(smapi_plugin::install::SHIM_MARKER));
    // Direct execution (observer off): bash execs the binary with argv[0] = the entry.
    check_queries(&d);
    d.assert_no_violations();

    // Observer on: the daemon runs `python3 -m observer <entry> --json`, i.e. runpy.run_path.
    // python3 is always there where the daemon runs (the observer needs it) and where the
    // tests run (scripts/test uses it): its absence is a failure, not a reason to skip.
    let mut child = Command::new("python3")
        .arg("-c")
        .arg("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
        .arg(&entry)
        .arg("--json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3, to run the entry as the daemon's observer does");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"dbg":"traced"}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = contract::parse_stdout(&out.stdout).unwrap();
    assert!(contract::validate_query_result(&v).is_empty());
    assert_eq!(v["plugin"], "zvol");
    assert_eq!(
        v["features"],
        serde_json::to_value(VOLUME_FEATURES).unwrap(),
        "volume query, so argv[0] was the entry"
    );

    // Switching back to symlinks replaces the shims atomically.
    let out = support::install(&root, false);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches(": replaced")
            .count(),
        2
    );
    assert!(fs::symlink_metadata(&entry)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn admin_cli_version_help_and_backend_commands() {
    let out = support::admin(&["version"]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.starts_with(&format!("xapi-zvol {}", env!("CARGO_PKG_VERSION"))),
        "{s}"
    );
    assert!(s.contains("org.xen.xapi.storage.zvol"));
    let out = support::admin(&["--help"]);
    let s = String::from_utf8_lossy(&out.stdout);
    for sub in ["install", "uninstall", "version", "status", "tree", "check"] {
        assert!(s.contains(sub), "{sub} missing from --help: {s}");
    }
    check_admin_backend_commands(zfs_loaded());
    let out = support::admin(&["status"]);
    assert_eq!(out.status.code(), Some(2), "clap usage error without --sr");
}

/// The admin commands that need ZFS fail with exit 1 and say why on stderr: `/dev/zfs`
/// without ZFS, the missing SR with it.
fn check_admin_backend_commands(zfs: bool) {
    let sr = format!("{NO_POOL}/sr");
    for sub in ["status", "tree", "check"] {
        let out = support::admin(&[sub, "--sr", &sr]);
        assert_eq!(out.status.code(), Some(1), "{sub}");
        let err = String::from_utf8_lossy(&out.stderr);
        let why = if zfs {
            format!("SR {sr} does not exist")
        } else {
            "/dev/zfs".to_string()
        };
        assert!(
            err.contains("xapi-zvol: error: ") && err.contains(&why),
            "{sub}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
}
