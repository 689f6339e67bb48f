//! The `request` harness: one plugin invocation per input, as the installed binary runs it.
//!
//! Input layout: byte 0 picks the entry point ([`entries`]: every entry of the volume plugin,
//! then every entry of the datapath plugin), byte 1 holds flags ([`FLAG_LOWER_CASE`]), the rest
//! is stdin. Inputs shorter than two bytes are ignored.
//!
//! Every input is decoded into the method's request struct ([`Method::decode_only`]). It then
//! runs through the whole dispatcher ([`dispatch::run`]) unless it would reach ZFS: a method that
//! needs ZFS runs only when its parameters are refused (validation comes before the method's
//! function), so a fuzzing host never touches a pool even if it has one; the method functions'
//! calls into `zfs_volume::sr` are proven in the test VM.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use smapi_plugin::api::context::DatapathConfig;
use smapi_plugin::dispatch::{self, EXIT_FAILURE, EXIT_OK, JSON_FLAG};
use smapi_plugin::methods::{Method, PluginKind, ServedBy};
use smapi_plugin::query::VOLUME_DIR_PREFIX;
use smapi_plugin::wire::Params;

use crate::contract::{parse_stdout, validate_error, validate_result};

/// A volume key of the form we issue.
const KEY: &str = "3b9e6f0c-8d2a-4c71-9e5f-1a2b3c4d5e6f";

/// Byte-1 flag: invoke the entry under its lower-case name (the daemon resolves names
/// case-insensitively, so must we).
pub const FLAG_LOWER_CASE: u8 = 2;

/// A fake `/dev` for the datapath plugin, at a fixed path so that seeds can name its device
/// link: `<FAKE_DEV>/zvol/tank/sr/v1 -> ../../../zd0` (a regular file, which
/// `Datapath.attach` refuses: it is no VDI of an SR of ours).
pub const FAKE_DEV: &str = "/tmp/xapi-zvol-fuzz-dev";

/// Every (plugin, entry name) pair that `xapi-zvol install` creates, volume plugin first.
pub fn entries() -> Vec<(PluginKind, Method)> {
    let of = |kind| Method::ALL.iter().filter(move |m| m.installed_in(kind)).map(move |m| (kind, *m));
    of(PluginKind::Volume).chain(of(PluginKind::Datapath)).collect()
}

/// The datapath settings of every run: the fake `/dev` and no waiting (an absent device link
/// fails at once instead of after 10 s).
fn datapath_config() -> &'static DatapathConfig {
    static CFG: OnceLock<DatapathConfig> = OnceLock::new();
    CFG.get_or_init(|| {
        let root = Path::new(FAKE_DEV).join("zvol");
        let link = root.join("tank/sr/v1");
        fs::create_dir_all(link.parent().expect("link has a parent")).expect("create the fake /dev");
        fs::write(Path::new(FAKE_DEV).join("zd0"), b"").expect("create the fake device");
        if fs::symlink_metadata(&link).is_err() {
            symlink("../../../zd0", &link).expect("create the fake device link");
        }
        DatapathConfig { zvol_root: root, wait: Duration::ZERO }
    })
}

/// Runs one input (see the module docs) and panics on any contract violation: output that is
/// not exactly one JSON value plus a newline, an exit status other than 0 or 1, a success that
/// does not match the method's result type, or an error object of the wrong shape.
pub fn run(data: &[u8]) {
    let [selector, flags, stdin @ ..] = data else { return };
    let all = entries();
    let (kind, method) = all[usize::from(*selector) % all.len()];
    let dir = match kind {
        PluginKind::Volume => format!("/plugins/volume/{VOLUME_DIR_PREFIX}zvol"),
        PluginKind::Datapath => "/plugins/datapath/zvol".to_string(),
    };
    let mut entry = method.entry_name().to_string();
    if flags & FLAG_LOWER_CASE != 0 {
        entry.make_ascii_lowercase();
    }
    let argv0 = PathBuf::from(dir).join(&entry);
    let decoded = Params::parse(method.name(), stdin).and_then(|p| method.decode_only(&p));
    if decoded.is_ok() && needs_zfs(kind, method) {
        return;
    }
    let mut out = Vec::new();
    let code = dispatch::run(datapath_config(), &argv0, &[JSON_FLAG.to_string()], stdin, &mut out);

    let shown = String::from_utf8_lossy(&out);
    // Triage aid: `XAPI_ZVOL_FUZZ_TRACE=1 <target binary> <input files>` shows each answer.
    if std::env::var_os(ENV_TRACE).is_some() {
        eprintln!("{entry} (exit {code}): {}", shown.trim_end());
    }
    assert!(
        out.ends_with(b"\n") && !out[..out.len() - 1].contains(&b'\n'),
        "{entry}: stdout is not one line ending in a newline: {shown:?}"
    );
    let value = parse_stdout(&out).unwrap_or_else(|e| panic!("{entry}: {e}"));
    let violations = match code {
        EXIT_OK => validate_result(method.name(), &value),
        EXIT_FAILURE => validate_error(&value),
        other => panic!("{entry}: exit status {other}, expected {EXIT_OK} or {EXIT_FAILURE}: {shown}"),
    };
    assert!(violations.is_empty(), "{entry} (exit {code}): {violations:?} in {shown}");
}

/// Whether a call of `method` with valid parameters would reach ZFS (every volume-plugin method
/// but `Plugin.query`; `Datapath.attach`, `activate_readonly` and `deactivate`, which look the
/// zvol up).
fn needs_zfs(kind: PluginKind, method: Method) -> bool {
    match (kind, method.name()) {
        (_, "Plugin.query") => false,
        (_, "Datapath.attach" | "Datapath.activate_readonly" | "Datapath.deactivate") => true,
        (PluginKind::Datapath, _) => false,
        (PluginKind::Volume, _) => true,
    }
}

/// Valid parameters for every parameter `method` declares (one seed per method).
fn valid_params(method: Method) -> Value {
    let uri = format!("zvol://{FAKE_DEV}/zvol/tank/sr/v1");
    let mut p = serde_json::Map::new();
    for spec in method.params() {
        let v = match spec.name {
            "dbg" => json!("fuzz-seed"),
            "uuid" => json!("5e0a3e4c-1f7b-4c1e-8f1a-0d3c2b1a0f9e"),
            "configuration" if method.name() == "SR.create" => json!({"pool": "tank", "provisioning": "thin"}),
            "configuration" => json!({"pool": "tank", "sr_uuid": "5e0a3e4c-1f7b-4c1e-8f1a-0d3c2b1a0f9e"}),
            "sr" => json!("tank/zvol-sr-5e0a3e4c-1f7b-4c1e-8f1a-0d3c2b1a0f9e"),
            "key" | "snapshot" => json!(KEY),
            "size" | "new_size" => json!(1 << 20),
            "sharable" | "persistent" => json!(false),
            "k" => json!("vdi-type"),
            "v" => json!("user"),
            "uri" => json!(uri),
            "domain" => json!("7"),
            _ => json!("x"),
        };
        p.insert(spec.name.to_string(), v);
    }
    Value::Object(p)
}

/// The seed corpus of the `request` target: one valid request per entry point,
/// plus a few malformed ones; `(file name, input bytes)`.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, (kind, method)) in entries().into_iter().enumerate() {
        let plugin = match method.served_by() {
            ServedBy::Both if kind == PluginKind::Datapath => "datapath-",
            _ => "",
        };
        let selector = u8::try_from(i).expect("fewer than 256 entries");
        let mut bytes = vec![selector, 0];
        bytes.extend_from_slice(valid_params(method).to_string().as_bytes());
        out.push((format!("{plugin}{}", method.name()), bytes));
    }
    let create = entries().iter().position(|(_, m)| m.name() == "Volume.create").expect("Volume.create is installed");
    let create = u8::try_from(create).expect("fewer than 256 entries");
    for (name, stdin) in [
        ("bad-empty", &b""[..]),
        ("bad-not-object", b"[1, \"a\"]"),
        ("bad-types", br#"{"dbg": 1, "SR": "a", "sr": "b", "size": "-5", "sharable": "no"}"#),
        ("bad-size-string", br#"{"dbg": "d", "sr": "tank/s", "name": "n", "description": "", "size": "99999999999999999999", "sharable": true}"#),
    ] {
        let mut bytes = vec![create, FLAG_LOWER_CASE];
        bytes.extend_from_slice(stdin);
        out.push((name.to_string(), bytes));
    }
    out
}

/// Environment variable: when set, [`run`] prints each call's exit status and output on stderr.
pub const ENV_TRACE: &str = "XAPI_ZVOL_FUZZ_TRACE";

/// Environment variable: when set, [`write_seeds_if_asked`] writes [`seeds`] into that
/// directory and exits the process.
pub const ENV_WRITE_SEEDS: &str = "XAPI_ZVOL_FUZZ_WRITE_SEEDS";

/// Writes the seed corpus into `$XAPI_ZVOL_FUZZ_WRITE_SEEDS` and exits, when that is set
/// (called before fuzzing starts); does nothing otherwise.
pub fn write_seeds_if_asked() {
    let Some(dir) = std::env::var_os(ENV_WRITE_SEEDS) else { return };
    let dir = PathBuf::from(dir);
    fs::create_dir_all(&dir).expect("create the seed directory");
    let seeds = seeds();
    for (name, bytes) in &seeds {
        fs::write(dir.join(name), bytes).expect("write a seed");
    }
    println!("request: {} seeds written to {}", seeds.len(), dir.display());
    std::process::exit(0);
}
