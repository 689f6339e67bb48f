//! `Plugin.query` and `Plugin.diagnostics`, served by both plugins (contract §4.2).

use std::fmt::Write as _;

use zfs_volume::lzc::module_version;
use zfs_volume::sr::Sr;

use super::context::{Context, PluginKind};
use super::datapath;
use crate::error::PluginError;
use crate::query;
use crate::types::QueryResult;

crate::request! {
    /// `Plugin.query`, `Plugin.diagnostics`: nothing but the debug context.
    DbgOnly { dbg: String }
}

/// `Plugin.query`: what the plugin is and can do; never touches ZFS.
pub fn query(cx: &Context, _: DbgOnly) -> Result<QueryResult, PluginError> {
    Ok(match cx.plugin {
        PluginKind::Volume => query::volume_query(),
        PluginKind::Datapath => query::datapath_query(),
    })
}

/// `Plugin.diagnostics`: free text about the plugin's state; never fails (whatever cannot be
/// read is reported as such).
pub fn diagnostics(cx: &Context, _: DbgOnly) -> Result<String, PluginError> {
    Ok(match cx.plugin {
        PluginKind::Volume => volume_diagnostics(),
        PluginKind::Datapath => datapath::diagnostics(&cx.datapath),
    })
}

/// The volume plugin's diagnostics: the module version, then each SR found with its health,
/// space and a consistency check (all read-only).
fn volume_diagnostics() -> String {
    let mut s = format!(
        "xapi-zvol {} volume plugin (ZFS zvols)\n",
        env!("CARGO_PKG_VERSION")
    );
    match module_version() {
        Ok(v) => {
            let _ = writeln!(s, "zfs kernel module: {v}");
        }
        Err(e) => {
            let _ = writeln!(s, "zfs kernel module: unavailable ({e})");
            return s;
        }
    }
    let found = match Sr::probe(None) {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(s, "SR probe failed: {e}");
            return s;
        }
    };
    let mut caps_done = false;
    let _ = writeln!(s, "SRs found: {}", found.len());
    for f in &found {
        let sr = match Sr::open(&f.dataset) {
            Ok(sr) => sr,
            Err(e) => {
                let _ = writeln!(s, "SR {} ({}): cannot open: {e}", f.uuid, f.dataset);
                continue;
            }
        };
        if !caps_done {
            caps_done = true;
            match sr.capabilities() {
                Ok(c) => {
                    let _ = writeln!(
                        s,
                        "capabilities: zfs {}.{}.{}, sync clone in channel programs: {}, sync rename_snapshot: {}",
                        c.numeric.0, c.numeric.1, c.numeric.2, c.sync_clone, c.sync_rename_snapshot
                    );
                }
                Err(e) => {
                    let _ = writeln!(s, "capabilities: unknown ({e})");
                }
            }
        }
        let _ = writeln!(s, "SR {} \"{}\" ({}):", f.uuid, f.name, f.dataset);
        match sr.stat() {
            Ok(st) => {
                let _ = writeln!(
                    s,
                    "  health {}, {} free of {}",
                    crate::admin::health_line(&st.health),
                    crate::admin::gib(st.free_space),
                    crate::admin::gib(st.total_space)
                );
            }
            Err(e) => {
                let _ = writeln!(s, "  stat failed: {e}");
            }
        }
        match sr.check() {
            Ok(r) if r.problems.is_empty() => {
                let _ = writeln!(s, "  check: OK, {} VDIs", r.vdis);
            }
            Ok(r) => {
                let _ = writeln!(
                    s,
                    "  check: {} VDIs, {} problem(s):",
                    r.vdis,
                    r.problems.len()
                );
                for p in &r.problems {
                    let _ = writeln!(s, "    - {p}");
                }
            }
            Err(e) => {
                let _ = writeln!(s, "  check failed: {e}");
            }
        }
    }
    if !caps_done {
        let _ = writeln!(s, "capabilities: not probed (no SR found)");
    }
    s
}
