//! Model-based test of the SR/Volume semantics on real ZFS (in the test VM).
//!
//! A seeded generator drives random sequences of create / write / snapshot / clone /
//! destroy (any order, also of missing keys) / revert (new style) / old-style revert
//! (destroy + clone of a snapshot) / resize / set / enable_cbt / disable_cbt / data_destroy /
//! list_changed_blocks through the real `Sr` API, against a pure-Rust reference model of
//! invariants I1–I7 and of CBT (`cbt_enabled` and the VDI kind in the model; every bitmap
//! list_changed_blocks answers must set the bit of every tracked block whose content differs
//! between the two VDIs, and of every block beyond the earlier one's size: the oracle; a refusal
//! is a clean error). After every destroy and every 5 operations the SR listing must equal the
//! model (I1, I7), read-only flags must match (I5), and the touched VDI's device must read
//! exactly the model's blocks (I2); every 50 operations all VDIs are read. At the end
//! everything is destroyed and nothing may be left (I4).
//!
//! Defaults: 20 seeds × 200 operations, 4 SRs in parallel; `XZVOL_MODEL_SEEDS`,
//! `XZVOL_MODEL_OPS`, `XZVOL_MODEL_FIRST_SEED` override. A failure prints the seed and
//! the operation log to replay it.

mod support;

use std::collections::BTreeMap;
use support::*;
use zfs_volume::sr::{Kind, PoolSource, Provisioning, Sr, SrConfig};

const BLOCKS: u64 = 4; // 4 KiB blocks tracked per VDI, at offsets 0, 1 MiB, 2 MiB, 3 MiB
const STRIDE: u64 = 1 << 20;

#[derive(Clone, Debug)]
struct MVdi {
    kind: Kind,
    size: u64,
    blocks: [Option<u64>; BLOCKS as usize],
    name: String,
    keys: BTreeMap<String, String>,
    cbt: bool,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, v: &'a [String]) -> Option<&'a String> {
        if v.is_empty() {
            None
        } else {
            Some(&v[self.below(v.len() as u64) as usize])
        }
    }
}

/// SR.ls and Volume.stat read each VDI's listing record (one property), which caches the
/// properties themselves: every VDI must read the same all three ways, a snapshot VDI's space
/// too (its `referenced` is recorded once; it must never change), and Volume.stat's origin
/// and content snapshot as the properties say. A volume's `used` is read live by each, at
/// different moments, so it is not compared.
fn check_listing(sr: &Sr, ctx: &str) {
    for l in sr.ls().unwrap() {
        let truth = sr
            .volume_stat_from_properties(&l.key)
            .unwrap_or_else(|e| panic!("{ctx}: properties of {}: {e}", l.key));
        let st = sr
            .volume_stat(&l.key)
            .unwrap_or_else(|e| panic!("{ctx}: stat {}: {e}", l.key));
        let used = if l.kind == Kind::Volume {
            truth.physical_utilisation
        } else {
            l.physical_utilisation
        };
        let listed = zfs_volume::sr::VdiInfo {
            origin: None,
            content: None,
            physical_utilisation: used,
            ..l.clone()
        };
        let stat = zfs_volume::sr::VdiInfo {
            physical_utilisation: used,
            ..st
        };
        assert_eq!(
            stat, truth,
            "{ctx}: Volume.stat and the properties differ for {}",
            l.key
        );
        let truth = zfs_volume::sr::VdiInfo {
            origin: None,
            content: None,
            ..truth
        };
        assert_eq!(
            listed, truth,
            "{ctx}: SR.ls and the properties differ for {}",
            l.key
        );
    }
}

fn check_vdi(sr: &Sr, key: &str, m: &MVdi, ctx: &str) {
    let st = sr
        .volume_stat(key)
        .unwrap_or_else(|e| panic!("{ctx}: stat {key}: {e}"));
    assert_eq!(st.kind, m.kind, "{ctx}: kind of {key}");
    assert_eq!(
        st.read_write(),
        m.kind == Kind::Volume,
        "{ctx}: read_write of {key}"
    );
    assert_eq!(st.virtual_size, m.size, "{ctx}: size of {key}");
    assert_eq!(st.name, m.name, "{ctx}: name of {key}");
    assert_eq!(st.keys, m.keys, "{ctx}: keys of {key}");
    assert_eq!(st.cbt_enabled, m.cbt, "{ctx}: cbt_enabled of {key}");
    if m.kind == Kind::CbtMetadata {
        return; // no data to read
    }
    let offsets: Vec<u64> = (0..m.blocks.len() as u64).map(|i| i * STRIDE).collect();
    let got = read_blocks(&st.dataset, &offsets);
    for (i, (want, b)) in m.blocks.iter().zip(got).enumerate() {
        let ok = match want {
            Some(seed) => b == pattern(*seed),
            None => b.iter().all(|x| *x == 0),
        };
        assert!(
            ok,
            "{ctx}: {key} block {i}: expected {:?}, found {}",
            want,
            if b.iter().all(|x| *x == 0) {
                "zeros".into()
            } else {
                format!("{:?}", which_seed(&b))
            }
        );
    }
}

fn run_seed(seed: u64, ops: usize) -> usize {
    let pool = TestPool::new(&format!("m{seed}"), 1024);
    let uuid = format!("{:08x}-0000-4000-8000-{:012x}", seed as u32, seed);
    let cfg = SrConfig {
        source: PoolSource::Existing(pool.name.clone()),
        provisioning: if seed % 4 == 3 {
            Provisioning::Thick
        } else {
            Provisioning::Thin
        },
        volblocksize: 16384,
        compression: None,
    };
    Sr::create(&uuid, &cfg, "model", "").unwrap();
    // Attached as xapi attaches it: SR.attach holds the containers that SR.ls lists (reads
    // mount nothing), without which every listing step rebuilds them from disk.
    let sr = Sr::attach(&pool.name, &uuid, &[]).unwrap();
    let mut rng = Rng(seed);
    let mut model: BTreeMap<String, MVdi> = BTreeMap::new();
    let mut log: Vec<String> = vec![];
    let mut done = 0;
    for step in 0..ops {
        let vols: Vec<String> = model
            .iter()
            .filter(|(_, v)| v.kind == Kind::Volume)
            .map(|(k, _)| k.clone())
            .collect();
        let snaps: Vec<String> = model
            .iter()
            .filter(|(_, v)| v.kind == Kind::Snapshot)
            .map(|(k, _)| k.clone())
            .collect();
        let metadata: Vec<String> = model
            .iter()
            .filter(|(_, v)| v.kind == Kind::CbtMetadata)
            .map(|(k, _)| k.clone())
            .collect();
        let all: Vec<String> = model.keys().cloned().collect();
        let op = rng.below(100);
        let ctx =
            |log: &Vec<String>| format!("seed {seed} step {step}; log:\n  {}", log.join("\n  "));
        let touched: Option<String>;
        if all.is_empty() || (op < 12 && model.len() < 14) {
            let size = (4 + rng.below(5)) * STRIDE;
            let v = sr.volume_create("v", "", size, false).unwrap();
            log.push(format!("create {} {size}", v.key));
            model.insert(
                v.key.clone(),
                MVdi {
                    kind: Kind::Volume,
                    size,
                    blocks: [None; 4],
                    name: "v".into(),
                    keys: BTreeMap::new(),
                    cbt: false,
                },
            );
            touched = Some(v.key);
        } else if op < 35 && !vols.is_empty() {
            let k = rng.pick(&vols).unwrap().clone();
            let b = rng.below(BLOCKS);
            let s = rng.below(1000);
            let ds = sr.volume_stat(&k).unwrap().dataset;
            write_block(&ds, b * STRIDE, s);
            log.push(format!("write {k} block {b} seed {s}"));
            model.get_mut(&k).unwrap().blocks[b as usize] = Some(s);
            touched = Some(k);
        } else if op < 60
            && model.len() < 16
            && model[rng.pick(&all).unwrap()].kind == Kind::CbtMetadata
        {
            // Snapshot and clone refuse a CBT-metadata VDI, and change nothing.
            let k = rng.pick(&metadata).unwrap().clone();
            assert!(
                sr.volume_snapshot(&k).is_err(),
                "{}: snapshot of metadata",
                ctx(&log)
            );
            assert!(
                sr.volume_clone(&k).is_err(),
                "{}: clone of metadata",
                ctx(&log)
            );
            log.push(format!("snapshot and clone of metadata {k}: refused"));
            touched = Some(k);
        } else if op < 50 && model.len() < 16 {
            let data: Vec<String> = vols.iter().chain(&snaps).cloned().collect();
            let k = rng.pick(&data).unwrap().clone();
            let s = sr
                .volume_snapshot(&k)
                .unwrap_or_else(|e| panic!("{}: snapshot {k}: {e}", ctx(&log)));
            log.push(format!("snapshot {k} -> {}", s.key));
            let src = model[&k].clone();
            model.insert(
                s.key.clone(),
                MVdi {
                    kind: Kind::Snapshot,
                    keys: BTreeMap::new(),
                    ..src
                },
            );
            touched = Some(s.key);
        } else if op < 60 && model.len() < 16 {
            let data: Vec<String> = vols.iter().chain(&snaps).cloned().collect();
            let k = rng.pick(&data).unwrap().clone();
            let c = sr
                .volume_clone(&k)
                .unwrap_or_else(|e| panic!("{}: clone {k}: {e}", ctx(&log)));
            log.push(format!("clone {k} -> {}", c.key));
            let src = model[&k].clone();
            model.insert(
                c.key.clone(),
                MVdi {
                    kind: Kind::Volume,
                    keys: BTreeMap::new(),
                    cbt: false,
                    ..src
                },
            );
            touched = Some(c.key);
        } else if op < 75 {
            // destroy, sometimes of a key that is already gone (xapi does that)
            let k = if rng.below(10) == 0 {
                "0a0a0a0a-0000-4000-8000-000000000000".to_string()
            } else {
                rng.pick(&all).unwrap().clone()
            };
            sr.volume_destroy(&k)
                .unwrap_or_else(|e| panic!("{}: destroy {k}: {e}", ctx(&log)));
            log.push(format!("destroy {k}"));
            model.remove(&k);
            touched = None;
        } else if op < 83 && !snaps.is_empty() && !vols.is_empty() {
            let s = rng.pick(&snaps).unwrap().clone();
            let v = rng.pick(&vols).unwrap().clone();
            sr.volume_revert(&s, &v)
                .unwrap_or_else(|e| panic!("{}: revert {v} to {s}: {e}", ctx(&log)));
            log.push(format!("revert {v} to {s}"));
            let src = model[&s].clone();
            let m = model.get_mut(&v).unwrap();
            m.blocks = src.blocks;
            m.size = src.size;
            touched = Some(v);
        } else if op < 88 && !snaps.is_empty() && !vols.is_empty() {
            // xapi < 26.16: destroy the live VDI, then clone the snapshot
            let s = rng.pick(&snaps).unwrap().clone();
            let v = rng.pick(&vols).unwrap().clone();
            sr.volume_destroy(&v)
                .unwrap_or_else(|e| panic!("{}: destroy {v}: {e}", ctx(&log)));
            model.remove(&v);
            let c = sr
                .volume_clone(&s)
                .unwrap_or_else(|e| panic!("{}: clone {s}: {e}", ctx(&log)));
            log.push(format!("old-revert: destroy {v}, clone {s} -> {}", c.key));
            let src = model[&s].clone();
            model.insert(
                c.key.clone(),
                MVdi {
                    kind: Kind::Volume,
                    keys: BTreeMap::new(),
                    cbt: false,
                    ..src
                },
            );
            touched = Some(c.key);
        } else if op < 92 && !vols.is_empty() {
            let k = rng.pick(&vols).unwrap().clone();
            let new = model[&k].size + STRIDE * (1 + rng.below(3));
            sr.volume_resize(&k, new)
                .unwrap_or_else(|e| panic!("{}: resize {k}: {e}", ctx(&log)));
            log.push(format!("resize {k} {new}"));
            model.get_mut(&k).unwrap().size = new;
            touched = Some(k);
        } else if (94..96).contains(&op) {
            // enable_cbt / disable_cbt: the flag follows; snapshots copy it, clones do not.
            let k = rng.pick(&all).unwrap().clone();
            let on = !model[&k].cbt;
            let r = if on {
                sr.volume_enable_cbt(&k)
            } else {
                sr.volume_disable_cbt(&k)
            };
            r.unwrap_or_else(|e| panic!("{}: cbt {on} on {k}: {e}", ctx(&log)));
            log.push(format!("cbt {k} {on}"));
            model.get_mut(&k).unwrap().cbt = on;
            touched = Some(k);
        } else if (96..98).contains(&op) && !snaps.is_empty() {
            // data_destroy: a tracked snapshot VDI becomes CBT metadata; anything else is
            // refused and nothing changes.
            let k = if rng.below(4) == 0 {
                rng.pick(&all).unwrap().clone()
            } else {
                rng.pick(&snaps).unwrap().clone()
            };
            let m = &model[&k];
            let r = sr.volume_data_destroy(&k);
            log.push(format!(
                "data_destroy {k}: {}",
                if r.is_ok() { "ok" } else { "refused" }
            ));
            match (m.kind, m.cbt) {
                (Kind::Snapshot, true) => {
                    r.unwrap_or_else(|e| panic!("{}: data_destroy {k}: {e}", ctx(&log)));
                    model.get_mut(&k).unwrap().kind = Kind::CbtMetadata;
                }
                (Kind::CbtMetadata, _) => {
                    r.unwrap_or_else(|e| panic!("{}: data_destroy again {k}: {e}", ctx(&log)))
                }
                _ => assert!(r.is_err(), "{}: data_destroy of {k} accepted", ctx(&log)),
            }
            touched = Some(k);
        } else if op >= 98 && !(snaps.is_empty() && metadata.is_empty()) {
            // list_changed_blocks: a correct bitmap (the oracle, on the tracked blocks) or a
            // clean refusal, never a wrong bitmap.
            let from_pool: Vec<String> = snaps.iter().chain(&metadata).cloned().collect();
            let from = rng.pick(&from_pool).unwrap().clone();
            let to_pool: Vec<String> = snaps.iter().chain(&vols).cloned().collect();
            // With no data VDI left, the earlier one is compared with itself (refused: it
            // holds no data either, when it is metadata).
            let to = rng.pick(&to_pool).unwrap_or(&from).clone();
            let (f, t) = (&model[&from], &model[&to]);
            match sr.volume_list_changed_blocks(&from, &to, 0, None) {
                Ok(c) => {
                    let b = &c.bitmap;
                    assert_eq!(b.blocks(), t.size.div_ceil(65536), "{}", ctx(&log));
                    for i in 0..BLOCKS {
                        let off = i * STRIDE;
                        let differs = f.blocks[i as usize] != t.blocks[i as usize] || off >= f.size;
                        if off < t.size && differs {
                            assert!(
                                b.is_set(off / 65536),
                                "{}: list_changed_blocks {from} -> {to}: tracked block {i} differs, bit clear",
                                ctx(&log)
                            );
                        }
                    }
                    for blk in f.size / 65536..b.blocks() {
                        assert!(b.is_set(blk), "{}: grown block {blk} clear", ctx(&log));
                    }
                    log.push(format!(
                        "list_changed_blocks {from} -> {to}: {} set",
                        b.count()
                    ));
                }
                Err(e) => {
                    let clean = matches!(
                        e,
                        zfs_volume::Error::Cbt { .. } | zfs_volume::Error::Refused { .. }
                    );
                    assert!(
                        clean,
                        "{}: list_changed_blocks {from} -> {to}: {e}",
                        ctx(&log)
                    );
                    log.push(format!("list_changed_blocks {from} -> {to}: refused ({e})"));
                }
            }
            touched = None;
        } else {
            let k = rng.pick(&all).unwrap().clone();
            let key = ["vdi-type", "content_id", "_sm_config_X Y", "is_a_snapshot"]
                [rng.below(4) as usize];
            let val = format!("v{}", rng.below(100));
            sr.volume_set(&k, key, &val)
                .unwrap_or_else(|e| panic!("{}: set {k}: {e}", ctx(&log)));
            log.push(format!("set {k} {key}={val}"));
            model.get_mut(&k).unwrap().keys.insert(key.to_string(), val);
            touched = Some(k);
        }
        done += 1;
        // I1/I7: the listing is exactly the model (after every destroy, and every 5 steps:
        // each listing reads the whole SR, the dominant cost of this test in the VM).
        if touched.is_none() || step % 5 == 4 {
            let ls: BTreeMap<String, Kind> = sr
                .ls()
                .unwrap()
                .into_iter()
                .map(|v| (v.key, v.kind))
                .collect();
            let want: BTreeMap<String, Kind> =
                model.iter().map(|(k, v)| (k.clone(), v.kind)).collect();
            assert_eq!(ls, want, "{}", ctx(&log));
        }
        if let Some(k) = touched {
            check_vdi(&sr, &k, &model[&k], &ctx(&log));
        }
        if step % 50 == 49 {
            check_listing(&sr, &ctx(&log));
            for (k, m) in &model {
                check_vdi(&sr, k, m, &ctx(&log));
            }
        }
    }
    check_listing(&sr, &format!("seed {seed} final"));
    for (k, m) in &model {
        check_vdi(&sr, k, m, &format!("seed {seed} final"));
    }
    // Destroy in random order; nothing may be left (I4).
    let mut keys: Vec<String> = model.keys().cloned().collect();
    while !keys.is_empty() {
        let i = rng.below(keys.len() as u64) as usize;
        let k = keys.swap_remove(i);
        sr.volume_destroy(&k).unwrap();
    }
    let left = zfs_list_all(sr.dataset());
    assert_eq!(left.len(), 4, "seed {seed}: leftovers {left:#?}");
    sr.detach().unwrap();
    done
}

/// Append a result line to `target/vm-results/<what>-zfs<version>.txt` (the repository is
/// shared read-write into the VM), so scripts/test can print it whatever libtest captures.
fn record_result(what: &str, line: &str) {
    use std::io::Write;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/vm-results");
    let _ = std::fs::create_dir_all(&dir);
    let v = zfs_volume::lzc::module_version().unwrap_or_default();
    let v = v.split('-').next().unwrap_or("unknown").to_string();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{what}-zfs{v}.txt")))
    {
        let _ = writeln!(f, "{line}");
    }
}

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn random_operation_sequences_match_the_model() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let seeds = env("XZVOL_MODEL_SEEDS", 20);
    let ops = env("XZVOL_MODEL_OPS", 200) as usize;
    let first = env("XZVOL_MODEL_FIRST_SEED", 1);
    let threads = env("XZVOL_MODEL_THREADS", 4);
    let start = std::time::Instant::now();
    let next = std::sync::atomic::AtomicU64::new(first);
    let total = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if seed >= first + seeds {
                    break;
                }
                let n = run_seed(seed, ops);
                total.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
            });
        }
    });
    let total = total.into_inner();
    assert_eq!(
        total,
        seeds as usize * ops,
        "every seed must run all its operations"
    );
    let line = format!(
        "model: seeds {first}..{} x {ops} ops = {total} operations on zfs {}, zero leaks, {:.0} s",
        first + seeds - 1,
        zfs_volume::lzc::module_version().unwrap_or_default(),
        start.elapsed().as_secs_f64()
    );
    eprintln!("{line}");
    record_result("model", &line);
}
