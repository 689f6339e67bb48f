//! Dataset properties without fork/exec.
//!
//! libzfs_core has no property setter (see `docs/zfs-facts.md` §3.3), so native
//! properties (`volsize`, `refreservation`, `readonly`, `volmode`, ...) are set with the
//! legacy `ZFS_IOC_SET_PROP` ioctl on our own `/dev/zfs` descriptor, with the heap
//! `zfs_cmd_t` buffer of `zfs-core-sys` (`ZfsCmd`: zeroed, with headroom for the kernel's
//! copy-out), and only on a module whose `zfs_cmd_t` layout was verified (2.1.x .. 2.4.x;
//! otherwise a clear ENOTSUP error, see [`Zfs::set_properties`]). The kernel applies the
//! properties of one call one by one, not atomically. Reading goes through a nosync
//! channel program (`zfs.get_prop`): one ioctl, no txg wait.
//!
//! Index properties are passed as their numeric values, as the kernel expects them; the
//! numbers are fixed by the on-disk format and identical in OpenZFS 2.1 .. 2.4.

use super::nvlist::{NvList, NvValue};
use super::program::{Limits, Program};
use super::util::{cstring, name};
use super::{Errno, Zfs};
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;
use std::collections::BTreeMap;

/// Compression algorithm, as an index value (`enum zio_compress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// `on` (the pool's default algorithm).
    On,
    /// `off`.
    Off,
    /// `zle`.
    Zle,
    /// `lz4`.
    Lz4,
    /// `zstd`.
    Zstd,
}

impl Compression {
    /// The kernel's index value (`ZIO_COMPRESS_*`: on=1, off=2, zle=14, lz4=15, zstd=16).
    ///
    /// ```
    /// assert_eq!(libzfs_core::Compression::Lz4.index(), 15);
    /// ```
    pub fn index(self) -> u64 {
        match self {
            Compression::On => 1,
            Compression::Off => 2,
            Compression::Zle => 14,
            Compression::Lz4 => 15,
            Compression::Zstd => 16,
        }
    }

    /// Parse the name `zfs set compression=` accepts (the subset above).
    ///
    /// ```
    /// use libzfs_core::Compression;
    /// assert_eq!(Compression::parse("lz4"), Some(Compression::Lz4));
    /// assert_eq!(Compression::parse("gzip-9"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Compression> {
        Some(match s {
            "on" => Compression::On,
            "off" => Compression::Off,
            "zle" => Compression::Zle,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            _ => return None,
        })
    }
}

/// `volmode` index values (`zfs_volmode_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolMode {
    /// Inherit the module default.
    Default,
    /// Expose a full block device with partitions.
    Full,
    /// Expose only the device, no partition scanning.
    Dev,
    /// Expose nothing.
    None,
}

impl VolMode {
    /// The kernel's index value.
    ///
    /// ```
    /// assert_eq!(libzfs_core::VolMode::Dev.index(), 2);
    /// ```
    pub fn index(self) -> u64 {
        (match self {
            VolMode::Default => sys::ZFS_VOLMODE_DEFAULT,
            VolMode::Full => sys::ZFS_VOLMODE_GEOM,
            VolMode::Dev => sys::ZFS_VOLMODE_DEV,
            VolMode::None => sys::ZFS_VOLMODE_NONE,
        }) as u64
    }
}

/// One property value, to set or as read: ZFS properties are numbers or strings (the two
/// kinds the kernel stores; index properties are numbers when set, names when read).
///
/// ```
/// use libzfs_core::PropValue;
/// assert_eq!(PropValue::U64(5).as_u64(), Some(5));
/// assert_eq!(PropValue::Str("lz4".into()).as_str(), Some("lz4"));
/// assert_eq!(PropValue::U64(5).to_string(), "5");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropValue {
    /// A number or index value.
    U64(u64),
    /// A string (user properties and string-valued native ones such as `mountpoint`).
    Str(String),
}

impl PropValue {
    /// The number, if this is one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            PropValue::U64(n) => Some(*n),
            PropValue::Str(_) => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PropValue::Str(s) => Some(s),
            PropValue::U64(_) => None,
        }
    }
}

/// The number in decimal, or the string as it is (`zfs get -p`'s value column).
impl std::fmt::Display for PropValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PropValue::U64(n) => write!(f, "{n}"),
            PropValue::Str(s) => f.write_str(s),
        }
    }
}

/// A set of properties to apply at create/clone time or with [`Zfs::set_properties`].
///
/// ```
/// use libzfs_core::{Props, VolMode};
/// let p = Props::new().u64("volsize", 1 << 30).readonly(true).volmode(VolMode::Dev)
///     .user("xapi-zvol:name", "disk 1");
/// assert_eq!(p.len(), 4);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Props {
    entries: BTreeMap<String, PropValue>,
}

impl Props {
    /// An empty set.
    pub fn new() -> Props {
        Props::default()
    }
    /// A numeric (or index) native property.
    pub fn u64(mut self, name: &str, v: u64) -> Props {
        self.entries.insert(name.to_string(), PropValue::U64(v));
        self
    }
    /// A string-valued native property.
    pub fn string(mut self, name: &str, v: &str) -> Props {
        self.entries
            .insert(name.to_string(), PropValue::Str(v.to_string()));
        self
    }
    /// A user property (the name must contain a `:`; checked when applied).
    pub fn user(self, name: &str, v: &str) -> Props {
        self.string(name, v)
    }
    /// `readonly` (index: off=0, on=1).
    pub fn readonly(self, on: bool) -> Props {
        self.u64("readonly", on as u64)
    }
    /// `volmode`.
    pub fn volmode(self, m: VolMode) -> Props {
        self.u64("volmode", m.index())
    }
    /// `compression`.
    pub fn compression(self, c: Compression) -> Props {
        self.u64("compression", c.index())
    }
    /// Number of properties.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// The entries, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &PropValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
    /// The typed nvlist the kernel takes (`{name: uint64 | string}`).
    pub fn to_nvlist(&self) -> Result<NvList> {
        let mut nv = NvList::new()?;
        for (k, v) in &self.entries {
            cstring("property name", k)?;
            match v {
                PropValue::U64(n) => nv.add_uint64(k, *n)?,
                PropValue::Str(s) => {
                    cstring("property value", s)?;
                    nv.add_string(k, s)?
                }
            }
        }
        Ok(nv)
    }
}

/// A property value as read back, with where it comes from.
///
/// ```
/// use libzfs_core::{PropRead, PropValue};
/// let r = PropRead::new(PropValue::U64(8192), "default");
/// assert_eq!((r.as_u64(), r.source.as_str()), (Some(8192), "default"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PropRead {
    /// Numbers come back as numbers (int64 in the kernel's Lua; reinterpreted as u64),
    /// index properties as their names.
    pub value: PropValue,
    /// `source` as ZFS reports it: a dataset name for local/inherited values,
    /// `"default"`, `"-"`, or empty.
    pub source: String,
}

static GET_PROPS: Program = crate::program!("get_props");
static USER_PROPS: Program = crate::program!("user_props");
static SET_USER_PROPS: Program = crate::program!("set_user_props");

/// Output buffer for SET_PROP's per-property error list.
const ERRLIST_BUF: usize = 16 * 1024;

/// Native properties that cannot be changed after creation. libzfs refuses them in
/// userland; the kernel's SET_PROP does not (it stores e.g. `used=1` in the dataset's
/// property ZAP and returns 0, seen on OpenZFS 2.4), so we must refuse them ourselves.
const NOT_SETTABLE: &[&str] = &[
    // statistics (read-only)
    "available",
    "avail",
    "clones",
    "compressratio",
    "createtxg",
    "creation",
    "defer_destroy",
    "encryptionroot",
    "filesystem_count",
    "guid",
    "inconsistent",
    "keystatus",
    "logicalreferenced",
    "logicalused",
    "mounted",
    "name",
    "numclones",
    "objsetid",
    "origin",
    "receive_resume_token",
    "redact_snaps",
    "refcompressratio",
    "referenced",
    "snapshot_count",
    "snapshots_changed",
    "type",
    "unique",
    "used",
    "usedbychildren",
    "usedbydataset",
    "usedbyrefreservation",
    "usedbysnapshots",
    "userrefs",
    "written",
    // fixed at creation
    "casesensitivity",
    "encryption",
    "keyformat",
    "normalization",
    "utf8only",
    "volblocksize",
];

impl Zfs {
    /// Set properties of a dataset in one ioctl (`ZFS_IOC_SET_PROP`, local source), native
    /// ones included. Setting `volsize` of a zvol resizes it; set `refreservation` in the
    /// same call to keep a thick volume thick.
    ///
    /// **Not atomic**: the kernel checks and applies the properties one by one (the
    /// "special" ones — `volsize`, `refreservation`, `reservation`, quotas, `volmode`,
    /// `snapdev`... — each in its own txg, the others together), so when one fails the
    /// others of the call may already be set. Read-only and create-only properties
    /// (`used`, `volblocksize`, ...) are refused here before anything is sent.
    ///
    /// Errors: `ENOENT` (no dataset), `EINVAL`, `ZFS_ERR_BADPROP` (bad index value), `EDOM`
    /// (the failing property is named), `ENOSPC` (reservation does not fit),
    /// `EROFS`/`EBUSY`; `ENOTSUP`, before anything is sent, when the loaded zfs module is
    /// outside the versions whose `zfs_cmd_t` layout was verified (2.1.x .. 2.4.x), the
    /// message naming the module version. There is no fallback: nothing else in-process
    /// sets native properties such as `volsize`, and a guessed layout could set the wrong
    /// thing.
    ///
    /// ```no_run
    /// use libzfs_core::{Zfs, Props};
    /// Zfs::get()?.set_properties("tank/vol", &Props::new().u64("volsize", 2 << 30))?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn set_properties(&self, dataset: &str, props: &Props) -> Result<()> {
        if props.is_empty() {
            return Ok(());
        }
        let c = name(dataset)?;
        if let Some((p, _)) = props.iter().find(|(k, _)| NOT_SETTABLE.contains(k)) {
            return Err(Error::invalid(
                "property",
                format!("{p} of {dataset} is read-only or can only be set at creation"),
            ));
        }
        let packed = props.to_nvlist()?.pack()?;
        let checked = self.legacy_layout(Op::SetProperties, dataset, "ZFS_IOC_SET_PROP")?;
        let mut errbuf = vec![0u8; ERRLIST_BUF];
        let mut zc = sys::ZfsCmd::new();
        zc.set_name(&c)
            .map_err(|e| Error::invalid("dataset name", e.to_string()))?;
        zc.set_nvlist_src(packed.as_ptr() as u64, packed.len() as u64);
        zc.set_nvlist_dst(errbuf.as_mut_ptr() as u64, errbuf.len() as u64);
        zc.set_cookie(0); // not "received": a local value
                          // SAFETY: the two nvlist pointers in `zc` are `packed` (read) and `errbuf`
                          // (written), both alive until after the call, with their exact lengths.
        let r = unsafe { self.ioctl(&checked, sys::ZFS_IOC_SET_PROP, &mut zc) };
        let Err(errno) = r else { return Ok(()) };
        let mut items = vec![];
        if zc.nvlist_dst_filled() {
            let n = (zc.nvlist_dst_size() as usize).min(errbuf.len());
            if let Ok(list) = NvList::unpack(&errbuf[..n]) {
                for (k, v) in list.to_tree() {
                    if let NvValue::I32(e) = v {
                        items.push((k, Errno(e)));
                    }
                }
            }
        }
        let mut e = Error::zfs_items(Op::SetProperties, dataset, errno, items.clone());
        if let (Error::Zfs { reason, .. }, Some((p, pe))) = (&mut e, items.first()) {
            *reason = format!(
                "property '{p}': {}",
                crate::error::reason(Op::SetProperties, *pe)
            );
        }
        Err(e)
    }

    /// Read properties of one dataset or snapshot in one nosync channel program (no
    /// fork, no txg wait). Properties that do not apply to the dataset are left out.
    ///
    /// Errors: `ENOENT` (no such dataset), `EINVAL` (a name that is not a property).
    ///
    /// ```no_run
    /// let p = libzfs_core::Zfs::get()?.get_properties("tank/vol", ["volsize", "used"])?;
    /// println!("{:?}", p.get("volsize"));
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn get_properties(
        &self,
        dataset: &str,
        props: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<BTreeMap<String, PropRead>> {
        let props: Vec<String> = props.into_iter().map(|p| p.as_ref().to_string()).collect();
        let props: Vec<&str> = props.iter().map(String::as_str).collect();
        let mut args = NvList::new()?;
        args.add_string("dataset", dataset)?;
        args.add_string_array("props", &props)?;
        self.read_props(&GET_PROPS, dataset, &args)
    }

    /// One numeric property of a dataset or snapshot (`volsize`, `used`, `createtxg`,
    /// ...; index properties such as `compression` read as names: use
    /// [`Zfs::get_string`]). `Ok(None)` when the property does not apply to it (`volsize`
    /// of a filesystem). One nosync channel program, as [`Zfs::get_properties`].
    ///
    /// Errors: `ENOENT` (no such dataset), `EINVAL` (not a property name),
    /// [`Error::Invalid`] when the property is a string.
    ///
    /// ```no_run
    /// let size = libzfs_core::Zfs::get()?.get_u64("tank/vol", "volsize")?;
    /// println!("{}", size.unwrap_or(0));
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn get_u64(&self, dataset: &str, prop: &str) -> Result<Option<u64>> {
        let Some(r) = self.get_properties(dataset, [prop])?.remove(prop) else {
            return Ok(None);
        };
        match r.value {
            PropValue::U64(n) => Ok(Some(n)),
            PropValue::Str(s) => Err(typed_read_error(dataset, prop, "a number", &s)),
        }
    }

    /// One string property of a dataset or snapshot: a user property (`Ok(None)` when it
    /// is not set, here or on an ancestor), an index property by name (`compression` →
    /// `"lz4"`), a string one (`mountpoint`, `origin`). `Ok(None)` also when the property
    /// does not apply to it.
    ///
    /// Errors: `ENOENT` (no such dataset), `EINVAL` (not a property name),
    /// [`Error::Invalid`] when the property is a number.
    ///
    /// ```no_run
    /// let z = libzfs_core::Zfs::get()?;
    /// if let Some(owner) = z.get_string("tank/vol", "com.example:owner")? {
    ///     println!("owned by {owner}");
    /// }
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn get_string(&self, dataset: &str, prop: &str) -> Result<Option<String>> {
        let Some(r) = self.get_properties(dataset, [prop])?.remove(prop) else {
            return Ok(None);
        };
        match r.value {
            PropValue::Str(s) => Ok(Some(s)),
            PropValue::U64(n) => Err(typed_read_error(dataset, prop, "a string", &n.to_string())),
        }
    }

    /// Run a property-reading program and decode its `{name: {value, source}}` output.
    fn read_props(
        &self,
        program: &Program,
        dataset: &str,
        args: &NvList,
    ) -> Result<BTreeMap<String, PropRead>> {
        let out = self
            .program_nosync(pool_of(dataset), program, args, Limits::default())
            .map_err(|e| self.read_error(Op::GetProperties, dataset, e))?;
        let mut m = BTreeMap::new();
        if let NvValue::List(t) = out {
            for (k, v) in t {
                if let Some(r) = prop_read(&v) {
                    m.insert(k, r);
                }
            }
        }
        Ok(m)
    }

    /// All user properties of a dataset (local and inherited), with their sources.
    /// Errors: `ENOENT` (no such dataset).
    ///
    /// ```no_run
    /// let u = libzfs_core::Zfs::get()?.user_properties("tank/vol")?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn user_properties(&self, dataset: &str) -> Result<BTreeMap<String, PropRead>> {
        let mut args = NvList::new()?;
        args.add_string("dataset", dataset)?;
        self.read_props(&USER_PROPS, dataset, &args)
    }

    /// Set and remove user properties of one dataset (or snapshot) atomically, in one
    /// sync channel program: every change is checked first, so it is all or nothing.
    ///
    /// ```no_run
    /// libzfs_core::Zfs::get()?.update_user_properties("tank/vol", &[("xapi-zvol:name", "a")], &["xapi-zvol:old"])?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn update_user_properties(
        &self,
        dataset: &str,
        set: &[(&str, &str)],
        unset: &[&str],
    ) -> Result<()> {
        for (k, _) in set {
            if !k.contains(':') {
                return Err(Error::invalid(
                    "user property name",
                    format!("{k:?} has no ':'"),
                ));
            }
        }
        let mut s = NvList::new()?;
        for (k, v) in set {
            s.add_string(k, v)?;
        }
        let mut u = NvList::new()?;
        for k in unset {
            u.add_boolean_value(k, true)?;
        }
        let mut args = NvList::new()?;
        args.add_string("dataset", dataset)?;
        args.add_nvlist("set", &s)?;
        args.add_nvlist("unset", &u)?;
        let out = self.program_sync(pool_of(dataset), &SET_USER_PROPS, &args, Limits::default())?;
        super::program::check_step(&SET_USER_PROPS, Op::SetProperties, dataset, &out)
    }
}

impl Zfs {
    /// Turn a failed property-reading program into an error about the dataset: the Lua
    /// runtime error of `zfs.get_prop` / `zfs.list.user_properties` says "no such dataset"
    /// or "'x' is not a valid property" with a traceback; callers want ENOENT / EINVAL.
    pub(crate) fn read_error(&self, op: Op, dataset: &str, e: Error) -> Error {
        let Error::Program {
            errno: Errno(libc::ECHRNG),
            message,
            ..
        } = &e
        else {
            return e;
        };
        if !self.exists(dataset) {
            return Error::zfs(op, dataset, Errno(libc::ENOENT));
        }
        if let Some(prop) = invalid_property(message) {
            let mut z = Error::zfs(op, dataset, Errno(libc::EINVAL));
            if let Error::Zfs { reason, .. } = &mut z {
                *reason = format!("{prop} is not a valid property name");
            }
            return z;
        }
        e
    }
}

/// The property a Lua "is not a valid property" error names (with its quotes), from a
/// message such as `[string "channel program"]:51: 'nosuch' is not a valid property`.
fn invalid_property(message: &str) -> Option<&str> {
    let i = message.find("is not a valid property")?;
    let head = &message[..i];
    Some(head.rsplit(": ").next().unwrap_or(head).trim())
}

/// The pool a dataset or snapshot name belongs to.
///
/// ```
/// assert_eq!(libzfs_core::pool_of("tank/a/b@s"), "tank");
/// ```
pub fn pool_of(dataset: &str) -> &str {
    dataset.split(['/', '@', '#']).next().unwrap_or(dataset)
}

/// A `{value, source}` list as a channel program returns it (numbers as int64, which a
/// property's u64 was: reinterpreted).
pub(crate) fn prop_read(v: &NvValue) -> Option<PropRead> {
    let NvValue::List(t) = v else { return None };
    let value = match t.get("value")? {
        NvValue::I64(n) => PropValue::U64(*n as u64),
        NvValue::U64(n) => PropValue::U64(*n),
        NvValue::Str(s) => PropValue::Str(s.clone()),
        _ => return None,
    };
    let source = match t.get("source") {
        Some(NvValue::Str(s)) => s.clone(),
        _ => String::new(),
    };
    Some(PropRead { value, source })
}

impl PropRead {
    /// A value read from `source`.
    pub fn new(value: PropValue, source: impl Into<String>) -> PropRead {
        PropRead {
            value,
            source: source.into(),
        }
    }

    /// The value as a number, if it is one.
    ///
    /// ```
    /// use libzfs_core::{PropRead, PropValue};
    /// let r = PropRead::new(PropValue::U64(5), "default");
    /// assert_eq!(r.as_u64(), Some(5));
    /// ```
    pub fn as_u64(&self) -> Option<u64> {
        self.value.as_u64()
    }
    /// The value as a string, if it is one.
    ///
    /// ```
    /// use libzfs_core::{PropRead, PropValue};
    /// let r = PropRead::new(PropValue::Str("lz4".into()), "tank");
    /// assert_eq!(r.as_str(), Some("lz4"));
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        self.value.as_str()
    }
}

/// A typed read of a property of the other type.
fn typed_read_error(dataset: &str, prop: &str, wanted: &str, got: &str) -> Error {
    Error::invalid(
        "property type",
        format!("{prop} of {dataset} is {got:?}, not {wanted}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_property_errors_name_the_property() {
        let m =
            "[string \"channel program\"]:7: 'nosuch' is not a valid property\nstack traceback:";
        assert_eq!(invalid_property(m), Some("'nosuch'"));
        assert_eq!(invalid_property("no such dataset 'tank/x'"), None);
        let e = typed_read_error("tank/v", "compression", "a number", "lz4");
        assert_eq!(
            e.to_string(),
            "invalid property type: compression of tank/v is \"lz4\", not a number"
        );
    }

    #[test]
    fn props_encode_typed() {
        let p = Props::new()
            .u64("volsize", 4096)
            .compression(Compression::Zstd)
            .user("a:b", "c");
        let t = p.to_nvlist().unwrap().to_tree();
        assert_eq!(t.get("volsize"), Some(&NvValue::U64(4096)));
        assert_eq!(t.get("compression"), Some(&NvValue::U64(16)));
        assert_eq!(t.get("a:b"), Some(&NvValue::Str("c".into())));
        assert!(Props::new().user("a:b", "x\0y").to_nvlist().is_err());
    }

    #[test]
    fn pool_names() {
        assert_eq!(pool_of("p"), "p");
        assert_eq!(pool_of("p/x#bm"), "p");
        assert_eq!(pool_of("p@s"), "p");
    }
}
