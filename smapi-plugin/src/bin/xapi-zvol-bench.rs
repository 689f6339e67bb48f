//! `xapi-zvol-bench`: snapshot and clone latency of xapi-zvol, measured side by side with
//! what its peers do, in one run (run by `scripts/bench` inside the test VM, as root).
//!
//! Sections (each case runs `--runs` times; median, min and max are reported):
//! 1. `single`: snapshot, clone, promote, destroy through zfs-volume (in-process ioctls)
//!    vs the same by `zfs` CLI processes;
//! 2. `vdi`: Volume.snapshot / clone / destroy, Volume.revert to an older snapshot (the
//!    clone under the volume's name) and to the latest one (a rollback) through the installed plugin
//!    binary (process start + JSON + work) vs the CLI sequence a Python peer runs (a
//!    python3 start plus `zfs snapshot`/`clone`/`promote`/`destroy` processes, and `zfs
//!    rollback` for the latest snapshot), and vs one bare lzc_snapshot (the floor: one txg
//!    sync); the txgs of the pool each of those calls synced (committed between just before
//!    it and its return, from the pool's `txgs` kstat) and their sync time in the kernel
//!    (the part of each call, ours and the peer's, that no process can save); after every
//!    benchmarked revert, the
//!    volume's content is checked (a marker sector written through its device before the
//!    snapshot, read back with O_DIRECT through the datapath): a mismatch fails the bench;
//!    and, to show where Volume.snapshot's time goes, its parts measured alone: the bare ZFS
//!    work of clone-on-snapshot (2.4: one program with zfs.sync.snapshot + zfs.sync.clone,
//!    one txg; 2.1: lzc_snapshot then lzc_clone, two), a plugin process that does no ZFS
//!    work (Plugin.Query), and the kernel's txg sync time during Volume.snapshot and during
//!    the bare lzc_snapshot;
//! 3. `batch`: 1, 4, 16, 64 zvols snapshotted in one lzc_snapshot vs as many single calls;
//! 4. `scale`: SR.ls and Volume.stat with 10, 100, 1000 volumes (plus as many snapshot
//!    VDIs) vs `zfs list -Hp -t all -o ...`;
//! 5. `query`: Plugin.Query start-up time (needs no ZFS: run on the host), next to the bare
//!    start of the same binary (`xapi-zvol version`) and of `python3 -c pass`;
//! 6. `cbt`: Volume.list_changed_blocks through the installed plugin (a process per call),
//!    on a fully written 1 GiB zvol with 1, 10 and 100 % of its 64 KiB blocks rewritten
//!    between a snapshot A (data-destroyed: `from` is a bookmark) and a snapshot B, vs what
//!    a backup pays without CBT (a full O_DIRECT read of B) and vs the CLI route
//!    (`zfs send -i | zstream dump`), caches dropped before each (on the fully written disk,
//!    each run also times [`CBT_EXTRA_PAIRS`] more call/CLI pairs, alternating, so the ratio
//!    the target compares rests on more samples than the emulated machine's noise); the
//!    plugin's peak RSS at
//!    1 GiB and on a 16 GiB thin zvol; the bits never-written holes add on a thin 1 GiB zvol
//!    that is 10 % written (hole FREE records, docs/zfs-facts.md §1.10).
//!
//! The plugin binary is copied to local disk first: run from the VM's 9p share of the
//! repository, every page of it would be fetched through 9p at each process start
//! (measured: 90 ms instead of 17 ms per start), which no installed plugin pays.
//!
//! Output: `results.csv` (section,case,param,runs,median_us,min_us,max_us) and
//! `results.md` (tables with the ratios) in `--out`; the cbt section's counts (bits set,
//! stream size, peak RSS) also go to `cbt-figures-zfs<version>.csv`, the vdi section's txg
//! counts to `txgs-zfs<version>.csv` (case,runs,median,min,max) and a table of their own in
//! the md. Absolute times in the emulated VM are slow; the ratios, taken in the same run,
//! are what to read.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zfs_volume::lzc::{BlockBitmap, Limits, NvList, Program, Props, VolumeSpec};
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
        sections: ["single", "vdi", "batch", "scale", "cbt", "query"]
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
                println!("xapi-zvol-bench [--plugin PATH] [--out DIR] [--runs N] [--scales 10,100,1000] [--batches 1,4,16,64] [--sections single,vdi,batch,scale,cbt,query]");
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
    /// The cbt section's counts, one per A/B pair.
    cbt: Vec<CbtFigure>,
    /// How the cbt section measured (the stream dumper found, the pool, the ARC after a drop).
    notes: Vec<String>,
    /// The vdi section's txg counts: per case (a row's case), the txgs of the pool committed
    /// during each run's call (`txgs_since`).
    txgs: Vec<(String, Vec<u64>)>,
}

/// What one A/B pair of the cbt section counted: the same in every run, but the peak RSS.
struct CbtFigure {
    /// The disk and what was on it at A (the rows' case prefix).
    disk: String,
    /// % of the disk's 64 KiB blocks written between A and B (the rows' param).
    param: String,
    blocks: u64,
    /// 64 KiB blocks written before A.
    before: u64,
    /// 64 KiB blocks written between A and B.
    written: u64,
    /// Bits Volume.list_changed_blocks set.
    set: u64,
    /// Records and bytes of the send stream the plugin read (its log line).
    records: u64,
    bytes: u64,
    /// The plugin process's peak RSS in each run, KiB (its log line).
    rss_kib: Vec<u64>,
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
    fn add_txgs(&mut self, case: &str, counts: Vec<u64>) {
        let (med, min, max) = count_stat(&counts);
        eprintln!(
            "  txgs    {case:<44}         median {med:>3} txgs     (min {min}, max {max}, n={})",
            counts.len()
        );
        self.txgs.push((case.into(), counts));
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

/// Median, min, max of counts (zeros for none).
fn count_stat(v: &[u64]) -> (u64, u64, u64) {
    let mut v = v.to_vec();
    v.sort_unstable();
    match v.as_slice() {
        [] => (0, 0, 0),
        v => (v[v.len() / 2], v[0], v[v.len() - 1]),
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
            ls.push(time(|| self.zfs.snapshot([&s], &[])).0);
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

    /// Section 2: whole VDI operations through the plugin vs the Python peer's process
    /// sequence, with the txgs each call synced, and every benchmarked revert checked:
    /// afterwards the volume must hold its snapshot's content.
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
        let vol = Vdi {
            key: key.clone(),
            uri: v["uri"][0].as_str().ok_or("Volume.create: no uri")?.into(),
        };
        let floor_ds = self.ds("floor");
        self.zfs
            .create_volume(&floor_ds, &VolumeSpec::new(64 << 20).volblocksize(16384))?;
        let peer = self.ds("peer");
        self.zfs
            .create_volume(&peer, &VolumeSpec::new(64 << 20).volblocksize(16384))?;
        // Each timed case, ours and the peer's: call times, txgs synced, their sync time.
        let (mut snap, mut clone, mut destroy, mut revert, mut revert_latest) = (
            Samples::default(),
            Samples::default(),
            Samples::default(),
            Samples::default(),
            Samples::default(),
        );
        let (mut psnap, mut pclone, mut pdestroy, mut prevert, mut prollback) = (
            Samples::default(),
            Samples::default(),
            Samples::default(),
            Samples::default(),
            Samples::default(),
        );
        let (mut floor, mut bare_sc, mut proc_only, mut floor_sync) =
            (vec![], vec![], vec![], vec![]);
        let (mut floor_t, mut bare_sc_t) = (vec![], vec![]);
        let sync_clone = self.zfs.capabilities()?.sync_clone;
        let query = self.entry("Plugin.Query");
        // What every revert is checked against: a marker sector at offset 0 of the volume,
        // written through its device (untimed, the pool synced after it, see put_marker)
        // before each snapshot that a revert targets, and before each revert so that the
        // revert has something to undo. The order, and what each check expects:
        //
        // before the loop: write M0; Volume.snapshot -> first_snap (holds M0). It is taken
        //   here, not in the first iteration, so that it is never the volume's latest
        //   snapshot when the loop reverts to it (that would be the rollback case).
        // iteration i:
        //   1. Volume.snapshot (timed) -> a newer snapshot than first_snap (its content is
        //      whatever the volume holds: never a revert target);
        //   2. Volume.clone (timed), then Volume.destroy of the clone (timed);
        //   3. write B_i; check that first_snap is not the volume's latest snapshot;
        //   4. Volume.revert to first_snap (timed): the clone-and-swap. Check: the volume
        //      holds M0 (not B_i);
        //   5. write C_i; Volume.snapshot (untimed) -> latest (holds C_i): the volume's
        //      latest ZFS snapshot (after the swap its dataset is a new clone of first_snap's
        //      content, with no snapshot of its own: this is its only one);
        //   6. write D_i; check that latest is the volume's latest snapshot;
        //   7. Volume.revert to latest (timed): the rollback. Check: the volume holds C_i
        //      (not D_i, nor M0).
        // Every marker is distinct (its text names the iteration and the step), so a check
        // that finds another one says which content the volume really has.
        let m0 = "before the first snapshot (the target of every revert to an older snapshot)";
        let first_snap = self.marked_snapshot(&sr, &vol, m0)?;
        for i in 0..n {
            let (t, txgs, s) = counted(&self.pool, || {
                call(
                    &self.entry("Volume.snapshot"),
                    &serde_json::json!({"dbg":"b","sr":sr,"key":key}),
                )
            });
            snap.push(t, txgs);
            s?;
            let (t, txgs, c) = counted(&self.pool, || {
                call(
                    &self.entry("Volume.clone"),
                    &serde_json::json!({"dbg":"b","sr":sr,"key":key}),
                )
            });
            clone.push(t, txgs);
            let ckey = c?["key"].as_str().unwrap().to_string();
            let (t, txgs, r) = counted(&self.pool, || {
                call(
                    &self.entry("Volume.destroy"),
                    &serde_json::json!({"dbg":"b","sr":sr,"key":ckey}),
                )
            });
            destroy.push(t, txgs);
            r?;
            // revert to the oldest snapshot: the general (non-latest) case
            self.put_marker(
                &vol,
                &format!("iteration {i}: before the revert to first_snap"),
            )?;
            if self.is_latest(&sr, &first_snap, &key)? {
                return Err(format!("iteration {i}: first_snap {first_snap} is the latest snapshot of volume {key}: the revert to an older snapshot would be a rollback").into());
            }
            let (t, txgs) = self.timed_revert(
                &sr,
                &vol,
                &first_snap,
                m0,
                &format!("iteration {i}: Volume.revert to the older snapshot {first_snap}"),
            )?;
            revert.push(t, txgs);
            // revert to the latest snapshot: ZFS's own rollback
            let c_i = format!("iteration {i}: before the latest snapshot");
            let latest = self.marked_snapshot(&sr, &vol, &c_i)?;
            self.put_marker(
                &vol,
                &format!("iteration {i}: before the revert to the latest snapshot"),
            )?;
            if !self.is_latest(&sr, &latest, &key)? {
                return Err(format!("iteration {i}: snapshot {latest}, just taken, is not the latest snapshot of volume {key}: the revert to it would not be a rollback").into());
            }
            let (t, txgs) = self.timed_revert(
                &sr,
                &vol,
                &latest,
                &c_i,
                &format!("iteration {i}: Volume.revert to the latest snapshot {latest}"),
            )?;
            revert_latest.push(t, txgs);
            // the floor: one bare lzc_snapshot
            let fs = format!("{floor_ds}@f{i}");
            let before = txg_times(&self.pool);
            floor.push(time(|| self.zfs.snapshot([&fs], &[])).0);
            floor_t.push(txgs_since(&self.pool, &before));
            floor_sync.push(sync_since(&self.pool, &before));
            // Volume.snapshot's parts alone: the bare ZFS work, and a process doing none.
            let (bs, bc) = (format!("{floor_ds}@sc{i}"), self.ds(&format!("floor-c{i}")));
            let (t, txgs, r) = counted(&self.pool, || -> Res<()> {
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
                    self.zfs.snapshot([&bs], &[])?;
                    self.zfs.clone(&bc, &bs, &Props::new())?;
                }
                Ok(())
            });
            r?;
            bare_sc.push(t);
            bare_sc_t.push(txgs.0);
            let (t, r) = time(|| call(&query, &serde_json::json!({"dbg":"b"})));
            r?;
            proc_only.push(t);
            // the peer: python3 start + CLI processes
            let py = || run("python3", &["-c", "pass"]);
            let ps = format!("{peer}@s{i}");
            let pc = self.ds(&format!("peer-s{i}"));
            // The peer's Volume.snapshot and Volume.clone are the same sequence.
            let snapshot_clone = |snap: &str, clone: &str| -> Res<()> {
                py()?;
                run("zfs", &["snapshot", snap])?;
                run("zfs", &["clone", snap, clone])?;
                Ok(())
            };
            let (t, txgs, _) = counted(&self.pool, || snapshot_clone(&ps, &pc));
            psnap.push(t, txgs);
            let pcs = format!("{peer}@c{i}");
            let pcc = self.ds(&format!("peer-c{i}"));
            let (t, txgs, _) = counted(&self.pool, || snapshot_clone(&pcs, &pcc));
            pclone.push(t, txgs);
            let (t, txgs, _) = counted(&self.pool, || -> Res<()> {
                py()?;
                run("zfs", &["destroy", &pcc])?;
                Ok(())
            });
            pdestroy.push(t, txgs);
            // peer revert (new-style, as zfs-vol would have to): clone the snapshot, promote
            let prc = self.ds(&format!("peer-r{i}"));
            let (t, txgs, _) = counted(&self.pool, || -> Res<()> {
                py()?;
                run("zfs", &["clone", &ps, &prc])?;
                run("zfs", &["promote", &prc])?;
                Ok(())
            });
            prevert.push(t, txgs);
            // undo the peer promote so the next iteration starts from the same shape
            run("zfs", &["promote", &peer])?;
            run("zfs", &["destroy", &prc])?;
            // peer revert to the latest snapshot: `zfs rollback`, to a snapshot taken just
            // before (untimed) so that it is the latest
            let pl = format!("{peer}@l{i}");
            run("zfs", &["snapshot", &pl])?;
            let (t, txgs, r) = counted(&self.pool, || -> Res<()> {
                py()?;
                run("zfs", &["rollback", &pl])?;
                Ok(())
            });
            prollback.push(t, txgs);
            r?;
        }
        let snap_sync = snap.sync.clone();
        let rows = [
            ("Volume.snapshot", snap, psnap),
            ("Volume.clone", clone, pclone),
            ("Volume.destroy", destroy, pdestroy),
            ("Volume.revert (older snapshot)", revert, prevert),
            ("Volume.revert (latest snapshot)", revert_latest, prollback),
        ];
        for (case, ours, theirs) in rows {
            for (who, x) in [("xapi-zvol", ours), ("python3 + zfs CLI", theirs)] {
                let row = format!("{case}: {who}");
                self.rep.add("vdi", &row, "", stat(x.time));
                self.rep.add_txgs(&row, x.txgs);
                // The kernel's part of the call: its txgs' sync time (the rest is processes,
                // reads, and waits outside the sync thread).
                self.rep.add(
                    "vdi",
                    &format!("part: txg sync time in the kernel: {row}"),
                    "",
                    stat(x.sync),
                );
            }
        }
        self.rep
            .add("vdi", "bare lzc_snapshot (floor)", "", stat(floor));
        self.rep.add_txgs("bare lzc_snapshot (floor)", floor_t);
        let work = if sync_clone {
            "one program: sync.snapshot + sync.clone"
        } else {
            "lzc_snapshot + lzc_clone"
        };
        let bare = format!("part: bare snapshot+clone ({work})");
        self.rep.add("vdi", &bare, "", stat(bare_sc));
        self.rep.add_txgs(&bare, bare_sc_t);
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
                        self.zfs.snapshot([s], &[])?;
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

    /// Section 6, changed block tracking: Volume.list_changed_blocks against a full read and
    /// the CLI route, its peak memory as the disk grows, and what never-written holes cost.
    fn cbt(&mut self) -> Res<()> {
        let _ = std::fs::remove_dir_all(&self.root);
        run(
            self.args.plugin.to_str().unwrap(),
            &["install", "--root", self.root.to_str().unwrap()],
        )?;
        // The VM's root filesystem has ~1.4 GiB free, too little under the file pool for a
        // 1 GiB zvol written and then rewritten: the SR gets a pool of its own on the
        // scratch disks when there are some (the plugin creates it, as SR.create does on a host).
        let scratch: Vec<String> = std::env::var("XZVOL_SCRATCH_DISKS")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        let source = if scratch.is_empty() {
            serde_json::json!({"pool": self.pool})
        } else {
            serde_json::json!({"device": scratch.join(",")})
        };
        self.rep.notes.push(match scratch.is_empty() {
            true => format!("pool: the bench's file pool {}", self.pool),
            false => format!(
                "pool: a new pool made by SR.create on the VM's scratch disks {} (a stripe; raw files on the host)",
                scratch.join(" ")
            ),
        });
        let uuid = "cb7cb7cb-0000-4000-8000-00000000be0c";
        let cfg = self.vol(
            "SR.create",
            serde_json::json!({"dbg":"bench","uuid":uuid,"configuration":source,"name":"cbt","description":""}),
        )?;
        let sr = self.vol(
            "SR.attach",
            serde_json::json!({"dbg":"bench","configuration":cfg}),
        )?;
        let sr = sr
            .as_str()
            .ok_or("SR.attach returned no string")?
            .to_string();
        let dumper = stream_dumper();
        self.rep.notes.push(format!(
            "CLI route: `zfs send -L -c -e -i <A's bookmark> <B's snapshot> | {}` (the flags of the plugin's own send); `-v` prints one line per record, the offsets a bitmap needs",
            dumper.join(" ")
        ));
        let r = self.cbt_sections(&sr, &dumper);
        // Whatever happened, leave no SR behind (its pool, on the scratch disks, goes with it).
        for v in self
            .vol("SR.ls", serde_json::json!({"dbg":"b","sr":sr}))
            .ok()
            .and_then(|l| l.as_array().cloned())
            .unwrap_or_default()
        {
            let _ = self.vol(
                "Volume.destroy",
                serde_json::json!({"dbg":"b","sr":sr,"key":v["key"]}),
            );
        }
        let d = self.vol("SR.destroy", serde_json::json!({"dbg":"b","sr":sr}));
        r?;
        d?;
        Ok(())
    }

    fn cbt_sections(&mut self, sr: &str, dumper: &[String]) -> Res<()> {
        let mut rng = Rng(0x0cb7_2026);
        // 1. A fully written 1 GiB disk: no never-written hole is left, so the bits set are
        // exactly the blocks rewritten; a fresh A/B pair per percentage.
        let size = GIB;
        let v = self.new_volume(sr, "cbt full", size)?;
        let all: Vec<u64> = (0..size / CBT_BLOCK).collect();
        self.write(&v, &all, 1)?;
        for (i, pct) in [1u64, 10, 100].into_iter().enumerate() {
            let k = (all.len() as u64 * pct / 100) as usize;
            let rewrite = pick(&mut rng, &all, k);
            self.cbt_pair(
                sr,
                &v,
                size,
                FULL_DISK,
                &pct.to_string(),
                &all,
                &rewrite,
                2 + i as u64,
                Measure::Routes,
                dumper,
            )?;
        }
        self.vol(
            "Volume.destroy",
            serde_json::json!({"dbg":"b","sr":sr,"key":v.key}),
        )?;
        // 2. Peak memory as the disk grows: thin 1 GiB and 16 GiB zvols, nothing written
        // before A, 1 % of their blocks written between A and B.
        for (gib, disk) in [(1u64, THIN_1G), (16, THIN_16G)] {
            let size = gib * GIB;
            let v = self.new_volume(sr, disk, size)?;
            let all: Vec<u64> = (0..size / CBT_BLOCK).collect();
            let write = pick(&mut rng, &all, all.len() / 100);
            self.cbt_pair(
                sr,
                &v,
                size,
                disk,
                "1",
                &[],
                &write,
                20 + gib,
                Measure::Plugin,
                dumper,
            )?;
            self.vol(
                "Volume.destroy",
                serde_json::json!({"dbg":"b","sr":sr,"key":v.key}),
            )?;
        }
        // 3. What never-written holes cost: a thin 1 GiB zvol 10 % written before A (scattered
        // 64 KiB blocks; or the first 10 %; or the first 10 % and the last block, where a GPT
        // disk keeps its backup header), then 1 % of the disk rewritten within what was written.
        let size = GIB;
        let all: Vec<u64> = (0..size / CBT_BLOCK).collect();
        let tenth = all.len() / 10;
        let last = *all.last().unwrap();
        let layouts: [(&str, Vec<u64>); 3] = [
            (HOLES_SCATTERED, pick(&mut rng, &all, tenth)),
            (HOLES_FIRST, all[..tenth].to_vec()),
            (
                HOLES_FIRST_LAST,
                all[..tenth].iter().copied().chain([last]).collect(),
            ),
        ];
        for (i, (disk, before)) in layouts.into_iter().enumerate() {
            let v = self.new_volume(sr, disk, size)?;
            self.write(&v, &before, 40 + i as u64)?;
            let rewrite = pick(&mut rng, &before, all.len() / 100);
            self.cbt_pair(
                sr,
                &v,
                size,
                disk,
                "1",
                &before,
                &rewrite,
                50 + i as u64,
                Measure::Holes,
                dumper,
            )?;
            self.vol(
                "Volume.destroy",
                serde_json::json!({"dbg":"b","sr":sr,"key":v.key}),
            )?;
        }
        Ok(())
    }

    /// One pair: snapshot A, data_destroy it (as a backup tool does once it has read A: the
    /// later `from` is a bookmark), write `rewrite` on the volume, snapshot B, then time
    /// list_changed_blocks (and, per `what`, the other routes) `--runs` times, caches dropped
    /// before each; the pair is destroyed afterwards. `before`: the blocks written before A
    /// (all of them on a fully written disk, none on a thin one never written), for the
    /// report.
    #[allow(clippy::too_many_arguments)]
    fn cbt_pair(
        &mut self,
        sr: &str,
        v: &Vdi,
        size: u64,
        disk: &str,
        param: &str,
        before: &[u64],
        rewrite: &[u64],
        generation: u64,
        what: Measure,
        dumper: &[String],
    ) -> Res<()> {
        let a = self.vol(
            "Volume.snapshot",
            serde_json::json!({"dbg":"b","sr":sr,"key":v.key}),
        )?;
        let a = a["key"]
            .as_str()
            .ok_or("Volume.snapshot: no key")?
            .to_string();
        self.vol(
            "Volume.data_destroy",
            serde_json::json!({"dbg":"b","sr":sr,"key":a}),
        )?;
        self.write(v, rewrite, generation)?;
        let b = self.vol(
            "Volume.snapshot",
            serde_json::json!({"dbg":"b","sr":sr,"key":v.key}),
        )?;
        let b = Vdi {
            key: b["key"].as_str().ok_or("Volume.snapshot: no key")?.into(),
            uri: b["uri"][0]
                .as_str()
                .ok_or("Volume.snapshot: no uri")?
                .into(),
        };
        // The CLI route's names: A's bookmark (named after A's key, somewhere in the SR) and
        // the ZFS snapshot holding B's content (the origin of B's dataset).
        let bookmark = run(
            "zfs",
            &["list", "-H", "-o", "name", "-t", "bookmark", "-r", sr],
        )?
        .lines()
        .find(|l| l.ends_with(&format!("#{a}")))
        .ok_or_else(|| format!("no bookmark #{a} in {sr}"))?
        .to_string();
        let b_ds = layout::Layout::new(sr).vdi(&b.key, layout::Kind::Snapshot);
        let b_snap = run("zfs", &["get", "-H", "-o", "value", "origin", &b_ds])?
            .trim()
            .to_string();
        let dev = self.plug(&b.uri, "backup", true)?;
        let blocks = size / CBT_BLOCK;
        let label = |m: &str| format!("{disk}: {m}");
        let (mut lcb, mut full, mut cli, mut cliv, mut set_read, mut written_read, mut rss) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut no_send, mut in_process) = (vec![], vec![]);
        let mut first: Option<Changed> = None;
        let mut arc = vec![];
        let r = (|| -> Res<()> {
            for _ in 0..self.args.runs {
                arc.push(drop_caches());
                let (t, c) = time(|| {
                    call_logged(
                        &self.entry("Volume.list_changed_blocks"),
                        &serde_json::json!({"dbg":"b","sr":sr,"key":a,"key2":b.key,"offset":0,"length":-1}),
                    )
                });
                let c = changed(c?, blocks)?;
                lcb.push(t);
                rss.push(c.rss_kib);
                if let Some(f) = &first {
                    if f.bitmap != c.bitmap {
                        return Err(format!(
                            "{disk}: two list_changed_blocks of the same pair differ"
                        )
                        .into());
                    }
                }
                first.get_or_insert(c);
                let set = &first.as_ref().unwrap().set;
                match what {
                    Measure::Plugin => {}
                    Measure::Routes => {
                        // Where the call's time goes: its fixed part (a process, the SR lock,
                        // the two VDIs' stat) and the send with its parsing.
                        drop_caches();
                        let (t, r) = time(|| {
                            call(
                                &self.entry("Volume.list_changed_blocks"),
                                &serde_json::json!({"dbg":"b","sr":sr,"key":b.key,"key2":b.key,"offset":0,"length":-1}),
                            )
                        });
                        r?;
                        no_send.push(t);
                        drop_caches();
                        let mut bm = BlockBitmap::new(CBT_BLOCK, size);
                        let (t, r) = time(|| self.zfs.changed_blocks(&b_snap, &bookmark, &mut bm));
                        r?;
                        if bm.as_bytes() != first.as_ref().unwrap().bitmap {
                            return Err(format!(
                                "{disk}: Zfs::changed_blocks differs from the plugin's answer"
                            )
                            .into());
                        }
                        in_process.push(t);
                        for (v, verbose) in [(&mut cli, false), (&mut cliv, true)] {
                            drop_caches();
                            let (t, r) = time(|| cli_route(dumper, &bookmark, &b_snap, verbose));
                            r?;
                            v.push(t);
                        }
                        for _ in 0..CBT_EXTRA_PAIRS {
                            drop_caches();
                            let (t, c) = time(|| {
                                call_logged(
                                    &self.entry("Volume.list_changed_blocks"),
                                    &serde_json::json!({"dbg":"b","sr":sr,"key":a,"key2":b.key,"offset":0,"length":-1}),
                                )
                            });
                            if changed(c?, blocks)?.bitmap != first.as_ref().unwrap().bitmap {
                                return Err(format!(
                                    "{disk}: two list_changed_blocks of the same pair differ"
                                )
                                .into());
                            }
                            lcb.push(t);
                            drop_caches();
                            let (t, r) = time(|| cli_route(dumper, &bookmark, &b_snap, false));
                            r?;
                            cli.push(t);
                        }
                        drop_caches();
                        let (t, r) =
                            time(|| read_blocks(&dev, &extents(&(0..blocks).collect::<Vec<_>>())));
                        if r? != size {
                            return Err(format!("{dev}: short full read").into());
                        }
                        full.push(t);
                        drop_caches();
                        let (t, r) = time(|| read_blocks(&dev, &extents(set)));
                        r?;
                        set_read.push(t);
                    }
                    Measure::Holes => {
                        drop_caches();
                        let (t, r) = time(|| read_blocks(&dev, &extents(set)));
                        r?;
                        set_read.push(t);
                        drop_caches();
                        let (t, r) = time(|| read_blocks(&dev, &extents(rewrite)));
                        r?;
                        written_read.push(t);
                    }
                }
            }
            Ok(())
        })();
        let _ = self.unplug(&b.uri, "backup");
        r?;
        let c = first.ok_or("--runs 0")?;
        // No false negative: every block written between A and B must have its bit.
        if let Some(miss) = rewrite.iter().find(|&&i| c.set.binary_search(&i).is_err()) {
            return Err(format!(
                "{disk}: block {miss} was written between A and B but its bit is clear"
            )
            .into());
        }
        self.rep.add("cbt", &label(LCB), param, stat(lcb));
        for (case, v) in [
            (LCB_NO_SEND, no_send),
            (IN_PROCESS, in_process),
            (CLI, cli),
            (CLI_V, cliv),
            (FULL_READ, full),
            (SET_READ, set_read),
            (WRITTEN_READ, written_read),
        ] {
            if !v.is_empty() {
                self.rep.add("cbt", &label(case), param, stat(v));
            }
        }
        let arc_max = arc.iter().flatten().max().copied();
        if let Some(m) = arc_max {
            self.rep.notes.push(format!(
                "{disk}, {param} %: ARC size after dropping the caches at most {:.0} MiB",
                m as f64 / (1 << 20) as f64
            ));
        }
        eprintln!(
            "  cbt     {disk}, {param} %: {} of {blocks} bits set, {} blocks written between A and B; {} stream records, {} bytes; peak RSS {:?} KiB",
            c.set.len(),
            rewrite.len(),
            c.records,
            c.bytes,
            rss
        );
        self.rep.cbt.push(CbtFigure {
            disk: disk.into(),
            param: param.into(),
            blocks,
            before: before.len() as u64,
            written: rewrite.len() as u64,
            set: c.set.len() as u64,
            records: c.records,
            bytes: c.bytes,
            rss_kib: rss,
        });
        self.vol(
            "Volume.destroy",
            serde_json::json!({"dbg":"b","sr":sr,"key":b.key}),
        )?;
        self.vol(
            "Volume.destroy",
            serde_json::json!({"dbg":"b","sr":sr,"key":a}),
        )?;
        Ok(())
    }

    /// A volume plugin call through its installed entry.
    /// Write `marker` to `vol` and take a snapshot VDI of it (untimed): a revert target.
    fn marked_snapshot(&self, sr: &str, vol: &Vdi, marker: &str) -> Res<String> {
        self.put_marker(vol, marker)?;
        Ok(call(
            &self.entry("Volume.snapshot"),
            &serde_json::json!({"dbg":"b","sr":sr,"key":vol.key}),
        )?["key"]
            .as_str()
            .ok_or("Volume.snapshot: no key")?
            .to_string())
    }

    /// One benchmarked Volume.revert of `vol` to `snapshot`: its time and the txgs it synced
    /// (the call alone), then the check that the volume holds `marker` (untimed).
    fn timed_revert(
        &self,
        sr: &str,
        vol: &Vdi,
        snapshot: &str,
        marker: &str,
        what: &str,
    ) -> Res<(Duration, (u64, Duration))> {
        let (t, txgs, r) = counted(&self.pool, || {
            call(
                &self.entry("Volume.revert"),
                &serde_json::json!({"dbg":"b","sr":sr,"snapshot":snapshot,"key":vol.key}),
            )
        });
        r?;
        self.check_marker(vol, marker, what)?;
        Ok((t, txgs))
    }

    fn vol(&self, method: &str, params: serde_json::Value) -> Res<serde_json::Value> {
        call(&self.entry(method), &params)
    }

    /// A datapath plugin call through its installed entry.
    fn dp(&self, method: &str, params: serde_json::Value) -> Res<serde_json::Value> {
        call(&self.root.join("datapath/zvol").join(method), &params)
    }

    /// Volume.create with CBT enabled (its snapshots then carry it).
    fn new_volume(&self, sr: &str, name: &str, size: u64) -> Res<Vdi> {
        let v = self.vol(
            "Volume.create",
            serde_json::json!({"dbg":"b","sr":sr,"name":name,"description":"","size":size,"sharable":false}),
        )?;
        let v = Vdi {
            key: v["key"].as_str().ok_or("Volume.create: no key")?.into(),
            uri: v["uri"][0].as_str().ok_or("Volume.create: no uri")?.into(),
        };
        self.vol(
            "Volume.enable_cbt",
            serde_json::json!({"dbg":"b","sr":sr,"key":v.key}),
        )?;
        Ok(v)
    }

    /// Open, attach and activate (read-only or not) a VDI as xapi does for a VM or a backup;
    /// its block device.
    fn plug(&self, uri: &str, domain: &str, readonly: bool) -> Res<String> {
        self.dp(
            "Datapath.open",
            serde_json::json!({"dbg":"b","uri":uri,"persistent":true}),
        )?;
        let p = serde_json::json!({"dbg":"b","uri":uri,"domain":domain});
        let a = self.dp("Datapath.attach", p.clone())?;
        let dev = a["implementations"]
            .as_array()
            .and_then(|i| i.iter().find(|i| i[0] == "BlockDevice"))
            .and_then(|i| i[1]["path"].as_str())
            .ok_or_else(|| format!("Datapath.attach gave no block device: {a}"))?
            .to_string();
        let activate = match readonly {
            true => "Datapath.activate_readonly",
            false => "Datapath.activate",
        };
        self.dp(activate, p)?;
        Ok(dev)
    }

    fn unplug(&self, uri: &str, domain: &str) -> Res<()> {
        let p = serde_json::json!({"dbg":"b","uri":uri,"domain":domain});
        self.dp("Datapath.deactivate", p.clone())?;
        self.dp("Datapath.detach", p)?;
        self.dp("Datapath.close", serde_json::json!({"dbg":"b","uri":uri}))?;
        Ok(())
    }

    /// Write `blocks` of `v` through the datapath, as its VM would, then unplug it.
    fn write(&self, v: &Vdi, blocks: &[u64], generation: u64) -> Res<()> {
        let dev = self.plug(&v.uri, "bench-vm", false)?;
        let r = write_blocks(&dev, blocks, generation);
        let u = self.unplug(&v.uri, "bench-vm");
        r?;
        u
    }

    /// Write the marker sector `text` (see `marker`) at offset 0 of volume `v` through the
    /// datapath, as its VM would, then unplug it; then sync the pool and wait for udev, so
    /// that the next timed call neither syncs this write in its txgs nor meets udev
    /// re-probing the device after the close-after-write (as calls from xapi, after a VM
    /// has shut down, do not).
    fn put_marker(&self, v: &Vdi, text: &str) -> Res<()> {
        let dev = self.plug(&v.uri, "bench-vm", false)?;
        let r = write_marker(&dev, text);
        let u = self.unplug(&v.uri, "bench-vm");
        r?;
        u?;
        run("zpool", &["sync", &self.pool])?;
        // Only for steadier timings: not a failure if udev cannot be waited for.
        let _ = run("udevadm", &["settle", "-t", "30"]);
        Ok(())
    }

    /// After `what` (a revert): volume `v`, plugged through the datapath and read with
    /// O_DIRECT, must hold the marker sector `expect` at offset 0; an error saying what it
    /// holds instead otherwise.
    fn check_marker(&self, v: &Vdi, expect: &str, what: &str) -> Res<()> {
        let dev = self.plug(&v.uri, "bench-vm", false)?;
        let r = read_marker(&dev);
        let u = self.unplug(&v.uri, "bench-vm");
        let found = r?;
        u?;
        if found != marker(expect) {
            let end = found.iter().position(|&b| b == 0).unwrap_or(found.len());
            return Err(format!(
                "{what}: volume {} does not hold the snapshot's content: its first {MARKER_LEN} bytes are {:?}, expected the marker {:?} written before that snapshot",
                v.key,
                String::from_utf8_lossy(&found[..end]),
                marker_text(expect)
            )
            .into());
        }
        Ok(())
    }

    /// Whether snapshot VDI `snap`'s content (the ZFS snapshot its dataset is a clone of) is
    /// the latest ZFS snapshot of volume `key`: what makes Volume.revert a rollback rather
    /// than a clone-and-swap.
    fn is_latest(&self, sr: &str, snap: &str, key: &str) -> Res<bool> {
        let l = layout::Layout::new(sr);
        let snap_ds = l.vdi(snap, layout::Kind::Snapshot);
        let origin = run("zfs", &["get", "-H", "-o", "value", "origin", &snap_ds])?;
        let vol_ds = l.vdi(key, layout::Kind::Volume);
        let snaps = run(
            "zfs",
            &[
                "list",
                "-H",
                "-o",
                "name",
                "-t",
                "snapshot",
                "-s",
                "createtxg",
                "-d",
                "1",
                &vol_ds,
            ],
        )?;
        Ok(snaps.lines().last() == Some(origin.trim()))
    }
}

/// The changed-block bitmap's block: 64 KiB, what every consumer of list_changed_blocks
/// assumes.
const CBT_BLOCK: u64 = 64 * 1024;
/// Per run of the cbt section's fully written disk: this many more list_changed_blocks / CLI
/// route pairs, timed alternately (a sample of either route varies by ±20 % from one to the
/// next in the test VM; both get the same number of samples, interleaved).
const CBT_EXTRA_PAIRS: usize = 2;
const GIB: u64 = 1 << 30;
/// The unit of sequential writes and reads: large, as `dd bs=4M` or a backup tool reads.
const IO_CHUNK: u64 = 4 << 20;

/// The cbt section's disks (row case prefixes; BENCHMARKS.md and bench-plot.py use them).
const FULL_DISK: &str = "1 GiB fully written";
const THIN_1G: &str = "1 GiB thin, nothing written before A";
const THIN_16G: &str = "16 GiB thin, nothing written before A";
const HOLES_SCATTERED: &str = "1 GiB thin, 10 % written before A (scattered 64 KiB blocks)";
const HOLES_FIRST: &str = "1 GiB thin, 10 % written before A (the first 10 %)";
const HOLES_FIRST_LAST: &str =
    "1 GiB thin, 10 % written before A (the first 10 % + the last block)";
/// Its methods (row case suffixes).
const LCB: &str = "Volume.list_changed_blocks (plugin call)";
// No '|' in a case: it would split the markdown tables' cells.
const CLI: &str = "CLI: zfs send -i into zstream dump";
const CLI_V: &str = "CLI: zfs send -i into zstream dump -v";
/// Volume.list_changed_blocks's parts: the call without a send (from = to), and the send
/// and its parsing alone, in process.
const LCB_NO_SEND: &str = "part: Volume.list_changed_blocks(B, B), no send (plugin call)";
const IN_PROCESS: &str = "part: Zfs::changed_blocks, the send and its parsing (in process)";
const FULL_READ: &str = "full read of B (O_DIRECT)";
const SET_READ: &str = "read of B's set blocks (O_DIRECT)";
const WRITTEN_READ: &str = "read of B's written blocks only (O_DIRECT)";

/// A VDI of the vdi and cbt sections.
struct Vdi {
    key: String,
    uri: String,
}

/// What a cbt pair times besides Volume.list_changed_blocks.
#[derive(Clone, Copy)]
enum Measure {
    /// Nothing else (the memory comparison).
    Plugin,
    /// The routes without the plugin: a full read of B, the CLI, and the read of the set
    /// blocks that an incremental backup then does.
    Routes,
    /// The read of the set blocks against that of the blocks really written (hole FREEs).
    Holes,
}

/// splitmix64: a fixed-seed source for the blocks to write and their content, so that every
/// run and version writes the same (no dependency for it).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `k` distinct elements of `from`, chosen at random (a partial Fisher-Yates), sorted.
fn pick(rng: &mut Rng, from: &[u64], k: usize) -> Vec<u64> {
    let mut v = from.to_vec();
    let k = k.min(v.len());
    for i in 0..k {
        let j = i + (rng.next() % (v.len() - i) as u64) as usize;
        v.swap(i, j);
    }
    v.truncate(k);
    v.sort_unstable();
    v
}

/// Runs of consecutive 64 KiB blocks, as (first block, count), each at most IO_CHUNK long:
/// what a backup tool reads (or a guest writes) in one request.
fn extents(blocks: &[u64]) -> Vec<(u64, u64)> {
    let max = IO_CHUNK / CBT_BLOCK;
    let mut out: Vec<(u64, u64)> = vec![];
    for &b in blocks {
        match out.last_mut() {
            Some((s, n)) if *s + *n == b && *n < max => *n += 1,
            _ => out.push((b, 1)),
        }
    }
    out
}

/// An IO_CHUNK buffer aligned for O_DIRECT.
struct Aligned {
    raw: Vec<u8>,
    at: usize,
}

impl Aligned {
    fn new() -> Aligned {
        let raw = vec![0u8; IO_CHUNK as usize + 4096];
        let at = raw.as_ptr().align_offset(4096);
        Aligned { raw, at }
    }
    fn buf(&mut self) -> &mut [u8] {
        &mut self.raw[self.at..self.at + IO_CHUNK as usize]
    }
}

/// Open a zvol device with O_DIRECT, so that the page cache neither serves the reads nor
/// delays the writes. A zvol just attached may refuse the open for a moment (errno 512,
/// ERESTARTSYS): retried, as the VM tests do.
fn open_direct(dev: &str, write: bool) -> Res<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut tries = 0;
    loop {
        match std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .custom_flags(libc::O_DIRECT)
            .open(dev)
        {
            Err(e) if e.raw_os_error() == Some(512) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("open {dev}: {e}").into()),
            Ok(f) => return Ok(f),
        }
    }
}

/// Write the 64 KiB blocks `blocks` of `dev` (O_DIRECT, runs merged into large writes), then
/// flush. The content is random (incompressible, whatever the pool's compression) and every
/// 4 KiB sector carries its block number and `generation`, so that no two writes are alike.
fn write_blocks(dev: &str, blocks: &[u64], generation: u64) -> Res<()> {
    use std::os::unix::fs::FileExt;
    let f = open_direct(dev, true)?;
    let mut a = Aligned::new();
    let buf = a.buf();
    let mut rng = Rng(generation);
    for w in buf.chunks_exact_mut(8) {
        w.copy_from_slice(&rng.next().to_le_bytes());
    }
    for (first, n) in extents(blocks) {
        let len = (n * CBT_BLOCK) as usize;
        for (i, sector) in buf[..len].chunks_exact_mut(4096).enumerate() {
            let block = first + (i as u64 * 4096) / CBT_BLOCK;
            sector[..8].copy_from_slice(&block.to_le_bytes());
            sector[8..16].copy_from_slice(&generation.to_le_bytes());
        }
        f.write_all_at(&buf[..len], first * CBT_BLOCK)
            .map_err(|e| format!("write {dev} at block {first}: {e}"))?;
    }
    f.sync_all()?;
    Ok(())
}

/// Read `extents` of `dev` with O_DIRECT, as a backup reads a disk; the bytes read.
fn read_blocks(dev: &str, extents: &[(u64, u64)]) -> Res<u64> {
    use std::os::unix::fs::FileExt;
    let f = open_direct(dev, false)?;
    let mut a = Aligned::new();
    let buf = a.buf();
    let mut total = 0;
    for &(first, n) in extents {
        let len = (n * CBT_BLOCK) as usize;
        f.read_exact_at(&mut buf[..len], first * CBT_BLOCK)
            .map_err(|e| format!("read {dev} at block {first}: {e}"))?;
        total += len as u64;
    }
    Ok(total)
}

/// The vdi section's marker: one 4 KiB sector, `marker_text(text)` then zeros.
const MARKER_LEN: usize = 4096;

fn marker_text(text: &str) -> String {
    format!("xapi-zvol-bench vdi marker: {text}\n")
}

fn marker(text: &str) -> Vec<u8> {
    let mut m = marker_text(text).into_bytes();
    m.resize(MARKER_LEN, 0);
    m
}

/// Write the marker sector `text` at offset 0 of `dev` (O_DIRECT), then flush.
fn write_marker(dev: &str, text: &str) -> Res<()> {
    use std::os::unix::fs::FileExt;
    let f = open_direct(dev, true)?;
    let mut a = Aligned::new();
    let buf = &mut a.buf()[..MARKER_LEN];
    buf.copy_from_slice(&marker(text));
    f.write_all_at(buf, 0)
        .map_err(|e| format!("write the marker to {dev}: {e}"))?;
    f.sync_all()?;
    Ok(())
}

/// The first sector of `dev`, read with O_DIRECT (from the disk, not from a cache).
fn read_marker(dev: &str) -> Res<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = open_direct(dev, false)?;
    let mut a = Aligned::new();
    let buf = &mut a.buf()[..MARKER_LEN];
    f.read_exact_at(buf, 0)
        .map_err(|e| format!("read the marker from {dev}: {e}"))?;
    Ok(buf.to_vec())
}

/// Drop the page cache and evict the ARC before a timed read, so that every route reads
/// from the disks as a backup of a cold snapshot does. One `drop_caches` may evict only part
/// of the ARC (its shrinker gives back a limited amount per call), so it is repeated until
/// the ARC stops shrinking. The ARC's size afterwards, in bytes (None without ZFS stats).
fn drop_caches() -> Option<u64> {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let mut last = arc_size();
    for _ in 0..64 {
        if std::fs::write("/proc/sys/vm/drop_caches", "3").is_err() {
            break;
        }
        let now = arc_size();
        match (last, now) {
            (Some(l), Some(n)) if l > n + (1 << 20) => last = now,
            _ => return now,
        }
    }
    last
}

/// The ARC's size (`size` in arcstats), bytes.
fn arc_size() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/spl/kstat/zfs/arcstats").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 3 && f[0] == "size")
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// One plugin call like `call`, keeping its stderr (where the plugin logs).
fn call_logged(entry: &Path, params: &serde_json::Value) -> Res<(serde_json::Value, String)> {
    let mut child = Command::new(entry)
        .arg("--json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(params.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    if !out.status.success() {
        return Err(format!("{} failed: {v}\n{log}", entry.display()).into());
    }
    Ok((v, log))
}

/// A Volume.list_changed_blocks answer and its log line.
struct Changed {
    bitmap: Vec<u8>,
    /// The blocks whose bit is set, in order.
    set: Vec<u64>,
    records: u64,
    bytes: u64,
    rss_kib: u64,
}

/// Decode a Volume.list_changed_blocks answer of a `blocks`-block disk, and read the stream
/// records, bytes and peak RSS from the plugin's log line ("... N of M blocks changed
/// (R stream records, B bytes; peak RSS K KiB)").
fn changed((v, log): (serde_json::Value, String), blocks: u64) -> Res<Changed> {
    use base64::Engine;
    if v["granularity"] != CBT_BLOCK {
        return Err(format!("list_changed_blocks: granularity {}", v["granularity"]).into());
    }
    let bitmap = base64::engine::general_purpose::STANDARD.decode(
        v["bitmap"]
            .as_str()
            .ok_or("list_changed_blocks: no bitmap")?,
    )?;
    if bitmap.len() as u64 != blocks.div_ceil(8) {
        return Err(format!(
            "list_changed_blocks: {} bitmap bytes for {blocks} blocks",
            bitmap.len()
        )
        .into());
    }
    let set = (0..blocks)
        .filter(|i| bitmap[(i / 8) as usize] & (0x80 >> (i % 8)) != 0)
        .collect();
    let line = log
        .lines()
        .find(|l| l.contains("Volume.list_changed_blocks") && l.contains("peak RSS"))
        .ok_or_else(|| format!("list_changed_blocks logged no figures: {log}"))?;
    let num = |marker: &str| -> Res<u64> {
        let head = &line[..line
            .find(marker)
            .ok_or_else(|| format!("no {marker:?} in {line}"))?];
        Ok(head
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|_| format!("no number before {marker:?} in {line}"))?)
    };
    Ok(Changed {
        bitmap,
        set,
        records: num(" stream records")?,
        bytes: num(" bytes;")?,
        rss_kib: num(" KiB)")?,
    })
}

/// The stream dumper of this OpenZFS: `zstream dump` (2.0+), else `zstreamdump` (which 2.1
/// and 2.4 keep as a link to zstream).
fn stream_dumper() -> Vec<String> {
    let found = |cmd: &str| {
        std::env::var("PATH")
            .unwrap_or_default()
            .split(':')
            .any(|d| Path::new(d).join(cmd).exists())
    };
    match found("zstream") {
        true => vec!["zstream".into(), "dump".into()],
        false => vec!["zstreamdump".into()],
    }
}

/// The CLI route to the same changes: `zfs send -L -c -e -i from to | <dumper> [-v]`, its
/// output drained; the lines it printed.
fn cli_route(dumper: &[String], from: &str, to: &str, verbose: bool) -> Res<usize> {
    let mut send = Command::new("zfs")
        .args(["send", "-L", "-c", "-e", "-i", from, to])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let dump = Command::new(&dumper[0])
        .args(&dumper[1..])
        .args(verbose.then_some("-v"))
        .stdin(send.stdout.take().unwrap())
        .stderr(Stdio::piped())
        .output()?;
    let sent = send.wait_with_output()?;
    if !sent.status.success() || !dump.status.success() {
        return Err(format!(
            "zfs send -i {from} {to} | {}: {}{}",
            dumper.join(" "),
            String::from_utf8_lossy(&sent.stderr),
            String::from_utf8_lossy(&dump.stderr)
        )
        .into());
    }
    Ok(dump.stdout.split(|&c| c == b'\n').count())
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
    if !rep.cbt.is_empty() {
        std::fs::write(
            args.out.join(format!("cbt-figures-zfs{short}.csv")),
            cbt_csv(rep),
        )?;
    }
    if !rep.txgs.is_empty() {
        std::fs::write(args.out.join(format!("txgs-zfs{short}.csv")), txgs_csv(rep))?;
    }
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
            "Volume.revert (latest snapshot)",
        ] {
            let x = r(
                rep.get("vdi", &format!("{case}: python3 + zfs CLI"), ""),
                rep.get("vdi", &format!("{case}: xapi-zvol"), ""),
            );
            ratios.insert(format!("{case}: python peer / xapi-zvol (target >= 3)"), x);
            for who in ["xapi-zvol", "python3 + zfs CLI"] {
                let part = format!("part: txg sync time in the kernel: {case}: {who}");
                if rep.rows.iter().any(|x| x.0 == "vdi" && x.1 == part) {
                    ratios.insert(
                        format!("{case}: {who}: the kernel's txg sync time / the call"),
                        r(
                            rep.get("vdi", &part, ""),
                            rep.get("vdi", &format!("{case}: {who}"), ""),
                        ),
                    );
                }
            }
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
    for f in rep.cbt.iter().filter(|f| f.disk == FULL_DISK) {
        let p = &f.param;
        let g = |case| rep.get("cbt", &format!("{FULL_DISK}: {case}"), p);
        let target = if p == "1" { " (target <= 0.05)" } else { "" };
        ratios.insert(
            format!("cbt {p:>3} % rewritten: list_changed_blocks / full read{target}"),
            r(g(LCB), g(FULL_READ)),
        );
        ratios.insert(
            format!("cbt {p:>3} % rewritten: list_changed_blocks / CLI route (target <= 1)"),
            r(g(LCB), g(CLI)),
        );
    }
    if rep.rows.iter().any(|x| x.0 == "query") {
        let q = rep.get("query", "Plugin.Query (volume plugin)", "");
        let py = rep.get("query", "python3 -c pass", "");
        ratios.insert("python3 start / Plugin.Query".into(), r(py, q));
    }
    for (k, v) in &ratios {
        md.push_str(&format!("- {k}: **{v:.2}**\n"));
    }
    if !rep.txgs.is_empty() {
        md.push_str(&txgs_md(rep));
    }
    if !rep.cbt.is_empty() {
        md.push_str(&cbt_md(rep));
    }
    rep.line(md.clone());
    std::fs::write(args.out.join(format!("results-zfs{short}.md")), md)?;
    Ok(())
}

/// The cbt section's tables: the routes per % changed with their ratios, the peak memory
/// per disk size, and the bits never-written holes add.
fn cbt_md(rep: &Report) -> String {
    let find = |disk: &str, case: &str, param: &str| {
        rep.rows
            .iter()
            .find(|r| r.0 == "cbt" && r.1 == format!("{disk}: {case}") && r.2 == param)
            .map(|r| r.3)
    };
    let msf = |s: Option<Stat>| s.map_or("-".into(), |s| format!("{:.1}", ms(s.med)));
    let ratio = |a: Option<Stat>, b: Option<Stat>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.3}", a.med.as_secs_f64() / b.med.as_secs_f64()),
        _ => "-".into(),
    };
    let rss = |f: &CbtFigure| {
        let mut v = f.rss_kib.clone();
        v.sort_unstable();
        match v.as_slice() {
            [] => "-".into(),
            v => format!("{} ({}..{})", v[v.len() / 2], v[0], v[v.len() - 1]),
        }
    };
    let mut md = String::from(
        "\n#### cbt: Volume.list_changed_blocks vs a full read and the CLI route (1 GiB zvol, fully written)\n\n\
         Medians in ms; caches dropped (page cache and ARC) before every timed operation; reads with O_DIRECT in 4 MiB requests.\n\n\
         | rewritten | bits set | list_changed_blocks (lcb) | its part without a send | its send and parsing, in process | full read | CLI | CLI -v | read of the set blocks | lcb / full read (target at 1 %: <= 0.05) | lcb / CLI (target <= 1) | lcb / CLI -v | in-process send / CLI | (lcb + read of the set blocks) / full read |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for f in rep.cbt.iter().filter(|f| f.disk == FULL_DISK) {
        let p = f.param.as_str();
        let g = |case| find(FULL_DISK, case, p);
        let backup = g(LCB).zip(g(SET_READ)).map(|(a, b)| Stat {
            med: a.med + b.med,
            ..a
        });
        md.push_str(&format!(
            "| {p} % ({} blocks) | {} | {} | {} | {} | {} | {} | {} | {} | **{}** | **{}** | {} | {} | {} |\n",
            f.written,
            f.set,
            msf(g(LCB)),
            msf(g(LCB_NO_SEND)),
            msf(g(IN_PROCESS)),
            msf(g(FULL_READ)),
            msf(g(CLI)),
            msf(g(CLI_V)),
            msf(g(SET_READ)),
            ratio(g(LCB), g(FULL_READ)),
            ratio(g(LCB), g(CLI)),
            ratio(g(LCB), g(CLI_V)),
            ratio(g(IN_PROCESS), g(CLI)),
            ratio(backup, g(FULL_READ)),
        ));
    }
    md.push_str(
        "\n#### cbt: what each pair counted\n\n\
         Blocks are 64 KiB. Bits set beyond the blocks written between A and B are never-written holes that FREE records cover (docs/zfs-facts.md §1.10).\n\n\
         | disk | % written A→B | blocks | written before A | written A→B | bits set | extra bits | stream records | stream MiB | plugin peak RSS KiB, median (min..max) | list_changed_blocks ms | read of the set blocks ms | read of the written blocks only ms |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for f in &rep.cbt {
        let g = |case| find(&f.disk, case, &f.param);
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} |\n",
            f.disk,
            f.param,
            f.blocks,
            f.before,
            f.written,
            f.set,
            f.set.saturating_sub(f.written),
            f.records,
            f.bytes as f64 / (1 << 20) as f64,
            rss(f),
            msf(g(LCB)),
            msf(g(SET_READ)),
            msf(g(WRITTEN_READ)),
        ));
    }
    let median_rss = |disk: &str| {
        rep.cbt.iter().find(|f| f.disk == disk).and_then(|f| {
            let mut v = f.rss_kib.clone();
            v.sort_unstable();
            v.get(v.len() / 2).copied()
        })
    };
    md.push('\n');
    if let (Some(a), Some(b)) = (median_rss(THIN_1G), median_rss(THIN_16G)) {
        md.push_str(&format!(
            "- plugin peak RSS, 16 GiB thin / 1 GiB thin (1 % written A→B; target: flat): {b} / {a} KiB = **{:.2}**\n",
            b as f64 / a as f64
        ));
    }
    if let (Some(a), Some(b)) = (median_rss(FULL_DISK), median_rss(THIN_16G)) {
        md.push_str(&format!(
            "- plugin peak RSS, 16 GiB thin / 1 GiB fully written (1 %): {b} / {a} KiB = **{:.2}**\n",
            b as f64 / a as f64
        ));
    }
    for f in rep
        .cbt
        .iter()
        .filter(|f| f.before > 0 && f.before < f.blocks)
    {
        md.push_str(&format!(
            "- {}: {} bits set for {} blocks rewritten: a backup reads {:.1} MiB instead of {:.1} MiB (x{:.1})\n",
            f.disk,
            f.set,
            f.written,
            (f.set * CBT_BLOCK) as f64 / (1 << 20) as f64,
            (f.written * CBT_BLOCK) as f64 / (1 << 20) as f64,
            f.set as f64 / f.written.max(1) as f64
        ));
    }
    for n in &rep.notes {
        md.push_str(&format!("- {n}\n"));
    }
    md
}

/// The vdi section's txg counts: a table, one row per case (ours, then the peer's).
fn txgs_md(rep: &Report) -> String {
    let runs = rep.txgs.first().map_or(0, |t| t.1.len());
    let mut md = format!(
        "\n#### vdi: txg syncs per call (median of {runs} runs)\n\n\
         Txgs of the bench pool committed between just before the call and its return (`/proc/spl/kstat/zfs/<pool>/txgs`): \
         the call's own, a txg the kernel syncs on its own after a destroy if it commits before the call returns, and now and then the sync thread's timer txg.\n\n\
         | case | median | min | max |\n|---|---|---|---|\n"
    );
    for (case, v) in &rep.txgs {
        let (med, min, max) = count_stat(v);
        md.push_str(&format!("| {case} | {med} | {min} | {max} |\n"));
    }
    md
}

/// The vdi section's txg counts, one line per case.
fn txgs_csv(rep: &Report) -> String {
    let mut csv = String::from("case,runs,median,min,max\n");
    for (case, v) in &rep.txgs {
        let (med, min, max) = count_stat(v);
        csv.push_str(&format!("\"{case}\",{},{med},{min},{max}\n", v.len()));
    }
    csv
}

/// The cbt section's counts, one line per pair.
fn cbt_csv(rep: &Report) -> String {
    let mut csv = String::from(
        "disk,changed_pct,blocks,written_before_a,written_a_to_b,bits_set,stream_records,stream_bytes,peak_rss_kib_median,peak_rss_kib_min,peak_rss_kib_max\n",
    );
    for f in &rep.cbt {
        let mut v = f.rss_kib.clone();
        v.sort_unstable();
        let (med, min, max) = match v.as_slice() {
            [] => (0, 0, 0),
            v => (v[v.len() / 2], v[0], v[v.len() - 1]),
        };
        csv.push_str(&format!(
            "\"{}\",{},{},{},{},{},{},{},{med},{min},{max}\n",
            f.disk, f.param, f.blocks, f.before, f.written, f.set, f.records, f.bytes
        ));
    }
    csv
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

/// How many txgs of the pool committed since `before` (a `txg_times` reading taken just
/// before a call), read just after the call returned: the txgs synced between the two
/// readings, whoever asked for them. That is the call's own (every modifying ioctl waits for
/// one) plus what else committed meanwhile: a txg the kernel syncs on its own right after a
/// destroy (to free its blocks) counts only if it commits before the call returned (process
/// exit included), and the sync thread's timer txg (every `zfs_txg_timeout` seconds, dirty
/// or not) now and then lands in a call; the medians are what to read. The kstat keeps the
/// last `zfs_txg_history` txgs (100 by default), plenty for one call.
fn txgs_since(pool: &str, before: &[(u64, u64)]) -> u64 {
    txg_times(pool)
        .iter()
        .filter(|(txg, _)| !before.iter().any(|(b, _)| b == txg))
        .count() as u64
}

/// One timed case's samples, in call order: its times, the txgs each call synced and their
/// sync time in the kernel (`counted`).
#[derive(Default)]
struct Samples {
    time: Vec<Duration>,
    txgs: Vec<u64>,
    sync: Vec<Duration>,
}

impl Samples {
    fn push(&mut self, time: Duration, (txgs, sync): (u64, Duration)) {
        self.time.push(time);
        self.txgs.push(txgs);
        self.sync.push(sync);
    }
}

/// Time `f` like `time`, and count the txgs of `pool` that committed meanwhile
/// (`txgs_since`) with their sync time in the kernel (`sync_since`); the kstat is read
/// outside the timed region.
fn counted<T>(pool: &str, f: impl FnOnce() -> T) -> (Duration, (u64, Duration), T) {
    let before = txg_times(pool);
    let (t, r) = time(f);
    (t, (txgs_since(pool, &before), sync_since(pool, &before)), r)
}

/// Clone-on-snapshot's bare ZFS work on 2.4+: one sync task, one txg.
const BARE_SNAPSHOT_CLONE: Program = Program::from_static(
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
        .map_err(zfs_volume::Error::from)
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
            .get_properties(origin, ["referenced"])?
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
            .map_err(zfs_volume::Error::from)
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
    let mut rep = Report::default();
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
            if want("cbt") {
                b.cbt()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_reads_the_bitmap_and_the_plugin_log_line() {
        let v = serde_json::json!({"granularity": 65536, "bitmap": "gAE="});
        let log = "xapi-zvol[7]: INFO: Volume.list_changed_blocks cb7-a -> cb7-b: 2 of 16 blocks \
                   changed (34 stream records, 5678 bytes; peak RSS 4321 KiB)\n\
                   xapi-zvol[7]: INFO: Volume.list_changed_blocks: ok in 12 ms\n";
        let c = changed((v, log.into()), 16).unwrap();
        assert_eq!(c.set, vec![0, 15]);
        assert_eq!((c.records, c.bytes, c.rss_kib), (34, 5678, 4321));
        let v = serde_json::json!({"granularity": 65536, "bitmap": "gAE="});
        assert!(changed((v.clone(), "no figures".into()), 16).is_err());
        assert!(changed((v, log.into()), 24).is_err(), "bitmap too short");
    }

    #[test]
    fn txg_counts_are_tabled_with_median_min_max() {
        assert_eq!(count_stat(&[3, 1, 2, 2, 9]), (2, 1, 9));
        assert_eq!(count_stat(&[]), (0, 0, 0));
        let mut rep = Report::default();
        rep.add_txgs("Volume.revert (latest snapshot): xapi-zvol", vec![1, 1, 2]);
        rep.add_txgs(
            "Volume.revert (latest snapshot): python3 + zfs CLI",
            vec![2, 1, 2],
        );
        assert_eq!(
            txgs_csv(&rep),
            "case,runs,median,min,max\n\
             \"Volume.revert (latest snapshot): xapi-zvol\",3,1,1,2\n\
             \"Volume.revert (latest snapshot): python3 + zfs CLI\",3,2,1,2\n"
        );
        let md = txgs_md(&rep);
        assert!(md.contains("txg syncs per call (median of 3 runs)"));
        assert!(md.contains("| Volume.revert (latest snapshot): xapi-zvol | 1 | 1 | 2 |\n"));
    }

    #[test]
    fn markers_are_one_sector_and_distinct() {
        let (a, b) = (marker("iteration 1: x"), marker("iteration 11: x"));
        assert_eq!((a.len(), b.len()), (MARKER_LEN, MARKER_LEN));
        assert_ne!(a, b);
        assert!(a.starts_with(marker_text("iteration 1: x").as_bytes()));
    }

    #[test]
    fn extents_merge_runs_up_to_the_io_size() {
        assert_eq!(extents(&[1, 2, 3, 7, 9, 10]), vec![(1, 3), (7, 1), (9, 2)]);
        let all: Vec<u64> = (0..130).collect();
        assert_eq!(extents(&all), vec![(0, 64), (64, 64), (128, 2)]);
    }

    #[test]
    fn pick_is_distinct_sorted_and_fixed_by_the_seed() {
        let all: Vec<u64> = (0..1000).collect();
        let a = pick(&mut Rng(1), &all, 100);
        assert_eq!(a, pick(&mut Rng(1), &all, 100));
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(pick(&mut Rng(1), &all, 2000).len(), 1000);
    }
}
