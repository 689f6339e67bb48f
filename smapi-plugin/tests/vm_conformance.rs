//! SMAPIv3 conformance of the real `xapi-zvol` binary against real ZFS (test VM only).
//!
//! Every call goes through an installed plugin root and [`FakeDaemon`], exactly as
//! `xapi-storage-script` runs it, and every answer is validated against the wire contract;
//! each test ends with `assert_no_violations()`. Device data is written and read through the
//! block device `Datapath.attach` returns, with O_DIRECT (so a stale page cache of an old
//! device can never make a wrong read look right).
//!
//! * `self_test_sequence_*`: the daemon self-test flow (contract §12.1) on a pool we made
//!   (`pool=`) and on a pool the plugin makes (`device=`), plus attach after export.
//! * `composite_vm_lifecycle`: the §8 sequences — VM start/stop, snapshot + the 5 `Volume.set`
//!   calls, VM clone, reset-on-boot, old- and new-style revert, destroy in a hostile order,
//!   double destroy, SR.destroy — with content checked after every step.
//! * `hostile_inputs_change_nothing`: malformed keys, SR strings, configurations, JSON types
//!   and missing fields; each gives a valid error and the pool's dataset list is unchanged.

mod support;

use std::collections::BTreeMap;

use serde_json::{json, Value};
use support::fake_daemon::{DaemonError, Plugin};
use support::vm::*;

const VOL_SIZE: u64 = 64 * MIB;
/// Offsets of the 4 KiB pattern blocks written into volumes.
const OFF_A: u64 = 0;
const OFF_B: u64 = MIB;
const OFF_C: u64 = 60 * MIB;

// ------------------------------------------------------------------------------------------
// Shared checks
// ------------------------------------------------------------------------------------------

fn check_queries(h: &Host) {
    let v = h.call(Plugin::Volume, "Plugin.query", json!({"dbg": "t"}));
    assert_eq!(v["plugin"], "zvol");
    assert_eq!(v["required_api_version"], "5.0");
    let v = h.call(Plugin::Datapath, "Plugin.query", json!({"dbg": "t"}));
    assert_eq!(v["plugin"], "zvol");
    assert_eq!(v["features"], json!([]));
    let d = h.call(Plugin::Volume, "Plugin.diagnostics", json!({"dbg": "t"}));
    assert!(d.as_str().unwrap().contains("zfs kernel module: "), "{d}");
    h.call(Plugin::Datapath, "Plugin.diagnostics", json!({"dbg": "t"}));
}

/// SR.stat of a freshly created SR.
fn check_sr_stat(h: &Host, sr: &str, uuid: &str, name: &str, description: &str) {
    let s = h.vol("SR.stat", json!({"dbg": "t", "sr": sr}));
    assert_eq!(s["sr"], sr);
    assert_eq!(s["uuid"], uuid);
    assert_eq!(s["name"], name);
    assert_eq!(s["description"], description);
    assert_eq!(s["health"], json!(["Healthy", ""]));
    assert_eq!(s["clustered"], false);
    assert_eq!(s["datasources"], json!([]));
    let (free, total) = (
        s["free_space"].as_i64().unwrap(),
        s["total_space"].as_i64().unwrap(),
    );
    assert!(free > 0 && total >= free, "free {free} total {total}");
}

/// The daemon self-test flow plus the datapath, on an SR created from `configuration`.
/// Returns (sr string, returned configuration).
fn self_test_flow(h: &Host, uuid: &str, configuration: Value) -> (String, Value) {
    check_queries(h);
    let conf = h.vol(
        "SR.create",
        json!({"dbg": "t", "uuid": uuid, "configuration": configuration, "name": "self-test SR", "description": "d1"}),
    );
    for (k, v) in configuration.as_object().unwrap() {
        assert_eq!(
            &conf[k], v,
            "SR.create must return the input configuration plus its own keys"
        );
    }
    assert_eq!(conf["sr_uuid"], uuid);
    let sr = h
        .vol("SR.attach", json!({"dbg": "t", "configuration": conf}))
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        sr,
        format!("{}/zvol-sr-{uuid}", conf["pool"].as_str().unwrap())
    );
    // Idempotent, and the daemon always stats right after attach.
    assert_eq!(
        h.vol("SR.attach", json!({"dbg": "t", "configuration": conf})),
        sr.as_str()
    );
    check_sr_stat(h, &sr, uuid, "self-test SR", "d1");
    assert_eq!(
        h.vol(
            "SR.set_name",
            json!({"dbg": "t", "sr": sr, "new_name": "renamed ✓"})
        ),
        Value::Null
    );
    assert_eq!(
        h.vol(
            "SR.set_description",
            json!({"dbg": "t", "sr": sr, "new_description": "d2"})
        ),
        Value::Null
    );
    check_sr_stat(h, &sr, uuid, "renamed ✓", "d2");

    // Probe: by pool, and everywhere; each result is complete with sr_uuid and pool.
    let pool = conf["pool"].as_str().unwrap();
    for probe_conf in [json!({"pool": pool}), json!({})] {
        let r = h.vol("SR.probe", json!({"dbg": "t", "configuration": probe_conf}));
        let mine: Vec<&Value> = r
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["configuration"]["sr_uuid"] == uuid)
            .collect();
        assert_eq!(mine.len(), 1, "{r}");
        assert_eq!(mine[0]["configuration"]["pool"], pool);
        assert_eq!(mine[0]["complete"], true);
        assert_eq!(mine[0]["sr"]["uuid"], uuid);
        assert_eq!(mine[0]["sr"]["sr"], sr.as_str());
    }

    // The self-test's volume: size 0, then vdi-type.
    let v0 = h.vol(
        "Volume.create",
        json!({"dbg": "t", "sr": sr, "name": "vdi name", "description": "vdi description", "size": 0, "sharable": false}),
    );
    let k0 = v0["key"].as_str().unwrap().to_string();
    assert_eq!(v0["uuid"], k0.as_str());
    assert!(
        v0["virtual_size"].as_i64().unwrap() > 0,
        "size 0 is rounded up to one block: {v0}"
    );
    assert_eq!(v0["read_write"], true);
    assert_eq!(v0["keys"], json!({}));
    h.set(&sr, &k0, "vdi-type", "redolog");
    let s0 = h.stat(&sr, &k0);
    assert_eq!(s0["keys"], json!({"vdi-type": "redolog"}));
    assert_eq!(s0["name"], "vdi name");
    assert_eq!(s0["description"], "vdi description");

    // A data disk through the datapath.
    let v1 = h.vol(
        "Volume.create",
        json!({"dbg": "t", "sr": sr, "name": "disk", "description": "", "size": VOL_SIZE, "sharable": true}),
    );
    let k1 = v1["key"].as_str().unwrap().to_string();
    assert_eq!(v1["virtual_size"], VOL_SIZE);
    assert_eq!(v1["sharable"], true);
    assert_eq!(
        v1["uri"],
        json!([format!("zvol:///dev/zvol/{sr}/vol/{k1}")])
    );
    h.set(&sr, &k1, "vdi-type", "user");
    let ls = h.ls(&sr);
    assert_eq!(ls.keys().cloned().collect::<Vec<_>>(), {
        let mut k = vec![k0.clone(), k1.clone()];
        k.sort();
        k
    });
    assert_eq!(ls[&k1]["keys"], json!({"vdi-type": "user"}));

    let dev = h.plug(&sr, &k1, "7");
    write_block(&dev, OFF_A, 11);
    write_block(&dev, OFF_C, 12);
    assert_eq!(read_block(&dev, OFF_A), pattern(11));
    assert_eq!(read_block(&dev, OFF_B), pattern(0));
    assert_eq!(read_block(&dev, OFF_C), pattern(12));
    h.unplug(&sr, &k1, "7");
    h.expect(
        &sr,
        &k1,
        &[(OFF_A, 11), (OFF_B, 0), (OFF_C, 12)],
        "after VM stop",
    );

    // Resize: grow (content kept), shrink refused with 79.
    assert_eq!(
        h.vol(
            "Volume.resize",
            json!({"dbg": "t", "sr": sr, "key": k1, "new_size": 2 * VOL_SIZE})
        ),
        Value::Null
    );
    assert_eq!(h.stat(&sr, &k1)["virtual_size"], 2 * VOL_SIZE);
    let (code, params) = h.fail(
        "Volume.resize",
        json!({"dbg": "t", "sr": sr, "key": k1, "new_size": VOL_SIZE}),
    );
    assert_eq!(code, "SR_BACKEND_FAILURE_79", "{params:?}");
    assert!(params[1].contains("shrink"), "{params:?}");
    h.expect(&sr, &k1, &[(OFF_A, 11), (OFF_C, 12)], "after resize");

    // A missing volume: typed error; destroy is idempotent.
    let gone = new_uuid();
    let (code, params) = h.fail("Volume.stat", json!({"dbg": "t", "sr": sr, "key": gone}));
    assert_eq!(
        (code.as_str(), params),
        (
            "SR_BACKEND_FAILURE",
            vec!["Volume_does_not_exist".to_string(), gone.clone()]
        )
    );
    for k in [&k0, &k1, &k1, &gone] {
        h.destroy(&sr, k);
    }
    assert!(h.ls(&sr).is_empty());
    (sr, conf)
}

fn admin(args: &[&str]) -> (bool, String, String) {
    let out = support::admin(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ------------------------------------------------------------------------------------------
// (a) The self-test sequence
// ------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn self_test_sequence_on_an_existing_pool() {
    let mut s = Scratch::new("exist");
    let pool = s.pool(512);
    let h = Host::new();
    let uuid = new_uuid();
    let before = zfs_names(&pool);
    let (sr, conf) = self_test_flow(
        &h,
        &uuid,
        json!({"pool": pool, "xapi-extra-key": "ignored"}),
    );
    assert_eq!(conf["pool"], pool.as_str());

    // Admin CLI on a live SR.
    let (okay, out, err) = admin(&["status", "--sr", &sr]);
    assert!(okay, "{err}");
    assert!(
        out.contains(&uuid) && out.contains("healthy") && out.contains("VDIs:         0"),
        "{out}"
    );
    let (okay, out, err) = admin(&["tree", "--sr", &sr]);
    assert!(okay && out.contains(&uuid), "{out}{err}");
    let (okay, out, err) = admin(&["check", "--sr", &sr]);
    assert!(okay && out.contains("OK: no problems found"), "{out}{err}");

    // Detach is idempotent; attach again after detach works.
    for _ in 0..2 {
        assert_eq!(
            h.vol("SR.detach", json!({"dbg": "t", "sr": sr})),
            Value::Null
        );
    }
    assert_eq!(
        h.vol("SR.attach", json!({"dbg": "t", "configuration": conf})),
        sr.as_str()
    );
    // SR.destroy (no detach follows); then the SR is gone, detach of it still succeeds.
    assert_eq!(
        h.vol("SR.destroy", json!({"dbg": "t", "sr": sr})),
        Value::Null
    );
    let (code, params) = h.fail("SR.stat", json!({"dbg": "t", "sr": sr}));
    assert_eq!(
        (code.as_str(), params[0].as_str()),
        ("SR_BACKEND_FAILURE", "SR_does_not_exist"),
        "{params:?}"
    );
    assert_eq!(
        h.vol("SR.detach", json!({"dbg": "t", "sr": sr})),
        Value::Null
    );
    assert_eq!(
        h.vol("SR.destroy", json!({"dbg": "t", "sr": sr})),
        Value::Null,
        "destroy of a gone SR succeeds"
    );
    // The user's pool is intact and nothing of ours is left.
    assert!(ok("zpool", &["list", &pool]));
    assert_eq!(zfs_names(&pool), before);
    h.d.assert_no_violations();
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn self_test_sequence_on_a_pool_the_plugin_creates() {
    let mut s = Scratch::new("dev");
    let file = s.file("disk0", 512);
    let h = Host::new();
    let uuid = new_uuid();
    let made = format!("zvol-{uuid}");
    s.adopt(&made);
    let configuration = json!({
        "device": file, "provisioning": "thick", "volblocksize": "8K", "compression": "lz4"
    });
    let (sr, conf) = self_test_flow(&h, &uuid, configuration);
    assert_eq!(conf["pool"], made.as_str());
    assert_eq!(zfs_get(&sr, "compression"), "lz4");

    // Thick + 8K volblocksize reach new volumes.
    let v = h.vol("Volume.create", json!({"dbg": "t", "sr": sr, "name": "thick", "description": "", "size": VOL_SIZE, "sharable": false}));
    let k = v["key"].as_str().unwrap();
    let ds = format!("{sr}/vol/{k}");
    assert_eq!(zfs_get(&ds, "volblocksize"), "8192");
    assert!(
        zfs_get(&ds, "refreservation").parse::<u64>().unwrap() >= VOL_SIZE,
        "thick volume without reservation"
    );
    h.write(&sr, k, &[(OFF_B, 21)]);

    // Detach, export the pool (as after a reboot or a move to another host), attach again:
    // the pool is imported from the device hint, and the data is there.
    assert_eq!(
        h.vol("SR.detach", json!({"dbg": "t", "sr": sr})),
        Value::Null
    );
    export_pool(&made);
    assert!(!ok("zpool", &["list", &made]));
    let (code, _) = h.fail("SR.stat", json!({"dbg": "t", "sr": sr}));
    assert_eq!(code, "SR_BACKEND_FAILURE");
    assert_eq!(
        h.vol("SR.attach", json!({"dbg": "t", "configuration": conf})),
        sr.as_str()
    );
    h.expect(&sr, k, &[(OFF_A, 0), (OFF_B, 21)], "after export/import");
    h.destroy(&sr, k);

    // Bad configurations name their key (SR_BACKEND_FAILURE_109) and create nothing.
    let other = new_uuid();
    for (cfg, key) in [
        (json!({}), "device"),
        (json!({"device": file, "pool": made}), "pool"),
        (json!({"device": "relative/path"}), "device"),
        (json!({"vdev": "-f /dev/null"}), "vdev"),
        (json!({"pool": made, "provisioning": "fat"}), "provisioning"),
        (
            json!({"pool": made, "volblocksize": "3000"}),
            "volblocksize",
        ),
        (
            json!({"pool": made, "compression": "gzip-9"}),
            "compression",
        ),
        (json!({"pool": "no-such-pool-xzvt"}), "pool"),
        (json!({"pool": sr}), "pool"),
        (json!({"pool": format!("{sr}/vol")}), "pool"),
    ] {
        let names = zfs_names(&made);
        let (code, params) = h.fail(
            "SR.create",
            json!({"dbg": "t", "uuid": other, "configuration": cfg, "name": "n", "description": ""}),
        );
        assert_eq!(code, "SR_BACKEND_FAILURE_109", "{cfg}: {params:?}");
        assert!(
            params[1].starts_with(&format!("{key}: ")),
            "{cfg}: {params:?}"
        );
        assert_eq!(zfs_names(&made), names, "{cfg} changed the pool");
    }
    let (code, params) = h.fail(
        "SR.attach",
        json!({"dbg": "t", "configuration": {"pool": made}}),
    );
    assert_eq!(code, "SR_BACKEND_FAILURE_109");
    assert!(params[1].starts_with("sr_uuid: "), "{params:?}");

    // SR.destroy removes the pool the plugin made, and nothing else is left.
    assert_eq!(
        h.vol("SR.destroy", json!({"dbg": "t", "sr": sr})),
        Value::Null
    );
    assert!(
        !ok("zpool", &["list", &made]),
        "the pool SR.create made must go with SR.destroy"
    );
    assert_eq!(zfs_names(&made), "");
    h.d.assert_no_violations();
}

// ------------------------------------------------------------------------------------------
// (b) Composite sequences of contract §8
// ------------------------------------------------------------------------------------------

/// The xapi keys of a volume.
fn keys(v: &Value) -> BTreeMap<String, String> {
    v["keys"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

/// What the daemon does after Volume.snapshot (contract §7): 5 sets on the snapshot, then the
/// source's tags re-set on the source.
fn xapi_snapshot(h: &Host, sr: &str, key: &str) -> String {
    let src = h.stat(sr, key);
    let s = h.vol("Volume.snapshot", json!({"dbg": "t", "sr": sr, "key": key}));
    let sk = s["key"].as_str().unwrap().to_string();
    assert_ne!(sk, key);
    assert_eq!(s["uuid"], sk.as_str());
    assert_eq!(s["read_write"], false);
    assert_eq!(
        s["keys"],
        json!({}),
        "snapshot keys must start empty (the daemon sets them)"
    );
    assert_eq!(s["name"], src["name"]);
    assert_eq!(s["description"], src["description"]);
    assert_eq!(s["virtual_size"], src["virtual_size"]);
    h.set(sr, &sk, "snapshot_time", "20261124T10:00:00Z");
    h.set(sr, &sk, "is_a_snapshot", "true");
    h.set(sr, &sk, "snapshot_of", key);
    h.set(sr, &sk, "content_id", &new_uuid());
    h.set(sr, &sk, "vdi-type", "user");
    for (k, v) in keys(&src) {
        if k.starts_with("tags") {
            h.set(sr, key, &k, &v);
        }
    }
    let st = h.stat(sr, &sk);
    let k = keys(&st);
    assert_eq!(k["is_a_snapshot"], "true");
    assert_eq!(k["snapshot_of"], key);
    assert_eq!(k.len(), 5, "{k:?}");
    sk
}

/// SR.ls is exactly `expected` (keys), every snapshot is read-only with its xapi keys, every
/// volume writable.
fn check_ls(h: &Host, sr: &str, volumes: &[&str], snapshots: &[&str]) {
    let ls = h.ls(sr);
    let mut want: Vec<&str> = volumes.iter().chain(snapshots).copied().collect();
    want.sort();
    assert_eq!(
        ls.keys().map(String::as_str).collect::<Vec<_>>(),
        want,
        "SR.ls"
    );
    for v in volumes {
        assert_eq!(ls[*v]["read_write"], true, "{v}");
    }
    for s in snapshots {
        assert_eq!(ls[*s]["read_write"], false, "{s}");
        assert_eq!(ls[*s]["keys"]["is_a_snapshot"], "true", "{s}");
        assert!(ls[*s]["keys"]["snapshot_of"].is_string(), "{s}");
    }
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn composite_vm_lifecycle() {
    let mut s = Scratch::new("comp");
    let pool = s.pool(768);
    let h = Host::new();
    let uuid = new_uuid();
    let before = zfs_names(&pool);
    let conf = h.vol(
        "SR.create",
        json!({"dbg": "t", "uuid": uuid, "configuration": {"pool": pool}, "name": "vms", "description": ""}),
    );
    let sr = h
        .vol("SR.attach", json!({"dbg": "t", "configuration": conf}))
        .as_str()
        .unwrap()
        .to_string();
    h.vol("SR.stat", json!({"dbg": "t", "sr": sr}));

    // VDI.create → vdi-type; a tag.
    let v = h.vol(
        "Volume.create",
        json!({"dbg": "t", "sr": sr, "name": "vm disk", "description": "root", "size": VOL_SIZE, "sharable": false}),
    );
    let vk = v["key"].as_str().unwrap().to_string();
    h.set(&sr, &vk, "vdi-type", "user");
    h.set(&sr, &vk, "tagsgold", "gold");

    // VM start; the guest writes A1, B1; snapshot while active (crash-consistent).
    let dev = h.plug(&sr, &vk, "7");
    write_block(&dev, OFF_A, 101);
    write_block(&dev, OFF_B, 102);
    let s1 = xapi_snapshot(&h, &sr, &vk);
    // The guest keeps writing: A2.
    write_block(&dev, OFF_A, 103);
    assert_eq!(read_block(&dev, OFF_A), pattern(103));
    // VM stop.
    h.unplug(&sr, &vk, "7");
    check_ls(&h, &sr, &[&vk], &[&s1]);
    assert_eq!(keys(&h.stat(&sr, &vk))["tagsgold"], "gold");

    // The snapshot VDI is attachable read-only (export/backup) and shows A1, B1.
    let sdev = h.plug(&sr, &s1, "u0-export");
    assert_eq!(read_block(&sdev, OFF_A), pattern(101));
    assert_eq!(read_block(&sdev, OFF_B), pattern(102));
    assert!(
        !accepts_writes(&sdev),
        "snapshot device {sdev} accepted a write"
    );
    h.unplug(&sr, &s1, "u0-export");
    h.expect(
        &sr,
        &vk,
        &[(OFF_A, 103), (OFF_B, 102)],
        "live after snapshot",
    );

    // Second snapshot (A2, B1).
    let s2 = xapi_snapshot(&h, &sr, &vk);
    check_ls(&h, &sr, &[&vk], &[&s1, &s2]);

    // VM clone: Volume.clone of the writable volume; independent afterwards.
    let c1 = h.vol("Volume.clone", json!({"dbg": "t", "sr": sr, "key": vk}));
    let c1k = c1["key"].as_str().unwrap().to_string();
    assert_eq!(c1["read_write"], true);
    assert_eq!(c1["keys"], json!({}), "clone does not copy keys (IDL)");
    h.expect(&sr, &c1k, &[(OFF_A, 103), (OFF_B, 102)], "VM clone");
    h.write(&sr, &c1k, &[(OFF_A, 104)]);
    h.expect(
        &sr,
        &vk,
        &[(OFF_A, 103)],
        "source untouched by the clone's writes",
    );

    // Clone of a snapshot (VM from snapshot).
    let c2 = h.vol("Volume.clone", json!({"dbg": "t", "sr": sr, "key": s1}));
    let c2k = c2["key"].as_str().unwrap().to_string();
    assert_eq!(c2["read_write"], true);
    h.expect(
        &sr,
        &c2k,
        &[(OFF_A, 101), (OFF_B, 102)],
        "clone of snapshot",
    );
    check_ls(&h, &sr, &[&vk, &c1k, &c2k], &[&s1, &s2]);

    // Reset-on-boot (epoch_begin/end): clone, set clone-on-boot, run on the clone, destroy it,
    // unset. The disk itself never changes.
    h.stat(&sr, &vk);
    let t = h.vol("Volume.clone", json!({"dbg": "t", "sr": sr, "key": vk}));
    let tk = t["key"].as_str().unwrap().to_string();
    h.set(&sr, &vk, "clone-on-boot", &tk);
    let tdev = h.plug(&sr, &tk, "8");
    write_block(&tdev, OFF_A, 105);
    h.unplug(&sr, &tk, "8");
    h.stat(&sr, &vk);
    h.destroy(&sr, &tk);
    assert_eq!(
        h.vol(
            "Volume.unset",
            json!({"dbg": "t", "sr": sr, "key": vk, "k": "clone-on-boot"})
        ),
        Value::Null
    );
    assert!(!keys(&h.stat(&sr, &vk)).contains_key("clone-on-boot"));
    h.expect(
        &sr,
        &vk,
        &[(OFF_A, 103), (OFF_B, 102)],
        "after reset-on-boot",
    );
    check_ls(&h, &sr, &[&vk, &c1k, &c2k], &[&s1, &s2]);

    // New-style revert (xapi >= 26.16): to the older snapshot, key and keys kept.
    let keys_before = keys(&h.stat(&sr, &vk));
    assert_eq!(
        h.vol(
            "Volume.revert",
            json!({"dbg": "t", "sr": sr, "snapshot": s1, "key": vk})
        ),
        Value::Null
    );
    let after = h.stat(&sr, &vk);
    assert_eq!(after["key"], vk.as_str());
    assert_eq!(after["read_write"], true);
    assert_eq!(
        keys(&after),
        keys_before,
        "revert keeps the volume's identity and keys"
    );
    h.expect(&sr, &vk, &[(OFF_A, 101), (OFF_B, 102)], "revert to s1");
    h.expect(
        &sr,
        &s2,
        &[(OFF_A, 103), (OFF_B, 102)],
        "newer snapshot untouched by revert",
    );
    h.expect(&sr, &c1k, &[(OFF_A, 104)], "clone untouched by revert");
    // ... and to the newer one.
    assert_eq!(
        h.vol(
            "Volume.revert",
            json!({"dbg": "t", "sr": sr, "snapshot": s2, "key": vk})
        ),
        Value::Null
    );
    h.expect(&sr, &vk, &[(OFF_A, 103), (OFF_B, 102)], "revert to s2");
    // Reverting onto a snapshot, or from a volume, is refused with a clear error.
    let (code, params) = h.fail(
        "Volume.revert",
        json!({"dbg": "t", "sr": sr, "snapshot": vk, "key": s1}),
    );
    assert_eq!(code, "SR_BACKEND_FAILURE", "{params:?}");
    assert!(params[1].contains("snapshot"), "{params:?}");
    check_ls(&h, &sr, &[&vk, &c1k, &c2k], &[&s1, &s2]);

    // Old-style revert (XCP-ng 8.3): destroy the live VDI (which owns both snapshots), then
    // clone the snapshot into a new VDI.
    h.stat(&sr, &vk);
    h.destroy(&sr, &vk);
    let (code, _) = h.fail("Volume.stat", json!({"dbg": "t", "sr": sr, "key": vk}));
    assert_eq!(code, "SR_BACKEND_FAILURE");
    h.expect(
        &sr,
        &s1,
        &[(OFF_A, 101), (OFF_B, 102)],
        "s1 after its source was destroyed",
    );
    h.expect(
        &sr,
        &s2,
        &[(OFF_A, 103), (OFF_B, 102)],
        "s2 after its source was destroyed",
    );
    let v2 = h.vol("Volume.clone", json!({"dbg": "t", "sr": sr, "key": s1}));
    let v2k = v2["key"].as_str().unwrap().to_string();
    h.set(&sr, &v2k, "vdi-type", "user");
    h.expect(&sr, &v2k, &[(OFF_A, 101), (OFF_B, 102)], "old-style revert");
    check_ls(&h, &sr, &[&v2k, &c1k, &c2k], &[&s1, &s2]);
    // Keys of the snapshots survive their source's destruction (xapi relinks snapshot_of).
    assert_eq!(keys(&h.stat(&sr, &s1))["snapshot_of"], vk);

    // Grow the reverted disk while its snapshot still exists.
    assert_eq!(
        h.vol(
            "Volume.resize",
            json!({"dbg": "t", "sr": sr, "key": v2k, "new_size": 2 * VOL_SIZE})
        ),
        Value::Null
    );
    h.write(&sr, &v2k, &[(VOL_SIZE + OFF_B, 106)]);
    h.expect(
        &sr,
        &v2k,
        &[(OFF_A, 101), (VOL_SIZE + OFF_B, 106)],
        "after grow",
    );

    // Destroy everything, parents before children, snapshots with live clones first, one
    // key twice (the daemon's clone-on-boot bug); everything else keeps its content.
    h.destroy(&sr, &s1); // c2 and v2 were cloned from it
    h.expect(
        &sr,
        &c2k,
        &[(OFF_A, 101), (OFF_B, 102)],
        "c2 after s1 destroyed",
    );
    h.expect(
        &sr,
        &v2k,
        &[(OFF_A, 101), (VOL_SIZE + OFF_B, 106)],
        "v2 after s1 destroyed",
    );
    check_ls(&h, &sr, &[&v2k, &c1k, &c2k], &[&s2]);
    h.destroy(&sr, &c1k);
    h.destroy(&sr, &c1k);
    h.expect(&sr, &s2, &[(OFF_A, 103)], "s2 after c1 destroyed");
    h.destroy(&sr, &v2k);
    h.expect(&sr, &c2k, &[(OFF_A, 101)], "c2 after v2 destroyed");
    h.destroy(&sr, &s2);
    h.destroy(&sr, &c2k);
    h.destroy(&sr, &s2);
    assert!(h.ls(&sr).is_empty());

    // Nothing left but the SR's own datasets (I4), and check is clean.
    let left = zfs_names(&sr);
    for line in left.lines() {
        assert!(
            [
                sr.clone(),
                format!("{sr}/vol"),
                format!("{sr}/snap"),
                format!("{sr}/gc")
            ]
            .contains(&line.to_string()),
            "left behind after destroying every VDI: {line}\n{left}"
        );
    }
    let (okay, out, err) = admin(&["check", "--sr", &sr]);
    assert!(okay, "{out}{err}");

    assert_eq!(
        h.vol("SR.destroy", json!({"dbg": "t", "sr": sr})),
        Value::Null
    );
    assert_eq!(
        zfs_names(&pool),
        before,
        "nothing of ours may be left in the pool"
    );
    h.d.assert_no_violations();
}

// ------------------------------------------------------------------------------------------
// (c) Hostile inputs through the binary
// ------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn hostile_inputs_change_nothing() {
    let mut s = Scratch::new("host");
    let pool = s.pool(512);
    let h = Host::new();
    let uuid = new_uuid();
    let conf = h.vol(
        "SR.create",
        json!({"dbg": "t", "uuid": uuid, "configuration": {"pool": pool}, "name": "n", "description": ""}),
    );
    let sr = h
        .vol("SR.attach", json!({"dbg": "t", "configuration": conf}))
        .as_str()
        .unwrap()
        .to_string();
    let v = h.vol("Volume.create", json!({"dbg": "t", "sr": sr, "name": "v", "description": "", "size": MIB, "sharable": false}));
    let vk = v["key"].as_str().unwrap().to_string();
    let sk = h.vol("Volume.snapshot", json!({"dbg": "t", "sr": sr, "key": vk}))["key"]
        .as_str()
        .unwrap()
        .to_string();
    let before = zfs_names(&pool);
    let summary = |h: &Host| -> Vec<(String, Value, Value, Value, Value)> {
        h.ls(&sr)
            .into_values()
            .map(|v| {
                (
                    v["key"].as_str().unwrap().to_string(),
                    v["name"].clone(),
                    v["keys"].clone(),
                    v["read_write"].clone(),
                    v["virtual_size"].clone(),
                )
            })
            .collect()
    };
    let ls_before = summary(&h);

    let long = "a".repeat(300);
    let hostile_keys: Vec<&str> = vec![
        "../x", "a@b", "a/b", "#", "%", &long, "a\u{0}b", "\u{0}", "ü日本", "", "..", ".", "-rf",
        "A", " ",
    ];
    // Every call must answer; an error must be a proper error object (the daemon checks).
    let answer = |method: &str, params: Value| -> Result<Value, (String, Vec<String>)> {
        match h.d.call(Plugin::Volume, method, params.clone()) {
            Ok(v) => Ok(v),
            Err(DaemonError::Plugin { code, params, .. }) => Err((code, params)),
            Err(e) => panic!("{method} {params}: {e}"),
        }
    };
    let must_fail = |method: &str, params: Value| -> (String, Vec<String>) {
        match answer(method, params.clone()) {
            Ok(v) => panic!("{method} {params} succeeded with {v}"),
            Err(e) => e,
        }
    };

    for k in &hostile_keys {
        let calls = [
            ("Volume.stat", json!({"dbg": "t", "sr": sr, "key": k})),
            ("Volume.snapshot", json!({"dbg": "t", "sr": sr, "key": k})),
            ("Volume.clone", json!({"dbg": "t", "sr": sr, "key": k})),
            ("Volume.destroy", json!({"dbg": "t", "sr": sr, "key": k})),
            (
                "Volume.set",
                json!({"dbg": "t", "sr": sr, "key": k, "k": "x", "v": "y"}),
            ),
            (
                "Volume.unset",
                json!({"dbg": "t", "sr": sr, "key": k, "k": "x"}),
            ),
            (
                "Volume.set_name",
                json!({"dbg": "t", "sr": sr, "key": k, "new_name": "x"}),
            ),
            (
                "Volume.set_description",
                json!({"dbg": "t", "sr": sr, "key": k, "new_description": "x"}),
            ),
            (
                "Volume.resize",
                json!({"dbg": "t", "sr": sr, "key": k, "new_size": 2 * MIB}),
            ),
            (
                "Volume.revert",
                json!({"dbg": "t", "sr": sr, "snapshot": k, "key": vk}),
            ),
            (
                "Volume.revert",
                json!({"dbg": "t", "sr": sr, "snapshot": sk, "key": k}),
            ),
        ];
        for (m, p) in calls {
            let (code, params) = must_fail(m, p);
            // A malformed key is an invalid argument, never "does not exist".
            assert_eq!(code, "SR_BACKEND_FAILURE", "{m} {k:?}: {params:?}");
            assert_eq!(params[0], "Invalid_argument", "{m} {k:?}: {params:?}");
        }
        assert_eq!(zfs_names(&pool), before, "key {k:?} changed the pool");
    }

    // Hostile xapi key names and values on a real volume: arbitrary names are legal (they are
    // encoded), a NUL or an oversize value is refused; either way a proper answer.
    let big = "v".repeat(10_000);
    for (k, val) in [
        ("", "x"),
        ("a\u{0}b", "x"),
        (long.as_str(), "x"),
        ("ü日本 key", "x"),
        ("x", "a\u{0}b"),
        ("x", big.as_str()),
    ] {
        match answer(
            "Volume.set",
            json!({"dbg": "t", "sr": sr, "key": vk, "k": k, "v": val}),
        ) {
            Ok(_) => {
                assert_eq!(
                    keys(&h.stat(&sr, &vk)).get(k).map(String::as_str),
                    Some(val),
                    "{k:?} round trip"
                );
                assert_eq!(
                    h.vol(
                        "Volume.unset",
                        json!({"dbg": "t", "sr": sr, "key": vk, "k": k})
                    ),
                    Value::Null
                );
            }
            Err((code, params)) => assert!(code.starts_with("SR_BACKEND_FAILURE"), "{params:?}"),
        }
    }
    for n in ["a\u{0}b", big.as_str()] {
        must_fail(
            "Volume.set_name",
            json!({"dbg": "t", "sr": sr, "key": vk, "new_name": n}),
        );
        must_fail(
            "Volume.create",
            json!({"dbg": "t", "sr": sr, "name": n, "description": "", "size": 1, "sharable": false}),
        );
        must_fail("SR.set_name", json!({"dbg": "t", "sr": sr, "new_name": n}));
    }
    assert_eq!(zfs_names(&pool), before);

    // Hostile SR strings: never an SR, never touched (SR.destroy included).
    let nested = format!("{sr}/gc");
    let vol_ds = format!("{sr}/vol/{vk}");
    let hostile_srs: Vec<String> = vec![
        "../x".into(),
        format!("{pool}/../x"),
        format!("{pool}@s"),
        "/".into(),
        String::new(),
        pool.clone(),
        nested.clone(),
        vol_ds.clone(),
        format!("{sr}/"),
        "a".repeat(300),
        "x\u{0}y".into(),
        "zvol:///dev/zvol/x".into(),
    ];
    for bad in &hostile_srs {
        for (m, p) in [
            ("SR.stat", json!({"dbg": "t", "sr": bad})),
            ("SR.ls", json!({"dbg": "t", "sr": bad})),
            (
                "SR.set_name",
                json!({"dbg": "t", "sr": bad, "new_name": "x"}),
            ),
            (
                "Volume.create",
                json!({"dbg": "t", "sr": bad, "name": "x", "description": "", "size": 1, "sharable": false}),
            ),
            ("Volume.stat", json!({"dbg": "t", "sr": bad, "key": vk})),
            ("Volume.destroy", json!({"dbg": "t", "sr": bad, "key": vk})),
        ] {
            must_fail(m, p);
        }
        // detach may succeed (idempotent) or refuse; destroy must refuse anything that is not
        // a gone SR.
        let _ = answer("SR.detach", json!({"dbg": "t", "sr": bad}));
        if bad == &pool || bad == &nested || bad == &vol_ds {
            must_fail("SR.destroy", json!({"dbg": "t", "sr": bad}));
        } else {
            let _ = answer("SR.destroy", json!({"dbg": "t", "sr": bad}));
        }
        assert_eq!(zfs_names(&pool), before, "sr {bad:?} changed the pool");
    }

    // Hostile SR.create / SR.attach / SR.probe.
    for (u, cfg) in [
        ("../x", json!({"pool": pool})),
        ("a/b", json!({"pool": pool})),
        ("", json!({"pool": pool})),
        ("a\u{0}b", json!({"pool": pool})),
        (uuid.as_str(), json!({"pool": format!("{pool}/../x")})),
        (uuid.as_str(), json!({"pool": format!("{pool}@s")})),
        (uuid.as_str(), json!({"pool": sr})),
        (uuid.as_str(), json!({"pool": vol_ds})),
        (uuid.as_str(), json!({"vdev": "-o ashift=9 /dev/null"})),
        (uuid.as_str(), json!({"device": "/dev/null; rm -rf /"})),
    ] {
        must_fail(
            "SR.create",
            json!({"dbg": "t", "uuid": u, "configuration": cfg, "name": "n", "description": ""}),
        );
        assert_eq!(
            zfs_names(&pool),
            before,
            "SR.create {u:?} {cfg} changed the pool"
        );
    }
    for cfg in [
        json!({"pool": pool, "sr_uuid": "../x"}),
        json!({"pool": "../x", "sr_uuid": uuid}),
        json!({"pool": nested, "sr_uuid": uuid}),
        json!({"pool": pool, "sr_uuid": new_uuid()}),
    ] {
        must_fail("SR.attach", json!({"dbg": "t", "configuration": cfg}));
    }
    for cfg in [json!({"pool": "../x"}), json!({"pool": "no-such-pool"})] {
        let _ = answer("SR.probe", json!({"dbg": "t", "configuration": cfg}));
    }
    assert_eq!(zfs_names(&pool), before);

    // Wrong JSON types and missing fields: refused by the adapter before any backend call.
    for (m, p) in [
        ("Volume.stat", json!({"dbg": "t", "sr": sr, "key": 5})),
        ("Volume.stat", json!({"dbg": "t", "sr": null, "key": vk})),
        ("Volume.stat", json!({"dbg": "t", "sr": sr})),
        (
            "Volume.create",
            json!({"dbg": "t", "sr": sr, "name": "n", "description": "", "size": "abc", "sharable": false}),
        ),
        (
            "Volume.create",
            json!({"dbg": "t", "sr": sr, "name": "n", "description": "", "size": 1.5, "sharable": false}),
        ),
        (
            "Volume.create",
            json!({"dbg": "t", "sr": sr, "name": "n", "description": "", "size": 1, "sharable": "yes"}),
        ),
        (
            "Volume.create",
            json!({"dbg": "t", "sr": sr, "name": "n", "description": "", "sharable": false}),
        ),
        (
            "Volume.resize",
            json!({"dbg": "t", "sr": sr, "key": vk, "new_size": -1}),
        ),
        ("Volume.revert", json!({"dbg": "t", "sr": sr, "key": vk})),
        (
            "Volume.set",
            json!({"dbg": "t", "sr": sr, "key": vk, "k": "x"}),
        ),
        (
            "SR.create",
            json!({"dbg": "t", "configuration": {"pool": pool}, "name": "n", "description": ""}),
        ),
        (
            "SR.create",
            json!({"dbg": "t", "uuid": new_uuid(), "configuration": [], "name": "n", "description": ""}),
        ),
        (
            "SR.create",
            json!({"dbg": "t", "uuid": new_uuid(), "configuration": {"pool": 5}, "name": "n", "description": ""}),
        ),
        ("SR.attach", json!({"dbg": "t", "configuration": "pool"})),
        ("SR.ls", json!([sr])),
        ("SR.ls", json!(sr)),
    ] {
        must_fail(m, p);
    }
    for raw in [
        &b"not json"[..],
        b"",
        b"{",
        b"{\"dbg\":\"t\",\"sr\":\"x\"} {}",
        b"\xff\xfe",
    ] {
        assert!(matches!(
            h.d.call_raw(Plugin::Volume, "SR.ls", raw),
            Err(DaemonError::Plugin { .. })
        ));
    }
    assert_eq!(zfs_names(&pool), before);

    // The SR still works and still lists exactly what it did.
    assert_eq!(summary(&h), ls_before);
    h.destroy(&sr, &vk);
    h.destroy(&sr, &sk);
    assert_eq!(
        h.vol("SR.destroy", json!({"dbg": "t", "sr": sr})),
        Value::Null
    );
    assert_eq!(zfs_names(&pool), format!("{pool}\n"));
    h.d.assert_no_violations();
}

// ------------------------------------------------------------------------------------------
// (d) Concurrent calls (xapi ≥ 24.40 runs SMAPIv3 calls in parallel, contract §2.1)
// ------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn concurrent_calls_on_one_sr() {
    let mut s = Scratch::new("conc");
    let pool = s.pool(512);
    let h = Host::new();
    let uuid = new_uuid();
    let before = zfs_names(&pool);
    let conf = h.vol(
        "SR.create",
        json!({"dbg": "t", "uuid": uuid, "configuration": {"pool": pool}, "name": "n", "description": ""}),
    );
    let sr = h
        .vol("SR.attach", json!({"dbg": "t", "configuration": conf}))
        .as_str()
        .unwrap()
        .to_string();
    let base = h.vol("Volume.create", json!({"dbg": "t", "sr": sr, "name": "base", "description": "", "size": 4 * MIB, "sharable": false}));
    let bk = base["key"].as_str().unwrap().to_string();

    // Each worker: its own volume, snapshot, clone of the shared base, sets, stats, and destroys;
    // meanwhile the shared base is snapshotted and statted by everyone.
    let workers = 3;
    let results: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|i| {
                let (sr, bk) = (sr.clone(), bk.clone());
                scope.spawn(move || {
                    let h = Host::new();
                    let v = h.vol("Volume.create", json!({"dbg": "t", "sr": sr, "name": format!("w{i}"), "description": "", "size": 2 * MIB, "sharable": false}));
                    let vk = v["key"].as_str().unwrap().to_string();
                    h.set(&sr, &vk, "vdi-type", "user");
                    let sk = h.vol("Volume.snapshot", json!({"dbg": "t", "sr": sr, "key": vk}))["key"].as_str().unwrap().to_string();
                    let bs = h.vol("Volume.snapshot", json!({"dbg": "t", "sr": sr, "key": bk}))["key"].as_str().unwrap().to_string();
                    let ck = h.vol("Volume.clone", json!({"dbg": "t", "sr": sr, "key": bk}))["key"].as_str().unwrap().to_string();
                    h.stat(&sr, &bk);
                    h.vol("SR.ls", json!({"dbg": "t", "sr": sr}));
                    h.vol("SR.stat", json!({"dbg": "t", "sr": sr}));
                    for k in [&vk, &sk, &ck, &bs] {
                        h.destroy(&sr, k);
                    }
                    h.d.assert_no_violations();
                    h.d.violations()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|t| t.join().expect("worker panicked"))
            .collect()
    });
    assert!(results.iter().all(Vec::is_empty));
    let ls = h.ls(&sr);
    assert_eq!(ls.keys().cloned().collect::<Vec<_>>(), vec![bk.clone()]);
    h.destroy(&sr, &bk);
    let (okay, out, err) = admin(&["check", "--sr", &sr]);
    assert!(okay, "{out}{err}");
    assert_eq!(
        h.vol("SR.destroy", json!({"dbg": "t", "sr": sr})),
        Value::Null
    );
    assert_eq!(zfs_names(&pool), before);
    h.d.assert_no_violations();
}
