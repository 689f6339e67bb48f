//! The real backend: every SMAPIv3 SR/Volume method delegates to [`zfs_volume::sr::Sr`].
//!
//! * The opaque `sr` string is the SR **dataset** (`zvol-<uuid>/zvol-sr-<uuid>` when SR.create
//!   made the pool, `<pool or dataset>/zvol-sr-<uuid>` otherwise); every call reopens it with
//!   [`Sr::open`], which checks our marker (nothing else is ever touched).
//! * SR.create's device-config (exactly one of `device`, `vdev`, `pool`; optional
//!   `provisioning`, `volblocksize`, `compression`; unknown keys ignored because xapi adds its
//!   own) is parsed by [`parse_sr_config`]; the returned configuration adds `sr_uuid` and `pool`,
//!   which is all SR.attach needs (it never gets the uuid from xapi).
//! * A volume's key is its zfs-volume key (a UUID we issue), also reported as its uuid; its URI
//!   is `zvol:///dev/zvol/<dataset>`, built with [`datapath::zvol_uri`] so the datapath plugin
//!   parses it back exactly.
//! * Errors convert through the single `From<zfs_volume::Error> for PluginError`
//!   (`error_map.rs`).

use std::fmt::Write as _;
use std::path::Path;

use zfs_volume::lzc::{module_version, Compression};
use zfs_volume::sr::{self, PoolSource, Provisioning, Sr, SrConfig, SrInfo, VdiInfo};

use crate::backend::{AdminCmd, VolumeBackend};
use crate::datapath;
use crate::error::PluginError;
use crate::logging;
use crate::query::{
    CONFIG_COMPRESSION, CONFIG_DEVICE, CONFIG_POOL, CONFIG_PROVISIONING, CONFIG_VDEV,
    CONFIG_VOLBLOCKSIZE,
};
use crate::types::{Configuration, Health, Keys, ProbeResult, SrStat, Volume};

/// Configuration key SR.create adds: the SR uuid (SR.attach needs it, xapi does not pass it).
pub const CONFIG_SR_UUID: &str = "sr_uuid";

/// Default volblocksize when `volblocksize` is absent (zfs-volume's, 16 KiB).
pub use zfs_volume::sr::DEFAULT_VOLBLOCKSIZE;

/// The ZFS backend (stateless: each call opens what it needs).
#[derive(Debug, Default, Clone, Copy)]
pub struct ZfsBackend;

/// Builds the backend used in plugin mode (called lazily by `dispatch`, only for calls that
/// need it, so `Plugin.query` and the datapath plugin never touch ZFS) and by the admin CLI.
/// Construction itself does nothing: `/dev/zfs` is opened by the first call that needs it.
pub fn make_backend() -> Box<dyn VolumeBackend> {
    Box::new(ZfsBackend)
}

// ---------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------

/// Bytes as the IDL's int64 (sizes above i64::MAX cannot occur on a real pool; saturate).
fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Sizes from the wire: the adapter already rejected negative values.
fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The SMAPI volume for a zfs-volume VDI.
pub fn volume_of(v: VdiInfo) -> Volume {
    let uri = datapath::zvol_uri(Path::new(&v.device_path()));
    Volume {
        uuid: Some(v.key.clone()),
        read_write: v.read_write(),
        key: v.key,
        name: v.name,
        description: v.description,
        sharable: v.sharable,
        virtual_size: i64_of(v.virtual_size),
        physical_utilisation: i64_of(v.physical_utilisation),
        uri: vec![uri],
        keys: v.keys.into_iter().collect::<Keys>(),
        volume_type: None,
        cbt_enabled: None,
    }
}

fn health_of(h: sr::Health) -> Health {
    match h {
        sr::Health::Healthy(m) => Health::Healthy(m),
        sr::Health::Recovering(m) => Health::Recovering(m),
        sr::Health::Unavailable(m) => Health::Unavailable(m),
    }
}

/// The SMAPI sr_stat for an SR (`sr` = its dataset, the opaque string).
pub fn sr_stat_of(info: SrInfo) -> SrStat {
    SrStat {
        sr: info.dataset,
        name: info.name,
        uuid: Some(info.uuid),
        description: info.description,
        free_space: i64_of(info.free_space),
        total_space: i64_of(info.total_space),
        datasources: Vec::new(),
        clustered: false,
        health: health_of(info.health),
    }
}

// ---------------------------------------------------------------------------------------
// SR.create configuration
// ---------------------------------------------------------------------------------------

fn non_empty<'a>(c: &'a Configuration, key: &str) -> Option<&'a str> {
    c.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// `device`: comma-separated absolute paths (whitespace around commas is ignored).
pub fn parse_devices(spec: &str) -> Result<Vec<String>, PluginError> {
    let devices: Vec<String> = spec.split(',').map(|s| s.trim().to_string()).collect();
    for d in &devices {
        if d.is_empty() {
            return Err(PluginError::bad_configuration(
                CONFIG_DEVICE,
                format!("empty entry in {spec:?}"),
            ));
        }
        if !d.starts_with('/') || d.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(PluginError::bad_configuration(
                CONFIG_DEVICE,
                format!("{d:?} is not an absolute device or file path (e.g. /dev/sdb or /dev/disk/by-id/...)"),
            ));
        }
    }
    Ok(devices)
}

/// `vdev`: a zpool vdev specification. Every word must start with a letter (a vdev type such
/// as `mirror`, `raidz2`, `log`) or `/` (a device); a word starting with `-` would be read by
/// `zpool create` as an option (getopt permutes arguments), so it is refused here.
pub fn parse_vdev(spec: &str) -> Result<String, PluginError> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    if words.is_empty() {
        return Err(PluginError::bad_configuration(
            CONFIG_VDEV,
            "empty vdev specification",
        ));
    }
    for w in &words {
        let first = w.chars().next().unwrap_or(' ');
        if !(first.is_ascii_alphabetic() || first == '/') || w.chars().any(|c| c.is_control()) {
            return Err(PluginError::bad_configuration(
                CONFIG_VDEV,
                format!("{w:?}: each word must be a vdev type (mirror, raidz1, ...) or an absolute device path"),
            ));
        }
    }
    if !words.iter().any(|w| w.starts_with('/')) {
        return Err(PluginError::bad_configuration(
            CONFIG_VDEV,
            format!("{spec:?} names no device"),
        ));
    }
    Ok(words.join(" "))
}

/// `volblocksize`: bytes (`16384`) or with a binary suffix (`16K`, `16k`, `16KiB`, `128K`).
/// The range (power of two, 4 KiB..128 KiB) is checked by `Sr::create`.
pub fn parse_volblocksize(s: &str) -> Result<u64, PluginError> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let (digits, mult) = if let Some(d) = lower
        .strip_suffix("kib")
        .or_else(|| lower.strip_suffix('k'))
    {
        (d.to_string(), 1024)
    } else {
        (lower.strip_suffix('b').unwrap_or(&lower).to_string(), 1)
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| {
            PluginError::bad_configuration(
                CONFIG_VOLBLOCKSIZE,
                format!("{s:?} is not a size in bytes (e.g. 16384 or 16K)"),
            )
        })
}

/// Parses SR.create's configuration (see the module docs).
pub fn parse_sr_config(c: &Configuration) -> Result<SrConfig, PluginError> {
    let given: Vec<&str> = [CONFIG_DEVICE, CONFIG_VDEV, CONFIG_POOL]
        .into_iter()
        .filter(|k| c.contains_key(*k))
        .collect();
    let source = match given.as_slice() {
        [] => {
            return Err(PluginError::bad_configuration(
                CONFIG_DEVICE,
                "missing: give exactly one of device (new pool on these devices), vdev (new pool from a zpool vdev \
                 specification) or pool (an existing pool or dataset)",
            ))
        }
        [one] => {
            let v = non_empty(c, one)
                .ok_or_else(|| PluginError::bad_configuration(*one, "empty value"))?;
            match *one {
                CONFIG_DEVICE => PoolSource::Devices(parse_devices(v)?),
                CONFIG_VDEV => PoolSource::Vdev(parse_vdev(v)?),
                _ => PoolSource::Existing(v.to_string()),
            }
        }
        many => {
            return Err(PluginError::bad_configuration(
                many[1],
                format!("give exactly one of device, vdev, pool (got {})", many.join(", ")),
            ))
        }
    };
    let provisioning = match non_empty(c, CONFIG_PROVISIONING) {
        None => Provisioning::Thin,
        Some(p) => Provisioning::parse(&p.to_ascii_lowercase()).ok_or_else(|| {
            PluginError::bad_configuration(
                CONFIG_PROVISIONING,
                format!("{p:?}: expected thin or thick"),
            )
        })?,
    };
    let volblocksize = match non_empty(c, CONFIG_VOLBLOCKSIZE) {
        None => DEFAULT_VOLBLOCKSIZE,
        Some(v) => parse_volblocksize(v)?,
    };
    let compression = match non_empty(c, CONFIG_COMPRESSION) {
        None => None,
        Some(v) => Some(Compression::parse(&v.to_ascii_lowercase()).ok_or_else(|| {
            PluginError::bad_configuration(
                CONFIG_COMPRESSION,
                format!("{v:?}: expected on, off, zle, lz4 or zstd"),
            )
        })?),
    };
    Ok(SrConfig {
        source,
        provisioning,
        volblocksize,
        compression,
    })
}

fn required<'a>(c: &'a Configuration, key: &str) -> Result<&'a str, PluginError> {
    non_empty(c, key).ok_or_else(|| {
        PluginError::bad_configuration(
            key,
            "missing: this device-config was not produced by SR.create of xapi-zvol (it adds sr_uuid and pool)",
        )
    })
}

/// In SR.create/SR.attach, a dataset without our marker where the SR should be is a
/// configuration problem of `pool`.
fn not_ours_is_config(e: zfs_volume::Error) -> PluginError {
    match e {
        zfs_volume::Error::NotOurs(ref ds) => PluginError::bad_configuration(
            CONFIG_POOL,
            format!("{ds} exists but is not an xapi-zvol SR dataset; refusing to touch it"),
        ),
        e => e.into(),
    }
}

/// `pool` must not be an SR dataset or anything below one (`<sr>/vol`, a volume, ...): an SR
/// nested in another SR's tree would be listed, collected or destroyed by the outer SR's calls.
/// An SR dataset is recognised the way every call recognises it, by opening it (local marker).
fn refuse_parent_inside_an_sr(parent: &str) -> Result<(), PluginError> {
    let mut prefix = String::new();
    for comp in parent.split('/') {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(comp);
        if prefix.contains('/') && Sr::open(&prefix).is_ok() {
            return Err(PluginError::bad_configuration(
                CONFIG_POOL,
                format!("{parent} is inside the xapi-zvol SR {prefix}; choose a pool or dataset outside any SR"),
            ));
        }
    }
    Ok(())
}

fn open(sr: &str) -> Result<Sr, PluginError> {
    Ok(Sr::open(sr)?)
}

// ---------------------------------------------------------------------------------------
// The trait
// ---------------------------------------------------------------------------------------

impl VolumeBackend for ZfsBackend {
    fn diagnostics(&self, _dbg: &str) -> Result<String, PluginError> {
        Ok(diagnostics_text())
    }

    fn sr_probe(
        &self,
        _dbg: &str,
        configuration: &Configuration,
    ) -> Result<Vec<ProbeResult>, PluginError> {
        let pool = non_empty(configuration, CONFIG_POOL);
        let device = non_empty(configuration, CONFIG_DEVICE);
        let mut out = Vec::new();
        for found in Sr::probe(pool)? {
            let mut conf = Configuration::new();
            conf.insert(CONFIG_POOL.into(), found.parent.clone());
            conf.insert(CONFIG_SR_UUID.into(), found.uuid.clone());
            if let Some(d) = device {
                conf.insert(CONFIG_DEVICE.into(), d.to_string());
            }
            // An SR we cannot stat (e.g. faulted pool) is still reported: with sr_uuid it is
            // complete (daemon rule), and an absent `sr` is allowed.
            let stat = Sr::open(&found.dataset)
                .and_then(|s| s.stat())
                .map(sr_stat_of);
            if let Err(e) = &stat {
                logging::warn(&format!("SR.probe: cannot stat {}: {e}", found.dataset));
            }
            out.push(ProbeResult {
                configuration: conf,
                complete: true,
                sr: stat.ok(),
                extra_info: Default::default(),
            });
        }
        Ok(out)
    }

    fn sr_create(
        &self,
        _dbg: &str,
        uuid: &str,
        configuration: &Configuration,
        name: &str,
        description: &str,
    ) -> Result<Configuration, PluginError> {
        let cfg = parse_sr_config(configuration)?;
        if let PoolSource::Existing(parent) = &cfg.source {
            refuse_parent_inside_an_sr(parent)?;
        }
        let sr = Sr::create(uuid, &cfg, name, description).map_err(not_ours_is_config)?;
        let parent = sr
            .dataset()
            .rsplit_once('/')
            .map(|(p, _)| p.to_string())
            .unwrap_or_else(|| sr.pool().to_string());
        let mut out = configuration.clone();
        out.insert(CONFIG_SR_UUID.into(), sr.uuid().to_string());
        out.insert(CONFIG_POOL.into(), parent);
        Ok(out)
    }

    fn sr_attach(&self, _dbg: &str, configuration: &Configuration) -> Result<String, PluginError> {
        let uuid = required(configuration, CONFIG_SR_UUID)?;
        let pool = required(configuration, CONFIG_POOL)?;
        let devices = match non_empty(configuration, CONFIG_DEVICE) {
            Some(d) => parse_devices(d)?,
            None => Vec::new(),
        };
        let sr = Sr::attach(pool, uuid, &devices).map_err(not_ours_is_config)?;
        Ok(sr.dataset().to_string())
    }

    fn sr_detach(&self, _dbg: &str, sr: &str) -> Result<(), PluginError> {
        match Sr::open(sr) {
            Ok(s) => Ok(s.detach()?),
            // Detach is idempotent: an SR that is gone (or whose pool is exported) is detached.
            Err(zfs_volume::Error::SrNotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn sr_destroy(&self, _dbg: &str, sr: &str) -> Result<(), PluginError> {
        // Refuse names that could not be an SR before anything looks at the pool.
        sr::layout::check_dataset_name(sr)
            .map_err(|_| zfs_volume::Error::SrNotFound(sr.to_string()))?;
        Ok(Sr::destroy_sr(sr)?)
    }

    fn sr_stat(&self, _dbg: &str, sr: &str) -> Result<SrStat, PluginError> {
        Ok(sr_stat_of(open(sr)?.stat()?))
    }

    fn sr_set_name(&self, _dbg: &str, sr: &str, new_name: &str) -> Result<(), PluginError> {
        Ok(open(sr)?.set_name(new_name)?)
    }

    fn sr_set_description(
        &self,
        _dbg: &str,
        sr: &str,
        new_description: &str,
    ) -> Result<(), PluginError> {
        Ok(open(sr)?.set_description(new_description)?)
    }

    fn sr_ls(&self, _dbg: &str, sr: &str) -> Result<Vec<Volume>, PluginError> {
        Ok(open(sr)?.ls()?.into_iter().map(volume_of).collect())
    }

    fn volume_create(
        &self,
        _dbg: &str,
        sr: &str,
        name: &str,
        description: &str,
        size: i64,
        sharable: bool,
    ) -> Result<Volume, PluginError> {
        Ok(volume_of(open(sr)?.volume_create(
            name,
            description,
            u64_of(size),
            sharable,
        )?))
    }

    fn volume_snapshot(&self, _dbg: &str, sr: &str, key: &str) -> Result<Volume, PluginError> {
        Ok(volume_of(open(sr)?.volume_snapshot(key)?))
    }

    fn volume_clone(&self, _dbg: &str, sr: &str, key: &str) -> Result<Volume, PluginError> {
        Ok(volume_of(open(sr)?.volume_clone(key)?))
    }

    fn volume_destroy(&self, _dbg: &str, sr: &str, key: &str) -> Result<(), PluginError> {
        Ok(open(sr)?.volume_destroy(key)?)
    }

    fn volume_revert(
        &self,
        _dbg: &str,
        sr: &str,
        snapshot: &str,
        key: &str,
    ) -> Result<(), PluginError> {
        Ok(open(sr)?.volume_revert(snapshot, key)?)
    }

    fn volume_set_name(
        &self,
        _dbg: &str,
        sr: &str,
        key: &str,
        new_name: &str,
    ) -> Result<(), PluginError> {
        Ok(open(sr)?.volume_set_name(key, new_name)?)
    }

    fn volume_set_description(
        &self,
        _dbg: &str,
        sr: &str,
        key: &str,
        new_description: &str,
    ) -> Result<(), PluginError> {
        Ok(open(sr)?.volume_set_description(key, new_description)?)
    }

    fn volume_set(
        &self,
        _dbg: &str,
        sr: &str,
        key: &str,
        k: &str,
        v: &str,
    ) -> Result<(), PluginError> {
        Ok(open(sr)?.volume_set(key, k, v)?)
    }

    fn volume_unset(&self, _dbg: &str, sr: &str, key: &str, k: &str) -> Result<(), PluginError> {
        Ok(open(sr)?.volume_unset(key, k)?)
    }

    fn volume_resize(
        &self,
        _dbg: &str,
        sr: &str,
        key: &str,
        new_size: i64,
    ) -> Result<(), PluginError> {
        Ok(open(sr)?.volume_resize(key, u64_of(new_size))?)
    }

    fn volume_stat(&self, _dbg: &str, sr: &str, key: &str) -> Result<Volume, PluginError> {
        Ok(volume_of(open(sr)?.volume_stat(key)?))
    }

    fn admin(&self, cmd: AdminCmd) -> Result<String, PluginError> {
        let sr = open(cmd.sr())?;
        match cmd {
            AdminCmd::Status { .. } => status_text(&sr),
            AdminCmd::Tree { .. } => Ok(sr.tree()?),
            AdminCmd::Check { .. } => check_text(&sr),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Text reports (admin CLI, Plugin.diagnostics)
// ---------------------------------------------------------------------------------------

fn health_line(h: &sr::Health) -> String {
    match h {
        sr::Health::Healthy(m) if m.is_empty() => "healthy".into(),
        sr::Health::Healthy(m) => format!("healthy ({m})"),
        sr::Health::Recovering(m) => format!("recovering ({m})"),
        sr::Health::Unavailable(m) => format!("UNAVAILABLE ({m})"),
    }
}

fn gib(n: u64) -> String {
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

/// `Plugin.diagnostics`: never fails; whatever cannot be read is reported as such.
fn diagnostics_text() -> String {
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
                    health_line(&st.health),
                    gib(st.free_space),
                    gib(st.total_space)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn conf(pairs: &[(&str, &str)]) -> Configuration {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn bad_key(r: Result<SrConfig, PluginError>) -> String {
        match r.unwrap_err().kind() {
            ErrorKind::BadConfiguration { key, .. } => key.clone(),
            k => panic!("not a configuration error: {k:?}"),
        }
    }

    #[test]
    fn sr_config_sources() {
        let c = parse_sr_config(&conf(&[
            ("device", "/dev/sdb, /dev/sdc"),
            ("xapi-extra", "x"),
        ]))
        .unwrap();
        assert_eq!(
            c.source,
            PoolSource::Devices(vec!["/dev/sdb".into(), "/dev/sdc".into()])
        );
        assert_eq!(c.provisioning, Provisioning::Thin);
        assert_eq!(c.volblocksize, 16384);
        assert_eq!(c.compression, None);
        let c = parse_sr_config(&conf(&[("vdev", "mirror /dev/sdb  /dev/sdc")])).unwrap();
        assert_eq!(
            c.source,
            PoolSource::Vdev("mirror /dev/sdb /dev/sdc".into())
        );
        let c = parse_sr_config(&conf(&[
            ("pool", "tank/vms"),
            ("provisioning", "thick"),
            ("volblocksize", "64K"),
            ("compression", "lz4"),
        ]))
        .unwrap();
        assert_eq!(c.source, PoolSource::Existing("tank/vms".into()));
        assert_eq!(c.provisioning, Provisioning::Thick);
        assert_eq!(c.volblocksize, 65536);
        assert_eq!(c.compression, Some(Compression::Lz4));
    }

    #[test]
    fn sr_config_errors_name_the_key() {
        assert_eq!(bad_key(parse_sr_config(&conf(&[]))), "device");
        assert_eq!(
            bad_key(parse_sr_config(&conf(&[("uri", "file:///x")]))),
            "device"
        );
        assert_eq!(
            bad_key(parse_sr_config(&conf(&[("device", "/a"), ("pool", "t")]))),
            "pool"
        );
        assert_eq!(
            bad_key(parse_sr_config(&conf(&[("device", "sdb")]))),
            "device"
        );
        assert_eq!(
            bad_key(parse_sr_config(&conf(&[("device", "/a,,/b")]))),
            "device"
        );
        assert_eq!(bad_key(parse_sr_config(&conf(&[("device", "")]))), "device");
        assert_eq!(
            bad_key(parse_sr_config(&conf(&[("vdev", "-f /dev/sdb")]))),
            "vdev"
        );
        assert_eq!(
            bad_key(parse_sr_config(&conf(&[("vdev", "mirror")]))),
            "vdev"
        );
        assert_eq!(
            bad_key(parse_sr_config(&conf(&[
                ("pool", "t"),
                ("provisioning", "fat")
            ]))),
            "provisioning"
        );
        assert_eq!(
            bad_key(parse_sr_config(&conf(&[
                ("pool", "t"),
                ("volblocksize", "big")
            ]))),
            "volblocksize"
        );
        assert_eq!(
            bad_key(parse_sr_config(&conf(&[
                ("pool", "t"),
                ("compression", "gzip-9")
            ]))),
            "compression"
        );
        let e = parse_sr_config(&conf(&[("vdev", "x /a"), ("pool", "t"), ("device", "/b")]))
            .unwrap_err();
        assert!(e.to_string().contains("device, vdev, pool"), "{e}");
    }

    #[test]
    fn volblocksize_forms() {
        assert_eq!(parse_volblocksize("16384").unwrap(), 16384);
        assert_eq!(parse_volblocksize("16K").unwrap(), 16384);
        assert_eq!(parse_volblocksize("8k").unwrap(), 8192);
        assert_eq!(parse_volblocksize("128KiB").unwrap(), 131072);
        assert_eq!(parse_volblocksize("4096B").unwrap(), 4096);
        assert!(parse_volblocksize("16M").is_err());
        assert!(parse_volblocksize("-1").is_err());
    }

    #[test]
    fn volume_mapping() {
        let v = VdiInfo {
            key: "0f8c3d1e-6a57-4b1c-9d0e-2f3a4b5c6d7e".into(),
            kind: sr::Kind::Snapshot,
            dataset: "tank/zvol-sr-u/snap/0f8c3d1e-6a57-4b1c-9d0e-2f3a4b5c6d7e".into(),
            name: "n".into(),
            description: "d".into(),
            sharable: true,
            virtual_size: 1 << 30,
            physical_utilisation: 4096,
            keys: [("vdi-type".to_string(), "user".to_string())]
                .into_iter()
                .collect(),
            snapshot_of: None,
            thick: false,
            origin: None,
            content: None,
        };
        let vol = volume_of(v);
        assert_eq!(vol.uuid.as_deref(), Some(vol.key.as_str()));
        assert!(!vol.read_write);
        assert!(vol.sharable);
        assert_eq!(vol.virtual_size, 1 << 30);
        assert_eq!(
            vol.uri,
            vec![format!("zvol:///dev/zvol/tank/zvol-sr-u/snap/{}", vol.key)]
        );
        assert_eq!(vol.keys["vdi-type"], "user");
        assert_eq!(vol.volume_type, None);
        assert_eq!(vol.cbt_enabled, None);
        let cfg = datapath::DatapathConfig::default();
        assert_eq!(
            datapath::parse_uri(&vol.uri[0], &cfg).unwrap(),
            Path::new("/dev/zvol/tank/zvol-sr-u/snap/0f8c3d1e-6a57-4b1c-9d0e-2f3a4b5c6d7e")
        );
    }
}
