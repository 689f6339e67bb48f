//! Hostile input, systematically (test VM only): every method of both plugins, every field
//! that takes a key, a name, a description, an SR string, a configuration, a Volume.set k/v or
//! a size, gets each value of [`hostile_strings`], a wrong JSON type, and goes missing.
//!
//! What each field must do (from the contract and error_map.rs; written down here once):
//!
//! | field | hostile value | answer |
//! |---|---|---|
//! | volume `key`, revert `snapshot` | any (keys are UUIDs we issued) | `SR_BACKEND_FAILURE ["Invalid_argument", ..]` |
//! | `sr` | any (not an attached SR) | `SR_BACKEND_FAILURE ["SR_does_not_exist", ..]`; SR.detach of an SR that does not exist succeeds (idempotent, contract §0.10); SR.destroy refuses a string that cannot name an SR with `SR_does_not_exist` |
//! | `name`, `description`, `new_name`, `new_description` | free text: succeeds and round-trips exactly through Volume.stat / SR.stat | except NUL (cannot be stored): `Invalid_argument` |
//! | Volume.set `k` | free text (encoded into a property name, I6): round trip | `""` and 300 characters (too long once encoded): `Invalid_argument` |
//! | Volume.set `v` | free text: round trip | NUL: `Invalid_argument` |
//! | Volume.unset `k` | free text (an absent key is fine) | `""`, 300 characters: `Invalid_argument` |
//! | configuration `pool`, `device`, `provisioning`, `volblocksize`, `compression`, `sr_uuid` | any | `SR_BACKEND_FAILURE_109 ["Invalid configuration", "<key>: ..."]`; an empty value is an absent key (then the usual answer); SR.attach of the well-formed `pool` "a/b": `Backend_failure` saying pool "a" cannot be imported; SR.probe of it: `[]` |
//! | configuration: unknown keys | any | ignored (contract §2.1), returned unchanged by SR.create |
//! | `size`, `new_size` | non-numeric strings | `SR_BACKEND_FAILURE ["TypeError", ..]`; negative or too large: `SR_BACKEND_FAILURE_79` |
//! | any field, wrong JSON type | | `["TypeError", ..]` (`null`: `["UnmarshalException", ..]` or `TypeError`) |
//! | any required field, missing | | `["UnmarshalException", ..]` |
//!
//! Every rejected call leaves the whole pool exactly as it was (`zfs list -t all` names,
//! used, volsize, refreservation: [`zfs_state`], compared after every [`CHECK_EVERY`] refused
//! calls, each datapath call, and before every accepted call); every accepted one is undone and
//! the pool is back to that state too.

mod support;

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};
use smapi_plugin::methods::{Method, ParamType, ServedBy};
use support::fake_daemon::{DaemonError, Plugin};
use support::vm::*;

/// The hostile values (label, value).
fn hostile_strings() -> Vec<(&'static str, String)> {
    vec![
        ("../x", "../x".into()),
        ("a@b", "a@b".into()),
        ("a/b", "a/b".into()),
        ("#", "#".into()),
        ("%", "%".into()),
        ("300 chars", "a".repeat(300)),
        ("NUL", "a\u{0}b".into()),
        ("unicode", "ünï😀".into()),
        ("empty", String::new()),
    ]
}

struct Tally<'a> {
    h: &'a Host,
    pool: String,
    state: String,
    inputs: Vec<String>,
    methods: BTreeSet<String>,
    errors: usize,
    round_trips: usize,
    /// Refused calls made since the pool was last compared ([`Tally::check_refused`]).
    unchecked: Vec<String>,
}

/// Refused calls between two comparisons of the pool.
const CHECK_EVERY: usize = 16;

impl Tally<'_> {
    fn plugin(method: &str) -> Plugin {
        if method.starts_with("Datapath.") {
            Plugin::Datapath
        } else {
            Plugin::Volume
        }
    }

    fn note(&mut self, method: &str, what: &str) {
        if self.inputs.len() % 100 == 0 {
            eprintln!(
                "hostile: {} inputs tried, at {method} {what}",
                self.inputs.len()
            );
        }
        self.inputs.push(format!("{method} {what}"));
        self.methods.insert(method.to_string());
    }

    /// A call that must be refused with `code` and `params[0]` in `p0` and change nothing.
    fn rejected(&mut self, method: &str, what: &str, params: Value, code: &str, p0: &[&str]) {
        self.note(method, what);
        let r = self.h.d.call(Self::plugin(method), method, params.clone());
        match r {
            Err(DaemonError::Plugin {
                code: c, params: p, ..
            }) => {
                assert!(
                    c == code && p0.contains(&p[0].as_str()),
                    "{method} {what}: want {code} {p0:?}, got {c} {p:?}"
                );
            }
            other => panic!("{method} {what} ({params}): want {code} {p0:?}, got {other:?}"),
        }
        // The pool is compared after every CHECK_EVERY refused calls, and before any call that
        // may change it: a refused call writes nothing, so a difference at the check belongs to
        // one of the calls listed in its message. (Per call, the `zfs list` of the comparison
        // cost more than the call: ~1,200 refused calls, 2-3 minutes per OpenZFS version
        // under emulation.)
        self.unchecked.push(format!("{method} {what}"));
        self.errors += 1;
        if method.starts_with("Datapath.") {
            // The datapath may write to a device: compared after a txg sync, at once.
            self.unchanged(method, what);
        } else if self.unchecked.len() >= CHECK_EVERY {
            self.check_refused();
        }
    }

    /// Compares the pool with the recorded state after the refused calls not yet checked.
    fn check_refused(&mut self) {
        if self.unchecked.is_empty() {
            return;
        }
        // A refused call wrote no block data: its dataset or property changes, if any, are
        // visible without a txg sync.
        let now = zfs_state_unsynced(&self.pool);
        assert!(
            now == self.state,
            "one of these refused calls changed the pool:\n  {}\n{}",
            self.unchecked.join("\n  "),
            state_diff(&self.state, &now)
        );
        self.unchecked.clear();
    }

    /// A call that must succeed; the caller checks the round trip and undoes it.
    fn accepted(&mut self, method: &str, what: &str, params: Value) -> Value {
        self.check_refused();
        self.note(method, what);
        self.round_trips += 1;
        match self.h.d.call(Self::plugin(method), method, params.clone()) {
            Ok(v) => v,
            Err(e) => panic!("{method} {what} ({params}) must succeed: {e}"),
        }
    }

    fn unchanged(&mut self, method: &str, what: &str) {
        self.check_refused();
        let now = zfs_state(&self.pool);
        assert!(
            now == self.state,
            "{method} {what} changed the pool:\n{}",
            state_diff(&self.state, &now)
        );
    }
}

fn keys_of(v: &Value) -> &Map<String, Value> {
    v["keys"].as_object().unwrap()
}

/// A wrong JSON value for a field of type `ty` (several each).
fn wrong_types(ty: ParamType) -> Vec<Value> {
    match ty {
        ParamType::String => vec![json!(5), json!(true), json!(["x"]), json!({"x": "y"})],
        ParamType::Int64 | ParamType::Size => {
            vec![json!("abc"), json!(1.5), json!(true), json!([1])]
        }
        ParamType::Bool => vec![json!("yes"), json!(1), json!([true])],
        ParamType::Configuration => vec![json!("pool"), json!([]), json!({"pool": 5}), json!(7)],
    }
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn hostile_inputs_documented_errors_or_exact_round_trips() {
    let mut s = Scratch::new("hostile");
    let pool = s.pool(512);
    let h = Host::new();
    let sr = h.new_sr(json!({"pool": pool}));
    let vk = h.create(&sr, "v", MIB);
    let sk = h.vol("Volume.snapshot", json!({"dbg": "t", "sr": sr, "key": vk}))["key"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = h.stat(&sr, &vk)["uri"][0].as_str().unwrap().to_string();
    let mut t = Tally {
        h: &h,
        state: zfs_state(&pool),
        pool: pool.clone(),
        inputs: vec![],
        methods: BTreeSet::new(),
        errors: 0,
        round_trips: 0,
        unchecked: vec![],
    };
    const INVALID: &[&str] = &["Invalid_argument"];
    let generic = "SR_BACKEND_FAILURE";

    for (label, x) in hostile_strings() {
        // Keys: never ours, an invalid argument.
        for (m, p) in [
            ("Volume.stat", json!({"dbg": "t", "sr": sr, "key": x})),
            ("Volume.snapshot", json!({"dbg": "t", "sr": sr, "key": x})),
            ("Volume.clone", json!({"dbg": "t", "sr": sr, "key": x})),
            ("Volume.destroy", json!({"dbg": "t", "sr": sr, "key": x})),
            (
                "Volume.set",
                json!({"dbg": "t", "sr": sr, "key": x, "k": "x", "v": "y"}),
            ),
            (
                "Volume.unset",
                json!({"dbg": "t", "sr": sr, "key": x, "k": "x"}),
            ),
            (
                "Volume.set_name",
                json!({"dbg": "t", "sr": sr, "key": x, "new_name": "x"}),
            ),
            (
                "Volume.set_description",
                json!({"dbg": "t", "sr": sr, "key": x, "new_description": "x"}),
            ),
            (
                "Volume.resize",
                json!({"dbg": "t", "sr": sr, "key": x, "new_size": 2 * MIB}),
            ),
            (
                "Volume.revert",
                json!({"dbg": "t", "sr": sr, "snapshot": sk, "key": x}),
            ),
            ("Volume.enable_cbt", json!({"dbg": "t", "sr": sr, "key": x})),
            (
                "Volume.disable_cbt",
                json!({"dbg": "t", "sr": sr, "key": x}),
            ),
            (
                "Volume.data_destroy",
                json!({"dbg": "t", "sr": sr, "key": x}),
            ),
            (
                "Volume.list_changed_blocks",
                json!({"dbg": "t", "sr": sr, "key": x, "key2": sk, "offset": 0, "length": -1}),
            ),
        ] {
            t.rejected(m, &format!("key={label}"), p, generic, INVALID);
        }
        t.rejected(
            "Volume.list_changed_blocks",
            &format!("key2={label}"),
            json!({"dbg": "t", "sr": sr, "key": sk, "key2": x, "offset": 0, "length": -1}),
            generic,
            INVALID,
        );
        t.rejected(
            "Volume.revert",
            &format!("snapshot={label}"),
            json!({"dbg": "t", "sr": sr, "snapshot": x, "key": vk}),
            generic,
            INVALID,
        );

        // SR strings: never an SR.
        for (m, p) in [
            ("SR.stat", json!({"dbg": "t", "sr": x})),
            ("SR.ls", json!({"dbg": "t", "sr": x})),
            ("SR.set_name", json!({"dbg": "t", "sr": x, "new_name": "x"})),
            (
                "SR.set_description",
                json!({"dbg": "t", "sr": x, "new_description": "x"}),
            ),
            (
                "Volume.create",
                json!({"dbg": "t", "sr": x, "name": "x", "description": "", "size": MIB, "sharable": false}),
            ),
            ("Volume.stat", json!({"dbg": "t", "sr": x, "key": vk})),
            ("Volume.snapshot", json!({"dbg": "t", "sr": x, "key": vk})),
            ("Volume.clone", json!({"dbg": "t", "sr": x, "key": vk})),
            ("Volume.destroy", json!({"dbg": "t", "sr": x, "key": vk})),
            (
                "Volume.set",
                json!({"dbg": "t", "sr": x, "key": vk, "k": "x", "v": "y"}),
            ),
            (
                "Volume.unset",
                json!({"dbg": "t", "sr": x, "key": vk, "k": "x"}),
            ),
            (
                "Volume.set_name",
                json!({"dbg": "t", "sr": x, "key": vk, "new_name": "x"}),
            ),
            (
                "Volume.set_description",
                json!({"dbg": "t", "sr": x, "key": vk, "new_description": "x"}),
            ),
            (
                "Volume.resize",
                json!({"dbg": "t", "sr": x, "key": vk, "new_size": 2 * MIB}),
            ),
            (
                "Volume.revert",
                json!({"dbg": "t", "sr": x, "snapshot": sk, "key": vk}),
            ),
            ("Volume.enable_cbt", json!({"dbg": "t", "sr": x, "key": vk})),
            (
                "Volume.disable_cbt",
                json!({"dbg": "t", "sr": x, "key": vk}),
            ),
            (
                "Volume.data_destroy",
                json!({"dbg": "t", "sr": x, "key": sk}),
            ),
            (
                "Volume.list_changed_blocks",
                json!({"dbg": "t", "sr": x, "key": sk, "key2": vk, "offset": 0, "length": -1}),
            ),
        ] {
            t.rejected(
                m,
                &format!("sr={label}"),
                p,
                generic,
                &["SR_does_not_exist"],
            );
        }
        // SR.detach is idempotent on an SR that does not exist: null, nothing touched.
        assert_eq!(
            t.accepted(
                "SR.detach",
                &format!("sr={label}"),
                json!({"dbg": "t", "sr": x})
            ),
            Value::Null
        );
        t.round_trips -= 1;
        t.errors += 1; // counted with the documented answers
        t.unchanged("SR.detach", label);
        // SR.destroy refuses a string that cannot name an SR before looking at any pool (and
        // is idempotent, null, for a well-formed SR name that is gone).
        t.note("SR.destroy", &format!("sr={label}"));
        match t
            .h
            .d
            .call(Plugin::Volume, "SR.destroy", json!({"dbg": "t", "sr": x}))
        {
            Ok(Value::Null) => {}
            Err(DaemonError::Plugin { code, params, .. })
                if code == generic && params[0] == "SR_does_not_exist" => {}
            other => panic!("SR.destroy sr={label}: want null or SR_does_not_exist, got {other:?}"),
        }
        t.errors += 1;
        t.unchanged("SR.destroy", label);

        // Free text: names and descriptions.
        let nul = label == "NUL";
        let text_calls = [
            (
                "Volume.set_name",
                json!({"dbg": "t", "sr": sr, "key": vk, "new_name": x}),
                "name",
            ),
            (
                "Volume.set_description",
                json!({"dbg": "t", "sr": sr, "key": vk, "new_description": x}),
                "description",
            ),
            (
                "SR.set_name",
                json!({"dbg": "t", "sr": sr, "new_name": x}),
                "sr-name",
            ),
            (
                "SR.set_description",
                json!({"dbg": "t", "sr": sr, "new_description": x}),
                "sr-description",
            ),
        ];
        for (m, p, field) in text_calls {
            let what = format!("{field}={label}");
            if nul {
                t.rejected(m, &what, p, generic, INVALID);
                continue;
            }
            assert_eq!(t.accepted(m, &what, p), Value::Null);
            match field {
                "name" | "description" => assert_eq!(h.stat(&sr, &vk)[field], x.as_str(), "{what}"),
                "sr-name" => assert_eq!(
                    h.vol("SR.stat", json!({"dbg": "t", "sr": sr}))["name"],
                    x.as_str(),
                    "{what}"
                ),
                _ => assert_eq!(
                    h.vol("SR.stat", json!({"dbg": "t", "sr": sr}))["description"],
                    x.as_str(),
                    "{what}"
                ),
            }
        }
        let create = json!({"dbg": "t", "sr": sr, "name": x, "description": x, "size": MIB, "sharable": false});
        if nul {
            t.rejected(
                "Volume.create",
                "name=description=NUL",
                create,
                generic,
                INVALID,
            );
            let p = json!({"dbg": "t", "uuid": new_uuid(), "configuration": {"pool": pool}, "name": x, "description": x});
            t.rejected("SR.create", "name=description=NUL", p, generic, INVALID);
        } else {
            let v = t.accepted(
                "Volume.create",
                &format!("name=description={label}"),
                create,
            );
            let k = v["key"].as_str().unwrap();
            let st = h.stat(&sr, k);
            assert_eq!(
                (&st["name"], &st["description"]),
                (&json!(x), &json!(x)),
                "Volume.create {label}"
            );
            h.destroy(&sr, k);
            // SR.create: free-text name and description, and hostile unknown configuration keys
            // (ignored, returned unchanged).
            let mut cfg = json!({"pool": pool});
            if !x.is_empty() {
                cfg[x.as_str()] = json!(x);
            }
            let p = json!({"dbg": "t", "uuid": new_uuid(), "configuration": cfg, "name": x, "description": x});
            let conf = t.accepted(
                "SR.create",
                &format!("name=description=config key={label}"),
                p,
            );
            for (ck, cv) in cfg.as_object().unwrap() {
                assert_eq!(
                    &conf[ck], cv,
                    "SR.create must return configuration key {ck:?}"
                );
            }
            let sr2 = h
                .vol("SR.attach", json!({"dbg": "t", "configuration": conf}))
                .as_str()
                .unwrap()
                .to_string();
            let st = h.vol("SR.stat", json!({"dbg": "t", "sr": sr2}));
            assert_eq!(
                (&st["name"], &st["description"]),
                (&json!(x), &json!(x)),
                "SR.create {label}"
            );
            assert_eq!(
                h.vol("SR.destroy", json!({"dbg": "t", "sr": sr2})),
                Value::Null
            );
        }
        h.vol(
            "Volume.set_name",
            json!({"dbg": "t", "sr": sr, "key": vk, "new_name": "v"}),
        );
        h.vol(
            "Volume.set_description",
            json!({"dbg": "t", "sr": sr, "key": vk, "new_description": ""}),
        );
        t.unchanged("names", label);

        // Volume.set / unset: k and v.
        let bad_k = label == "empty" || label == "300 chars";
        let set = json!({"dbg": "t", "sr": sr, "key": vk, "k": x, "v": "val"});
        let unset = json!({"dbg": "t", "sr": sr, "key": vk, "k": x});
        if bad_k {
            t.rejected("Volume.set", &format!("k={label}"), set, generic, INVALID);
            t.rejected(
                "Volume.unset",
                &format!("k={label}"),
                unset,
                generic,
                INVALID,
            );
        } else {
            t.accepted("Volume.set", &format!("k={label}"), set);
            assert_eq!(
                keys_of(&h.stat(&sr, &vk)).get(&x),
                Some(&json!("val")),
                "k={label}"
            );
            t.accepted("Volume.unset", &format!("k={label}"), unset);
            assert!(
                !keys_of(&h.stat(&sr, &vk)).contains_key(&x),
                "unset k={label}"
            );
        }
        let set = json!({"dbg": "t", "sr": sr, "key": vk, "k": "hostile", "v": x});
        if nul {
            t.rejected("Volume.set", "v=NUL", set, generic, INVALID);
        } else {
            t.accepted("Volume.set", &format!("v={label}"), set);
            assert_eq!(
                keys_of(&h.stat(&sr, &vk)).get("hostile"),
                Some(&json!(x)),
                "v={label}"
            );
            h.vol(
                "Volume.unset",
                json!({"dbg": "t", "sr": sr, "key": vk, "k": "hostile"}),
            );
        }
        t.unchanged("set/unset", label);

        // Configuration values of every key we read.
        if !x.is_empty() {
            for ck in [
                "pool",
                "device",
                "provisioning",
                "volblocksize",
                "compression",
            ] {
                let mut cfg = json!({"pool": pool});
                if ck == "device" {
                    cfg = json!({});
                }
                cfg[ck] = json!(x);
                let p = json!({"dbg": "t", "uuid": new_uuid(), "configuration": cfg, "name": "n", "description": ""});
                t.rejected(
                    "SR.create",
                    &format!("configuration {ck}={label}"),
                    p,
                    "SR_BACKEND_FAILURE_109",
                    &["Invalid configuration"],
                );
            }
            for cfg in [
                json!({"pool": x, "sr_uuid": new_uuid()}),
                json!({"pool": pool, "sr_uuid": x}),
            ] {
                // "a/b" is a well-formed parent dataset (pool "a"): attach tries to import that
                // pool, which does not exist, and says so (the operational failure an SR whose
                // disks are gone gives too).
                let (code, p0): (&str, &[&str]) = if cfg["pool"] == "a/b" {
                    ("SR_BACKEND_FAILURE", &["Backend_failure"])
                } else {
                    ("SR_BACKEND_FAILURE_109", &["Invalid configuration"])
                };
                t.rejected(
                    "SR.attach",
                    &format!("configuration {cfg}"),
                    json!({"dbg": "t", "configuration": cfg}),
                    code,
                    p0,
                );
            }
            let probe = json!({"dbg": "t", "configuration": {"pool": x}});
            if x == "a/b" {
                // Well-formed, and nothing is there: probe finds no SR (pool "a" is not imported).
                let r = t.accepted("SR.probe", "configuration pool=a/b", probe);
                assert_eq!(r, json!([]), "SR.probe of the absent a/b");
                t.unchanged("SR.probe", "configuration pool=a/b");
            } else {
                t.rejected(
                    "SR.probe",
                    &format!("configuration pool={label}"),
                    probe,
                    "SR_BACKEND_FAILURE_109",
                    &["Invalid configuration"],
                );
            }
            // The SR uuid of SR.create.
            let p = json!({"dbg": "t", "uuid": x, "configuration": {"pool": pool}, "name": "n", "description": ""});
            t.rejected(
                "SR.create",
                &format!("uuid={label}"),
                p,
                "SR_BACKEND_FAILURE_109",
                &["Invalid configuration"],
            );
        }

        // Sizes given as hostile strings.
        let p = json!({"dbg": "t", "sr": sr, "name": "n", "description": "", "size": x, "sharable": false});
        t.rejected(
            "Volume.create",
            &format!("size={label}"),
            p,
            generic,
            &["TypeError"],
        );
        let p = json!({"dbg": "t", "sr": sr, "key": vk, "new_size": x});
        t.rejected(
            "Volume.resize",
            &format!("new_size={label}"),
            p,
            generic,
            &["TypeError"],
        );

        // The datapath's uri and domain.
        for (m, p) in [
            (
                "Datapath.attach",
                json!({"dbg": "t", "uri": x, "domain": "0"}),
            ),
            (
                "Datapath.open",
                json!({"dbg": "t", "uri": x, "persistent": true}),
            ),
        ] {
            t.note(m, &format!("uri={label}"));
            match h.d.call(Plugin::Datapath, m, p) {
                Err(DaemonError::Plugin { code, .. }) => {
                    assert!(code.starts_with(generic), "{m} uri={label}: {code}")
                }
                other => panic!("{m} uri={label}: {other:?}"),
            }
            t.errors += 1;
            t.unchanged(m, label);
        }
    }

    // Numeric sizes out of range.
    for (label, n) in [
        ("-1", json!(-1)),
        ("i64::MAX", json!(i64::MAX)),
        ("2^64", json!(u64::MAX)),
    ] {
        let code = if label == "2^64" {
            generic
        } else {
            "SR_BACKEND_FAILURE_79"
        };
        let p0: &[&str] = if label == "2^64" {
            &["TypeError"]
        } else {
            &["VDI Invalid size"]
        };
        let p = json!({"dbg": "t", "sr": sr, "name": "n", "description": "", "size": n, "sharable": false});
        t.rejected("Volume.create", &format!("size={label}"), p, code, p0);
        let p = json!({"dbg": "t", "sr": sr, "key": vk, "new_size": n});
        t.rejected("Volume.resize", &format!("new_size={label}"), p, code, p0);
    }

    // Wrong JSON types and missing fields, for every parameter of every method.
    let valid = |m: Method| -> Value {
        let mut o = Map::new();
        for spec in m.params() {
            let v = match (spec.name, spec.ty) {
                ("sr", _) => json!(sr),
                ("key", _) | ("snapshot", _) => json!(vk),
                ("uri", _) => json!(uri),
                ("uuid", _) => json!(new_uuid()),
                (_, ParamType::String) => json!("x"),
                (_, ParamType::Int64 | ParamType::Size) => json!(2 * MIB),
                (_, ParamType::Bool) => json!(false),
                (_, ParamType::Configuration) => json!({"pool": pool}),
            };
            o.insert(spec.name.to_string(), v);
        }
        Value::Object(o)
    };
    for &m in Method::ALL {
        let name = m.name();
        if m.served_by() == ServedBy::Both {
            continue; // Plugin.query/diagnostics: only dbg, checked below per plugin
        }
        for spec in m.params() {
            let mut p = valid(m);
            p.as_object_mut().unwrap().remove(spec.name);
            t.rejected(
                name,
                &format!("missing {}", spec.name),
                p,
                generic,
                &["UnmarshalException"],
            );
            for w in wrong_types(spec.ty) {
                let mut p = valid(m);
                p[spec.name] = w.clone();
                t.rejected(
                    name,
                    &format!("{}={w}", spec.name),
                    p,
                    generic,
                    &["TypeError"],
                );
            }
            let mut p = valid(m);
            p[spec.name] = Value::Null;
            t.rejected(
                name,
                &format!("{}=null", spec.name),
                p,
                generic,
                &["TypeError", "UnmarshalException"],
            );
        }
    }
    for (m, p) in [
        ("Plugin.query", json!({})),
        ("Plugin.diagnostics", json!({"dbg": 5})),
    ] {
        let p0: &[&str] = if p.get("dbg").is_some() {
            &["TypeError"]
        } else {
            &["UnmarshalException"]
        };
        t.rejected(m, &format!("{p}"), p, generic, p0);
    }

    t.check_refused();
    // The SR still lists exactly what it did, and goes cleanly.
    assert_eq!(h.ls(&sr).keys().cloned().collect::<Vec<_>>(), {
        let mut k = vec![vk.clone(), sk.clone()];
        k.sort();
        k
    });
    h.d.assert_no_violations();
    let (n, m) = (t.inputs.len(), t.methods.len());
    let (errors, trips) = (t.errors, t.round_trips);
    assert_eq!(errors + trips, n);
    let list = t.inputs.join("\n");
    std::fs::write(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/vm-results/hostile-inputs.txt"
        ),
        format!("{list}\n"),
    )
    .ok();
    record_result(
        "faults",
        &format!("hostile: {n} inputs over {m} methods: {errors} documented errors, {trips} exact round trips, pool compared after every {CHECK_EVERY} refused calls and every accepted one, unchanged"),
    );
    h.destroy(&sr, &vk);
    h.destroy(&sr, &sk);
    assert_eq!(
        h.vol("SR.destroy", json!({"dbg": "t", "sr": sr})),
        Value::Null
    );
}
