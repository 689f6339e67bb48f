//! VDI and SR metadata kept in ZFS user properties (invariant I6: no side database).
//!
//! User property names must be `[a-z0-9:._-]`, contain a `:`, and be under 256 bytes;
//! values must be under 8 KiB. xapi's keys (`Volume.set`) are arbitrary strings (upper
//! case, `_`, spaces, `<`, ...), so each one is stored under an *encoded* property name:
//! `xapi-zvol:k:` followed by the key where `[a-z0-9_-]` stay as they are and every other
//! byte becomes `.` plus two lower-case hex digits. `.` always starts an escape, so the
//! encoding is reversible and injective.

use crate::error::{Error, Result};

pub use super::names::{NS, SR_MARKER, SR_PROVISIONING, SR_VOLBLOCKSIZE, VDI_CBT_POINT};
/// On the SR dataset: SR name-label.
pub const SR_NAME: &str = "xapi-zvol:sr-name";
/// On the SR dataset: SR name-description.
pub const SR_DESCRIPTION: &str = "xapi-zvol:sr-description";
/// On the SR dataset: on-disk format version of this layout.
pub const SR_FORMAT: &str = "xapi-zvol:sr-format";

/// On a VDI dataset: the VDI key (redundant with the dataset name; checked on read).
pub const VDI_KEY: &str = "xapi-zvol:key";
/// On a VDI dataset: name-label.
pub const VDI_NAME: &str = "xapi-zvol:name";
/// On a VDI dataset: name-description.
pub const VDI_DESCRIPTION: &str = "xapi-zvol:description";
/// On a VDI dataset: `true`/`false`.
pub const VDI_SHARABLE: &str = "xapi-zvol:sharable";
/// On a snapshot VDI's dataset: the key of the volume it was taken from.
pub const VDI_SNAPSHOT_OF: &str = "xapi-zvol:snapshot-of";
/// On a VDI dataset: `thin` or `thick`.
pub const VDI_PROVISIONING: &str = "xapi-zvol:provisioning";
/// On a VDI dataset: `true` while changed block tracking is enabled (absent: disabled).
pub const VDI_CBT: &str = "xapi-zvol:cbt";
/// On a CBT-metadata VDI's dataset: the virtual size of the snapshot VDI it was, bytes (a
/// filesystem has no `volsize`).
pub const VDI_SIZE: &str = "xapi-zvol:size";
/// Prefix of encoded xapi keys (`Volume.set`).
pub const XAPI_KEY_PREFIX: &str = "xapi-zvol:k:";

/// Largest user property name ZFS accepts (ZAP_MAXNAMELEN - 1).
pub const MAX_PROP_NAME: usize = 255;
/// Largest user property value ZFS accepts (ZAP_MAXVALUELEN - 1).
pub const MAX_PROP_VALUE: usize = 8191;

/// Encode an xapi key into a user property name.
///
/// ```
/// use zfs_volume::sr::meta::{encode_key, decode_key};
/// assert_eq!(encode_key("vdi-type").unwrap(), "xapi-zvol:k:vdi-type");
/// assert_eq!(encode_key("_sm_config_X y").unwrap(), "xapi-zvol:k:_sm_config_.58.20y");
/// assert_eq!(decode_key("xapi-zvol:k:_sm_config_.58.20y").unwrap(), "_sm_config_X y");
/// ```
pub fn encode_key(key: &str) -> Result<String> {
    if key.is_empty() {
        return Err(Error::invalid("key", "an empty key cannot be stored"));
    }
    let mut out = String::with_capacity(XAPI_KEY_PREFIX.len() + key.len());
    out.push_str(XAPI_KEY_PREFIX);
    for b in key.bytes() {
        match b {
            b if kept(b) => out.push(b as char),
            _ => {
                out.push('.');
                out.push_str(&format!("{b:02x}"));
            }
        }
    }
    if out.len() > MAX_PROP_NAME {
        return Err(Error::invalid(
            "key",
            format!(
                "key of {} bytes is too long to store (at most {} once encoded; each byte outside [a-z0-9_-] takes 3)",
                key.len(),
                MAX_PROP_NAME - XAPI_KEY_PREFIX.len()
            ),
        ));
    }
    Ok(out)
}

/// Bytes [`encode_key`] stores as they are; every other byte is escaped.
fn kept(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')
}

/// Decode a property name written by [`encode_key`]; `None` for any other name, including
/// non-canonical spellings such as `.61` for `a` or an empty key: otherwise two properties
/// (say one set by hand with `zfs set`) could stand for the same key, and `Volume.unset`,
/// which removes the canonical one, would leave the key listed.
///
/// ```
/// use zfs_volume::sr::meta::decode_key;
/// assert_eq!(decode_key("xapi-zvol:name"), None);
/// assert_eq!(decode_key("xapi-zvol:k:is_a_snapshot").as_deref(), Some("is_a_snapshot"));
/// assert_eq!(decode_key("xapi-zvol:k:is.5fa_snapshot"), None);
/// ```
pub fn decode_key(prop: &str) -> Option<String> {
    let enc = prop.strip_prefix(XAPI_KEY_PREFIX)?;
    if enc.is_empty() {
        return None;
    }
    let bytes = enc.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                let hex = enc.get(i + 1..i + 3)?;
                if !hex
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
                {
                    return None;
                }
                let b = u8::from_str_radix(hex, 16).ok()?;
                if kept(b) {
                    return None;
                }
                out.push(b);
                i += 3;
            }
            c if kept(c) => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Check a property value fits ZFS's limit and carries no NUL.
///
/// ```
/// use zfs_volume::sr::meta::check_value;
/// assert!(check_value("name", "disk 0").is_ok());
/// assert!(check_value("name", "a\0b").is_err());
/// ```
pub fn check_value(what: &str, v: &str) -> Result<()> {
    if v.contains('\0') {
        return Err(Error::invalid(
            what,
            "a value cannot contain a NUL character",
        ));
    }
    if v.len() > MAX_PROP_VALUE {
        return Err(Error::invalid(
            what,
            format!(
                "value of {} bytes is too long to store (at most {MAX_PROP_VALUE})",
                v.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_awkward_keys() {
        for k in [
            "vdi-type",
            "content_id",
            "tagsMy Tag",
            "_sm_config_host_OpaqueRef:1234",
            "clone-on-boot",
            "a.b",
            ".",
            "../x",
            "a@b",
            "a/b",
            "#",
            "%",
            "ünïcødé ✓",
            "UPPER",
        ] {
            let e = encode_key(k).unwrap();
            assert!(
                e.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b":._-".contains(&c)),
                "{e}"
            );
            assert_eq!(decode_key(&e).as_deref(), Some(k), "{e}");
        }
    }

    #[test]
    fn distinct_keys_never_collide() {
        let keys = ["A", "a", ".41", "_41", "a.", "a.2e"];
        let mut enc: Vec<String> = keys.iter().map(|k| encode_key(k).unwrap()).collect();
        enc.sort();
        enc.dedup();
        assert_eq!(enc.len(), keys.len());
    }

    #[test]
    fn limits() {
        assert!(encode_key("").is_err());
        let max = MAX_PROP_NAME - XAPI_KEY_PREFIX.len();
        assert!(encode_key(&"a".repeat(max)).is_ok());
        assert!(encode_key(&"a".repeat(max + 1)).is_err());
        assert!(encode_key(&"A".repeat(max / 3 + 1)).is_err());
        assert!(check_value("v", &"x".repeat(MAX_PROP_VALUE)).is_ok());
        assert!(check_value("v", &"x".repeat(MAX_PROP_VALUE + 1)).is_err());
        assert!(decode_key("xapi-zvol:k:.4").is_none());
        assert!(decode_key("xapi-zvol:k:.zz").is_none());
        assert!(decode_key("xapi-zvol:k:A").is_none());
    }

    /// Found by the `keys` fuzz target: `.5f` (an escaped `_`) decoded to the same key as `_`,
    /// so two property names stood for one key. Only the canonical spelling decodes now.
    #[test]
    fn only_canonical_encodings_decode() {
        assert_eq!(
            decode_key("xapi-zvol:k:_sm_config__y").as_deref(),
            Some("_sm_config__y")
        );
        for prop in [
            "xapi-zvol:k:_sm_config_.5fy",
            "xapi-zvol:k:.61",
            "xapi-zvol:k:.2d",
            "xapi-zvol:k:.30",
            "xapi-zvol:k:",
        ] {
            assert_eq!(decode_key(prop), None, "{prop}");
        }
        for b in 0..=255u8 {
            let prop = format!("{XAPI_KEY_PREFIX}.{b:02x}");
            if let Some(k) = decode_key(&prop) {
                assert_eq!(encode_key(&k).unwrap(), prop);
            }
        }
    }
}
