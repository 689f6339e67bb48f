//! The admin CLI's SR commands (`xapi-zvol status|tree|check --sr SR`) and their text.
//! Not part of SMAPIv3: the daemon never sends these. Each is a pure read of the SR.

use std::fmt;
use std::fmt::Write as _;

use zfs_volume::sr::{self, Sr};

use crate::error::PluginError;

/// An operator command of the admin CLI (`xapi-zvol status|tree|check --sr SR`), answered by the
/// backend as human-readable text. Not part of SMAPIv3: the daemon never sends these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCmd {
    /// Summary of one SR: dataset, space, health, volume count.
    Status {
        /// The SR, as the opaque `sr` string returned by `SR.attach` or as a dataset name.
        sr: String,
    },
    /// The SR's volumes, snapshots, clones and internal datasets as a tree.
    Tree {
        /// The SR, as for [`AdminCmd::Status`].
        sr: String,
    },
    /// Consistency check of the SR against the invariants of `semantics.md` (read-only).
    Check {
        /// The SR, as for [`AdminCmd::Status`].
        sr: String,
    },
}

impl AdminCmd {
    /// The subcommand name (`status`, `tree`, `check`).
    pub fn name(&self) -> &'static str {
        match self {
            AdminCmd::Status { .. } => "status",
            AdminCmd::Tree { .. } => "tree",
            AdminCmd::Check { .. } => "check",
        }
    }

    /// The SR the command is about.
    pub fn sr(&self) -> &str {
        match self {
            AdminCmd::Status { sr } | AdminCmd::Tree { sr } | AdminCmd::Check { sr } => sr,
        }
    }
}

impl fmt::Display for AdminCmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} --sr {}", self.name(), self.sr())
    }
}

/// Runs an admin command and returns its report.
pub fn run(cmd: &AdminCmd) -> Result<String, PluginError> {
    let sr = Sr::open(cmd.sr())?;
    match cmd {
        AdminCmd::Status { .. } => status_text(&sr),
        AdminCmd::Tree { .. } => Ok(sr.tree()?),
        AdminCmd::Check { .. } => check_text(&sr),
    }
}

/// One line for an SR's health (admin CLI, Plugin.diagnostics).
pub fn health_line(h: &sr::Health) -> String {
    match h {
        sr::Health::Healthy(m) if m.is_empty() => "healthy".into(),
        sr::Health::Healthy(m) => format!("healthy ({m})"),
        sr::Health::Recovering(m) => format!("recovering ({m})"),
        sr::Health::Unavailable(m) => format!("UNAVAILABLE ({m})"),
    }
}

/// Bytes in GiB with two decimals.
pub fn gib(n: u64) -> String {
    format!("{:.2} GiB", n as f64 / (1u64 << 30) as f64)
}

/// `xapi-zvol status`: dataset, uuid, name, space, health, provisioning, counts.
fn status_text(sr: &Sr) -> Result<String, PluginError> {
    let st = sr.stat()?;
    let vdis = sr.ls()?;
    let snaps = vdis.iter().filter(|v| !v.read_write()).count();
    let mut s = String::new();
    let _ = writeln!(s, "SR {} \"{}\"", st.uuid, st.name);
    let _ = writeln!(s, "  dataset:      {}", st.dataset);
    let _ = writeln!(s, "  description:  {}", st.description);
    let _ = writeln!(s, "  health:       {}", health_line(&st.health));
    let _ = writeln!(
        s,
        "  space:        {} free of {} ({} used)",
        gib(st.free_space),
        gib(st.total_space),
        gib(st.total_space.saturating_sub(st.free_space))
    );
    let _ = writeln!(
        s,
        "  provisioning: {}, volblocksize {}",
        sr.provisioning().as_str(),
        sr.volblocksize()
    );
    let _ = writeln!(
        s,
        "  VDIs:         {} ({} volumes, {} snapshots)",
        vdis.len(),
        vdis.len() - snaps,
        snaps
    );
    Ok(s)
}

/// `xapi-zvol check`. Decision: a clean SR prints a report and exits 0; any problem makes the
/// command **fail** (exit 1, the full report on stderr), so `xapi-zvol check --sr X` can gate
/// scripts and monitoring. Read-only either way: the backlog is collected by the next call that
/// changes the SR (or by SR.attach), never by `check`.
fn check_text(sr: &Sr) -> Result<String, PluginError> {
    let r = sr.check()?;
    let mut s = format!(
        "SR {} ({}): {} VDIs, {} tombstones, {} orphan snapshots\n",
        sr.uuid(),
        sr.dataset(),
        r.vdis,
        r.tombstones.len(),
        r.orphan_snapshots.len()
    );
    if r.problems.is_empty() {
        s.push_str("OK: no problems found\n");
        return Ok(s);
    }
    let _ = writeln!(s, "PROBLEMS FOUND ({}):", r.problems.len());
    for p in &r.problems {
        let _ = writeln!(s, "  - {p}");
    }
    Err(PluginError::backend(s))
}
