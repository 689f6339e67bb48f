//! The `zvol` datapath plugin (contract §4.5, §5): hands a zvol's block device to kernel blkback.
//!
//! Volume URIs are `zvol:///dev/zvol/<pool>/<dataset...>`: the path is the zvol's udev link,
//! which names the dataset. `attach` hands out a device only for a VDI of an SR of ours (the
//! SR marker is checked: a forged or stale URI never gives a VM another pool's disk), finds
//! its device (`/dev/zdN`) from the zvol itself rather than trusting the link, which udev
//! moves late (`zfs_volume::sr::device`), and answers
//! `XenDisk{backend_type:"vbd", params:"/dev/zdN"}` + `BlockDevice{path:"/dev/zdN"}`.
//! Everything else is a no-op because a zvol block device needs no set-up or tear-down;
//! `detach` never fails, as the IDL demands.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use zfs_volume::sr::device::{self, DeviceError};
use zfs_volume::sr::{layout, Kind, Sr};

use super::context::{Context, DatapathConfig};
use crate::error::PluginError;
use crate::logging;
use crate::query::URI_SCHEME;
use crate::types::{Backend, Implementation};

/// Bytes kept verbatim in a URI path; everything else is percent-encoded.
/// ZFS names use `[A-Za-z0-9_.:-]`, space, `/` and `@` (snapshots); space, `%`, `?` and `#`
/// must be encoded for the daemon's URI parser to read the scheme and for us to get the path back.
fn keep_in_uri(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'/' | b'-' | b'_' | b'.' | b':' | b'@' | b'+' | b'~' | b'=' | b','
        )
}

/// Builds the volume URI for a zvol device path, e.g. `/dev/zvol/tank/sr/vol` →
/// `zvol:///dev/zvol/tank/sr/vol`. The volume backend should use this so that encoding and
/// [`parse_uri`] stay inverse of each other.
pub fn zvol_uri(device_path: &Path) -> String {
    let mut out = format!("{URI_SCHEME}://");
    for &b in device_path.as_os_str().as_bytes() {
        if keep_in_uri(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex(*bytes.get(i + 1)?)?;
            let lo = hex(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Lexically normalises an absolute path: drops `.` and empty components, applies `..`.
/// Returns `None` if `..` would climb above `/`. No filesystem access: the point is to decide
/// containment before touching anything.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for comp in path.components() {
        match comp {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(c) => out.push(c),
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Parses a `zvol:///dev/zvol/...` URI into the (normalised) device link path, refusing anything
/// that is not strictly below `cfg.zvol_root` with at least `<pool>/<volume>` under it.
pub fn parse_uri(uri: &str, cfg: &DatapathConfig) -> Result<PathBuf, PluginError> {
    let bad = |why: &str| {
        PluginError::backend(format!(
            "invalid volume URI {uri:?}: {why} (expected {URI_SCHEME}://{}/<pool>/<dataset...>)",
            cfg.zvol_root.display()
        ))
    };
    let (scheme, rest) = uri.split_once(':').ok_or_else(|| bad("no URI scheme"))?;
    if !scheme.eq_ignore_ascii_case(URI_SCHEME) {
        return Err(bad(&format!("scheme is {scheme:?}, not {URI_SCHEME:?}")));
    }
    let after_slashes = rest
        .strip_prefix("//")
        .ok_or_else(|| bad("missing \"//\" after the scheme"))?;
    let path_start = after_slashes.find('/').ok_or_else(|| bad("no path"))?;
    if path_start != 0 {
        return Err(bad("a host part is not allowed"));
    }
    let raw_path = &after_slashes[path_start..];
    if raw_path.contains(['?', '#']) {
        return Err(bad("query and fragment are not allowed"));
    }
    let decoded = percent_decode(raw_path).ok_or_else(|| bad("malformed %-escape"))?;
    if decoded.contains(&0) {
        return Err(bad("NUL byte in path"));
    }
    let path = PathBuf::from(std::ffi::OsString::from_vec(decoded));
    let normal = normalise(&path).ok_or_else(|| bad("path escapes the root directory"))?;
    let below = normal.strip_prefix(&cfg.zvol_root).map_err(|_| {
        bad(&format!(
            "path {} is not under {}",
            normal.display(),
            cfg.zvol_root.display()
        ))
    })?;
    if below.components().count() < 2 {
        return Err(bad("path names no volume (need <pool>/<volume> at least)"));
    }
    Ok(normal)
}

/// The dataset a parsed URI path names (the path below the zvol root).
fn dataset_of(link: &Path, cfg: &DatapathConfig) -> Result<String, PluginError> {
    link.strip_prefix(&cfg.zvol_root)
        .ok()
        .and_then(|p| p.to_str())
        .map(str::to_string)
        .ok_or_else(|| {
            PluginError::volume_unavailable(format!(
                "{} does not name a zvol dataset (not UTF-8, or not under {})",
                link.display(),
                cfg.zvol_root.display()
            ))
        })
}

crate::request! {
    /// `Datapath.open`.
    OpenArgs { dbg: String, uri: String, persistent: Bool }
}

crate::request! {
    /// `Datapath.attach`, `activate`, `deactivate`, `detach`: a volume for a domain.
    UriDomainArgs { dbg: String, uri: String, domain: String }
}

crate::request! {
    /// `Datapath.close`.
    UriArgs { dbg: String, uri: String }
}

/// `Datapath.open`: no-op (we declare no `NONPERSISTENT`); the URI is still validated.
pub fn open(cx: &Context, a: OpenArgs) -> Result<(), PluginError> {
    parse_uri(&a.uri, &cx.datapath).map(drop)
}

/// `Datapath.attach`: the block device of the VDI the URI names, found from the zvol itself;
/// only for a VDI of an SR of ours, and at once an error for one that does not exist.
pub fn attach(cx: &Context, a: UriDomainArgs) -> Result<Backend, PluginError> {
    let real = device_of(cx, &a.uri)?;
    let dev = real
        .to_str()
        .ok_or_else(|| {
            PluginError::volume_unavailable(format!("device path {} is not UTF-8", real.display()))
        })?
        .to_string();
    logging::info(&format!("Datapath.attach: {} -> {dev}", a.uri));
    Ok(Backend {
        implementations: vec![
            Implementation::XenDisk {
                params: dev.clone(),
                extra: Default::default(),
                backend_type: "vbd".into(),
            },
            Implementation::BlockDevice { path: dev },
        ],
    })
}

/// The device of the VDI a URI names (as `attach` finds it).
fn device_of(cx: &Context, uri: &str) -> Result<PathBuf, PluginError> {
    let dataset = dataset_of(&parse_uri(uri, &cx.datapath)?, &cx.datapath)?;
    device_of_dataset(cx, uri, &dataset)
}

/// [`device_of`], for a URI already parsed into the VDI's `dataset`.
fn device_of_dataset(cx: &Context, uri: &str, dataset: &str) -> Result<PathBuf, PluginError> {
    Sr::vdi_device(dataset, cx.datapath.wait).map_err(|e| match e {
        DeviceError::Zfs(e) => PluginError::from(e),
        e => PluginError::volume_unavailable(format!("{uri}: {e}")),
    })
}

/// Whether `activate` or `deactivate` must look for a read-only flag to clear on the device of
/// `dataset`: `activate_readonly` marked it, or, for a volume, the device udev's `link` names
/// is read-only (a flag an older version left unmarked). The usual case costs one stat and
/// one sysfs read. The link alone is not enough: udev can leave it missing or naming another
/// zvol's device (`device::mark_read_only`). A snapshot VDI's link always says read-only (ZFS
/// makes its disk so), and an unmarked flag on it changes nothing, so only its mark counts:
/// its device is not opened (on 2.1 an open can wait a second for the pool namespace lock).
fn may_be_read_only(dataset: &str, link: &Path) -> bool {
    let volume = !matches!(layout::split_vdi(dataset), Some((_, Kind::Snapshot, _)));
    device::is_marked_read_only(dataset) || (volume && device::is_read_only(link).unwrap_or(false))
}

/// `Datapath.activate`: the device is made writable (a writable activation after an
/// `activate_readonly` whose `deactivate` never came, e.g. a backup tool killed while reading,
/// would otherwise hand the VM a device that fails every write); a snapshot VDI's device stays
/// read-only (ZFS sets that on the disk, not on the device). A VDI whose device is gone: the
/// URI is validated, nothing else (xapi attached it first).
pub fn activate(cx: &Context, a: UriDomainArgs) -> Result<(), PluginError> {
    let link = parse_uri(&a.uri, &cx.datapath)?;
    let dataset = dataset_of(&link, &cx.datapath)?;
    if !may_be_read_only(&dataset, &link) {
        return Ok(());
    }
    // Only a VDI of an SR of ours is changed (the lookup checks the marker).
    let dev = device_of_dataset(cx, &a.uri, &dataset)?;
    device::set_read_only(&dev, false).map_err(|e| {
        PluginError::volume_unavailable(format!(
            "{}: cannot make {} writable (it was left read-only by an earlier \
             Datapath.activate_readonly): {e}",
            a.uri,
            dev.display()
        ))
    })?;
    device::unmark_read_only(&dataset);
    logging::info(&format!(
        "Datapath.activate: {} was read-only, its read-only flag is cleared",
        dev.display()
    ));
    Ok(())
}

/// `Datapath.activate_readonly` (xapi's read-only attach, e.g. a backup reading a disk): the
/// device `attach` handed out becomes read-only in the kernel (`BLKROSET`), so no writer can
/// change the VDI through it, until `deactivate` (or a writable `activate`), which the mark
/// made first tells to undo it.
pub fn activate_readonly(cx: &Context, a: UriDomainArgs) -> Result<(), PluginError> {
    let dataset = dataset_of(&parse_uri(&a.uri, &cx.datapath)?, &cx.datapath)?;
    let dev = device_of_dataset(cx, &a.uri, &dataset)?;
    let io = |e: std::io::Error| {
        PluginError::volume_unavailable(format!(
            "{}: cannot make {} read-only: {e}",
            a.uri,
            dev.display()
        ))
    };
    device::mark_read_only(&dataset).map_err(PluginError::from)?;
    device::set_read_only(&dev, true).map_err(io)?;
    if !device::is_read_only(&dev).map_err(io)? {
        return Err(io(std::io::Error::other(
            "the kernel still reports it writable",
        )));
    }
    logging::info(&format!(
        "Datapath.activate_readonly: {} is read-only",
        dev.display()
    ));
    Ok(())
}

/// `Datapath.deactivate`: makes the device writable again if `activate_readonly` made it
/// read-only (only the device's own flag: a snapshot VDI's device stays read-only, ZFS sets
/// that on the disk). Nothing else to undo; the URI is still validated.
pub fn deactivate(cx: &Context, a: UriDomainArgs) -> Result<(), PluginError> {
    let link = parse_uri(&a.uri, &cx.datapath)?;
    let dataset = dataset_of(&link, &cx.datapath)?;
    if !may_be_read_only(&dataset, &link) {
        return Ok(());
    }
    // Where the device cannot be made writable now, the mark stays for the next `activate`.
    match Sr::vdi_device(&dataset, cx.datapath.wait) {
        Ok(dev) => match device::set_read_only(&dev, false) {
            Ok(()) => device::unmark_read_only(&dataset),
            Err(e) => logging::warn(&format!(
                "Datapath.deactivate: cannot make {} writable again: {e}",
                dev.display()
            )),
        },
        Err(e @ (DeviceError::Zfs(_) | DeviceError::NoDevice(_))) => logging::warn(&format!(
            "Datapath.deactivate: {}: cannot find its device to make it writable again: {e}",
            a.uri
        )),
        // A VDI that is gone, or CBT metadata, has no device to restore: nothing to do.
        Err(_) => device::unmark_read_only(&dataset),
    }
    Ok(())
}

/// `Datapath.detach`: never fails ("This function should never fail"): a bad URI is only logged,
/// because failing here would leave xapi unable to clean up the VBD.
pub fn detach(cx: &Context, a: UriDomainArgs) -> Result<(), PluginError> {
    if let Err(e) = parse_uri(&a.uri, &cx.datapath) {
        logging::warn(&format!("Datapath.detach: ignoring: {e}"));
    }
    Ok(())
}

/// `Datapath.close`: no-op; the URI is still validated.
pub fn close(cx: &Context, a: UriArgs) -> Result<(), PluginError> {
    parse_uri(&a.uri, &cx.datapath).map(drop)
}

/// `Plugin.diagnostics` of the datapath plugin.
pub fn diagnostics(cfg: &DatapathConfig) -> String {
    let root = &cfg.zvol_root;
    let state = match fs::read_dir(root) {
        Ok(entries) => format!("present, {} pool(s) with zvol links", entries.count()),
        Err(e) => format!("unavailable ({e})"),
    };
    format!(
        "xapi-zvol {} datapath plugin '{URI_SCHEME}': blkback (vbd) on zvol block devices; {}: {state}",
        env!("CARGO_PKG_VERSION"),
        root.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Fixture {
        _tmp: tempfile::TempDir,
        cfg: DatapathConfig,
    }

    /// A fake `/dev/zvol` root with `tank/sr/v1` in it (only the URI checks use it:
    /// attach is proven against real zvols in the VM, tests/vm_*.rs).
    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(tmp.path()).unwrap();
        let root = base.join("zvol");
        fs::create_dir_all(root.join("tank/sr")).unwrap();
        fs::write(root.join("tank/sr/v1"), b"").unwrap();
        let cfg = DatapathConfig {
            zvol_root: root,
            wait: Duration::from_millis(300),
        };
        Fixture { _tmp: tmp, cfg }
    }

    fn cx(f: &Fixture) -> Context {
        Context {
            plugin: crate::api::context::PluginKind::Datapath,
            datapath: f.cfg.clone(),
        }
    }

    fn ud(uri: &str) -> UriDomainArgs {
        UriDomainArgs {
            dbg: "t".into(),
            uri: uri.into(),
            domain: "7".into(),
        }
    }

    fn uri(f: &Fixture, rel: &str) -> String {
        format!("zvol://{}/{rel}", f.cfg.zvol_root.display())
    }

    #[test]
    fn attach_refuses_what_is_not_a_vdi_of_an_sr_before_asking_zfs() {
        let f = fixture();
        // A file that exists, a foreign zvol's name, a container: none is a VDI's name, so
        // nothing is handed out, whatever the host has at that path.
        for rel in ["tank/sr/v1", "tank/disk", "tank/zvol-sr-x/vol"] {
            let e = attach(&cx(&f), ud(&uri(&f, rel))).unwrap_err();
            assert_eq!(e.code(), "SR_BACKEND_FAILURE_46", "{rel}");
            assert!(
                e.to_string().contains("not a volume of an xapi-zvol SR"),
                "{rel}: {e}"
            );
        }
    }

    #[test]
    fn uris_outside_the_root_are_refused() {
        let f = fixture();
        let root = f.cfg.zvol_root.display().to_string();
        for bad in [
            format!("zvol://{root}/../zd16/x"),
            format!("zvol://{root}/tank/../../etc/passwd"),
            "zvol:///etc/passwd".to_string(),
            "zvol:///../../x".to_string(),
            format!("zvol://{root}/tank"),
            format!("zvol://{root}"),
            format!("zvol://{root}/"),
            format!("zvol://host{root}/tank/sr/v1"),
            format!("file://{root}/tank/sr/v1"),
            format!("zvol:{root}/tank/sr/v1"),
            format!("zvol://{root}/tank/sr/v1?x=1"),
            format!("zvol://{root}/tank/sr/v1#f"),
            format!("zvol://{root}/tank/sr/v%2"),
            format!("zvol://{root}/tank/sr/v%00"),
            format!("zvol://{root}/tank/%2E%2E/%2E%2E/x/y"),
            "zvol".to_string(),
            String::new(),
        ] {
            assert!(parse_uri(&bad, &f.cfg).is_err(), "accepted {bad}");
            assert!(attach(&cx(&f), ud(&bad)).is_err(), "attached {bad}");
        }
    }

    #[test]
    fn uri_normalisation_inside_the_root_is_accepted() {
        let f = fixture();
        let p = parse_uri(&uri(&f, "tank/./sr//x/../v1"), &f.cfg).unwrap();
        assert_eq!(p, f.cfg.zvol_root.join("tank/sr/v1"));
        assert!(parse_uri(
            &format!("ZVOL://{}/tank/sr/v1", f.cfg.zvol_root.display()),
            &f.cfg
        )
        .is_ok());
    }

    #[test]
    fn uri_encoding_round_trips() {
        let cfg = DatapathConfig::default();
        for p in [
            "/dev/zvol/tank/sr/v1",
            "/dev/zvol/tank/my sr/v 1",
            "/dev/zvol/t/a@snap:1",
            "/dev/zvol/t/100%/x#?",
        ] {
            let u = zvol_uri(Path::new(p));
            assert!(u.starts_with("zvol:///dev/zvol/"));
            assert!(!u.contains(' ') && !u[5..].contains(['?', '#']));
            assert_eq!(parse_uri(&u, &cfg).unwrap(), PathBuf::from(p), "{u}");
        }
        assert_eq!(
            zvol_uri(Path::new("/dev/zvol/tank/a b")),
            "zvol:///dev/zvol/tank/a%20b"
        );
    }

    #[test]
    fn no_op_calls_validate_the_uri_and_detach_never_fails() {
        let f = fixture();
        let good = uri(&f, "tank/sr/v1");
        // A missing device is fine for the no-ops: they do not look at the device.
        let absent = uri(&f, "tank/sr/absent");
        for u in [&good, &absent] {
            open(
                &cx(&f),
                OpenArgs {
                    dbg: "t".into(),
                    uri: u.to_string(),
                    persistent: true,
                },
            )
            .unwrap();
            activate(&cx(&f), ud(u)).unwrap();
            deactivate(&cx(&f), ud(u)).unwrap();
            close(
                &cx(&f),
                UriArgs {
                    dbg: "t".into(),
                    uri: u.to_string(),
                },
            )
            .unwrap();
        }
        assert!(open(
            &cx(&f),
            OpenArgs {
                dbg: "t".into(),
                uri: "zvol:///etc/x".to_string(),
                persistent: false
            }
        )
        .is_err());
        assert!(activate(&cx(&f), ud("bogus")).is_err());
        assert!(deactivate(&cx(&f), ud("bogus")).is_err());
        assert!(close(
            &cx(&f),
            UriArgs {
                dbg: "t".into(),
                uri: "bogus".to_string()
            }
        )
        .is_err());
        detach(&cx(&f), ud(&good)).unwrap();
        detach(&cx(&f), ud("bogus")).unwrap();
    }

    #[test]
    fn diagnostics_mentions_the_root() {
        let f = fixture();
        let d = diagnostics(&f.cfg);
        assert!(d.contains("present, 1 pool(s)"), "{d}");
        let mut cfg = f.cfg.clone();
        cfg.zvol_root = f.cfg.zvol_root.join("missing");
        assert!(diagnostics(&cfg).contains("unavailable"));
    }
}
