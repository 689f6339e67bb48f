//! Install layout and end-to-end wire behaviour of the real `xapi-zvol` binary, driven through
//! [`support::fake_daemon::FakeDaemon`]. Runs on any host: nothing here touches ZFS (calls that
//! would need it reach the ZFS backend, which fails without /dev/zfs, with a valid error JSON).

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
    for absent in [
        "Volume.compare",
        "Volume.similar_content",
        "Volume.enable_cbt",
        "Volume.list_changed_blocks",
        "Plugin.ls",
    ] {
        assert!(!d.dir(Plugin::Volume).join(absent).exists(), "{absent}");
    }

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

/// A fake `/dev`: `<base>/zd7` plus `<base>/zvol/tank/sr/vol1 -> ../../../zd7`; returns (root, dev).
fn fake_dev(base: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let base = fs::canonicalize(base).unwrap();
    let dev = base.join("zd7");
    fs::write(&dev, b"").unwrap();
    let zroot = base.join("zvol");
    fs::create_dir_all(zroot.join("tank/sr")).unwrap();
    symlink("../../../zd7", zroot.join("tank/sr/vol1")).unwrap();
    (zroot, dev)
}

#[test]
fn datapath_sequence_with_a_fake_zvol_root() {
    let (tmp, root) = support::installed_root(false);
    let (zroot, dev) = fake_dev(tmp.path());
    let d = FakeDaemon::new(&root)
        .env(
            smapi_plugin::dispatch::ENV_ZVOL_ROOT,
            zroot.to_str().unwrap(),
        )
        .env(smapi_plugin::dispatch::ENV_ATTACH_WAIT_MS, "200");
    let uri = format!("zvol://{}/tank/sr/vol1", zroot.display());
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
    let b = d
        .call(Plugin::Datapath, "Datapath.attach", p.clone())
        .unwrap();
    let dev = dev.to_str().unwrap();
    assert_eq!(
        b["implementations"][0],
        json!(["XenDisk", {"backend_type": "vbd", "params": dev, "extra": {}}])
    );
    assert_eq!(
        b["implementations"][1],
        json!(["BlockDevice", {"path": dev}])
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
    // A device that never appears: a bounded wait, then a proper error.
    let missing = json!({"dbg": "t", "uri": format!("zvol://{}/tank/sr/nope", zroot.display()), "domain": "12"});
    let e = d
        .call(Plugin::Datapath, "Datapath.attach", missing)
        .unwrap_err();
    assert_eq!(e.code(), Some("SR_BACKEND_FAILURE_46"), "{e}");
    d.assert_no_violations();
}

#[test]
fn calls_reaching_the_backend_without_zfs_fail_with_valid_error_json() {
    // The host has no ZFS kernel module: every backend call must still answer with a proper
    // error object that says why, and Plugin.diagnostics must still answer.
    if std::path::Path::new("/dev/zfs").exists() {
        eprintln!("/dev/zfs exists: this test is about hosts without ZFS");
        return;
    }
    let (_tmp, root) = support::installed_root(false);
    let d = FakeDaemon::new(&root);
    for (method, params) in [
        (
            "SR.create",
            json!({"dbg": "t", "uuid": "u", "configuration": {"pool": "tank"}, "name": "n", "description": ""}),
        ),
        (
            "SR.attach",
            json!({"dbg": "t", "configuration": {"pool": "tank", "sr_uuid": "u"}}),
        ),
        ("SR.ls", json!({"dbg": "t", "sr": "s"})),
        (
            "Volume.create",
            json!({"dbg": "t", "sr": "s", "name": "n", "description": "", "size": 0, "sharable": false}),
        ),
        ("Volume.stat", json!({"dbg": "t", "sr": "s", "key": "k"})),
    ] {
        let e = d.call(Plugin::Volume, method, params).unwrap_err();
        let DaemonError::Plugin {
            code, params, exit, ..
        } = &e
        else {
            panic!("{method}: {e}")
        };
        assert_eq!(
            (code.as_str(), *exit),
            ("SR_BACKEND_FAILURE", 1),
            "{method}"
        );
        assert_eq!(params[0], "Backend_failure");
        assert!(params[1].contains("/dev/zfs"), "{method}: {params:?}");
    }
    // Configuration problems are found before ZFS is needed, and name the key.
    let e = d
        .call(
            Plugin::Volume,
            "SR.attach",
            json!({"dbg": "t", "configuration": {"pool": "tank"}}),
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
    assert!(
        v.as_str()
            .unwrap()
            .contains("zfs kernel module: unavailable"),
        "{v}"
    );
    d.assert_no_violations();
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
    let Ok(mut child) = Command::new("python3")
        .arg("-c")
        .arg("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
        .arg(&entry)
        .arg("--json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("python3 not available: observer path not exercised");
        return;
    };
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
    for sub in ["status", "tree", "check"] {
        let out = support::admin(&[sub, "--sr", "tank/sr"]);
        assert_eq!(out.status.code(), Some(1), "{sub}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("xapi-zvol: error: ") && err.contains("/dev/zfs"),
            "{sub}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    let out = support::admin(&["status"]);
    assert_eq!(out.status.code(), Some(2), "clap usage error without --sr");
}
