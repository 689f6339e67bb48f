//! The `keys` harness: the name and key functions of `zfs_volume::sr::{meta, layout}` on
//! arbitrary input, with the invariants their callers rely on.
//!
//! The input, read as UTF-8 (lossily, so every input is used), is split at its first newline:
//! the first line is also used as an SR root (for [`Layout`]) and as a parent dataset, the
//! rest as a dataset name to classify; every function also gets the whole text.

use zfs_volume::sr::layout::{check_dataset_name, check_key, check_sr_uuid, sr_dataset, Kind, Layout};
use zfs_volume::sr::meta::{
    check_value, decode_key, encode_key, MAX_PROP_NAME, MAX_PROP_VALUE, XAPI_KEY_PREFIX,
};

/// Bytes ZFS allows in a user property name (`zfs_prop_user`: lower-case alphanumerics and
/// `: . _ -`; it must also contain a `:`).
fn user_prop_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b":._-".contains(&b)
}

/// Bytes ZFS allows in a dataset name component (`zfs_component_namecheck`: alphanumerics and
/// `_ - . :` plus space; we never need the space).
fn dataset_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_-.:".contains(&b)
}

/// What a dataset name we build or accept must never contain: separators of snapshots (`@`),
/// bookmarks (`#`), our `%`-escapes in URIs, NUL, whitespace.
fn hostile(s: &str) -> bool {
    s.contains(['@', '#', '%', '\0']) || s.chars().any(char::is_whitespace)
}

/// Runs every check on one input (see the module docs); panics on a violated invariant.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    for s in [&*text, first, rest] {
        one_string(s);
    }
    one_layout(first, rest);
    one_layout(first, &text);
    if check_dataset_name(first).is_ok() {
        // A valid parent, a valid SR uuid, a valid key: every name built from them is valid
        // (up to our 200-byte cap, which real names stay far below).
        for uuid in [rest, "5e0a3e4c-1f7b-4c1e-8f1a-0d3c2b1a0f9e"] {
            if check_sr_uuid(uuid).is_ok() {
                let sr = sr_dataset(first, uuid);
                assert!(sr.len() > 200 || check_dataset_name(&sr).is_ok(), "{sr:?}");
            }
        }
    }
}

/// Invariants of the single-string functions.
fn one_string(s: &str) {
    // check_key: a lower-case UUID-like token, safe as one dataset name component and stored
    // unescaped by encode_key.
    if check_key(s).is_ok() {
        assert!(!s.is_empty() && s.len() <= 64 && !s.starts_with('-'), "{s:?}");
        assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{s:?}");
        assert!(!hostile(s) && !s.contains('/') && s != "." && s != "..", "{s:?}");
        assert_eq!(encode_key(s).ok(), Some(format!("{XAPI_KEY_PREFIX}{s}")), "{s:?}");
        for kind in [Kind::Volume, Kind::Snapshot] {
            let l = Layout::new("tank/zvol-sr-1");
            let ds = l.vdi(s, kind);
            assert!(check_dataset_name(&ds).is_ok(), "{ds:?}");
            assert_eq!(l.classify(&ds), Some((kind, s.to_string())), "{ds:?}");
        }
    }

    // encode_key: accepted exactly when non-empty and short enough once encoded; the result is
    // a valid ZFS user property name in our namespace that decodes back to the key.
    let encoded_len =
        XAPI_KEY_PREFIX.len() + s.bytes().map(|b| if user_prop_byte(b) && b != b':' && b != b'.' { 1 } else { 3 }).sum::<usize>();
    match encode_key(s) {
        Ok(e) => {
            assert!(!s.is_empty() && e.len() == encoded_len && e.len() <= MAX_PROP_NAME, "{s:?} -> {e:?}");
            assert!(e.starts_with(XAPI_KEY_PREFIX) && e.bytes().all(user_prop_byte), "{s:?} -> {e:?}");
            assert!(!hostile(&e) && !e.contains('/'), "{e:?}");
            assert_eq!(decode_key(&e).as_deref(), Some(s), "{s:?} -> {e:?}");
        }
        Err(_) => assert!(s.is_empty() || encoded_len > MAX_PROP_NAME, "{s:?} refused"),
    }

    // decode_key: only our canonical encodings decode (of a length ZFS can hold), so two
    // property names never stand for the same key (Volume.unset removes the one property a
    // key has).
    if let Some(k) = decode_key(s).filter(|_| s.len() <= MAX_PROP_NAME) {
        assert_eq!(encode_key(&k).ok().as_deref(), Some(s), "{s:?} decodes to {k:?}");
    }

    // check_value: ZFS's value limit and no NUL (C strings).
    assert_eq!(check_value("v", s).is_ok(), !s.contains('\0') && s.len() <= MAX_PROP_VALUE, "{s:?}");

    // check_sr_uuid: safe as the tail of one dataset name component.
    if check_sr_uuid(s).is_ok() {
        assert!(!s.is_empty() && s.len() <= 64 && s.bytes().all(dataset_byte), "{s:?}");
        assert!(!hostile(s) && !s.contains(['/', '.', ':']), "{s:?}");
        let sr = sr_dataset("tank", s);
        assert!(check_dataset_name(&sr).is_ok(), "{sr:?}");
        assert_eq!(Layout::new(sr.as_str()).pool(), "tank");
    }

    // check_dataset_name: what ZFS itself accepts (a subset of it), and never an absolute path,
    // a snapshot, a bookmark or a path climbing out with "..".
    if check_dataset_name(s).is_ok() {
        assert!(!s.is_empty() && s.len() <= 200 && s.as_bytes()[0].is_ascii_alphabetic(), "{s:?}");
        assert!(!hostile(s) && !s.starts_with('/') && !s.ends_with('/'), "{s:?}");
        for comp in s.split('/') {
            assert!(!comp.is_empty() && comp != "." && comp != ".." && comp.bytes().all(dataset_byte), "{s:?}");
        }
        assert_eq!(Layout::new(s).pool(), s.split('/').next().unwrap_or(s));
    }
}

/// Invariants of [`Layout`] under an arbitrary root.
fn one_layout(root: &str, dataset: &str) {
    let l = Layout::new(root);
    // classify is the inverse of vdi: what it recognises is exactly a VDI name of this SR.
    if let Some((kind, key)) = l.classify(dataset) {
        assert_eq!(l.vdi(&key, kind), dataset, "root {root:?}");
        assert!(!key.contains(['/', '@']), "{dataset:?} -> {key:?}");
        assert!(check_dataset_name(dataset).is_err() || !key.is_empty(), "{dataset:?}");
    }
    // vdi, then classify, gives the key back for every key we could have issued.
    if check_key(dataset).is_ok() {
        for kind in [Kind::Volume, Kind::Snapshot] {
            assert_eq!(l.classify(&l.vdi(dataset, kind)), Some((kind, dataset.to_string())), "root {root:?}");
        }
    }
    // Never a VDI: the root itself, its containers, and names outside it.
    for c in ["", "vol", "snap", "gc"] {
        let name = if c.is_empty() { root.to_string() } else { l.container(c) };
        assert_eq!(l.classify(&name), None, "{name:?}");
    }
    assert_eq!(l.classify(&l.tombstone("x")), None);
}
