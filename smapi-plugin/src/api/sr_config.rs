//! SR device-config: what SR.create, SR.attach and SR.probe accept (contract §4.3).
//!
//! SR.create takes exactly one of `device` (a new pool on these devices), `vdev` (a new pool
//! from a zpool vdev specification) or `pool` (an existing pool or dataset), and optionally
//! `provisioning`, `volblocksize`, `compression`; unknown keys are ignored because xapi adds its
//! own. The configuration it returns adds `sr_uuid` and `pool`, which is all SR.attach needs
//! (xapi never passes the SR uuid to SR.attach).

use zfs_volume::lzc::Compression;
use zfs_volume::sr::{PoolSource, Provisioning, Sr, SrConfig, DEFAULT_VOLBLOCKSIZE};

use crate::error::PluginError;
use crate::query::{
    CONFIG_COMPRESSION, CONFIG_DEVICE, CONFIG_POOL, CONFIG_PROVISIONING, CONFIG_VDEV,
    CONFIG_VOLBLOCKSIZE,
};
use crate::types::Configuration;

/// Configuration key SR.create adds: the SR uuid (SR.attach needs it, xapi does not pass it).
pub const CONFIG_SR_UUID: &str = "sr_uuid";

/// A configuration value, trimmed; `None` when absent or blank (an empty value is an absent key).
pub fn non_empty<'a>(c: &'a Configuration, key: &str) -> Option<&'a str> {
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

/// A key SR.create put into the configuration (SR.attach cannot work without it).
pub fn required<'a>(c: &'a Configuration, key: &str) -> Result<&'a str, PluginError> {
    non_empty(c, key).ok_or_else(|| {
        PluginError::bad_configuration(
            key,
            "missing: this device-config was not produced by SR.create of xapi-zvol (it adds sr_uuid and pool)",
        )
    })
}

/// In SR.create/SR.attach, a dataset without our marker where the SR should be is a
/// configuration problem of `pool`.
pub fn not_ours_is_config(e: zfs_volume::Error) -> PluginError {
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
pub fn refuse_parent_inside_an_sr(parent: &str) -> Result<(), PluginError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use zfs_volume::lzc::Compression;

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
}
