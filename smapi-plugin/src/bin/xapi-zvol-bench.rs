//! `xapi-zvol-bench`: snapshot and clone latency of xapi-zvol, measured side by side with
//! what its peers do, in one run (run by `scripts/bench` inside the test VM, as root).
//!
//! Sections (each case runs `--runs` times; median, min and max are reported):
//! 1. `single`: snapshot, clone, promote, destroy through zfs-volume (in-process ioctls)
//!    vs the same by `zfs` CLI processes;
//! 2. `vdi`: Volume.snapshot / clone / destroy / revert through the installed plugin binary
//!    (process start + JSON + work) vs the CLI sequence a Python peer runs (a python3
//!    start plus `zfs snapshot`/`clone`/`promote`/`destroy` processes), and vs one bare
//!    lzc_snapshot (the floor: one txg sync); and, to show where Volume.snapshot's time
//!    goes, its parts measured alone: the bare ZFS work of clone-on-snapshot (2.4: one
//!    program with zfs.sync.snapshot + zfs.sync.clone, one txg; 2.1: lzc_snapshot then
//!    lzc_clone, two), a plugin process that does no ZFS work (Plugin.Query), and the
//!    kernel's txg sync time during Volume.snapshot and during the bare lzc_snapshot;
//! 3. `batch`: 1, 4, 16, 64 zvols snapshotted in one lzc_snapshot vs as many single calls;
//! 4. `scale`: SR.ls and Volume.stat with 10, 100, 1000 volumes (plus as many snapshot
//!    VDIs) vs `zfs list -Hp -t all -o ...`;
//! 5. `query`: Plugin.Query start-up time (needs no ZFS: run on the host), next to the bare
//!    start of the same binary (`xapi-zvol version`) and of `python3 -c pass`.
//!
//! The plugin binary is copied to local disk first: run from the VM's 9p share of the
//! repository, every page of it would be fetched through 9p at each process start
//! (measured: 90 ms instead of 17 ms per start), which no installed plugin pays.
//!
//! Output: `results.csv` (section,case,param,runs,median_us,min_us,max_us) and
//! `results.md` (tables with the ratios) in `--out`. Absolute times in the emulated VM
//! are slow; the ratios, taken in the same run, are what to read.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zfs_volume::lzc::{Limits, NvList, Program, Props, VolumeSpec};
use zfs_volume::sr::{layout, NewVdi, PoolSource, Provisioning, Sr, SrConfig};
use zfs_volume::Zfs;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Clone)]
struct Args {
    plugin: PathBuf,
    out: PathBuf,
    runs: usize,
    scales: Vec<usize>,
    batches: Vec<usize>,
    sections: Vec<String>,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        plugin: PathBuf::from("target/release/xapi-zvol"),
        out: PathBuf::from("target/bench"),
        runs: 15,
        scales: vec![10, 100, 1000],
        batches: vec![1, 4, 16, 64],
        sections: ["single", "vdi", "batch", "scale", "query"]
            .map(String::from)
            .to_vec(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{x} needs a value"));
        match x.as_str() {
            "--plugin" => a.plugin = PathBuf::from(val()?),
            "--out" => a.out = PathBuf::from(val()?),
            "--runs" => a.runs = val()?.parse()?,
            "--scales" => {
                a.scales = val()?
                    .split(',')
                    .map(|s| s.parse())
                    .collect::<Result<_, _>>()?
            }
            "--batches" => {
                a.batches = val()?
                    .split(',')
                    .map(|s| s.parse())
                    .collect::<Result<_, _>>()?
            }
            "--sections" => a.sections = val()?.split(',').map(String::from).collect(),
            "-h" | "--help" => {
                println!("xapi-zvol-bench [--plugin PATH] [--out DIR] [--runs N] [--scales 10,100,1000] [--batches 1,4,16,64] [--sections single,vdi,batch,scale,query]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    a.plugin =
        std::fs::canonicalize(&a.plugin).map_err(|e| format!("{}: {e}", a.plugin.display()))?;
    Ok(a)
}

/// Median, min, max.
#[derive(Clone, Copy, Debug)]
struct Stat {
    med: Duration,
    min: Duration,
    max: Duration,
    n: usize,
}

fn stat(mut v: Vec<Duration>) -> Stat {
    v.sort();
    Stat {
        med: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
        n: v.len(),
    }
}

#[derive(Default)]
struct Report {
    rows: Vec<(String, String, String, Stat)>,
    md: String,
}

impl Report {
    fn add(&mut self, section: &str, case: &str, param: &str, s: Stat) {
        eprintln!(
            "  {section:<7} {case:<44} {param:>6}  median {:>9.2} ms  (min {:.2}, max {:.2}, n={})",
            ms(s.med),
            ms(s.min),
            ms(s.max),
            s.n
        );
        self.rows
            .push((section.into(), case.into(), param.into(), s));
    }
    fn get(&self, section: &str, case: &str, param: &str) -> Stat {
        self.rows
            .iter()
            .find(|r| r.0 == section && r.1 == case && r.2 == param)
            .map(|r| r.3)
            .unwrap()
    }
    fn line(&mut self, s: String) {
        eprintln!("{s}");
        self.md.push_str(&s);
        self.md.push('\n');
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn run(cmd: &str, args: &[&str]) -> Res<String> {
    let o = Command::new(cmd).args(args).output()?;
    if !o.status.success() {
        return Err(format!("{cmd} {args:?}: {}", String::from_utf8_lossy(&o.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let t = Instant::now();
    let r = f();
    (t.elapsed(), r)
}

/// One plugin call as xapi-storage-script makes it: the entry, `--json`, params on stdin.
fn call(entry: &Path, params: &serde_json::Value) -> Res<serde_json::Value> {
    let mut child = Command::new(entry)
        .arg("--json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(params.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    if !out.status.success() {
        return Err(format!("{} failed: {v}", entry.display()).into());
    }
    Ok(v)
}

struct Bench {
    zfs: &'static Zfs,
    pool: String,
    args: Args,
    rep: Report,
    root: PathBuf,
}

impl Bench {
    fn ds(&self, rel: &str) -> String {
        format!("{}/{rel}", self.pool)
    }

    fn entry(&self, method: &str) -> PathBuf {
        self.root
            .join("volume/org.xen.xapi.storage.zvol")
            .join(method)
    }

    /// 1. In-process lzc vs zfs CLI, one operation at a time.
    fn single(&mut self) -> Res<()> {
        let n = self.args.runs;
        let base = self.ds("single");
        self.zfs
            .create_volume(&base, &VolumeSpec::new(64 << 20).volblocksize(16384))?;
        let (mut ls, mut cs, mut lc, mut cc, mut lp, mut cp, mut ld, mut cd) = (
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        );
        for i in 0..n {
            let s = format!("{base}@l{i}");
            ls.push(time(|| self.zfs.snapshot(&[&s], &[])).0);
            let s2 = format!("{base}@c{i}");
            cs.push(time(|| run("zfs", &["snapshot", &s2])).0);
            let c = self.ds(&format!("lc{i}"));
            lc.push(time(|| self.zfs.clone(&c, &s, &Props::new())).0);
            let c2 = self.ds(&format!("cc{i}"));
            cc.push(time(|| run("zfs", &["clone", &s2, &c2])).0);
            // promote the clone, then promote the original back (both timed)
            lp.push(time(|| self.zfs.promote(&c)).0);
            lp.push(time(|| self.zfs.promote(&base)).0);
            cp.push(time(|| run("zfs", &["promote", &c2])).0);
            cp.push(time(|| run("zfs", &["promote", &base])).0);
            ld.push(time(|| self.zfs.destroy(&c)).0);
            cd.push(time(|| run("zfs", &["destroy", &c2])).0);
        }
        for (case, l, c) in [
            ("snapshot", ls, cs),
            ("clone", lc, cc),
            ("promote", lp, cp),
            ("destroy", ld, cd),
        ] {
            self.rep
                .add("single", &format!("{case}: zfs-volume"), "", stat(l));
            self.rep
                .add("single", &format!("{case}: zfs CLI"), "", stat(c));
        }
        run("zfs", &["destroy", "-r", &base])?;
        Ok(())
    }

    /// 2. Whole VDI operations through the plugin vs the Python peer's process sequence.
    fn vdi(&mut self) -> Res<()> {
        let n = self.args.runs;
        let _ = std::fs::remove_dir_all(&self.root);
        run(
            self.args.plugin.to_str().unwrap(),
            &["install", "--root", self.root.to_str().unwrap()],
        )?;
        let uuid = "b0b0b0b0-0000-4000-8000-00000000be0c";
        let cfg = call(
            &self.entry("SR.create"),
            &serde_json::json!({"dbg":"bench","uuid":uuid,"configuration":{"pool":self.pool},"name":"bench","description":""}),
        )?;
        let sr = call(
            &self.entry("SR.attach"),
            &serde_json::json!({"dbg":"bench","configuration":cfg}),
        )?;
        let sr = sr
            .as_str()
            .ok_or("SR.attach returned no string")?
            .to_string();
        let v = call(
            &self.entry("Volume.create"),
            &serde_json::json!({"dbg":"bench","sr":sr,"name":"v","description":"","size":64<<20,"sharable":false}),
        )?;
        let key = v["key"].as_str().unwrap().to_string();
        let floor_ds = self.ds("floor");
        self.zfs
            .create_volume(&floor_ds, &VolumeSpec::new(64 << 20).volblocksize(16384))?;
        let peer = self.ds("peer");
        self.zfs
            .create_volume(&peer, &VolumeSpec::new(64 << 20).volblocksize(16384))?;
        let (mut snap, mut clone, mut destroy, mut revert) = (vec![], vec![], vec![], vec![]);
        let (mut psnap, mut pclone, mut pdestroy, mut prevert, mut floor) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut bare_sc, mut proc_only, mut snap_sync, mut floor_sync) =
            (vec![], vec![], vec![], vec![]);
        let sync_clone = self.zfs.capabilities()?.sync_clone;
        let query = self.entry("Plugin.Query");
        let mut first_snap = None;
        for i in 0..n {
            let before = txg_times(&self.pool);
            let (t, s) = time(|| {
                call(
                    &self.entry("Volume.snapshot"),
                    &serde_json::json!({"dbg":"b","sr":sr,"key":key}),
                )
            });
            snap.push(t);
            snap_sync.push(sync_since(&self.pool, &before));
            let s = s?;
            let skey = s["key"].as_str().unwrap().to_string();
            if first_snap.is_none() {
                first_snap = Some(skey.clone());
            }
            let (t, c) = time(|| {
                call(
                    &self.entry("Volume.clone"),
                    &serde_json::json!({"dbg":"b","sr":sr,"key":key}),
                )
            });
            clone.push(t);
            let ckey = c?["key"].as_str().unwrap().to_string();
            let (t, r) = time(|| {
                call(
                    &self.entry("Volume.destroy"),
                    &serde_json::json!({"dbg":"b","sr":sr,"key":ckey}),
                )
            });
            destroy.push(t);
            r?;
            // revert to the oldest snapshot: the general (non-latest) case
            let target = first_snap.clone().unwrap();
            let (t, r) = time(|| {
                call(
                    &self.entry("Volume.revert"),
                    &serde_json::json!({"dbg":"b","sr":sr,"snapshot":target,"key":key}),
                )
            });
            revert.push(t);
            r?;
            // the floor: one bare lzc_snapshot
            let fs = format!("{floor_ds}@f{i}");
            let before = txg_times(&self.pool);
            floor.push(time(|| self.zfs.snapshot(&[&fs], &[])).0);
            floor_sync.push(sync_since(&self.pool, &before));
            // Volume.snapshot's parts alone: the bare ZFS work, and a process doing none.
            let (bs, bc) = (format!("{floor_ds}@sc{i}"), self.ds(&format!("floor-c{i}")));
            let (t, r) = time(|| -> Res<()> {
                if sync_clone {
                    let mut a = NvList::new()?;
                    a.add_string("snap", &bs)?;
                    a.add_string("clone", &bc)?;
                    self.zfs.program_sync(
                        &self.pool,
                        &BARE_SNAPSHOT_CLONE,
                        &a,
                        Limits::default(),
                    )?;
                } else {
                    self.zfs.snapshot(&[&bs], &[])?;
                    self.zfs.clone(&bc, &bs, &Props::new())?;
                }
                Ok(())
            });
            r?;
            bare_sc.push(t);
            let (t, r) = time(|| call(&query, &serde_json::json!({"dbg":"b"})));
            r?;
            proc_only.push(t);
            // the peer: python3 start + CLI processes
            let py = || run("python3", &["-c", "pass"]);
            let ps = format!("{peer}@s{i}");
            let pc = self.ds(&format!("peer-s{i}"));
            psnap.push(
                time(|| -> Res<()> {
                    py()?;
                    run("zfs", &["snapshot", &ps])?;
                    run("zfs", &["clone", &ps, &pc])?;
                    Ok(())
                })
                .0,
            );
            let pcs = format!("{peer}@c{i}");
            let pcc = self.ds(&format!("peer-c{i}"));
            pclone.push(
                time(|| -> Res<()> {
                    py()?;
                    run("zfs", &["snapshot", &pcs])?;
                    run("zfs", &["clone", &pcs, &pcc])?;
                    Ok(())
                })
                .0,
            );
            pdestroy.push(
                time(|| -> Res<()> {
                    py()?;
                    run("zfs", &["destroy", &pcc])?;
                    Ok(())
                })
                .0,
            );
            // peer revert (new-style, as zfs-vol would have to): clone the snapshot, promote
            let prc = self.ds(&format!("peer-r{i}"));
            prevert.push(
                time(|| -> Res<()> {
                    py()?;
                    run("zfs", &["clone", &ps, &prc])?;
                    run("zfs", &["promote", &prc])?;
                    Ok(())
                })
                .0,
            );
            // undo the peer promote so the next iteration starts from the same shape
            run("zfs", &["promote", &peer])?;
            run("zfs", &["destroy", &prc])?;
        }
        let rows = [
            ("Volume.snapshot", snap, psnap),
            ("Volume.clone", clone, pclone),
            ("Volume.destroy", destroy, pdestroy),
            ("Volume.revert (older snapshot)", revert, prevert),
        ];
        for (case, ours, theirs) in rows {
            self.rep
                .add("vdi", &format!("{case}: xapi-zvol"), "", stat(ours));
            self.rep.add(
                "vdi",
                &format!("{case}: python3 + zfs CLI"),
                "",
                stat(theirs),
            );
        }
        self.rep
            .add("vdi", "bare lzc_snapshot (floor)", "", stat(floor));
        let work = if sync_clone {
            "one program: sync.snapshot + sync.clone"
        } else {
            "lzc_snapshot + lzc_clone"
        };
        self.rep.add(
            "vdi",
            &format!("part: bare snapshot+clone ({work})"),
            "",
            stat(bare_sc),
        );
        self.rep.add(
            "vdi",
            "part: plugin process, no ZFS work (Plugin.Query)",
            "",
            stat(proc_only),
        );
        self.rep.add(
            "vdi",
            "part: txg sync time in the kernel during Volume.snapshot",
            "",
            stat(snap_sync),
        );
        self.rep.add(
            "vdi",
            "part: txg sync time in the kernel during bare lzc_snapshot",
            "",
            stat(floor_sync),
        );
        // leave the pool clean for the next sections
        for v in call(
            &self.entry("SR.ls"),
            &serde_json::json!({"dbg":"b","sr":sr}),
        )?
        .as_array()
        .cloned()
        .unwrap_or_default()
        {
            call(
                &self.entry("Volume.destroy"),
                &serde_json::json!({"dbg":"b","sr":sr,"key":v["key"]}),
            )?;
        }
        call(
            &self.entry("SR.destroy"),
            &serde_json::json!({"dbg":"b","sr":sr}),
        )?;
        run("zfs", &["destroy", "-R", &floor_ds])?;
        run("zfs", &["destroy", "-R", &peer])?;
        Ok(())
    }

    /// 3. One lzc_snapshot of k zvols vs k single calls.
    fn batch(&mut self) -> Res<()> {
        let max = *self.args.batches.iter().max().unwrap_or(&1);
        let vols: Vec<String> = (0..max).map(|i| self.ds(&format!("b{i}"))).collect();
        parallel_create(self.zfs, &vols, &|_| Props::new())?;
        for &k in &self.args.batches.clone() {
            let (mut one, mut many, mut sync) = (vec![], vec![], vec![]);
            for r in 0..self.args.runs {
                let snaps: Vec<String> = vols[..k]
                    .iter()
                    .map(|v| format!("{v}@one{k}-{r}"))
                    .collect();
                let refs: Vec<&str> = snaps.iter().map(|s| s.as_str()).collect();
                let before = txg_times(&self.pool);
                let (t, res) = time(|| self.zfs.snapshot(&refs, &[]));
                res?;
                one.push(t);
                // The kernel's own share: sync time of the txgs that completed during the call.
                sync.push(sync_since(&self.pool, &before));
                let snaps: Vec<String> = vols[..k]
                    .iter()
                    .map(|v| format!("{v}@many{k}-{r}"))
                    .collect();
                let (t, res) = time(|| -> Res<()> {
                    for s in &snaps {
                        self.zfs.snapshot(&[s], &[])?;
                    }
                    Ok(())
                });
                res?;
                many.push(t);
            }
            self.rep.add(
                "batch",
                "one lzc_snapshot of k zvols",
                &k.to_string(),
                stat(one),
            );
            self.rep.add(
                "batch",
                "k single lzc_snapshot calls",
                &k.to_string(),
                stat(many),
            );
            self.rep.add(
                "batch",
                "txg sync time in the kernel during the one call",
                &k.to_string(),
                stat(sync),
            );
        }
        for v in &vols {
            run("zfs", &["destroy", "-r", v])?;
        }
        Ok(())
    }

    /// 4. SR.ls / Volume.stat as the SR grows, vs zfs list.
    fn scale(&mut self) -> Res<()> {
        let runs = self.args.runs;
        let uuid = "5ca1e000-0000-4000-8000-000000000001";
        let cfg = SrConfig {
            source: PoolSource::Existing(self.pool.clone()),
            provisioning: Provisioning::Thin,
            volblocksize: 16384,
            compression: None,
        };
        let sr = Sr::create(uuid, &cfg, "scale", "")?;
        let l = layout::Layout::new(sr.dataset());
        let _ = std::fs::remove_dir_all(&self.root);
        run(
            self.args.plugin.to_str().unwrap(),
            &["install", "--root", self.root.to_str().unwrap()],
        )?;
        // A 10-volume SR next to it: Volume.stat on both, alternately at every point, so
        // that the "at 1,000 / at 10" ratio compares calls made at the same moment (the
        // host is shared; minutes pass between the points).
        let small = Sr::create(
            "5ca1e000-0000-4000-8000-000000000002",
            &cfg,
            "scale-ref",
            "",
        )?;
        let small_keys: Vec<String> = (0..10)
            .map(|i| format!("5ca1e000-0000-4000-9000-{i:012}"))
            .collect();
        populate(self.zfs, &layout::Layout::new(small.dataset()), &small_keys)?;
        let mut have = 0usize;
        let mut probe_key = String::new();
        for &n in &self.args.scales.clone() {
            let keys: Vec<String> = (have..n)
                .map(|i| format!("5ca1e000-0000-4000-8000-{i:012}"))
                .collect();
            populate(self.zfs, &l, &keys)?;
            have = n;
            if probe_key.is_empty() {
                probe_key = keys[0].clone();
            }
            let (mut ls, mut st, mut zl, mut pls, mut st10) =
                (vec![], vec![], vec![], vec![], vec![]);
            let mut count = 0;
            for _ in 0..runs {
                let (t, r) = time(|| sr.ls());
                ls.push(t);
                count = r?.len();
                st.push(time(|| sr.volume_stat(&probe_key)).0);
                st10.push(time(|| small.volume_stat(&small_keys[0])).0);
                zl.push(
                    time(|| {
                        run(
                            "zfs",
                            &[
                                "list",
                                "-Hp",
                                "-t",
                                "all",
                                "-r",
                                "-o",
                                "name,volsize,used,referenced,origin",
                                sr.dataset(),
                            ],
                        )
                    })
                    .0,
                );
                let (t, r) = time(|| {
                    call(
                        &self.entry("SR.ls"),
                        &serde_json::json!({"dbg":"b","sr":sr.dataset()}),
                    )
                });
                let listed = r?.as_array().map(|a| a.len()).unwrap_or(0);
                if listed != 2 * n {
                    return Err(format!(
                        "SR.ls through the plugin listed {listed} VDIs, expected {}",
                        2 * n
                    )
                    .into());
                }
                pls.push(t);
            }
            if count != 2 * n {
                return Err(format!("SR.ls saw {count} VDIs, expected {}", 2 * n).into());
            }
            let p = n.to_string();
            self.rep.add("scale", "SR.ls (in-process)", &p, stat(ls));
            self.rep.add("scale", "SR.ls (plugin call)", &p, stat(pls));
            self.rep
                .add("scale", "Volume.stat (in-process)", &p, stat(st));
            self.rep.add("scale", "zfs list -Hp -t all", &p, stat(zl));
            self.rep.add(
                "scale",
                "Volume.stat on the 10-volume SR, alternately",
                &p,
                stat(st10),
            );
        }
        run("zfs", &["destroy", "-r", sr.dataset()])?;
        run("zfs", &["destroy", "-r", small.dataset()])?;
        Ok(())
    }
}

/// Write results-zfs<version>.csv and .md (with the ratios) into `--out`.
fn write_results(args: &Args, rep: &mut Report) -> Res<()> {
    std::fs::create_dir_all(&args.out)?;
    let mut csv = String::from("section,case,param,runs,median_us,min_us,max_us\n");
    for (s, c, p, st) in &rep.rows {
        csv.push_str(&format!(
            "{s},\"{c}\",{p},{},{},{},{}\n",
            st.n,
            st.med.as_micros(),
            st.min.as_micros(),
            st.max.as_micros()
        ));
    }
    let version =
        zfs_volume::lzc::module_version().unwrap_or_else(|_| "host (no zfs module)".into());
    let short = if version.starts_with("host") {
        "-host".to_string()
    } else {
        version.split('-').next().unwrap_or("x").to_string()
    };
    std::fs::write(args.out.join(format!("results-zfs{short}.csv")), csv)?;
    // Ratios.
    let r = |a: Stat, b: Stat| a.med.as_secs_f64() / b.med.as_secs_f64();
    let mut md = format!("### OpenZFS {version}\n\n| section | case | param | median ms | min | max |\n|---|---|---|---|---|---|\n");
    for (s, c, p, st) in &rep.rows {
        md.push_str(&format!(
            "| {s} | {c} | {p} | {:.2} | {:.2} | {:.2} |\n",
            ms(st.med),
            ms(st.min),
            ms(st.max)
        ));
    }
    md.push_str("\nRatios (medians of this run):\n\n");
    let mut ratios: BTreeMap<String, f64> = BTreeMap::new();
    if rep.rows.iter().any(|x| x.0 == "single") {
        for case in ["snapshot", "clone", "promote", "destroy"] {
            let x = r(
                rep.get("single", &format!("{case}: zfs CLI"), ""),
                rep.get("single", &format!("{case}: zfs-volume"), ""),
            );
            ratios.insert(format!("single {case}: zfs CLI / zfs-volume"), x);
        }
    }
    if rep.rows.iter().any(|x| x.0 == "vdi") {
        let floor = rep.get("vdi", "bare lzc_snapshot (floor)", "");
        let snap = rep.get("vdi", "Volume.snapshot: xapi-zvol", "");
        ratios.insert(
            "Volume.snapshot / bare lzc_snapshot (target <= 1.3 on 2.4, <= 3.3 on 2.1)".into(),
            r(snap, floor),
        );
        if let Some(bare) = rep
            .rows
            .iter()
            .find(|x| x.0 == "vdi" && x.1.starts_with("part: bare snapshot+clone"))
            .map(|x| x.3)
        {
            let proc_only = rep.get(
                "vdi",
                "part: plugin process, no ZFS work (Plugin.Query)",
                "",
            );
            let sum = Stat {
                med: bare.med + proc_only.med,
                ..bare
            };
            ratios.insert("floor of Volume.snapshot: (plugin process + bare snapshot+clone) / bare lzc_snapshot".into(), r(sum, floor));
            ratios.insert(
                "Volume.snapshot / (plugin process + bare snapshot+clone): our own overhead".into(),
                r(snap, sum),
            );
            ratios.insert(
                "bare snapshot+clone / bare lzc_snapshot".into(),
                r(bare, floor),
            );
            ratios.insert(
                "plugin process (no ZFS work) / bare lzc_snapshot".into(),
                r(proc_only, floor),
            );
            let (ss, fs) = (
                rep.get(
                    "vdi",
                    "part: txg sync time in the kernel during Volume.snapshot",
                    "",
                ),
                rep.get(
                    "vdi",
                    "part: txg sync time in the kernel during bare lzc_snapshot",
                    "",
                ),
            );
            ratios.insert(
                "kernel txg sync time: during Volume.snapshot / during bare lzc_snapshot".into(),
                r(ss, fs),
            );
        }
        for case in [
            "Volume.snapshot",
            "Volume.clone",
            "Volume.destroy",
            "Volume.revert (older snapshot)",
        ] {
            let x = r(
                rep.get("vdi", &format!("{case}: python3 + zfs CLI"), ""),
                rep.get("vdi", &format!("{case}: xapi-zvol"), ""),
            );
            ratios.insert(format!("{case}: python peer / xapi-zvol (target >= 3)"), x);
        }
    }
    if rep.rows.iter().any(|x| x.0 == "batch" && x.2 == "16") {
        let b16 = rep.get("batch", "one lzc_snapshot of k zvols", "16");
        let b1 = rep.get("batch", "one lzc_snapshot of k zvols", "1");
        ratios.insert(
            "16-zvol batch / one snapshot (target <= 1.5)".into(),
            r(b16, b1),
        );
        let s16 = rep.get(
            "batch",
            "txg sync time in the kernel during the one call",
            "16",
        );
        ratios.insert(
            "16-zvol batch: kernel txg sync time / call time".into(),
            r(s16, b16),
        );
        let m16 = rep.get("batch", "k single lzc_snapshot calls", "16");
        ratios.insert("16 single calls / one 16-zvol batch".into(), r(m16, b16));
    }
    let scales = args.scales.clone();
    if let (Some(lo), Some(hi)) = (scales.first(), scales.last()) {
        if rep.rows.iter().any(|x| x.0 == "scale") {
            let (lo, hi) = (lo.to_string(), hi.to_string());
            let ls = rep.get("scale", "SR.ls (in-process)", &hi);
            let zl = rep.get("scale", "zfs list -Hp -t all", &hi);
            ratios.insert(
                format!("zfs list / SR.ls at {hi} volumes (target >= 3)"),
                r(zl, ls),
            );
            let pls = rep.get("scale", "SR.ls (plugin call)", &hi);
            ratios.insert(
                format!("zfs list / SR.ls plugin call at {hi} volumes"),
                r(zl, pls),
            );
            let s_hi = rep.get("scale", "Volume.stat (in-process)", &hi);
            let s_lo = rep.get("scale", "Volume.stat (in-process)", &lo);
            ratios.insert(
                format!("Volume.stat at {hi} / at {lo} volumes (target <= 1.5)"),
                r(s_hi, s_lo),
            );
            let s_ref = rep.get("scale", "Volume.stat on the 10-volume SR, alternately", &hi);
            ratios.insert(
                format!("Volume.stat at {hi} volumes / on a 10-volume SR at the same moments (target <= 1.5)"),
                r(s_hi, s_ref),
            );
        }
    }
    if rep.rows.iter().any(|x| x.0 == "query") {
        let q = rep.get("query", "Plugin.Query (volume plugin)", "");
        let py = rep.get("query", "python3 -c pass", "");
        ratios.insert("python3 start / Plugin.Query".into(), r(py, q));
    }
    for (k, v) in &ratios {
        md.push_str(&format!("- {k}: **{v:.2}**\n"));
    }
    rep.line(md.clone());
    std::fs::write(args.out.join(format!("results-zfs{short}.md")), md)?;
    Ok(())
}

/// Sync time of the txgs committed since `before` (a `txg_times` reading).
fn sync_since(pool: &str, before: &[(u64, u64)]) -> Duration {
    let after = txg_times(pool);
    Duration::from_nanos(
        after
            .iter()
            .filter(|(txg, _)| !before.iter().any(|(b, _)| b == txg))
            .map(|(_, ns)| ns)
            .sum(),
    )
}

/// Clone-on-snapshot's bare ZFS work on 2.4+: one sync task, one txg.
const BARE_SNAPSHOT_CLONE: Program = Program::new(
    "bare_snapshot_clone",
    r#"args = ...
local e = zfs.sync.snapshot(args["snap"])
if e ~= 0 then error("snapshot: " .. e) end
e = zfs.sync.clone(args["snap"], args["clone"])
if e ~= 0 then error("clone: " .. e) end
return 0"#,
);

/// (txg, sync time in ns) of every committed txg the pool's `txgs` kstat still lists
/// (columns: txg birth state ndirty nread nwritten reads writes otime qtime wtime stime).
fn txg_times(pool: &str) -> Vec<(u64, u64)> {
    let text =
        std::fs::read_to_string(format!("/proc/spl/kstat/zfs/{pool}/txgs")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 12 && f[2] == "C")
                .then(|| Some((f[0].parse().ok()?, f[11].parse().ok()?)))
                .flatten()
        })
        .collect()
}

/// The snapshot VDI key paired with volume key `k` in the scale SR.
fn snap_key(k: &str) -> String {
    format!("5ca1e001{}", &k[8..])
}

/// Run `f` over `items` from 8 threads: concurrent ioctls share txgs, so populating 1,000
/// datasets takes ~1,000/8 syncs instead of 1,000. The first error wins.
fn parallel<T: Sync>(items: &[T], f: &(dyn Fn(&T) -> zfs_volume::Result<()> + Sync)) -> Res<()> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let err = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= items.len() {
                    break;
                }
                if let Err(e) = f(&items[i]) {
                    *err.lock().unwrap() = Some(e.to_string());
                }
            });
        }
    });
    match err.into_inner().unwrap() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Populate an SR with volumes `keys` + as many snapshot VDIs, with the SR's own layout
/// and the properties the plugin writes (NewVdi, the listing record included) plus the
/// keys xapi sets (vdi-type on a volume; five on a snapshot, section 7 of the contract),
/// created concurrently so that many share a txg.
fn populate(zfs: &'static Zfs, l: &layout::Layout, keys: &[String]) -> Res<()> {
    let vols: Vec<String> = keys
        .iter()
        .map(|k| l.vdi(k, layout::Kind::Volume))
        .collect();
    parallel_create(zfs, &vols, &|ds: &str| {
        let key = ds.rsplit('/').next().unwrap();
        NewVdi {
            key,
            name: "scale",
            description: "",
            sharable: false,
            thick: false,
            snapshot_of: None,
            volsize: SCALE_VOLSIZE,
            referenced: None,
            keys: &[("vdi-type", "user")],
            cbt: false,
        }
        .props()
        .expect("bench props")
    })?;
    let snaps: Vec<String> = keys
        .iter()
        .zip(&vols)
        .map(|(k, v)| format!("{v}@{}", snap_key(k)))
        .collect();
    for chunk in snaps.chunks(500) {
        let refs: Vec<&str> = chunk.iter().map(|s| s.as_str()).collect();
        zfs.snapshot(&refs, &[])?;
    }
    let clones: Vec<(String, String)> = keys
        .iter()
        .zip(&snaps)
        .map(|(k, s)| (l.vdi(&snap_key(k), layout::Kind::Snapshot), s.clone()))
        .collect();
    parallel_clone(zfs, &clones)
}

/// Size of the scale section's zvols.
const SCALE_VOLSIZE: u64 = 16 << 20;

/// Create 16 MiB zvols concurrently, with per-dataset properties.
fn parallel_create(
    zfs: &'static Zfs,
    vols: &[String],
    props: &(dyn Fn(&str) -> Props + Sync),
) -> Res<()> {
    parallel(vols, &|v: &String| {
        zfs.create_volume(
            v,
            &VolumeSpec::new(SCALE_VOLSIZE)
                .volblocksize(16384)
                .props(props(v)),
        )
    })
}

/// Clone (dataset, origin) pairs concurrently, as scale-SR snapshot VDIs with the
/// properties Volume.snapshot and xapi's five Volume.set calls leave.
fn parallel_clone(zfs: &'static Zfs, pairs: &[(String, String)]) -> Res<()> {
    parallel(pairs, &|(dst, origin): &(String, String)| {
        let key = dst.rsplit('/').next().unwrap_or_default();
        let source = origin
            .split('@')
            .next()
            .and_then(|d| d.rsplit('/').next())
            .unwrap_or_default();
        let referenced = zfs
            .get_properties(origin, &["referenced"])?
            .get("referenced")
            .and_then(|p| p.as_u64());
        let keys = [
            ("snapshot_time", "20261125T10:00:00Z"),
            ("is_a_snapshot", "true"),
            ("snapshot_of", source),
            ("content_id", "5ca1e000-0000-4000-8000-c0ffee000000"),
            ("vdi-type", "user"),
        ];
        let props = NewVdi {
            key,
            name: "scale",
            description: "",
            sharable: false,
            thick: false,
            snapshot_of: Some(source),
            volsize: SCALE_VOLSIZE,
            referenced,
            keys: &keys,
            cbt: false,
        }
        .props()?;
        zfs.clone(dst, origin, &props)
    })
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("xapi-zvol-bench: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Res<()> {
    let mut args = parse_args()?;
    // The plugin, copied to local disk and installed from there (see the module docs).
    let tag = format!("xzbench{}", std::process::id());
    let bin_dir = PathBuf::from(format!("/var/tmp/{tag}-bin"));
    std::fs::create_dir_all(&bin_dir)?;
    let local = bin_dir.join("xapi-zvol");
    std::fs::copy(&args.plugin, &local)?;
    args.plugin = local;
    let root = PathBuf::from(format!("/var/tmp/{tag}-plugins"));
    let sections = args.sections.clone();
    let want = |s: &str| sections.iter().any(|x| x == s);
    let mut rep = Report {
        rows: vec![],
        md: String::new(),
    };
    let r = (|| -> Res<()> {
        if want("query") {
            query(&args, &root, &mut rep)?;
        }
        if !sections.iter().any(|s| s != "query") {
            return Ok(());
        }
        let zfs = Zfs::get()?;
        let pool = tag.clone();
        let file = format!("/var/tmp/{pool}.vdev");
        std::fs::File::create(&file)?.set_len(8 << 30)?;
        run(
            "zpool",
            &["create", "-f", "-O", "mountpoint=none", &pool, &file],
        )?;
        eprintln!(
            "xapi-zvol-bench on zfs {} ({} runs per case)",
            zfs_volume::lzc::module_version()?,
            args.runs
        );
        let mut b = Bench {
            zfs,
            pool: pool.clone(),
            args: Args { ..args.clone() },
            rep: std::mem::take(&mut rep),
            root: root.clone(),
        };
        let r = (|| -> Res<()> {
            if want("single") {
                b.single()?;
            }
            if want("vdi") {
                b.vdi()?;
            }
            if want("batch") {
                b.batch()?;
            }
            if want("scale") {
                b.scale()?;
            }
            Ok(())
        })();
        rep = std::mem::take(&mut b.rep);
        let _ = run("zpool", &["destroy", "-f", &pool]);
        let _ = std::fs::remove_file(&file);
        r
    })();
    let w = write_results(&args, &mut rep);
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&bin_dir);
    r?;
    w
}

/// Section 5, process start-up: Plugin.Query of both plugins through installed entries, the bare
/// start of the same binary, and a python3 start (what every call of a Python peer pays).
fn query(args: &Args, root: &Path, rep: &mut Report) -> Res<()> {
    let _ = std::fs::remove_dir_all(root);
    run(
        args.plugin.to_str().unwrap(),
        &["install", "--root", root.to_str().unwrap()],
    )?;
    let vol = root.join("volume/org.xen.xapi.storage.zvol/Plugin.Query");
    let dp = root.join("datapath/zvol/Plugin.Query");
    let (mut v, mut d, mut bare, mut py) = (vec![], vec![], vec![], vec![]);
    let q = serde_json::json!({"dbg": "bench"});
    for _ in 0..args.runs.max(20) {
        let (t, r) = time(|| call(&vol, &q));
        r?;
        v.push(t);
        let (t, r) = time(|| call(&dp, &q));
        r?;
        d.push(t);
        bare.push(time(|| run(args.plugin.to_str().unwrap(), &["version"])).0);
        py.push(time(|| run("python3", &["-c", "pass"])).0);
    }
    rep.add("query", "Plugin.Query (volume plugin)", "", stat(v));
    rep.add("query", "Plugin.Query (datapath plugin)", "", stat(d));
    rep.add(
        "query",
        "xapi-zvol version (bare process start)",
        "",
        stat(bare),
    );
    rep.add("query", "python3 -c pass", "", stat(py));
    Ok(())
}
