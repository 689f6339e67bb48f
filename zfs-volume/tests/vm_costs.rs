//! What each Volume operation costs on real ZFS: txg syncs (the unit of latency: every
//! modifying ioctl waits for one) and datasets/snapshots it leaves in the SR. Read from
//! the pool's `txgs` kstat around each call. Prints a table (and records it under
//! target/vm-results/) and checks the costs the design promises.

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

struct Meter<'a> {
    pool: &'a str,
    sr: &'a Sr,
    rows: Vec<(String, u64, usize)>,
}

impl Meter<'_> {
    fn measure<T>(&mut self, what: &str, f: impl FnOnce() -> T) -> T {
        let before = last_txg(self.pool);
        let r = f();
        let txgs = last_txg(self.pool) - before;
        let objects = zfs_list_all(self.sr.dataset()).len() - 4;
        self.rows.push((what.to_string(), txgs, objects));
        r
    }
    fn txgs(&self, what: &str) -> u64 {
        self.rows.iter().find(|r| r.0 == what).unwrap().1
    }
}

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
    let mut m = Meter {
        pool: &pool.name,
        sr: &sr,
        rows: vec![],
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
    m.measure("Volume.revert (latest snapshot)", || {
        sr.volume_revert(&s2.key, &v.key).unwrap()
    });
    m.measure("Volume.revert (older snapshot)", || {
        sr.volume_revert(&s1.key, &v.key).unwrap()
    });
    m.measure("Volume.destroy (leaf clone)", || {
        sr.volume_destroy(&c.key).unwrap()
    });
    m.measure("Volume.destroy (volume with snapshots: promote)", || {
        sr.volume_destroy(&v.key).unwrap()
    });
    m.measure("Volume.destroy (missing key)", || {
        sr.volume_destroy(&v.key).unwrap()
    });
    for k in [&s1.key, &ss.key, &cs.key, &s2.key] {
        m.measure("Volume.destroy (rest)", || sr.volume_destroy(k).unwrap());
    }
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

    // What the design promises (the kstat can only over-count, e.g. a timer txg).
    assert_eq!(m.txgs("Volume.stat"), 0, "stat must not sync");
    assert_eq!(m.txgs("SR.ls"), 0, "ls must not sync");
    assert_eq!(m.txgs("Volume.destroy (missing key)"), 0);
    // lzc_create/lzc_clone set properties in a sync task of their own (zfs_ioc_create:
    // "It would be nice to do this atomically"), as `zfs create -o` does.
    assert!(m.txgs("Volume.create") <= 3);
    assert!(
        m.txgs("Volume.destroy (volume with snapshots: promote)") <= 2,
        "destroy is one program"
    );
    let snap = m.txgs("Volume.snapshot (of a volume)");
    if sync_clone {
        assert!(
            snap <= 1,
            "snapshot+clone is one program on 2.4+, got {snap}"
        );
        assert!(
            m.txgs("Volume.snapshot (of a snapshot)") <= 1,
            "a snapshot of a snapshot clones its content"
        );
        assert!(m.txgs("Volume.clone (of a snapshot)") <= 1);
    } else {
        assert!(
            snap <= 4,
            "snapshot + clone + properties before 2.4, got {snap}"
        );
    }
    let left = zfs_list_all(sr.dataset());
    assert_eq!(left.len(), 4, "leftovers: {left:?}");
}
