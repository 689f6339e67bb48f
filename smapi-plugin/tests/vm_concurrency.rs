//! Concurrency through the real binary (issue 7, part 2; test VM only).
//!
//! Eight workers, each its own [`FakeDaemon`] on one installed plugin root, call the plugin
//! at once on one SR for `XZVOL_CONCURRENCY_SECS` seconds (default 60): a random mix of
//! Volume.create, snapshot, clone, destroy, revert, stat, SR.ls and block writes through
//! Datapath.attach (xapi runs calls concurrently since v24.40.0, contract §16). Each worker
//! owns the VDIs it made and knows what it was told about them, so every answer can be checked
//! while the others run:
//!
//! * every SR.ls lists every VDI the worker owns, with the size and read-only flag it was told,
//!   and none that any worker had destroyed before the listing started;
//! * Volume.stat of an owned VDI answers as told;
//! * no call takes longer than [`BOUND`] (the daemon has no timeout: a lock that is never
//!   released, or a wait on a device that never comes, would hang xapi for good).
//!
//! Afterwards: SR.ls is exactly the union of what the workers own, every pattern block reads
//! back (O_DIRECT, through the device its URI names), `xapi-zvol check` finds nothing, and destroying
//! everything (in key order: sources and snapshots mixed) and SR.destroy leave the pool empty.
//! The figures go to `target/vm-results/concurrency-zfs<version>.txt`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_daemon::{FakeDaemon, Plugin};
use support::vm::*;

const WORKERS: usize = 8;
const VOL_SIZE: u64 = 8 * MIB;
/// Block offsets the workers write (seed per write; 0 = never written).
const OFFSETS: [u64; 2] = [0, 4 * MIB];
/// Longest a call may take. Calls queue on the SR lock behind at most seven others, each
/// well under a few seconds even under emulation.
const BOUND: Duration = Duration::from_secs(90);
/// Owned VDIs above which a worker destroys instead of creating.
const MAX_OWNED: usize = 10;

#[derive(Clone, Debug)]
struct Vdi {
    read_only: bool,
    /// Seed per entry of [`OFFSETS`].
    blocks: [u64; 2],
    /// For a snapshot: the volume it was taken of.
    origin: Option<String>,
}

/// xorshift64*: a deterministic stream per worker (the seed is printed on failure).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Shared {
    sr: String,
    root: PathBuf,
    /// Keys destroyed so far (answer received), by any worker.
    destroyed: Mutex<BTreeSet<String>>,
    problems: Mutex<Vec<String>>,
}

#[derive(Default)]
struct Stats {
    calls: BTreeMap<&'static str, (usize, Duration)>,
}

struct Worker<'a> {
    id: usize,
    d: FakeDaemon,
    sh: &'a Shared,
    rng: Rng,
    owned: BTreeMap<String, Vdi>,
    stats: Stats,
    seq: u64,
}

impl Worker<'_> {
    fn problem(&self, what: String) {
        self.sh
            .problems
            .lock()
            .unwrap()
            .push(format!("worker {}: {what}", self.id));
    }

    fn call(&mut self, plugin: Plugin, method: &'static str, params: Value) -> Option<Value> {
        let t = Instant::now();
        let r = self.d.call(plugin, method, params.clone());
        let dt = t.elapsed();
        let e = self.stats.calls.entry(method).or_default();
        e.0 += 1;
        e.1 = e.1.max(dt);
        if dt > BOUND {
            self.problem(format!("{method} took {dt:?} (bound {BOUND:?})"));
        }
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                let stderr = self
                    .d
                    .last()
                    .map(|r| String::from_utf8_lossy(&r.stderr).into_owned())
                    .unwrap_or_default();
                self.problem(format!("{method} {params} failed: {e}\nstderr: {stderr}"));
                None
            }
        }
    }

    fn vol(&mut self, method: &'static str, mut params: Value) -> Option<Value> {
        params["dbg"] = json!(format!("conc-{}", self.id));
        params["sr"] = json!(self.sh.sr);
        self.call(Plugin::Volume, method, params)
    }

    fn pick(&mut self, f: impl Fn(&Vdi) -> bool) -> Option<String> {
        let keys: Vec<&String> = self
            .owned
            .iter()
            .filter(|(_, v)| f(v))
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() {
            return None;
        }
        Some(keys[self.rng.below(keys.len())].clone())
    }

    fn create(&mut self) {
        let name = format!("w{}-{}", self.id, self.seq);
        let v = self.vol(
            "Volume.create",
            json!({"name": name, "description": "", "size": VOL_SIZE, "sharable": false}),
        );
        if let Some(v) = v {
            let key = v["key"].as_str().unwrap().to_string();
            self.owned.insert(
                key,
                Vdi {
                    read_only: false,
                    blocks: [0, 0],
                    origin: None,
                },
            );
        }
    }

    fn snapshot_or_clone(&mut self, method: &'static str) {
        let Some(src) = self.pick(|v| method == "Volume.clone" || !v.read_only) else {
            return;
        };
        if let Some(v) = self.vol(method, json!({"key": src})) {
            let key = v["key"].as_str().unwrap().to_string();
            let mut new = self.owned[&src].clone();
            new.read_only = method == "Volume.snapshot";
            new.origin = (method == "Volume.snapshot").then(|| src.clone());
            if v["read_write"] != json!(!new.read_only) || v["virtual_size"] != json!(VOL_SIZE) {
                self.problem(format!("{method} of {src} answered {v}"));
            }
            self.owned.insert(key, new);
        }
    }

    fn destroy(&mut self) {
        let Some(k) = self.pick(|_| true) else { return };
        if self.vol("Volume.destroy", json!({"key": k})).is_some() {
            self.owned.remove(&k);
            self.sh.destroyed.lock().unwrap().insert(k);
        }
    }

    fn revert(&mut self) {
        let writable: BTreeSet<String> = self
            .owned
            .iter()
            .filter(|(_, v)| !v.read_only)
            .map(|(k, _)| k.clone())
            .collect();
        let Some(s) = self.pick(|v| v.origin.as_ref().is_some_and(|o| writable.contains(o))) else {
            return;
        };
        let target = self.owned[&s].origin.clone().unwrap();
        if self
            .vol("Volume.revert", json!({"snapshot": s, "key": target}))
            .is_some()
        {
            let b = self.owned[&s].blocks;
            self.owned.get_mut(&target).unwrap().blocks = b;
        }
    }

    fn stat(&mut self) {
        let Some(k) = self.pick(|_| true) else { return };
        if let Some(v) = self.vol("Volume.stat", json!({"key": k})) {
            let told = &self.owned[&k];
            if v["key"] != json!(k)
                || v["read_write"] != json!(!told.read_only)
                || v["virtual_size"] != json!(VOL_SIZE)
            {
                self.problem(format!("Volume.stat {k}: {v}, told {told:?}"));
            }
        }
    }

    fn ls(&mut self) {
        let gone_before = self.sh.destroyed.lock().unwrap().clone();
        let Some(v) = self.vol("SR.ls", json!({})) else {
            return;
        };
        let listed: BTreeMap<String, Value> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["key"].as_str().unwrap().to_string(), x.clone()))
            .collect();
        for (k, told) in &self.owned {
            match listed.get(k) {
                None => self.problem(format!("SR.ls lacks {k} (owned, {told:?})")),
                Some(x)
                    if x["read_write"] != json!(!told.read_only)
                        || x["virtual_size"] != json!(VOL_SIZE) =>
                {
                    self.problem(format!("SR.ls shows {k} as {x}, told {told:?}"))
                }
                _ => {}
            }
        }
        for k in listed.keys().filter(|k| gone_before.contains(*k)) {
            self.problem(format!(
                "SR.ls lists {k}, destroyed before the listing began"
            ));
        }
    }

    /// Attach a writable owned volume, write one block with a fresh seed, detach.
    fn write(&mut self) {
        let Some(k) = self.pick(|v| !v.read_only) else {
            return;
        };
        let Some(st) = self.vol("Volume.stat", json!({"key": k})) else {
            return;
        };
        let uri = st["uri"][0].as_str().unwrap().to_string();
        let domain = format!("{}", 100 + self.id);
        let p = json!({"dbg": "conc", "uri": uri, "domain": domain});
        let Some(_) = self.call(
            Plugin::Datapath,
            "Datapath.open",
            json!({"dbg": "conc", "uri": uri, "persistent": true}),
        ) else {
            return;
        };
        if let Some(b) = self.call(Plugin::Datapath, "Datapath.attach", p.clone()) {
            let dev = b["implementations"][1][1]["path"]
                .as_str()
                .unwrap()
                .to_string();
            if self
                .call(Plugin::Datapath, "Datapath.activate", p.clone())
                .is_some()
            {
                let i = self.rng.below(OFFSETS.len());
                let seed = 1000 * (self.id as u64 + 1) + self.seq;
                write_block(&dev, OFFSETS[i], seed);
                self.owned.get_mut(&k).unwrap().blocks[i] = seed;
                self.call(Plugin::Datapath, "Datapath.deactivate", p.clone());
            }
            self.call(Plugin::Datapath, "Datapath.detach", p);
        }
        self.call(
            Plugin::Datapath,
            "Datapath.close",
            json!({"dbg": "conc", "uri": uri}),
        );
    }

    fn step(&mut self) {
        self.seq += 1;
        if self.owned.len() < 2 {
            return self.create();
        }
        if self.owned.len() > MAX_OWNED {
            return self.destroy();
        }
        match self.rng.below(100) {
            0..=9 => self.create(),
            10..=24 => self.snapshot_or_clone("Volume.snapshot"),
            25..=34 => self.snapshot_or_clone("Volume.clone"),
            35..=49 => self.destroy(),
            50..=59 => self.revert(),
            60..=74 => self.stat(),
            75..=84 => self.ls(),
            _ => self.write(),
        }
    }
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn eight_processes_mixed_calls_on_one_sr() {
    let secs: u64 = std::env::var("XZVOL_CONCURRENCY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut scratch = Scratch::new("conc");
    let pool = scratch.pool(2048);
    let h = Host::new();
    let sr = h.new_sr(json!({"pool": pool}));
    let root =
        h.d.dir(Plugin::Volume)
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
    let sh = Shared {
        sr: sr.clone(),
        root,
        destroyed: Mutex::new(BTreeSet::new()),
        problems: Mutex::new(vec![]),
    };
    let base = std::env::var("XZVOL_CONCURRENCY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_u64);
    eprintln!("concurrency: {WORKERS} workers for {secs} s, seed {base}");

    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let results: Vec<(BTreeMap<String, Vdi>, Stats, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|id| {
                let sh = &sh;
                s.spawn(move || {
                    let d = FakeDaemon::new(&sh.root).timeout(BOUND + Duration::from_secs(30));
                    let mut w = Worker {
                        id,
                        d,
                        sh,
                        rng: Rng(base
                            .wrapping_add((id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                            | 1),
                        owned: BTreeMap::new(),
                        stats: Stats::default(),
                        seq: 0,
                    };
                    while Instant::now() < deadline {
                        w.step();
                    }
                    (w.owned, w.stats, w.d.violations())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    let elapsed = start.elapsed();

    let mut problems = sh.problems.into_inner().unwrap();
    let mut all: BTreeMap<String, Vdi> = BTreeMap::new();
    let mut calls: BTreeMap<&str, (usize, Duration)> = BTreeMap::new();
    for (owned, stats, violations) in results {
        all.extend(owned);
        problems.extend(violations.into_iter().map(|v| format!("contract: {v}")));
        for (m, (n, max)) in stats.calls {
            let e = calls.entry(m).or_default();
            e.0 += n;
            e.1 = e.1.max(max);
        }
    }
    let total: usize = calls.values().map(|c| c.0).sum();
    let slowest = calls
        .iter()
        .max_by_key(|(_, c)| c.1)
        .map(|(m, c)| format!("{m} {:.1} s", c.1.as_secs_f64()))
        .unwrap_or_default();

    // Afterwards: the SR holds exactly what the callers were told, with their data.
    let listed = h.ls(&sr);
    let lost: Vec<&String> = all.keys().filter(|k| !listed.contains_key(*k)).collect();
    let extra: Vec<&String> = listed.keys().filter(|k| !all.contains_key(*k)).collect();
    problems.extend(lost.iter().map(|k| format!("lost: {k}")));
    problems.extend(extra.iter().map(|k| format!("not told, but listed: {k}")));
    let mut corrupted = 0;
    let mut unlinked = 0;
    // Contents, read through the device of each VDI's zvol, found as Datapath.attach finds it
    // (attaching each of up to 80 VDIs through ten plugin calls would take minutes). The wait
    // for udev is only there so that the count of links it has not made means something.
    udev_settle();
    for (k, v) in all.iter().filter(|(k, _)| listed.contains_key(*k)) {
        let uri = listed[k]["uri"][0].as_str().unwrap();
        let link = uri.strip_prefix("zvol://").unwrap_or(uri);
        let dataset = link.strip_prefix("/dev/zvol/").unwrap_or(link);
        let (dev, linked) = zvol_device(dataset);
        unlinked += usize::from(!linked);
        for (i, &off) in OFFSETS.iter().enumerate() {
            if read_block(&dev, off) != pattern(v.blocks[i]) {
                corrupted += 1;
                problems.push(format!(
                    "corrupted: {k} at {off} is not block {}",
                    v.blocks[i]
                ));
            }
        }
    }
    let check = support::admin(&["check", "--sr", &sr]);
    let text = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    if !check.status.success() || !text.contains("OK: no problems found") {
        problems.push(format!("xapi-zvol check: {text}"));
    }
    for k in all.keys() {
        h.destroy(&sr, k);
    }
    assert_eq!(
        h.ls(&sr).len(),
        0,
        "SR not empty after destroying every VDI"
    );
    h.vol("SR.destroy", json!({"dbg": "t", "sr": sr}));
    let left = zfs_names(&pool);
    let leaked = usize::from(left != format!("{pool}\n"));
    if leaked > 0 {
        problems.push(format!("leaked: {left}"));
    }
    h.d.assert_no_violations();

    let line = format!(
        "concurrency: {WORKERS} processes x {:.0} s: {total} calls ({}), {} VDIs at the end, slowest call {slowest}; \
         {} lost, {} extra, {corrupted} corrupted, {leaked} leaked, {} problems \
         ({unlinked} /dev/zvol links missing or stale: udev's, read by no SMAPI call)",
        elapsed.as_secs_f64(),
        calls.iter().map(|(m, c)| format!("{m} {}", c.0)).collect::<Vec<_>>().join(", "),
        all.len(),
        lost.len(),
        extra.len(),
        problems.len(),
    );
    eprintln!("{line}");
    record_result("concurrency", &line);
    assert!(
        problems.is_empty(),
        "{} problems (seed {base}):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    assert!(
        total > WORKERS * 10,
        "too few calls to mean anything: {total}"
    );
}
