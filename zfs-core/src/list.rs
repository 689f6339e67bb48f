//! Listing what is under a dataset: its children (filesystems and volumes, optionally the
//! whole subtree), snapshots and bookmarks, with the properties the caller names, read in
//! one nosync channel program (`lua/list.lua`): one ioctl, no txg wait, no fork of `zfs`.
//!
//! The dataset's existence is checked before any Lua runs (and again inside the program,
//! for a dataset destroyed in between), so a missing dataset is an [`Error::Zfs`] with
//! `ENOENT` ("cannot list tank/x: dataset does not exist"), never a Lua stack trace.

use super::nvlist::{NvList, NvValue};
use super::program::{program, Limits, Program};
use super::props::{prop_read, PropRead};
use super::util::name;
use super::{pool_of, Errno, Zfs};
use crate::error::{Error, Op, Result};
use std::collections::BTreeMap;
use std::fmt;

static LIST: Program = program!("list");

/// What a listed dataset is (`zfs list`'s `type` column).
///
/// ```
/// use libzfs_core::DatasetKind;
/// assert_eq!(DatasetKind::parse("volume"), Some(DatasetKind::Volume));
/// assert_eq!(DatasetKind::Snapshot.to_string(), "snapshot");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatasetKind {
    /// A filesystem (`zfs create`).
    Filesystem,
    /// A volume, a zvol (`zfs create -V`).
    Volume,
    /// A snapshot (`dataset@name`).
    Snapshot,
    /// A bookmark (`dataset#name`).
    Bookmark,
}

impl DatasetKind {
    /// The name ZFS uses: `filesystem`, `volume`, `snapshot`, `bookmark`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Filesystem => "filesystem",
            DatasetKind::Volume => "volume",
            DatasetKind::Snapshot => "snapshot",
            DatasetKind::Bookmark => "bookmark",
        }
    }

    /// The kind of a ZFS type name (as [`DatasetKind::as_str`] writes it).
    pub fn parse(s: &str) -> Option<DatasetKind> {
        Some(match s {
            "filesystem" => DatasetKind::Filesystem,
            "volume" => DatasetKind::Volume,
            "snapshot" => DatasetKind::Snapshot,
            "bookmark" => DatasetKind::Bookmark,
            _ => return None,
        })
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`Zfs::list`] lists, and which properties it reads. Start from
/// [`ListOptions::new`] (nothing listed) and switch on what you want.
///
/// * `children`: the dataset's filesystems and volumes (with `recursive`, all its
///   descendants);
/// * `snapshots`, `bookmarks`: those of the dataset (with `recursive`, of every
///   descendant too, whether or not `children` are listed: `zfs list -t snapshot -r`);
/// * `itself`: the dataset itself, first;
/// * `props`: properties to read for every entry (native or user ones). A property that
///   does not apply to an entry (`volsize` of a filesystem) or a user property that is not
///   set is left out of that entry. Bookmarks have only `guid`, `createtxg` and `creation`.
/// * `limits`: of the program; [`Limits::large`] by default (see there for how far it
///   goes).
///
/// ```
/// use libzfs_core::ListOptions;
/// let all = ListOptions::new()
///     .itself(true)
///     .children(true)
///     .snapshots(true)
///     .bookmarks(true)
///     .recursive(true)
///     .props(["used", "referenced"]);
/// assert!(all.recursive && all.props.len() == 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListOptions {
    /// List the dataset itself, first.
    pub itself: bool,
    /// List filesystems and volumes under the dataset.
    pub children: bool,
    /// Descend into every child: children of children, and their snapshots and bookmarks.
    pub recursive: bool,
    /// List snapshots.
    pub snapshots: bool,
    /// List bookmarks.
    pub bookmarks: bool,
    /// Properties to read for each entry.
    pub props: Vec<String>,
    /// Limits of the channel program.
    pub limits: Limits,
}

impl Default for ListOptions {
    fn default() -> ListOptions {
        ListOptions {
            itself: false,
            children: false,
            recursive: false,
            snapshots: false,
            bookmarks: false,
            props: vec![],
            limits: Limits::large(),
        }
    }
}

impl ListOptions {
    /// Nothing listed yet, no properties, [`Limits::large`].
    pub fn new() -> ListOptions {
        ListOptions::default()
    }
    /// List the dataset itself, first.
    pub fn itself(mut self, on: bool) -> ListOptions {
        self.itself = on;
        self
    }
    /// List the dataset's filesystems and volumes.
    pub fn children(mut self, on: bool) -> ListOptions {
        self.children = on;
        self
    }
    /// Descend into the whole subtree.
    pub fn recursive(mut self, on: bool) -> ListOptions {
        self.recursive = on;
        self
    }
    /// List snapshots.
    pub fn snapshots(mut self, on: bool) -> ListOptions {
        self.snapshots = on;
        self
    }
    /// List bookmarks.
    pub fn bookmarks(mut self, on: bool) -> ListOptions {
        self.bookmarks = on;
        self
    }
    /// Read these properties for each entry.
    pub fn props(mut self, props: impl IntoIterator<Item = impl AsRef<str>>) -> ListOptions {
        self.props = props.into_iter().map(|p| p.as_ref().to_string()).collect();
        self
    }
    /// Run the program with these limits.
    pub fn limits(mut self, limits: Limits) -> ListOptions {
        self.limits = limits;
        self
    }
}

/// One entry of [`Zfs::list`]: a dataset, snapshot or bookmark, with the properties asked
/// for that apply to it.
///
/// ```
/// use libzfs_core::{DatasetKind, ListEntry, PropRead, PropValue};
/// let mut e = ListEntry::new("tank/vms/a@daily-1", DatasetKind::Snapshot);
/// e.props.insert("createtxg".into(), PropRead::new(PropValue::U64(42), "-"));
/// assert_eq!(e.get_u64("createtxg"), Some(42));
/// assert_eq!(e.dataset(), "tank/vms/a");
/// assert_eq!(e.short_name(), "daily-1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListEntry {
    /// Full name (`pool/ds`, `pool/ds@snap`, `pool/ds#bookmark`).
    pub name: String,
    /// What it is.
    pub kind: DatasetKind,
    /// The requested properties that apply to it, by name.
    pub props: BTreeMap<String, PropRead>,
}

impl ListEntry {
    /// An entry without properties.
    pub fn new(name: impl Into<String>, kind: DatasetKind) -> ListEntry {
        ListEntry {
            name: name.into(),
            kind,
            props: BTreeMap::new(),
        }
    }

    /// A property read for this entry.
    pub fn get(&self, prop: &str) -> Option<&PropRead> {
        self.props.get(prop)
    }

    /// A numeric property; `None` when not read, not applicable, or not a number.
    pub fn get_u64(&self, prop: &str) -> Option<u64> {
        self.get(prop)?.as_u64()
    }

    /// A string property (user properties, index ones such as `compression`); `None`
    /// when not read, not applicable or not set, or a number.
    pub fn get_str(&self, prop: &str) -> Option<&str> {
        self.get(prop)?.as_str()
    }

    /// The dataset a snapshot or bookmark belongs to; a filesystem's or volume's own name.
    pub fn dataset(&self) -> &str {
        self.name.split(['@', '#']).next().unwrap_or(&self.name)
    }

    /// The last component: the snapshot or bookmark name after `@`/`#`, else the part
    /// after the last `/`.
    pub fn short_name(&self) -> &str {
        match self.name.rsplit_once(['@', '#']) {
            Some((_, s)) => s,
            None => self.name.rsplit('/').next().unwrap_or(&self.name),
        }
    }
}

impl Zfs {
    /// List what is under `dataset`, as `options` say, with the properties they name, in
    /// one nosync channel program (`zfs list -t ... -o ...` in-process).
    ///
    /// Entries come in listing order: the dataset (with `itself`), its snapshots, its
    /// bookmarks, then each child followed (with `recursive`) by its own. Snapshots come
    /// in the kernel's order, not by creation: ask for `createtxg` and sort when order
    /// matters. Bookmark properties (`guid`, `createtxg`, `creation`) are read with
    /// `lzc_get_bookmarks`, one more ioctl per dataset that has bookmarks, since channel
    /// programs cannot read them.
    ///
    /// Cost: reading a child's kind, or any native property, opens that dataset's objset
    /// (a few milliseconds each when not cached); user properties do not.
    ///
    /// Errors: `ENOENT` when `dataset` (or its pool) does not exist, checked before any
    /// Lua runs: "cannot list tank/x: dataset does not exist (ENOENT)"; `EINVAL` for a name
    /// that is not a property; `ETIME`/`ENOSPC`/`ENOMEM` when the listing outgrows the
    /// program's limits (list fewer properties, or one level at a time);
    /// [`Error::Invalid`] for a snapshot or bookmark name.
    ///
    /// ```no_run
    /// use libzfs_core::{DatasetKind, ListOptions, Zfs};
    /// let opts = ListOptions::new().children(true).recursive(true).props(["volsize"]);
    /// for e in Zfs::get()?.list("tank/vms", &opts)? {
    ///     if e.kind == DatasetKind::Volume {
    ///         println!("{} {}", e.name, e.get_u64("volsize").unwrap_or(0));
    ///     }
    /// }
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn list(&self, dataset: &str, options: &ListOptions) -> Result<Vec<ListEntry>> {
        name(dataset)?;
        if dataset.contains(['@', '#']) {
            return Err(Error::invalid(
                "dataset name",
                format!("{dataset:?} is a snapshot or bookmark: list its dataset instead"),
            ));
        }
        for p in &options.props {
            crate::util::cstring("property name", p)?;
        }
        // Before any Lua: zfs.list.* raise a Lua error (a stack trace) for a missing
        // dataset, and a missing pool fails the ioctl itself.
        if !self.exists(dataset) {
            return Err(Error::zfs(Op::List, dataset, Errno(libc::ENOENT)));
        }
        let props: Vec<&str> = options.props.iter().map(String::as_str).collect();
        let mut args = NvList::new()?;
        args.add_string("dataset", dataset)?;
        args.add_boolean_value("itself", options.itself)?;
        args.add_boolean_value("children", options.children)?;
        args.add_boolean_value("recursive", options.recursive)?;
        args.add_boolean_value("snapshots", options.snapshots)?;
        args.add_boolean_value("bookmarks", options.bookmarks)?;
        args.add_string_array("props", &props)?;
        let out = self
            .program_nosync(pool_of(dataset), &LIST, &args, options.limits)
            .map_err(|e| self.list_error(dataset, options, e))?;
        let mut entries = parse_list(dataset, &out)?;
        if options.bookmarks && !options.props.is_empty() {
            self.add_bookmark_props(&mut entries, &props)?;
        }
        Ok(entries)
    }

    /// Fill in the requested properties a bookmark has (`guid`, `createtxg`, `creation`),
    /// one `lzc_get_bookmarks` per dataset with bookmarks.
    fn add_bookmark_props(&self, entries: &mut [ListEntry], props: &[&str]) -> Result<()> {
        const BOOKMARK_PROPS: [&str; 3] = ["guid", "createtxg", "creation"];
        if !props.iter().any(|p| BOOKMARK_PROPS.contains(p)) {
            return Ok(());
        }
        let mut read: BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>> = BTreeMap::new();
        for e in entries.iter_mut() {
            if e.kind != DatasetKind::Bookmark {
                continue;
            }
            let ds = e.dataset().to_string();
            if !read.contains_key(&ds) {
                let b = match self.get_bookmarks(&ds) {
                    Ok(b) => b,
                    // Gone since the listing: it simply has no properties.
                    Err(err) if err.is_errno(libc::ENOENT) => BTreeMap::new(),
                    Err(err) => return Err(err),
                };
                read.insert(ds.clone(), b);
            }
            let Some(values) = read[&ds].get(e.short_name()) else {
                continue;
            };
            for p in props {
                if let Some(v) = values.get(*p) {
                    e.props.insert(
                        (*p).to_string(),
                        PropRead::new(crate::PropValue::U64(*v), "-"),
                    );
                }
            }
        }
        Ok(())
    }

    /// A failed listing program as an error about the dataset.
    fn list_error(&self, dataset: &str, options: &ListOptions, e: Error) -> Error {
        let e = self.read_error(Op::List, dataset, e);
        let Some(errno) = e.errno() else { return e };
        if !matches!(errno.0, libc::ETIME | libc::ENOSPC | libc::ENOMEM) {
            return e;
        }
        let mut z = Error::zfs(Op::List, dataset, errno);
        if let Error::Zfs { reason, .. } = &mut z {
            *reason = format!(
                "the listing outgrew its channel program's limits ({} instructions, {} bytes): \
                 list fewer properties, or one level at a time, or raise the limits \
                 (ListOptions::limits, up to the zfs module's zfs_lua_max_instrlimit and \
                 zfs_lua_max_memlimit)",
                options.limits.instructions, options.limits.memory
            );
        }
        z
    }
}

/// Decode the list program's output (`{err, entries = {{name, kind, props}, ...}}`).
fn parse_list(dataset: &str, out: &NvValue) -> Result<Vec<ListEntry>> {
    let bad = |why: String| {
        Error::invalid(
            "channel program output",
            format!("the listing of {dataset}: {why}"),
        )
    };
    match out.get("err").and_then(NvValue::as_i64) {
        Some(0) => {}
        Some(e) => return Err(Error::zfs(Op::List, dataset, Errno(e as i32))),
        None => return Err(bad(format!("no err field in {out:?}"))),
    }
    let entries = out
        .get("entries")
        .and_then(NvValue::as_lua_array)
        .ok_or_else(|| bad("no entries array".into()))?;
    entries
        .into_iter()
        .map(|e| {
            let name = e
                .get("name")
                .and_then(NvValue::as_str)
                .ok_or_else(|| bad(format!("an entry without a name: {e:?}")))?;
            let kind = e
                .get("kind")
                .and_then(NvValue::as_str)
                .and_then(DatasetKind::parse)
                .ok_or_else(|| bad(format!("{name} has no known kind: {e:?}")))?;
            let mut entry = ListEntry::new(name, kind);
            if let Some(props) = e.get("props").and_then(NvValue::as_list) {
                for (k, v) in props {
                    if let Some(r) = prop_read(v) {
                        entry.props.insert(k.clone(), r);
                    }
                }
            }
            Ok(entry)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nvlist::NvTree;
    use crate::PropValue;

    fn s(v: &str) -> NvValue {
        NvValue::Str(v.into())
    }

    fn list(pairs: Vec<(&str, NvValue)>) -> NvValue {
        NvValue::List(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    fn prop(value: NvValue, source: &str) -> NvValue {
        list(vec![("value", value), ("source", s(source))])
    }

    #[test]
    fn the_program_output_becomes_typed_entries_in_order() {
        let out = list(vec![
            ("err", NvValue::I64(0)),
            (
                "entries",
                list(vec![
                    (
                        "2",
                        list(vec![
                            ("name", s("tank/a@s1")),
                            ("kind", s("snapshot")),
                            ("props", list(vec![("used", prop(NvValue::I64(0), "-"))])),
                        ]),
                    ),
                    (
                        "1",
                        list(vec![
                            ("name", s("tank/a")),
                            ("kind", s("volume")),
                            (
                                "props",
                                list(vec![
                                    ("used", prop(NvValue::I64(8192), "-")),
                                    ("compression", prop(s("lz4"), "tank")),
                                    // A guid above i64::MAX arrives negative.
                                    ("guid", prop(NvValue::I64(-2), "-")),
                                ]),
                            ),
                        ]),
                    ),
                    (
                        "3",
                        list(vec![("name", s("tank/a#b1")), ("kind", s("bookmark"))]),
                    ),
                ]),
            ),
        ]);
        let e = parse_list("tank", &out).unwrap();
        let names: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["tank/a", "tank/a@s1", "tank/a#b1"]);
        assert_eq!(e[0].kind, DatasetKind::Volume);
        assert_eq!(e[0].get_u64("used"), Some(8192));
        assert_eq!(e[0].get_str("compression"), Some("lz4"));
        assert_eq!(e[0].get("compression").unwrap().source, "tank");
        assert_eq!(e[0].get_u64("guid"), Some(u64::MAX - 1));
        assert_eq!(e[1].kind, DatasetKind::Snapshot);
        assert_eq!(e[1].get_u64("used"), Some(0));
        assert_eq!(e[2].kind, DatasetKind::Bookmark);
        assert!(e[2].props.is_empty());
        assert_eq!(e[2].short_name(), "b1");
        assert_eq!(e[2].dataset(), "tank/a");
    }

    #[test]
    fn an_empty_listing_is_empty() {
        let out = list(vec![
            ("err", NvValue::I64(0)),
            ("entries", NvValue::List(NvTree::new())),
        ]);
        assert!(parse_list("tank", &out).unwrap().is_empty());
    }

    #[test]
    fn a_dataset_gone_before_the_program_is_enoent_in_words() {
        let out = list(vec![("err", NvValue::I64(libc::ENOENT.into()))]);
        let e = parse_list("tank/gone", &out).unwrap_err();
        assert!(e.is_errno(libc::ENOENT));
        assert_eq!(
            e.to_string(),
            "cannot list tank/gone: dataset does not exist (ENOENT)"
        );
    }

    #[test]
    fn malformed_output_is_an_invalid_error_not_a_panic() {
        for out in [
            NvValue::Flag,
            list(vec![("err", NvValue::I64(0))]),
            list(vec![
                ("err", NvValue::I64(0)),
                ("entries", list(vec![("1", list(vec![("name", s("x"))]))])),
            ]),
            list(vec![
                ("err", NvValue::I64(0)),
                (
                    "entries",
                    list(vec![(
                        "1",
                        list(vec![("name", s("x")), ("kind", s("zvol"))]),
                    )]),
                ),
            ]),
        ] {
            let e = parse_list("tank", &out).unwrap_err();
            assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
        }
    }

    #[test]
    fn options_build_and_entries_name_their_parts() {
        let o = ListOptions::new()
            .children(true)
            .snapshots(true)
            .props(vec!["used".to_string()]);
        assert!(o.children && o.snapshots && !o.bookmarks && !o.recursive && !o.itself);
        assert_eq!(o.props, ["used"]);
        assert_eq!(o.limits, Limits::large());
        let e = ListEntry::new("tank/vms/a", DatasetKind::Volume);
        assert_eq!(e.short_name(), "a");
        assert_eq!(e.dataset(), "tank/vms/a");
        assert_eq!(
            ListEntry::new("tank", DatasetKind::Filesystem).short_name(),
            "tank"
        );
        let mut e = ListEntry::new("tank/a", DatasetKind::Filesystem);
        e.props.insert(
            "x:y".into(),
            PropRead::new(PropValue::Str("z".into()), "tank"),
        );
        assert_eq!(e.get_u64("x:y"), None);
        assert_eq!(e.get_str("x:y"), Some("z"));
    }
}
