//! What each Volume operation costs on real ZFS: txg syncs (the unit of latency: every
//! modifying ioctl waits for one) and datasets/snapshots it leaves in the SR. Read from
//! the pool's `txgs` kstat around each call. Prints a table (and records it under
//! target/vm-results/) and checks every row against the exact costs the design has, on
//! both OpenZFS lines (2.4+: snapshot/clone with their properties in one channel program,
//! `zfs.sync.clone`; 2.1: `lzc_snapshot`, then `lzc_clone`, whose properties take sync tasks
//! of their own).
//!
//! Two things besides the calls themselves would make the counts vary from run to run, and
//! the test takes both away so that every count is the call's own:
//! * the sync thread's timer txgs (one every `zfs_txg_timeout` seconds, dirty or not), which
//!   would land inside a call now and then: the test raises that timeout for its duration
//!   (restored on drop);
//! * udev, which opens every new or renamed zvol (and re-probes after a close-after-write)
//!   for a few milliseconds, during which ZFS answers EBUSY to its destroy: a destroy then
//!   retries (a txg per attempt, for a bounded time) or leaves a tombstone. Each call starts
//!   after `udevadm settle`, as calls from xapi, seconds apart, do; the revert to an older
//!   snapshot destroys a zvol right after a rollback touched it (and on 2.1 right after its
//!   clone appeared), so udev's event queue is held for that call (its events run after it).
//!
//! A call's count runs until the pool is quiet ([`quiet_txg`]), so the txg the kernel syncs
//! on its own right after destroying a clone is counted whether it opens before or after the
//! call returns.

mod support;

use support::*;
use zfs_volume::sr::{PoolSource, Provisioning, Sr, SrConfig};

fn last_txg(pool: &str) -> u64 {
    // Columns: txg birth state ...; the last line is the open txg.
    let s = std::fs::read_to_string(format!("/proc/spl/kstat/zfs/{pool}/txgs")).unwrap();
    s.lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

/// The open txg once the pool has opened no new one for 300 ms. With no timer txgs
/// ([`NoTimerTxgs`]) that is when the work a call started is over, the kernel's own follow-up
/// included: after a destroy it syncs one more txg at once to free the destroyed blocks
/// (bptree/livelist), which may open before or after the call returns; counted always, the
/// number does not depend on that race.
fn quiet_txg(pool: &str) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut last = last_txg(pool);
    let mut still = 0;
    while still < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = last_txg(pool);
        if now == last {
            still += 1;
        } else {
            (last, still) = (now, 0);
        }
    }
    last
}

const TXG_TIMEOUT: &str = "/sys/module/zfs/parameters/zfs_txg_timeout";

/// `zfs_txg_timeout` raised to an hour while alive, restored on drop (a module-wide
/// parameter: this file's one test is the only one in its binary, and the VM harness runs the
/// binaries one after another).
struct NoTimerTxgs(String);

impl NoTimerTxgs {
    fn new(pool: &str) -> NoTimerTxgs {
        let old = std::fs::read_to_string(TXG_TIMEOUT).unwrap();
        std::fs::write(TXG_TIMEOUT, "3600").unwrap();
        // The sync thread reads the timeout when it starts waiting: make it start over.
        run("zpool", &["sync", pool]);
        quiet_txg(pool);
        NoTimerTxgs(old.trim().to_string())
    }
}

impl Drop for NoTimerTxgs {
    fn drop(&mut self) {
        let _ = std::fs::write(TXG_TIMEOUT, &self.0);
    }
}

struct Meter<'a> {
    pool: &'a str,
    sr: &'a Sr,
    rows: Vec<(String, u64, usize)>,
    /// The txgs each call synced, `[open txg before, open txg after)`.
    spans: Vec<(u64, u64)>,
}

/// udev's event queue held while alive (events are queued, no rule runs, so nothing opens
/// a zvol behind the test's back); released on drop, also on a panic.
struct UdevHeld;

impl UdevHeld {
    fn new() -> UdevHeld {
        run("udevadm", &["control", "--stop-exec-queue"]);
        UdevHeld
    }
}

impl Drop for UdevHeld {
    fn drop(&mut self) {
        let _ = std::process::Command::new("udevadm")
            .args(["control", "--start-exec-queue"])
            .status();
    }
}

impl Meter<'_> {
    fn measure<T>(&mut self, what: &str, f: impl FnOnce() -> T) -> T {
        self.measure_with(what, false, f)
    }

    /// [`Meter::measure`] with udev's event queue held during the call.
    fn measure_udev_held<T>(&mut self, what: &str, f: impl FnOnce() -> T) -> T {
        self.measure_with(what, true, f)
    }

    fn measure_with<T>(&mut self, what: &str, hold_udev: bool, f: impl FnOnce() -> T) -> T {
        run("udevadm", &["settle"]);
        let held = hold_udev.then(UdevHeld::new);
        let before = last_txg(self.pool);
        let r = f();
        drop(held);
        let after = quiet_txg(self.pool);
        let objects = zfs_list_all(self.sr.dataset()).len() - 4;
        self.rows.push((what.to_string(), after - before, objects));
        self.spans.push((before, after));
        r
    }

    /// What ZFS itself logged in each call's txgs (`zpool history -i`: one line per sync
    /// task step, `[txg:N]`): shown when a count is not the expected one, to say why.
    fn what_synced(&self) -> String {
        let history = run("zpool", &["history", "-i", self.pool]);
        let mut out = String::new();
        for ((what, txgs, _), (from, to)) in self.rows.iter().zip(&self.spans) {
            out.push_str(&format!("{what} ({txgs} txg):\n"));
            for line in history.lines() {
                let txg = line
                    .split_once("[txg:")
                    .and_then(|(_, r)| r.split_once(']'))
                    .and_then(|(n, _)| n.parse::<u64>().ok());
                if txg.is_some_and(|t| (*from..*to).contains(&t)) {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
        out
    }
}

/// One expected row: what, txgs with `zfs.sync.clone` (2.4+), txgs without (2.1), and the
/// datasets+snapshots in the SR after the call (the same on both).
type Want = (&'static str, u64, u64, usize);

/// The exact costs, in call order, as measured on 2.4.4 and 2.1.11 (the same on every run:
/// `what_synced` prints what ZFS logged in each txg when a row differs). Why each count is
/// what it is:
/// * every ZFS sync task (a channel program run with `program_sync`, a snapshot, a rename, a
///   rollback, a property set, a `volsize` change) takes one txg of its own; nosync programs
///   (stat, ls, the checks before a change) and sync tasks failing their open-context check
///   (the rollback refused with EEXIST) take none;
/// * create: `lzc_create` makes the zvol (1), then sets the properties in a sync task of its
///   own (`zfs_ioc_create`: "It would be nice to do this atomically") (1); on 2.1 one more
///   txg, which logs nothing, falls between the two inside the one ioctl: 2 / 3;
/// * snapshot and clone: 2.4+ does snapshot+clone+properties (of a volume) or
///   clone+properties (of a snapshot VDI, whose content snapshot exists) in one program: 1;
///   2.1 takes the snapshot (1), then `lzc_clone` takes 3 like `lzc_create` (the clone, the
///   silent txg, the properties): 4 / 3;
/// * set: one property ioctl with the key and the new listing record: 1;
/// * resize: the listing record is dropped (1), `volsize` set (1: `zvol_set_volsize` waits
///   for its own txg), the record written back (1): 3;
/// * revert to the latest snapshot: one `lzc_rollback_to` (the clone swap and the destroy
///   of `%rollback`, whose blocks are freed in that same txg): 1;
/// * revert to an older snapshot: s1's content is a snapshot of the volume but not its
///   newest (a nosync read says so), so no rollback is tried (as s1 predates the resize, that
///   would drop and write back the listing record around it: 2 txgs); 2.4+ destroys the
///   volume and clones the content under its name with its properties in one program
///   (revert_in_place.lua: it promotes the clone of the newest snapshot, destroys the old
///   dataset, no clone, so freed in that txg, and collects what it leaves clone-less), 1;
///   2.1 clones the content to gc/ without properties (`lzc_clone`: the clone and the
///   silent txg, 2), runs the destroy program on the volume in place, which sets the clone's
///   properties in its txg (1), and renames the clone into place (1): 1 / 4;
/// * a destroy is one program (promote the heir, destroy, collect clone-less origins);
///   destroying a dataset created as a clone (it has a livelist) makes the kernel's
///   livelist-delete thread sync one more txg right after; any other dataset is freed within
///   its own txg; a missing key syncs nothing.
const WANT: &[Want] = &[
    ("Volume.create", 2, 3, 1),
    ("Volume.set", 1, 1, 1),
    ("Volume.snapshot (of a volume)", 1, 4, 3),
    ("Volume.snapshot (of a snapshot)", 1, 3, 4),
    ("Volume.clone (of a volume)", 1, 4, 6),
    ("Volume.clone (of a snapshot)", 1, 3, 7),
    ("Volume.resize", 3, 3, 7),
    ("Volume.stat", 0, 0, 7),
    ("SR.ls", 0, 0, 7),
    ("Volume.snapshot (second)", 1, 4, 9),
    ("Volume.revert (latest snapshot: rollback)", 1, 1, 9),
    // One new dataset, the old one and a snapshot nothing clones any more gone.
    ("Volume.revert (older snapshot: swap)", 1, 4, 8),
    // The clone and its origin snapshot (1) + its livelist (1).
    ("Volume.destroy (clone)", 2, 2, 6),
    // The volume is now a clone of s1's content: program + livelist.
    ("Volume.destroy (the reverted volume)", 2, 2, 5),
    ("Volume.destroy (missing key)", 0, 0, 5),
    ("Volume.destroy (snapshot VDI)", 2, 2, 4),
    ("Volume.destroy (snapshot of a snapshot)", 2, 2, 3),
    // The last clone of s1's content snapshot: that goes too.
    ("Volume.destroy (clone of a snapshot)", 2, 2, 1),
    // s2 took the history over when the swap promoted it: no clone, freed in its txg.
    ("Volume.destroy (snapshot VDI owning the history)", 1, 1, 0),
    // w with a snapshot VDI: promote the snapshot VDI, destroy w (its clone since the
    // promote, but made a clone by it, so without a livelist) and the content snapshot it
    // leaves clone-less, in one program: 1.
    (
        "Volume.destroy (volume with a snapshot VDI: promote)",
        1,
        1,
        1,
    ),
    ("Volume.destroy (promoted snapshot VDI)", 1, 1, 0),
];

#[test]
#[ignore = "needs the ZFS kernel module: runs in the test VM (scripts/test)"]
fn txg_syncs_and_datasets_per_operation() {
    let pool = TestPool::new("cost", 512);
    let cfg = SrConfig {
        source: PoolSource::Existing(pool.name.clone()),
        provisioning: Provisioning::Thin,
        volblocksize: 16384,
        compression: None,
    };
    let sr = Sr::create("c0575000-0000-4000-8000-000000000001", &cfg, "costs", "").unwrap();
    let sync_clone = sr.capabilities().unwrap().sync_clone;
    let quiet = NoTimerTxgs::new(&pool.name);
    let mut m = Meter {
        pool: &pool.name,
        sr: &sr,
        rows: vec![],
        spans: vec![],
    };
    let v = m.measure("Volume.create", || {
        sr.volume_create("v", "", 16 << 20, false).unwrap()
    });
    m.measure("Volume.set", || {
        sr.volume_set(&v.key, "vdi-type", "user").unwrap()
    });
    let s1 = m.measure("Volume.snapshot (of a volume)", || {
        sr.volume_snapshot(&v.key).unwrap()
    });
    let ss = m.measure("Volume.snapshot (of a snapshot)", || {
        sr.volume_snapshot(&s1.key).unwrap()
    });
    let c = m.measure("Volume.clone (of a volume)", || {
        sr.volume_clone(&v.key).unwrap()
    });
    let cs = m.measure("Volume.clone (of a snapshot)", || {
        sr.volume_clone(&s1.key).unwrap()
    });
    m.measure("Volume.resize", || {
        sr.volume_resize(&v.key, 32 << 20).unwrap()
    });
    m.measure("Volume.stat", || sr.volume_stat(&v.key).unwrap());
    m.measure("SR.ls", || sr.ls().unwrap());
    let s2 = m.measure("Volume.snapshot (second)", || {
        sr.volume_snapshot(&v.key).unwrap()
    });
    // s2 is the volume's latest ZFS snapshot and has its size: a plain rollback.
    m.measure("Volume.revert (latest snapshot: rollback)", || {
        sr.volume_revert(&s2.key, &v.key).unwrap()
    });
    // s1's snapshot has newer ones (s2's, the clone's) that must survive: no rollback, with
    // udev held (see the module docs).
    m.measure_udev_held("Volume.revert (older snapshot: swap)", || {
        sr.volume_revert(&s1.key, &v.key).unwrap()
    });
    m.measure("Volume.destroy (clone)", || {
        sr.volume_destroy(&c.key).unwrap()
    });
    m.measure("Volume.destroy (the reverted volume)", || {
        sr.volume_destroy(&v.key).unwrap()
    });
    m.measure("Volume.destroy (missing key)", || {
        sr.volume_destroy(&v.key).unwrap()
    });
    for (what, k) in [
        ("Volume.destroy (snapshot VDI)", &s1.key),
        ("Volume.destroy (snapshot of a snapshot)", &ss.key),
        ("Volume.destroy (clone of a snapshot)", &cs.key),
        ("Volume.destroy (snapshot VDI owning the history)", &s2.key),
    ] {
        m.measure(what, || sr.volume_destroy(k).unwrap());
    }
    // A volume with snapshots, destroyed before them (the reverted one above had none).
    let w = sr.volume_create("w", "", 16 << 20, false).unwrap();
    let sw = sr.volume_snapshot(&w.key).unwrap();
    m.measure(
        "Volume.destroy (volume with a snapshot VDI: promote)",
        || sr.volume_destroy(&w.key).unwrap(),
    );
    m.measure("Volume.destroy (promoted snapshot VDI)", || {
        sr.volume_destroy(&sw.key).unwrap()
    });
    drop(quiet);
    let version = zfs_volume::lzc::module_version().unwrap_or_default();
    let mut table = format!(
        "costs on zfs {version} (txg syncs, datasets+snapshots in the SR after the call):\n"
    );
    for (what, txgs, objects) in &m.rows {
        table.push_str(&format!(
            "  {what:<52} {txgs:>2} txg  {objects:>3} objects\n"
        ));
    }
    eprintln!("{table}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/vm-results");
    let _ = std::fs::create_dir_all(&dir);
    let short = version.split('-').next().unwrap_or("x").to_string();
    std::fs::write(dir.join(format!("costs-zfs{short}.txt")), &table).unwrap();

    // Every row, exactly: a count above is a sync task too many (a slower call), below is a
    // step that did not happen; the objects say what each call left behind.
    let got: Vec<(&str, u64, usize)> = m
        .rows
        .iter()
        .map(|(w, t, o)| (w.as_str(), *t, *o))
        .collect();
    let want: Vec<(&str, u64, usize)> = WANT
        .iter()
        .map(|&(w, t24, t21, o)| (w, if sync_clone { t24 } else { t21 }, o))
        .collect();
    if got != want {
        eprintln!("what each call synced:\n{}", m.what_synced());
    }
    assert_eq!(
        got, want,
        "(what, txgs, objects) on zfs {version} (sync_clone {sync_clone})"
    );
    let left = zfs_list_all(sr.dataset());
    assert_eq!(left.len(), 4, "leftovers: {left:?}");
}
