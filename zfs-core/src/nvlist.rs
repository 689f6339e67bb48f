//! Safe wrapper over OpenZFS `libnvpair` name/value lists.
//!
//! * [`NvList`] owns an `nvlist_t` (created with `NV_UNIQUE_NAME`, so adding a name that
//!   exists replaces it) and frees it on drop.
//! * [`NvListRef`] is a borrowed, read-only view, e.g. of a list nested in another one.
//! * [`NvTree`] / [`NvValue`] are a plain Rust copy of a list, convenient to match on,
//!   compare and build in tests; with the `serde` feature, serialisable and convertible to
//!   JSON (`to_json`).
//!
//! The wrapper compiles against the OpenZFS 2.1 .. 2.4 headers, whose `const`-ness of
//! pointer arguments differs: every call below passes `*mut` pointers and lets the
//! out-pointers' types be inferred, which fits both spellings.
//!
//! ```
//! use libzfs_core::nvlist::{NvList, NvValue};
//!
//! let mut props = NvList::new()?;
//! props.add_uint64("volsize", 1 << 30)?;
//! props.add_string("compression", "lz4")?;
//! let mut outer = NvList::new()?;
//! outer.add_nvlist("tank/vol", &props)?;
//!
//! let inner = outer.lookup_nvlist("tank/vol")?;
//! assert_eq!(inner.lookup_uint64("volsize")?, 1 << 30);
//! for (name, value) in outer.to_tree() {
//!     assert_eq!(name, "tank/vol");
//!     assert!(matches!(value, NvValue::List(_)));
//! }
//! # Ok::<(), libzfs_core::nvlist::NvListError>(())
//! ```

#![warn(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

use std::ffi::{c_char, c_int, CStr, CString};
use std::fmt;
use std::iter::FusedIterator;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::{self, NonNull};

use libzfs_core_sys as sys;
#[cfg(feature = "serde")]
use serde::ser::{SerializeMap, Serializer};
#[cfg(feature = "serde")]
use serde::Serialize;
#[cfg(feature = "serde")]
use serde_json::Value as Json;

const ENCODE_NATIVE: c_int = sys::NV_ENCODE_NATIVE as c_int;

/// Renders an errno for the error messages.
fn os_err(errno: &i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(*errno)
}

/// Why an nvlist operation failed.
///
/// ```
/// use libzfs_core::nvlist::{NvList, NvListError};
///
/// let nv = NvList::new()?;
/// let err = nv.lookup_uint64("missing").unwrap_err();
/// assert!(matches!(err, NvListError::NotFound { .. }));
/// assert_eq!(err.to_string(), r#"nvlist has no pair named "missing""#);
/// # Ok::<(), NvListError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NvListError {
    /// `nvlist_alloc` or `nvlist_dup` failed (carries the errno, normally `ENOMEM`).
    #[error("cannot allocate an nvlist: {}", os_err(.0))]
    Alloc(i32),
    /// A name or string value contains an interior NUL byte (C strings cannot hold it).
    #[error("nvlist {what} {value:?} contains a NUL byte")]
    Nul {
        /// What was rejected: `"name"` or `"string value"`.
        what: &'static str,
        /// The rejected text.
        value: String,
    },
    /// `nvlist_add_*` failed.
    #[error("cannot add {name:?} to an nvlist: {}", os_err(.errno))]
    Add {
        /// Name of the pair.
        name: String,
        /// The errno libnvpair returned (`EOVERFLOW` for an array longer than `u32::MAX`).
        errno: i32,
    },
    /// No pair has this name.
    #[error("nvlist has no pair named {name:?}")]
    NotFound {
        /// The name looked up.
        name: String,
    },
    /// The pair exists but holds another type.
    #[error("nvlist pair {name:?} is of type {found}, expected {expected}")]
    WrongType {
        /// Name of the pair.
        name: String,
        /// The libnvpair type name that was asked for (e.g. `"uint64"`).
        expected: &'static str,
        /// The type the pair has.
        found: String,
    },
    /// `nvlist_size`/`nvlist_pack` failed.
    #[error("cannot pack an nvlist: {}", os_err(.0))]
    Pack(i32),
    /// `nvlist_unpack` failed (the buffer is not a packed nvlist).
    #[error("cannot unpack an nvlist: {}", os_err(.0))]
    Unpack(i32),
    /// [`NvValue::Unknown`] cannot be added to a list.
    #[error("cannot add {name:?} to an nvlist: unsupported data type {type_code}")]
    UnsupportedType {
        /// Name of the pair.
        name: String,
        /// The libnvpair `data_type_t` code.
        type_code: i32,
    },
}

fn cstring(what: &'static str, s: &str) -> Result<CString, NvListError> {
    CString::new(s).map_err(|_| NvListError::Nul {
        what,
        value: s.to_owned(),
    })
}

fn check_name(name: &str) -> Result<(), NvListError> {
    if name.as_bytes().contains(&0) {
        Err(NvListError::Nul {
            what: "name",
            value: name.to_owned(),
        })
    } else {
        Ok(())
    }
}

/// Copies a C string, replacing invalid UTF-8; NULL reads as "".
///
/// # Safety
/// `s` is NULL or a valid NUL-terminated string.
unsafe fn lossy(s: *const c_char) -> String {
    if s.is_null() {
        String::new()
    } else {
        // SAFETY: non-null and NUL-terminated per the caller's contract.
        unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
    }
}

/// A slice over an array libnvpair returned, empty when `n == 0` or `data` is NULL.
///
/// # Safety
/// If `n > 0` and `data` is non-null, `data` points to `n` initialised elements that stay
/// valid and unmodified for `'a`.
unsafe fn raw_slice<'a, T>(data: *const T, n: sys::uint_t) -> &'a [T] {
    if n == 0 || data.is_null() {
        &[]
    } else {
        // SAFETY: per the caller's contract; `uint_t` (u32) always fits in usize here.
        unsafe { std::slice::from_raw_parts(data, n as usize) }
    }
}

/// The libnvpair name of a `data_type_t` (as in `nvlist_print`), for error messages.
fn type_name(code: sys::data_type_t) -> &'static str {
    match code {
        sys::DATA_TYPE_BOOLEAN => "boolean",
        sys::DATA_TYPE_BOOLEAN_VALUE => "boolean_value",
        sys::DATA_TYPE_BYTE => "byte",
        sys::DATA_TYPE_INT8 => "int8",
        sys::DATA_TYPE_UINT8 => "uint8",
        sys::DATA_TYPE_INT16 => "int16",
        sys::DATA_TYPE_UINT16 => "uint16",
        sys::DATA_TYPE_INT32 => "int32",
        sys::DATA_TYPE_UINT32 => "uint32",
        sys::DATA_TYPE_INT64 => "int64",
        sys::DATA_TYPE_UINT64 => "uint64",
        sys::DATA_TYPE_DOUBLE => "double",
        sys::DATA_TYPE_HRTIME => "hrtime",
        sys::DATA_TYPE_STRING => "string",
        sys::DATA_TYPE_NVLIST => "nvlist",
        sys::DATA_TYPE_BOOLEAN_ARRAY => "boolean_array",
        sys::DATA_TYPE_BYTE_ARRAY => "byte_array",
        sys::DATA_TYPE_INT8_ARRAY => "int8_array",
        sys::DATA_TYPE_UINT8_ARRAY => "uint8_array",
        sys::DATA_TYPE_INT16_ARRAY => "int16_array",
        sys::DATA_TYPE_UINT16_ARRAY => "uint16_array",
        sys::DATA_TYPE_INT32_ARRAY => "int32_array",
        sys::DATA_TYPE_UINT32_ARRAY => "uint32_array",
        sys::DATA_TYPE_INT64_ARRAY => "int64_array",
        sys::DATA_TYPE_UINT64_ARRAY => "uint64_array",
        sys::DATA_TYPE_STRING_ARRAY => "string_array",
        sys::DATA_TYPE_NVLIST_ARRAY => "nvlist_array",
        _ => "unknown",
    }
}

// ---------------------------------------------------------------------------------------
// NvValue / NvTree
// ---------------------------------------------------------------------------------------

/// The value of one nvlist pair, decoded into Rust (one variant per libnvpair type).
///
/// Channel programs return Lua numbers as [`NvValue::I64`] and tables as nested
/// [`NvValue::List`]s; ZFS properties come as `List({value: U64 | Str, source: Str})`.
///
/// ```
/// use libzfs_core::nvlist::{NvList, NvValue};
///
/// let mut nv = NvList::new()?;
/// nv.add_int64("n", -5)?;
/// assert_eq!(nv.lookup("n")?, NvValue::I64(-5));
/// assert_eq!(NvValue::I64(-5).type_name(), "int64");
/// # Ok::<(), libzfs_core::nvlist::NvListError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum NvValue {
    /// `DATA_TYPE_BOOLEAN`: a name with no value, a presence flag.
    Flag,
    /// `DATA_TYPE_BOOLEAN_VALUE`.
    Bool(bool),
    /// `DATA_TYPE_BYTE` (`uchar_t`; distinct from `uint8` in libnvpair).
    Byte(u8),
    /// `DATA_TYPE_INT8`.
    I8(i8),
    /// `DATA_TYPE_UINT8`.
    U8(u8),
    /// `DATA_TYPE_INT16`.
    I16(i16),
    /// `DATA_TYPE_UINT16`.
    U16(u16),
    /// `DATA_TYPE_INT32` (also how lzc error lists report errnos).
    I32(i32),
    /// `DATA_TYPE_UINT32`.
    U32(u32),
    /// `DATA_TYPE_INT64` (Lua numbers from channel programs).
    I64(i64),
    /// `DATA_TYPE_UINT64` (numeric ZFS properties).
    U64(u64),
    /// `DATA_TYPE_DOUBLE`.
    Double(f64),
    /// `DATA_TYPE_HRTIME` (nanoseconds).
    HrTime(i64),
    /// `DATA_TYPE_STRING` (invalid UTF-8 is replaced by U+FFFD when decoding).
    Str(String),
    /// `DATA_TYPE_NVLIST`: a nested list.
    List(NvTree),
    /// `DATA_TYPE_BOOLEAN_ARRAY`.
    BoolArray(Vec<bool>),
    /// `DATA_TYPE_BYTE_ARRAY`.
    ByteArray(Vec<u8>),
    /// `DATA_TYPE_INT8_ARRAY`.
    I8Array(Vec<i8>),
    /// `DATA_TYPE_UINT8_ARRAY`.
    U8Array(Vec<u8>),
    /// `DATA_TYPE_INT16_ARRAY`.
    I16Array(Vec<i16>),
    /// `DATA_TYPE_UINT16_ARRAY`.
    U16Array(Vec<u16>),
    /// `DATA_TYPE_INT32_ARRAY`.
    I32Array(Vec<i32>),
    /// `DATA_TYPE_UINT32_ARRAY`.
    U32Array(Vec<u32>),
    /// `DATA_TYPE_INT64_ARRAY`.
    I64Array(Vec<i64>),
    /// `DATA_TYPE_UINT64_ARRAY`.
    U64Array(Vec<u64>),
    /// `DATA_TYPE_STRING_ARRAY`.
    StrArray(Vec<String>),
    /// `DATA_TYPE_NVLIST_ARRAY`.
    ListArray(Vec<NvTree>),
    /// A type this wrapper does not decode (carries the `data_type_t` code). Cannot be
    /// added to a list.
    Unknown(i32),
}

impl NvValue {
    /// The libnvpair `data_type_t` code of this value.
    ///
    /// ```
    /// use libzfs_core::nvlist::NvValue;
    /// assert_eq!(NvValue::U64(1).type_code(), 8); // DATA_TYPE_UINT64
    /// ```
    pub fn type_code(&self) -> i32 {
        match self {
            NvValue::Flag => sys::DATA_TYPE_BOOLEAN,
            NvValue::Bool(_) => sys::DATA_TYPE_BOOLEAN_VALUE,
            NvValue::Byte(_) => sys::DATA_TYPE_BYTE,
            NvValue::I8(_) => sys::DATA_TYPE_INT8,
            NvValue::U8(_) => sys::DATA_TYPE_UINT8,
            NvValue::I16(_) => sys::DATA_TYPE_INT16,
            NvValue::U16(_) => sys::DATA_TYPE_UINT16,
            NvValue::I32(_) => sys::DATA_TYPE_INT32,
            NvValue::U32(_) => sys::DATA_TYPE_UINT32,
            NvValue::I64(_) => sys::DATA_TYPE_INT64,
            NvValue::U64(_) => sys::DATA_TYPE_UINT64,
            NvValue::Double(_) => sys::DATA_TYPE_DOUBLE,
            NvValue::HrTime(_) => sys::DATA_TYPE_HRTIME,
            NvValue::Str(_) => sys::DATA_TYPE_STRING,
            NvValue::List(_) => sys::DATA_TYPE_NVLIST,
            NvValue::BoolArray(_) => sys::DATA_TYPE_BOOLEAN_ARRAY,
            NvValue::ByteArray(_) => sys::DATA_TYPE_BYTE_ARRAY,
            NvValue::I8Array(_) => sys::DATA_TYPE_INT8_ARRAY,
            NvValue::U8Array(_) => sys::DATA_TYPE_UINT8_ARRAY,
            NvValue::I16Array(_) => sys::DATA_TYPE_INT16_ARRAY,
            NvValue::U16Array(_) => sys::DATA_TYPE_UINT16_ARRAY,
            NvValue::I32Array(_) => sys::DATA_TYPE_INT32_ARRAY,
            NvValue::U32Array(_) => sys::DATA_TYPE_UINT32_ARRAY,
            NvValue::I64Array(_) => sys::DATA_TYPE_INT64_ARRAY,
            NvValue::U64Array(_) => sys::DATA_TYPE_UINT64_ARRAY,
            NvValue::StrArray(_) => sys::DATA_TYPE_STRING_ARRAY,
            NvValue::ListArray(_) => sys::DATA_TYPE_NVLIST_ARRAY,
            NvValue::Unknown(code) => *code,
        }
    }

    /// The libnvpair name of this value's type (`"uint64"`, `"nvlist"`, `"unknown"`...).
    ///
    /// ```
    /// use libzfs_core::nvlist::NvValue;
    /// assert_eq!(NvValue::Str("x".into()).type_name(), "string");
    /// ```
    pub fn type_name(&self) -> &'static str {
        type_name(self.type_code())
    }

    /// The value as an unsigned number: any integer variant whose value fits in a `u64`
    /// (so a channel program's non-negative [`NvValue::I64`] reads as a `u64`); `None` for
    /// a negative number or another type.
    ///
    /// ```
    /// use libzfs_core::nvlist::NvValue;
    /// assert_eq!(NvValue::I64(42).as_u64(), Some(42));
    /// assert_eq!(NvValue::U64(u64::MAX).as_u64(), Some(u64::MAX));
    /// assert_eq!(NvValue::I64(-1).as_u64(), None);
    /// assert_eq!(NvValue::Str("42".into()).as_u64(), None);
    /// ```
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            NvValue::U64(v) => Some(v),
            NvValue::U32(v) => Some(v.into()),
            NvValue::U16(v) => Some(v.into()),
            NvValue::U8(v) | NvValue::Byte(v) => Some(v.into()),
            NvValue::I64(v) => u64::try_from(v).ok(),
            NvValue::I32(v) => u64::try_from(v).ok(),
            NvValue::I16(v) => u64::try_from(v).ok(),
            NvValue::I8(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed number: any integer variant whose value fits in an `i64`
    /// (not [`NvValue::HrTime`], a time); `None` otherwise.
    ///
    /// ```
    /// use libzfs_core::nvlist::NvValue;
    /// assert_eq!(NvValue::I32(-2).as_i64(), Some(-2));
    /// assert_eq!(NvValue::U64(u64::MAX).as_i64(), None);
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            NvValue::I64(v) => Some(v),
            NvValue::I32(v) => Some(v.into()),
            NvValue::I16(v) => Some(v.into()),
            NvValue::I8(v) => Some(v.into()),
            NvValue::U64(v) => i64::try_from(v).ok(),
            NvValue::U32(v) => Some(v.into()),
            NvValue::U16(v) => Some(v.into()),
            NvValue::U8(v) | NvValue::Byte(v) => Some(v.into()),
            _ => None,
        }
    }

    /// The value of a [`NvValue::Bool`] (`boolean_value`; a Lua boolean). A
    /// [`NvValue::Flag`] is not a boolean: see [`NvValue::is_flag`].
    ///
    /// ```
    /// use libzfs_core::nvlist::NvValue;
    /// assert_eq!(NvValue::Bool(false).as_bool(), Some(false));
    /// assert_eq!(NvValue::Flag.as_bool(), None);
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            NvValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// True for a [`NvValue::Flag`]: a name without a value, as lzc's name lists use, and
    /// what a channel program that returns `nil` (or nothing) gives.
    ///
    /// ```
    /// assert!(libzfs_core::nvlist::NvValue::Flag.is_flag());
    /// ```
    pub fn is_flag(&self) -> bool {
        matches!(self, NvValue::Flag)
    }

    /// The text of a [`NvValue::Str`].
    ///
    /// ```
    /// use libzfs_core::nvlist::NvValue;
    /// assert_eq!(NvValue::Str("lz4".into()).as_str(), Some("lz4"));
    /// assert_eq!(NvValue::I64(1).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            NvValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The pairs of a nested list ([`NvValue::List`]; a Lua table).
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvTree, NvValue};
    /// assert!(NvValue::List(NvTree::new()).as_list().unwrap().is_empty());
    /// assert!(NvValue::Flag.as_list().is_none());
    /// ```
    pub fn as_list(&self) -> Option<&NvTree> {
        match self {
            NvValue::List(t) => Some(t),
            _ => None,
        }
    }

    /// The value named `name` in a nested list; `None` when this is not a list or has no
    /// such pair. Chains through channel-program output:
    /// `out.get("props").and_then(|p| p.get("used")).and_then(NvValue::as_u64)`.
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvTree, NvValue};
    /// let mut t = NvTree::new();
    /// t.push("n", NvValue::I64(3));
    /// let v = NvValue::List(t);
    /// assert_eq!(v.get("n").and_then(NvValue::as_u64), Some(3));
    /// assert_eq!(v.get("m"), None);
    /// assert_eq!(NvValue::I64(3).get("n"), None);
    /// ```
    pub fn get(&self, name: &str) -> Option<&NvValue> {
        self.as_list()?.get(name)
    }

    /// The items of a Lua array as a channel program returns it: a table `{a, b, c}`
    /// arrives as a list named `"1"`, `"2"`, `"3"` (in no promised order); this gives the
    /// values in index order. `None` unless this is a list whose names are exactly `1..=n`.
    /// An empty table (an empty list) is an empty array.
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvTree, NvValue};
    /// let t: NvTree = [("2", "b"), ("1", "a")]
    ///     .into_iter()
    ///     .map(|(k, v)| (k.to_string(), NvValue::Str(v.into())))
    ///     .collect();
    /// let table = NvValue::List(t);
    /// let items = table.as_lua_array().unwrap();
    /// assert_eq!(items, [&NvValue::Str("a".into()), &NvValue::Str("b".into())]);
    /// assert_eq!(NvValue::List(NvTree::new()).as_lua_array(), Some(vec![]));
    /// ```
    pub fn as_lua_array(&self) -> Option<Vec<&NvValue>> {
        let t = self.as_list()?;
        let mut slots: Vec<Option<&NvValue>> = vec![None; t.len()];
        for (k, v) in t {
            // "01" or "+1" are not what Lua writes for an index: not an array.
            let i: usize = k.parse().ok().filter(|i: &usize| i.to_string() == *k)?;
            let slot = slots.get_mut(i.checked_sub(1)?)?;
            if slot.replace(v).is_some() {
                return None;
            }
        }
        slots.into_iter().collect()
    }

    /// The strings of a [`NvValue::StrArray`].
    ///
    /// ```
    /// use libzfs_core::nvlist::NvValue;
    /// let v = NvValue::StrArray(vec!["a".into()]);
    /// assert_eq!(v.as_str_array(), Some(&["a".to_string()][..]));
    /// ```
    pub fn as_str_array(&self) -> Option<&[String]> {
        match self {
            NvValue::StrArray(v) => Some(v),
            _ => None,
        }
    }

    /// The lists of a [`NvValue::ListArray`] (e.g. the children of a vdev).
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvTree, NvValue};
    /// assert_eq!(NvValue::ListArray(vec![NvTree::new()]).as_list_array().map(|l| l.len()), Some(1));
    /// ```
    pub fn as_list_array(&self) -> Option<&[NvTree]> {
        match self {
            NvValue::ListArray(v) => Some(v),
            _ => None,
        }
    }

    /// JSON form: `Flag` → `true`, numbers → numbers (a non-finite double → `null`),
    /// strings → strings, lists → objects, arrays → arrays, `Unknown` → `null`.
    ///
    /// ```
    /// use libzfs_core::nvlist::NvValue;
    /// assert_eq!(NvValue::U64Array(vec![1, 2]).to_json(), serde_json::json!([1, 2]));
    /// assert_eq!(NvValue::Flag.to_json(), serde_json::json!(true));
    /// ```
    #[cfg(feature = "serde")]
    pub fn to_json(&self) -> Json {
        fn arr<T: Copy>(v: &[T], f: impl Fn(T) -> Json) -> Json {
            Json::Array(v.iter().copied().map(f).collect())
        }
        match self {
            NvValue::Flag => Json::Bool(true),
            NvValue::Bool(b) => Json::Bool(*b),
            NvValue::Byte(v) | NvValue::U8(v) => Json::from(*v),
            NvValue::I8(v) => Json::from(*v),
            NvValue::I16(v) => Json::from(*v),
            NvValue::U16(v) => Json::from(*v),
            NvValue::I32(v) => Json::from(*v),
            NvValue::U32(v) => Json::from(*v),
            NvValue::I64(v) | NvValue::HrTime(v) => Json::from(*v),
            NvValue::U64(v) => Json::from(*v),
            NvValue::Double(v) => serde_json::Number::from_f64(*v).map_or(Json::Null, Json::Number),
            NvValue::Str(s) => Json::String(s.clone()),
            NvValue::List(t) => t.to_json(),
            NvValue::BoolArray(v) => arr(v, Json::Bool),
            NvValue::ByteArray(v) | NvValue::U8Array(v) => arr(v, Json::from),
            NvValue::I8Array(v) => arr(v, Json::from),
            NvValue::I16Array(v) => arr(v, Json::from),
            NvValue::U16Array(v) => arr(v, Json::from),
            NvValue::I32Array(v) => arr(v, Json::from),
            NvValue::U32Array(v) => arr(v, Json::from),
            NvValue::I64Array(v) => arr(v, Json::from),
            NvValue::U64Array(v) => arr(v, Json::from),
            NvValue::StrArray(v) => {
                Json::Array(v.iter().map(|s| Json::String(s.clone())).collect())
            }
            NvValue::ListArray(v) => Json::Array(v.iter().map(NvTree::to_json).collect()),
            NvValue::Unknown(_) => Json::Null,
        }
    }
}

#[cfg(feature = "serde")]
impl Serialize for NvValue {
    /// Serialises like [`NvValue::to_json`].
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NvValue::Flag => s.serialize_bool(true),
            NvValue::Bool(b) => s.serialize_bool(*b),
            NvValue::Byte(v) | NvValue::U8(v) => s.serialize_u8(*v),
            NvValue::I8(v) => s.serialize_i8(*v),
            NvValue::I16(v) => s.serialize_i16(*v),
            NvValue::U16(v) => s.serialize_u16(*v),
            NvValue::I32(v) => s.serialize_i32(*v),
            NvValue::U32(v) => s.serialize_u32(*v),
            NvValue::I64(v) | NvValue::HrTime(v) => s.serialize_i64(*v),
            NvValue::U64(v) => s.serialize_u64(*v),
            NvValue::Double(v) if v.is_finite() => s.serialize_f64(*v),
            NvValue::Double(_) | NvValue::Unknown(_) => s.serialize_unit(),
            NvValue::Str(v) => s.serialize_str(v),
            NvValue::List(t) => t.serialize(s),
            NvValue::BoolArray(v) => s.collect_seq(v),
            NvValue::ByteArray(v) | NvValue::U8Array(v) => s.collect_seq(v),
            NvValue::I8Array(v) => s.collect_seq(v),
            NvValue::I16Array(v) => s.collect_seq(v),
            NvValue::U16Array(v) => s.collect_seq(v),
            NvValue::I32Array(v) => s.collect_seq(v),
            NvValue::U32Array(v) => s.collect_seq(v),
            NvValue::I64Array(v) => s.collect_seq(v),
            NvValue::U64Array(v) => s.collect_seq(v),
            NvValue::StrArray(v) => s.collect_seq(v),
            NvValue::ListArray(v) => s.collect_seq(v),
        }
    }
}

/// A decoded nvlist: its pairs in list order.
///
/// Iterating by value yields `(String, NvValue)`, by reference `&(String, NvValue)`.
///
/// ```
/// use libzfs_core::nvlist::{NvList, NvTree, NvValue};
///
/// let tree: NvTree = [("a".to_string(), NvValue::U64(1)), ("b".to_string(), NvValue::Flag)]
///     .into_iter()
///     .collect();
/// let list = NvList::from_tree(&tree)?;
/// assert_eq!(list.to_tree(), tree);
/// for (name, value) in list.to_tree() {
///     println!("{name} = {value:?}");
/// }
/// # Ok::<(), libzfs_core::nvlist::NvListError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NvTree(pub Vec<(String, NvValue)>);

impl NvTree {
    /// An empty tree.
    ///
    /// ```
    /// assert!(libzfs_core::nvlist::NvTree::new().is_empty());
    /// ```
    pub fn new() -> NvTree {
        NvTree(Vec::new())
    }

    /// The value of the first pair named `name`.
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvTree, NvValue};
    /// let mut t = NvTree::new();
    /// t.push("x", NvValue::I32(3));
    /// assert_eq!(t.get("x"), Some(&NvValue::I32(3)));
    /// assert_eq!(t.get("y"), None);
    /// ```
    pub fn get(&self, name: &str) -> Option<&NvValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Appends a pair (no de-duplication: [`NvList::from_tree`] keeps the last value of a
    /// repeated name, at the position of that last one).
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvTree, NvValue};
    /// let mut t = NvTree::new();
    /// t.push("x", NvValue::Str("v".into()));
    /// assert_eq!(t.len(), 1);
    /// ```
    pub fn push(&mut self, name: impl Into<String>, value: NvValue) {
        self.0.push((name.into(), value));
    }

    /// Iterates over the pairs in order.
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvTree, NvValue};
    /// let mut t = NvTree::new();
    /// t.push("a", NvValue::Flag);
    /// t.push("b", NvValue::Flag);
    /// let names: Vec<&str> = t.iter().map(|(k, _)| k.as_str()).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// ```
    pub fn iter(&self) -> std::slice::Iter<'_, (String, NvValue)> {
        self.0.iter()
    }

    /// Number of pairs.
    ///
    /// ```
    /// assert_eq!(libzfs_core::nvlist::NvTree::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no pairs.
    ///
    /// ```
    /// assert!(libzfs_core::nvlist::NvTree::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A JSON object of the pairs (see [`NvValue::to_json`]; on a repeated name the last
    /// value wins).
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvTree, NvValue};
    /// let mut t = NvTree::new();
    /// t.push("used", NvValue::U64(42));
    /// assert_eq!(t.to_json(), serde_json::json!({"used": 42}));
    /// ```
    #[cfg(feature = "serde")]
    pub fn to_json(&self) -> Json {
        Json::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }

    /// Builds an [`NvList`] from this tree (same as [`NvList::from_tree`]).
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvTree, NvValue};
    /// let mut t = NvTree::new();
    /// t.push("a", NvValue::U64(1));
    /// assert_eq!(t.to_nvlist()?.lookup_uint64("a")?, 1);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn to_nvlist(&self) -> Result<NvList, NvListError> {
        NvList::from_tree(self)
    }
}

impl IntoIterator for NvTree {
    type Item = (String, NvValue);
    type IntoIter = std::vec::IntoIter<(String, NvValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'t> IntoIterator for &'t NvTree {
    type Item = &'t (String, NvValue);
    type IntoIter = std::slice::Iter<'t, (String, NvValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<(String, NvValue)> for NvTree {
    fn from_iter<I: IntoIterator<Item = (String, NvValue)>>(iter: I) -> Self {
        NvTree(iter.into_iter().collect())
    }
}

impl Extend<(String, NvValue)> for NvTree {
    fn extend<I: IntoIterator<Item = (String, NvValue)>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

#[cfg(feature = "serde")]
impl Serialize for NvTree {
    /// Serialises as a map, like [`NvTree::to_json`].
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

// ---------------------------------------------------------------------------------------
// Decoding pairs
// ---------------------------------------------------------------------------------------

/// The pairs of a list, in order, as raw pointers.
struct RawPairs<'a> {
    list: *mut sys::nvlist_t,
    cur: *mut sys::nvpair_t,
    done: bool,
    _life: PhantomData<&'a sys::nvlist_t>,
}

impl Iterator for RawPairs<'_> {
    type Item = *mut sys::nvpair_t;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        // SAFETY: `list` is a live list borrowed for 'a and not modified meanwhile; `cur`
        // is NULL (start) or a pair this function returned from that same list.
        let next = unsafe { sys::nvlist_next_nvpair(self.list, self.cur) };
        if next.is_null() {
            self.done = true;
            None
        } else {
            self.cur = next;
            Some(next)
        }
    }
}

/// # Safety
/// `p` is a valid pair of a live list.
unsafe fn pair_name<'a>(p: *mut sys::nvpair_t) -> &'a CStr {
    // SAFETY: `p` is valid per the caller; the name is NUL-terminated and lives in the pair.
    let n: *const c_char = unsafe { sys::nvpair_name(p) };
    if n.is_null() {
        c""
    } else {
        // SAFETY: non-null NUL-terminated string owned by the pair.
        unsafe { CStr::from_ptr(n) }
    }
}

/// Decodes one pair (recursively for nested lists).
///
/// # Safety
/// `p` is a valid pair of a live list that is not modified during the call.
unsafe fn decode(p: *mut sys::nvpair_t) -> NvValue {
    // SAFETY: `p` is valid per the caller.
    let ty = unsafe { sys::nvpair_type(p) };

    macro_rules! scalar {
        ($cfn:ident, $cty:ty, $wrap:expr) => {{
            let mut v: $cty = Default::default();
            // SAFETY: `p` is a valid pair whose type matched this arm; `v` is a valid
            // out-pointer of the C type the getter writes.
            if unsafe { sys::$cfn(p, &mut v) } == 0 {
                $wrap(v)
            } else {
                NvValue::Unknown(ty)
            }
        }};
    }
    macro_rules! array {
        ($cfn:ident, $cty:ty, $wrap:expr) => {{
            let mut data: *mut $cty = ptr::null_mut();
            let mut n: sys::uint_t = 0;
            // SAFETY: `p` is a valid pair whose type matched this arm; `data` and `n` are
            // valid out-pointers (`cast` adapts to the header's constness).
            if unsafe { sys::$cfn(p, (&raw mut data).cast(), &mut n) } == 0 {
                // SAFETY: libnvpair returned `n` elements stored in the pair, which lives
                // (unmodified) for the duration of this call.
                let items = unsafe { raw_slice(data.cast_const(), n) };
                $wrap(items)
            } else {
                NvValue::Unknown(ty)
            }
        }};
    }

    match ty {
        sys::DATA_TYPE_BOOLEAN => NvValue::Flag,
        sys::DATA_TYPE_BOOLEAN_VALUE => {
            scalar!(nvpair_value_boolean_value, sys::boolean_t, |v| {
                NvValue::Bool(v != sys::B_FALSE)
            })
        }
        sys::DATA_TYPE_BYTE => scalar!(nvpair_value_byte, sys::uchar_t, NvValue::Byte),
        sys::DATA_TYPE_INT8 => scalar!(nvpair_value_int8, i8, NvValue::I8),
        sys::DATA_TYPE_UINT8 => scalar!(nvpair_value_uint8, u8, NvValue::U8),
        sys::DATA_TYPE_INT16 => scalar!(nvpair_value_int16, i16, NvValue::I16),
        sys::DATA_TYPE_UINT16 => scalar!(nvpair_value_uint16, u16, NvValue::U16),
        sys::DATA_TYPE_INT32 => scalar!(nvpair_value_int32, i32, NvValue::I32),
        sys::DATA_TYPE_UINT32 => scalar!(nvpair_value_uint32, u32, NvValue::U32),
        sys::DATA_TYPE_INT64 => scalar!(nvpair_value_int64, i64, NvValue::I64),
        sys::DATA_TYPE_UINT64 => scalar!(nvpair_value_uint64, u64, NvValue::U64),
        sys::DATA_TYPE_DOUBLE => scalar!(nvpair_value_double, f64, NvValue::Double),
        sys::DATA_TYPE_HRTIME => scalar!(nvpair_value_hrtime, sys::hrtime_t, NvValue::HrTime),
        sys::DATA_TYPE_STRING => {
            let mut s: *const c_char = ptr::null();
            // SAFETY: `p` is a valid string pair; `s` is a valid out-pointer.
            if unsafe { sys::nvpair_value_string(p, (&raw mut s).cast()) } == 0 {
                // SAFETY: libnvpair returned the pair's NUL-terminated string.
                NvValue::Str(unsafe { lossy(s) })
            } else {
                NvValue::Unknown(ty)
            }
        }
        sys::DATA_TYPE_NVLIST => {
            let mut l: *mut sys::nvlist_t = ptr::null_mut();
            // SAFETY: `p` is a valid nvlist pair; `l` is a valid out-pointer.
            if unsafe { sys::nvpair_value_nvlist(p, &mut l) } == 0 && !l.is_null() {
                // SAFETY: `l` is the embedded list, alive as long as the pair.
                NvValue::List(unsafe { NvListRef::from_raw(l) }.to_tree())
            } else {
                NvValue::Unknown(ty)
            }
        }
        sys::DATA_TYPE_BOOLEAN_ARRAY => array!(
            nvpair_value_boolean_array,
            sys::boolean_t,
            |v: &[sys::boolean_t]| {
                NvValue::BoolArray(v.iter().map(|b| *b != sys::B_FALSE).collect())
            }
        ),
        sys::DATA_TYPE_BYTE_ARRAY => array!(nvpair_value_byte_array, sys::uchar_t, |v: &[u8]| {
            NvValue::ByteArray(v.to_vec())
        }),
        sys::DATA_TYPE_INT8_ARRAY => {
            array!(nvpair_value_int8_array, i8, |v: &[i8]| NvValue::I8Array(
                v.to_vec()
            ))
        }
        sys::DATA_TYPE_UINT8_ARRAY => {
            array!(nvpair_value_uint8_array, u8, |v: &[u8]| NvValue::U8Array(
                v.to_vec()
            ))
        }
        sys::DATA_TYPE_INT16_ARRAY => {
            array!(
                nvpair_value_int16_array,
                i16,
                |v: &[i16]| NvValue::I16Array(v.to_vec())
            )
        }
        sys::DATA_TYPE_UINT16_ARRAY => array!(nvpair_value_uint16_array, u16, |v: &[u16]| {
            NvValue::U16Array(v.to_vec())
        }),
        sys::DATA_TYPE_INT32_ARRAY => {
            array!(
                nvpair_value_int32_array,
                i32,
                |v: &[i32]| NvValue::I32Array(v.to_vec())
            )
        }
        sys::DATA_TYPE_UINT32_ARRAY => array!(nvpair_value_uint32_array, u32, |v: &[u32]| {
            NvValue::U32Array(v.to_vec())
        }),
        sys::DATA_TYPE_INT64_ARRAY => {
            array!(
                nvpair_value_int64_array,
                i64,
                |v: &[i64]| NvValue::I64Array(v.to_vec())
            )
        }
        sys::DATA_TYPE_UINT64_ARRAY => array!(nvpair_value_uint64_array, u64, |v: &[u64]| {
            NvValue::U64Array(v.to_vec())
        }),
        sys::DATA_TYPE_STRING_ARRAY => array!(
            nvpair_value_string_array,
            *const c_char,
            |v: &[*const c_char]| {
                // SAFETY: each element is a NUL-terminated string stored in the pair.
                NvValue::StrArray(v.iter().map(|s| unsafe { lossy(*s) }).collect())
            }
        ),
        sys::DATA_TYPE_NVLIST_ARRAY => array!(
            nvpair_value_nvlist_array,
            *mut sys::nvlist_t,
            |v: &[*mut sys::nvlist_t]| {
                NvValue::ListArray(
                    v.iter()
                        .map(|l| {
                            if l.is_null() {
                                NvTree::new()
                            } else {
                                // SAFETY: each element is a list embedded in the pair.
                                unsafe { NvListRef::from_raw(*l) }.to_tree()
                            }
                        })
                        .collect(),
                )
            }
        ),
        other => NvValue::Unknown(other),
    }
}

// ---------------------------------------------------------------------------------------
// NvListRef
// ---------------------------------------------------------------------------------------

/// A borrowed, read-only view of an nvlist (owned by an [`NvList`], by the parent list
/// it is nested in, or by C code).
///
/// ```
/// use libzfs_core::nvlist::{NvList, NvListRef};
///
/// let mut nv = NvList::new()?;
/// nv.add_string("origin", "tank/base@s")?;
/// let view: NvListRef<'_> = nv.as_ref();
/// assert_eq!(view.lookup_string("origin")?, "tank/base@s");
/// # Ok::<(), libzfs_core::nvlist::NvListError>(())
/// ```
#[derive(Clone, Copy)]
pub struct NvListRef<'a> {
    ptr: *const sys::nvlist_t,
    _life: PhantomData<&'a sys::nvlist_t>,
}

macro_rules! typed_lookup {
    ($( $(#[$m:meta])* $fn:ident -> $ret:ty, $var:ident, $tname:literal, |$v:ident| $conv:expr; )*) => { $(
        $(#[$m])*
        pub fn $fn(&self, name: &str) -> Result<$ret, NvListError> {
            match self.lookup(name)? {
                NvValue::$var($v) => Ok($conv),
                other => Err(NvListError::WrongType {
                    name: name.to_owned(),
                    expected: $tname,
                    found: other.type_name().to_owned(),
                }),
            }
        }
    )* };
}

impl<'a> NvListRef<'a> {
    /// Wraps a borrowed list pointer.
    ///
    /// # Safety
    /// `p` is a valid, non-null `nvlist_t` that stays alive and unmodified for `'a`.
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvList, NvListRef};
    /// let mut nv = NvList::new()?;
    /// nv.add_boolean("x")?;
    /// // SAFETY: `nv` outlives the view and is not modified while it is used.
    /// let view = unsafe { NvListRef::from_raw(nv.as_ptr()) };
    /// assert!(view.exists("x"));
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub unsafe fn from_raw(p: *const sys::nvlist_t) -> NvListRef<'a> {
        NvListRef {
            ptr: p,
            _life: PhantomData,
        }
    }

    /// The underlying pointer (for C calls that only read it).
    ///
    /// ```
    /// let nv = libzfs_core::nvlist::NvList::new()?;
    /// assert_eq!(nv.as_ref().as_ptr(), nv.as_ptr());
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn as_ptr(&self) -> *const sys::nvlist_t {
        self.ptr
    }

    /// The pointer as the (pre-2.2, non-const) C API spells it; libnvpair only reads it.
    fn raw(&self) -> *mut sys::nvlist_t {
        self.ptr.cast_mut()
    }

    fn pairs(&self) -> RawPairs<'a> {
        RawPairs {
            list: self.raw(),
            cur: ptr::null_mut(),
            done: false,
            _life: PhantomData,
        }
    }

    /// The first pair named `name`.
    fn find(&self, name: &str) -> Result<*mut sys::nvpair_t, NvListError> {
        check_name(name)?;
        self.pairs()
            // SAFETY: `p` is a pair of this live list.
            .find(|&p| unsafe { pair_name(p) }.to_bytes() == name.as_bytes())
            .ok_or_else(|| NvListError::NotFound {
                name: name.to_owned(),
            })
    }

    /// Whether a pair named `name` exists (any type; `false` for a name with a NUL).
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_boolean("defer")?;
    /// assert!(nv.as_ref().exists("defer"));
    /// assert!(!nv.as_ref().exists("other"));
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn exists(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// The value of the pair named `name`, whatever its type.
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvList, NvValue};
    /// let mut nv = NvList::new()?;
    /// nv.add_uint64_array("a", &[1, 2])?;
    /// assert_eq!(nv.as_ref().lookup("a")?, NvValue::U64Array(vec![1, 2]));
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn lookup(&self, name: &str) -> Result<NvValue, NvListError> {
        let p = self.find(name)?;
        // SAFETY: `p` is a pair of this live list, which is not modified while borrowed.
        Ok(unsafe { decode(p) })
    }

    typed_lookup! {
        /// The `boolean_value` pair named `name` (a `boolean` presence flag is a
        /// [`NvListError::WrongType`]; use [`NvListRef::exists`] for those).
        ///
        /// ```
        /// let mut nv = libzfs_core::nvlist::NvList::new()?;
        /// nv.add_boolean_value("b", true)?;
        /// assert!(nv.as_ref().lookup_boolean_value("b")?);
        /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
        /// ```
        lookup_boolean_value -> bool, Bool, "boolean_value", |v| v;
        /// The `int32` pair named `name`.
        ///
        /// ```
        /// let mut nv = libzfs_core::nvlist::NvList::new()?;
        /// nv.add_int32("e", -2)?;
        /// assert_eq!(nv.as_ref().lookup_int32("e")?, -2);
        /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
        /// ```
        lookup_int32 -> i32, I32, "int32", |v| v;
        /// The `int64` pair named `name`.
        ///
        /// ```
        /// let mut nv = libzfs_core::nvlist::NvList::new()?;
        /// nv.add_int64("n", -1)?;
        /// assert_eq!(nv.as_ref().lookup_int64("n")?, -1);
        /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
        /// ```
        lookup_int64 -> i64, I64, "int64", |v| v;
        /// The `uint64` pair named `name`.
        ///
        /// ```
        /// let mut nv = libzfs_core::nvlist::NvList::new()?;
        /// nv.add_uint64("volsize", 4096)?;
        /// assert_eq!(nv.as_ref().lookup_uint64("volsize")?, 4096);
        /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
        /// ```
        lookup_uint64 -> u64, U64, "uint64", |v| v;
        /// The `string` pair named `name` (invalid UTF-8 replaced by U+FFFD).
        ///
        /// ```
        /// let mut nv = libzfs_core::nvlist::NvList::new()?;
        /// nv.add_string("s", "lz4")?;
        /// assert_eq!(nv.as_ref().lookup_string("s")?, "lz4");
        /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
        /// ```
        lookup_string -> String, Str, "string", |v| v;
        /// The `uint64_array` pair named `name`.
        ///
        /// ```
        /// let mut nv = libzfs_core::nvlist::NvList::new()?;
        /// nv.add_uint64_array("a", &[7, 8])?;
        /// assert_eq!(nv.as_ref().lookup_uint64_array("a")?, [7, 8]);
        /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
        /// ```
        lookup_uint64_array -> Vec<u64>, U64Array, "uint64_array", |v| v;
        /// The `string_array` pair named `name`.
        ///
        /// ```
        /// let mut nv = libzfs_core::nvlist::NvList::new()?;
        /// nv.add_string_array("a", &["x", "y"])?;
        /// assert_eq!(nv.as_ref().lookup_string_array("a")?, ["x", "y"]);
        /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
        /// ```
        lookup_string_array -> Vec<String>, StrArray, "string_array", |v| v;
    }

    /// The nested list named `name`, borrowed from this one (no copy).
    ///
    /// ```
    /// use libzfs_core::nvlist::NvList;
    /// let mut prop = NvList::new()?;
    /// prop.add_uint64("value", 8192)?;
    /// let mut nv = NvList::new()?;
    /// nv.add_nvlist("volblocksize", &prop)?;
    /// let view = nv.as_ref();
    /// assert_eq!(view.lookup_nvlist("volblocksize")?.lookup_uint64("value")?, 8192);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn lookup_nvlist(&self, name: &str) -> Result<NvListRef<'a>, NvListError> {
        let p = self.find(name)?;
        // SAFETY: `p` is a pair of this live list.
        let ty = unsafe { sys::nvpair_type(p) };
        let mut l: *mut sys::nvlist_t = ptr::null_mut();
        if ty == sys::DATA_TYPE_NVLIST
            // SAFETY: `p` is a valid pair and `l` a valid out-pointer; the getter checks
            // the type itself and only writes on success.
            && unsafe { sys::nvpair_value_nvlist(p, &mut l) } == 0
            && !l.is_null()
        {
            // SAFETY: `l` is embedded in the pair and lives (unmodified) as long as this
            // list is borrowed, i.e. for 'a.
            Ok(unsafe { NvListRef::from_raw(l) })
        } else {
            Err(NvListError::WrongType {
                name: name.to_owned(),
                expected: "nvlist",
                found: type_name(ty).to_owned(),
            })
        }
    }

    /// Iterates over the pairs in list order, decoding each one.
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvList, NvValue};
    /// let mut nv = NvList::new()?;
    /// nv.add_int32("a", 1)?;
    /// nv.add_boolean("b")?;
    /// let pairs: Vec<(String, NvValue)> = nv.as_ref().iter().collect();
    /// assert_eq!(pairs, [("a".into(), NvValue::I32(1)), ("b".into(), NvValue::Flag)]);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn iter(&self) -> NvIter<'a> {
        NvIter { raw: self.pairs() }
    }

    /// Number of pairs (walks the list).
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_boolean("a")?;
    /// assert_eq!(nv.as_ref().len(), 1);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.pairs().count()
    }

    /// Whether the list has no pairs.
    ///
    /// ```
    /// let nv = libzfs_core::nvlist::NvList::new()?;
    /// assert!(nv.as_ref().is_empty());
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.pairs().next().is_none()
    }

    /// Decodes the whole list (recursively) into an [`NvTree`].
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvList, NvValue};
    /// let mut nv = NvList::new()?;
    /// nv.add_string("k", "v")?;
    /// assert_eq!(nv.as_ref().to_tree().get("k"), Some(&NvValue::Str("v".into())));
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn to_tree(&self) -> NvTree {
        self.iter().collect()
    }

    /// The list as a JSON object (see [`NvValue::to_json`]).
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_int64("n", 3)?;
    /// assert_eq!(nv.as_ref().to_json(), serde_json::json!({"n": 3}));
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    #[cfg(feature = "serde")]
    pub fn to_json(&self) -> Json {
        self.to_tree().to_json()
    }

    /// Serialises the list with `NV_ENCODE_NATIVE` (the encoding the ZFS ioctls use).
    ///
    /// ```
    /// use libzfs_core::nvlist::NvList;
    /// let mut nv = NvList::new()?;
    /// nv.add_uint64("a", 1)?;
    /// let bytes = nv.as_ref().pack()?;
    /// assert_eq!(NvList::unpack(&bytes)?.lookup_uint64("a")?, 1);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn pack(&self) -> Result<Vec<u8>, NvListError> {
        let mut size: usize = 0;
        // SAFETY: valid list (only read); `size` is a valid out-pointer.
        let rc = unsafe { sys::nvlist_size(self.raw(), &mut size, ENCODE_NATIVE) };
        if rc != 0 {
            return Err(NvListError::Pack(rc));
        }
        let mut buf = vec![0u8; size];
        let mut bufp: *mut c_char = buf.as_mut_ptr().cast();
        let mut len = size;
        // SAFETY: `bufp` is non-null and points to `len` writable bytes owned by `buf`;
        // with a caller-supplied buffer libnvpair encodes into it (ENOMEM if too small)
        // and neither reallocates nor frees it.
        let rc = unsafe { sys::nvlist_pack(self.raw(), &mut bufp, &mut len, ENCODE_NATIVE, 0) };
        if rc != 0 {
            return Err(NvListError::Pack(rc));
        }
        buf.truncate(len);
        Ok(buf)
    }

    /// An owned deep copy (`nvlist_dup`).
    ///
    /// ```
    /// use libzfs_core::nvlist::NvList;
    /// let mut inner = NvList::new()?;
    /// inner.add_uint64("v", 1)?;
    /// let mut outer = NvList::new()?;
    /// outer.add_nvlist("in", &inner)?;
    /// let copy: NvList = outer.lookup_nvlist("in")?.to_nvlist()?;
    /// drop(outer);
    /// assert_eq!(copy.lookup_uint64("v")?, 1);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn to_nvlist(&self) -> Result<NvList, NvListError> {
        let mut p: *mut sys::nvlist_t = ptr::null_mut();
        // SAFETY: valid list (only read); `p` is a valid out-pointer, set on success.
        let rc = unsafe { sys::nvlist_dup(self.raw(), &mut p, 0) };
        if rc != 0 || p.is_null() {
            return Err(NvListError::Alloc(if rc != 0 { rc } else { libc::ENOMEM }));
        }
        // SAFETY: `p` is a fresh list that we own.
        Ok(unsafe { NvList::from_raw_owned(p) })
    }
}

impl<'a> IntoIterator for NvListRef<'a> {
    type Item = (String, NvValue);
    type IntoIter = NvIter<'a>;
    fn into_iter(self) -> NvIter<'a> {
        self.iter()
    }
}

impl fmt::Debug for NvListRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Iterator over the decoded pairs of a list, in list order (see [`NvListRef::iter`]).
///
/// ```
/// use libzfs_core::nvlist::{NvIter, NvList};
/// let mut nv = NvList::new()?;
/// nv.add_boolean("a")?;
/// let it: NvIter<'_> = nv.iter();
/// assert_eq!(it.count(), 1);
/// # Ok::<(), libzfs_core::nvlist::NvListError>(())
/// ```
pub struct NvIter<'a> {
    raw: RawPairs<'a>,
}

impl Iterator for NvIter<'_> {
    type Item = (String, NvValue);
    fn next(&mut self) -> Option<Self::Item> {
        let p = self.raw.next()?;
        // SAFETY: `p` is a pair of the borrowed list, which is alive and unmodified.
        Some(unsafe { (pair_name(p).to_string_lossy().into_owned(), decode(p)) })
    }
}

impl FusedIterator for NvIter<'_> {}

// ---------------------------------------------------------------------------------------
// NvList
// ---------------------------------------------------------------------------------------

/// An owned `nvlist_t`, created with `NV_UNIQUE_NAME` and freed on drop.
///
/// Adding a name that exists replaces the old pair (the new one goes to the end of the
/// list order). `Send` but not `Sync`: libnvpair does no locking.
///
/// ```
/// use libzfs_core::nvlist::NvList;
///
/// let mut snaps = NvList::new()?;
/// snaps.add_boolean("tank/a@s1")?;
/// snaps.add_boolean("tank/b@s1")?;
/// assert_eq!(snaps.len(), 2);
/// // Pass `snaps.as_mut_ptr()` to libzfs_core; it only borrows the list.
/// # Ok::<(), libzfs_core::nvlist::NvListError>(())
/// ```
///
/// Not `Sync` (and views are neither `Send` nor `Sync`):
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<libzfs_core::nvlist::NvList>();
/// ```
pub struct NvList {
    ptr: NonNull<sys::nvlist_t>,
}

// SAFETY: an NvList exclusively owns its nvlist_t (and everything nested in it); libnvpair
// keeps no thread-local state, so the list may be used and freed from another thread.
unsafe impl Send for NvList {}

macro_rules! scalar_adders {
    ($( $fn:ident($t:ty) => $cfn:ident, $ex:literal, $var:ident; )*) => { $(
        #[doc = concat!("Adds `name` as a `", stringify!($cfn), "` pair (replacing any pair with that name).")]
        ///
        /// ```
        /// use libzfs_core::nvlist::{NvList, NvValue};
        /// let mut nv = NvList::new()?;
        #[doc = concat!("nv.", stringify!($fn), "(\"k\", ", $ex, ")?;")]
        #[doc = concat!("assert_eq!(nv.lookup(\"k\")?, NvValue::", stringify!($var), "(", $ex, "));")]
        /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
        /// ```
        pub fn $fn(&mut self, name: &str, value: $t) -> Result<(), NvListError> {
            self.add_raw(name, |nvl, n| {
                // SAFETY: `nvl` is our live list and `n` a NUL-terminated name; the value
                // is passed by copy.
                unsafe { sys::$cfn(nvl, n, value) }
            })
        }
    )* };
}

macro_rules! array_adders {
    ($( $fn:ident([$t:ty]) => $cfn:ident, $ex:literal, $var:ident; )*) => { $(
        #[doc = concat!("Adds `name` as a `", stringify!($cfn), "` pair (copied; replacing any pair with that name).")]
        ///
        /// ```
        /// use libzfs_core::nvlist::{NvList, NvValue};
        /// let mut nv = NvList::new()?;
        #[doc = concat!("nv.", stringify!($fn), "(\"k\", &", $ex, ")?;")]
        #[doc = concat!("assert_eq!(nv.lookup(\"k\")?, NvValue::", stringify!($var), "(", $ex, ".to_vec()));")]
        /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
        /// ```
        pub fn $fn(&mut self, name: &str, values: &[$t]) -> Result<(), NvListError> {
            let n = array_len(name, values.len())?;
            self.add_raw(name, |nvl, cname| {
                // SAFETY: `nvl` is our live list, `cname` a NUL-terminated name, and
                // `values` holds `n` elements that libnvpair copies (it never writes
                // through the pointer, whatever the header's constness).
                unsafe { sys::$cfn(nvl, cname, values.as_ptr().cast_mut(), n) }
            })
        }
    )* };
}

fn array_len(name: &str, len: usize) -> Result<sys::uint_t, NvListError> {
    sys::uint_t::try_from(len).map_err(|_| NvListError::Add {
        name: name.to_owned(),
        errno: libc::EOVERFLOW,
    })
}

impl NvList {
    /// A new empty list (`nvlist_alloc(NV_UNIQUE_NAME)`).
    ///
    /// ```
    /// let nv = libzfs_core::nvlist::NvList::new()?;
    /// assert!(nv.is_empty());
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn new() -> Result<NvList, NvListError> {
        let mut p: *mut sys::nvlist_t = ptr::null_mut();
        // SAFETY: `p` is a valid out-pointer, set only on success.
        let rc = unsafe { sys::nvlist_alloc(&mut p, sys::NV_UNIQUE_NAME, 0) };
        if rc != 0 || p.is_null() {
            return Err(NvListError::Alloc(if rc != 0 { rc } else { libc::ENOMEM }));
        }
        // SAFETY: `p` is a fresh list that we own.
        Ok(unsafe { NvList::from_raw_owned(p) })
    }

    /// Takes ownership of a list allocated by libnvpair (e.g. an lzc out-parameter); it is
    /// freed with `nvlist_free` on drop.
    ///
    /// # Safety
    /// `p` is a valid list allocated by libnvpair that nothing else frees or uses after
    /// this call (other than through the returned value).
    ///
    /// # Panics
    /// If `p` is NULL.
    ///
    /// ```
    /// use libzfs_core::nvlist::NvList;
    /// let raw = NvList::new()?.into_raw();
    /// // SAFETY: `raw` came from `into_raw`; ownership goes back to an NvList.
    /// let nv = unsafe { NvList::from_raw_owned(raw) };
    /// assert!(nv.is_empty());
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub unsafe fn from_raw_owned(p: *mut sys::nvlist_t) -> NvList {
        NvList {
            ptr: NonNull::new(p).expect("NvList::from_raw_owned: null nvlist pointer"),
        }
    }

    /// The list pointer, for C calls that only read it.
    ///
    /// ```
    /// let nv = libzfs_core::nvlist::NvList::new()?;
    /// assert!(!nv.as_ptr().is_null());
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn as_ptr(&self) -> *const sys::nvlist_t {
        self.ptr.as_ptr()
    }

    /// The list pointer, for C calls (such as `lzc_snapshot`) that take `nvlist_t *`.
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// assert!(!nv.as_mut_ptr().is_null());
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn as_mut_ptr(&mut self) -> *mut sys::nvlist_t {
        self.ptr.as_ptr()
    }

    /// Gives up ownership: the caller must free the list (`nvlist_free`, or
    /// [`NvList::from_raw_owned`] and drop).
    ///
    /// ```
    /// use libzfs_core::nvlist::NvList;
    /// let raw = NvList::new()?.into_raw();
    /// // SAFETY: we own `raw`; this frees it.
    /// drop(unsafe { NvList::from_raw_owned(raw) });
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn into_raw(self) -> *mut sys::nvlist_t {
        ManuallyDrop::new(self).ptr.as_ptr()
    }

    /// A borrowed read-only view (all the read methods live on [`NvListRef`]; `NvList`
    /// forwards the common ones).
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_boolean("x")?;
    /// let view = nv.as_ref();
    /// assert!(view.exists("x"));
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn as_ref(&self) -> NvListRef<'_> {
        // SAFETY: the list is alive and, while the view borrows `self`, cannot be modified.
        unsafe { NvListRef::from_raw(self.ptr.as_ptr()) }
    }

    /// A deep copy (`nvlist_dup`); `Clone` calls this and panics only if it fails (out of
    /// memory).
    ///
    /// ```
    /// let mut a = libzfs_core::nvlist::NvList::new()?;
    /// a.add_uint64("x", 1)?;
    /// let mut b = a.try_clone()?;
    /// b.add_uint64("x", 2)?;
    /// assert_eq!(a.lookup_uint64("x")?, 1);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn try_clone(&self) -> Result<NvList, NvListError> {
        self.as_ref().to_nvlist()
    }

    /// Builds a list from a tree (nested lists are built recursively). A repeated name
    /// keeps its last value.
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvList, NvTree, NvValue};
    /// let mut t = NvTree::new();
    /// t.push("a", NvValue::I64(-1));
    /// let nv = NvList::from_tree(&t)?;
    /// assert_eq!(nv.lookup_int64("a")?, -1);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn from_tree(tree: &NvTree) -> Result<NvList, NvListError> {
        let mut nv = NvList::new()?;
        for (name, value) in tree {
            nv.add_value(name, value)?;
        }
        Ok(nv)
    }

    /// Deserialises a packed list (any encoding libnvpair recognises, e.g. the output of
    /// [`NvList::pack`] or of a ZFS ioctl). The buffer is copied first, so libnvpair
    /// never sees the caller's memory.
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvList, NvListError};
    /// assert!(matches!(NvList::unpack(b"not an nvlist"), Err(NvListError::Unpack(_))));
    /// ```
    pub fn unpack(buf: &[u8]) -> Result<NvList, NvListError> {
        let mut copy = buf.to_vec();
        let mut p: *mut sys::nvlist_t = ptr::null_mut();
        // SAFETY: `copy` is a private buffer of `copy.len()` bytes; libnvpair copies out
        // everything it decodes, so the result does not point into it. `p` is a valid
        // out-pointer, set only on success (a partial list is freed by libnvpair).
        let rc = unsafe { sys::nvlist_unpack(copy.as_mut_ptr().cast(), copy.len(), &mut p, 0) };
        if rc != 0 || p.is_null() {
            return Err(NvListError::Unpack(if rc != 0 { rc } else { libc::EINVAL }));
        }
        // SAFETY: `p` is a fresh list that we own.
        Ok(unsafe { NvList::from_raw_owned(p) })
    }

    fn add_raw(
        &mut self,
        name: &str,
        f: impl FnOnce(*mut sys::nvlist_t, *const c_char) -> c_int,
    ) -> Result<(), NvListError> {
        let cname = cstring("name", name)?;
        match f(self.ptr.as_ptr(), cname.as_ptr()) {
            0 => Ok(()),
            errno => Err(NvListError::Add {
                name: name.to_owned(),
                errno,
            }),
        }
    }

    /// Adds `name` as a `boolean` pair: a presence flag without a value (how lzc spells
    /// sets, e.g. the snapshots to create).
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvList, NvValue};
    /// let mut nv = NvList::new()?;
    /// nv.add_boolean("tank/a@s")?;
    /// assert_eq!(nv.lookup("tank/a@s")?, NvValue::Flag);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn add_boolean(&mut self, name: &str) -> Result<(), NvListError> {
        self.add_raw(name, |nvl, n| {
            // SAFETY: `nvl` is our live list and `n` a NUL-terminated name.
            unsafe { sys::nvlist_add_boolean(nvl, n) }
        })
    }

    /// Adds `name` as a `boolean_value` pair.
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_boolean_value("b", false)?;
    /// assert!(!nv.lookup_boolean_value("b")?);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn add_boolean_value(&mut self, name: &str, value: bool) -> Result<(), NvListError> {
        let v = if value { sys::B_TRUE } else { sys::B_FALSE };
        self.add_raw(name, |nvl, n| {
            // SAFETY: `nvl` is our live list and `n` a NUL-terminated name.
            unsafe { sys::nvlist_add_boolean_value(nvl, n, v) }
        })
    }

    scalar_adders! {
        add_byte(u8) => nvlist_add_byte, "7", Byte;
        add_int8(i8) => nvlist_add_int8, "-7", I8;
        add_uint8(u8) => nvlist_add_uint8, "7", U8;
        add_int16(i16) => nvlist_add_int16, "-300", I16;
        add_uint16(u16) => nvlist_add_uint16, "300", U16;
        add_int32(i32) => nvlist_add_int32, "-70000", I32;
        add_uint32(u32) => nvlist_add_uint32, "70000", U32;
        add_int64(i64) => nvlist_add_int64, "-5000000000", I64;
        add_uint64(u64) => nvlist_add_uint64, "5000000000", U64;
        add_double(f64) => nvlist_add_double, "2.5", Double;
        add_hrtime(i64) => nvlist_add_hrtime, "1000000000", HrTime;
    }

    /// Adds `name` as a `string` pair (copied).
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_string("compression", "lz4")?;
    /// assert_eq!(nv.lookup_string("compression")?, "lz4");
    /// assert!(nv.add_string("bad", "a\0b").is_err());
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn add_string(&mut self, name: &str, value: &str) -> Result<(), NvListError> {
        let v = cstring("string value", value)?;
        self.add_raw(name, |nvl, n| {
            // SAFETY: `nvl` is our live list, `n` and `v` NUL-terminated strings that
            // libnvpair copies.
            unsafe { sys::nvlist_add_string(nvl, n, v.as_ptr()) }
        })
    }

    /// Adds `name` as an `nvlist` pair holding a deep copy of `value`.
    ///
    /// ```
    /// use libzfs_core::nvlist::NvList;
    /// let mut inner = NvList::new()?;
    /// inner.add_uint64("value", 1)?;
    /// let mut nv = NvList::new()?;
    /// nv.add_nvlist("p", &inner)?;
    /// inner.add_uint64("value", 2)?; // the copy is unaffected
    /// assert_eq!(nv.lookup_nvlist("p")?.lookup_uint64("value")?, 1);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn add_nvlist(&mut self, name: &str, value: &NvList) -> Result<(), NvListError> {
        let v = value.ptr.as_ptr();
        self.add_raw(name, |nvl, n| {
            // SAFETY: `nvl` is our live list, `n` a NUL-terminated name, `v` another live
            // list (it cannot be `nvl`: that would need `&mut` and `&` of one NvList),
            // which libnvpair copies and does not modify.
            unsafe { sys::nvlist_add_nvlist(nvl, n, v) }
        })
    }

    /// Adds `name` as a `boolean_array` pair.
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvList, NvValue};
    /// let mut nv = NvList::new()?;
    /// nv.add_boolean_array("k", &[true, false])?;
    /// assert_eq!(nv.lookup("k")?, NvValue::BoolArray(vec![true, false]));
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn add_boolean_array(&mut self, name: &str, values: &[bool]) -> Result<(), NvListError> {
        let n = array_len(name, values.len())?;
        let v: Vec<sys::boolean_t> = values
            .iter()
            .map(|&b| if b { sys::B_TRUE } else { sys::B_FALSE })
            .collect();
        self.add_raw(name, |nvl, cname| {
            // SAFETY: `nvl` is our live list, `cname` a NUL-terminated name, `v` holds `n`
            // elements that libnvpair copies without writing through the pointer.
            unsafe { sys::nvlist_add_boolean_array(nvl, cname, v.as_ptr().cast_mut(), n) }
        })
    }

    array_adders! {
        add_byte_array([u8]) => nvlist_add_byte_array, "[1u8, 2]", ByteArray;
        add_int8_array([i8]) => nvlist_add_int8_array, "[-1i8, 2]", I8Array;
        add_uint8_array([u8]) => nvlist_add_uint8_array, "[1u8, 2]", U8Array;
        add_int16_array([i16]) => nvlist_add_int16_array, "[-1i16, 2]", I16Array;
        add_uint16_array([u16]) => nvlist_add_uint16_array, "[1u16, 2]", U16Array;
        add_int32_array([i32]) => nvlist_add_int32_array, "[-1i32, 2]", I32Array;
        add_uint32_array([u32]) => nvlist_add_uint32_array, "[1u32, 2]", U32Array;
        add_int64_array([i64]) => nvlist_add_int64_array, "[-1i64, 2]", I64Array;
        add_uint64_array([u64]) => nvlist_add_uint64_array, "[1u64, 2]", U64Array;
    }

    /// Adds `name` as a `string_array` pair (copied).
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_string_array("snaps", &["a@1", "a@2"])?;
    /// assert_eq!(nv.lookup_string_array("snaps")?, ["a@1", "a@2"]);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn add_string_array(&mut self, name: &str, values: &[&str]) -> Result<(), NvListError> {
        let n = array_len(name, values.len())?;
        let owned = values
            .iter()
            .map(|s| cstring("string value", s))
            .collect::<Result<Vec<_>, _>>()?;
        let ptrs: Vec<*const c_char> = owned.iter().map(|s| s.as_ptr()).collect();
        self.add_raw(name, |nvl, cname| {
            // SAFETY: `nvl` is our live list, `cname` a NUL-terminated name; `ptrs` holds
            // `n` NUL-terminated strings (kept alive by `owned`) that libnvpair copies.
            unsafe { sys::nvlist_add_string_array(nvl, cname, ptrs.as_ptr().cast(), n) }
        })
    }

    /// Adds `name` as an `nvlist_array` pair holding deep copies of `values`.
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvList, NvValue};
    /// let mut a = NvList::new()?;
    /// a.add_uint64("x", 1)?;
    /// let mut nv = NvList::new()?;
    /// nv.add_nvlist_array("k", &[&a, &a])?;
    /// let NvValue::ListArray(v) = nv.lookup("k")? else { unreachable!() };
    /// assert_eq!(v.len(), 2);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn add_nvlist_array(&mut self, name: &str, values: &[&NvList]) -> Result<(), NvListError> {
        let n = array_len(name, values.len())?;
        let mut ptrs: Vec<*mut sys::nvlist_t> = values.iter().map(|l| l.ptr.as_ptr()).collect();
        self.add_raw(name, |nvl, cname| {
            // SAFETY: `nvl` is our live list, `cname` a NUL-terminated name; `ptrs` holds
            // `n` other live lists (borrowed shared, so none is `nvl`) that libnvpair
            // copies without modifying.
            unsafe { sys::nvlist_add_nvlist_array(nvl, cname, ptrs.as_mut_ptr().cast(), n) }
        })
    }

    /// Adds any [`NvValue`] under `name` with its own libnvpair type (nested trees are
    /// built recursively). [`NvValue::Unknown`] gives [`NvListError::UnsupportedType`].
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvList, NvValue};
    /// let mut nv = NvList::new()?;
    /// nv.add_value("x", &NvValue::U32(5))?;
    /// assert_eq!(nv.lookup("x")?, NvValue::U32(5));
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn add_value(&mut self, name: &str, value: &NvValue) -> Result<(), NvListError> {
        match value {
            NvValue::Flag => self.add_boolean(name),
            NvValue::Bool(v) => self.add_boolean_value(name, *v),
            NvValue::Byte(v) => self.add_byte(name, *v),
            NvValue::I8(v) => self.add_int8(name, *v),
            NvValue::U8(v) => self.add_uint8(name, *v),
            NvValue::I16(v) => self.add_int16(name, *v),
            NvValue::U16(v) => self.add_uint16(name, *v),
            NvValue::I32(v) => self.add_int32(name, *v),
            NvValue::U32(v) => self.add_uint32(name, *v),
            NvValue::I64(v) => self.add_int64(name, *v),
            NvValue::U64(v) => self.add_uint64(name, *v),
            NvValue::Double(v) => self.add_double(name, *v),
            NvValue::HrTime(v) => self.add_hrtime(name, *v),
            NvValue::Str(v) => self.add_string(name, v),
            NvValue::List(t) => {
                check_name(name)?;
                self.add_nvlist(name, &NvList::from_tree(t)?)
            }
            NvValue::BoolArray(v) => self.add_boolean_array(name, v),
            NvValue::ByteArray(v) => self.add_byte_array(name, v),
            NvValue::I8Array(v) => self.add_int8_array(name, v),
            NvValue::U8Array(v) => self.add_uint8_array(name, v),
            NvValue::I16Array(v) => self.add_int16_array(name, v),
            NvValue::U16Array(v) => self.add_uint16_array(name, v),
            NvValue::I32Array(v) => self.add_int32_array(name, v),
            NvValue::U32Array(v) => self.add_uint32_array(name, v),
            NvValue::I64Array(v) => self.add_int64_array(name, v),
            NvValue::U64Array(v) => self.add_uint64_array(name, v),
            NvValue::StrArray(v) => {
                let refs: Vec<&str> = v.iter().map(String::as_str).collect();
                self.add_string_array(name, &refs)
            }
            NvValue::ListArray(v) => {
                check_name(name)?;
                let lists = v
                    .iter()
                    .map(NvList::from_tree)
                    .collect::<Result<Vec<_>, _>>()?;
                let refs: Vec<&NvList> = lists.iter().collect();
                self.add_nvlist_array(name, &refs)
            }
            NvValue::Unknown(code) => Err(NvListError::UnsupportedType {
                name: name.to_owned(),
                type_code: *code,
            }),
        }
    }

    /// Removes every pair named `name`; whether there was one (`false` for a name with a
    /// NUL byte, which cannot exist).
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_boolean("x")?;
    /// assert!(nv.remove("x"));
    /// assert!(!nv.remove("x"));
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn remove(&mut self, name: &str) -> bool {
        let Ok(cname) = CString::new(name) else {
            return false;
        };
        // SAFETY: our live list and a NUL-terminated name; returns ENOENT if absent.
        unsafe { sys::nvlist_remove_all(self.ptr.as_ptr(), cname.as_ptr()) == 0 }
    }

    /// Same as [`NvListRef::exists`].
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_boolean("x")?;
    /// assert!(nv.exists("x") && !nv.exists("y"));
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn exists(&self, name: &str) -> bool {
        self.as_ref().exists(name)
    }

    /// Same as [`NvListRef::lookup`].
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvList, NvValue};
    /// let mut nv = NvList::new()?;
    /// nv.add_uint64("x", 1)?;
    /// assert_eq!(nv.lookup("x")?, NvValue::U64(1));
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn lookup(&self, name: &str) -> Result<NvValue, NvListError> {
        self.as_ref().lookup(name)
    }

    /// Same as [`NvListRef::lookup_boolean_value`].
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_boolean_value("b", true)?;
    /// assert!(nv.lookup_boolean_value("b")?);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn lookup_boolean_value(&self, name: &str) -> Result<bool, NvListError> {
        self.as_ref().lookup_boolean_value(name)
    }

    /// Same as [`NvListRef::lookup_int32`].
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_int32("e", 2)?;
    /// assert_eq!(nv.lookup_int32("e")?, 2);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn lookup_int32(&self, name: &str) -> Result<i32, NvListError> {
        self.as_ref().lookup_int32(name)
    }

    /// Same as [`NvListRef::lookup_int64`].
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_int64("n", 2)?;
    /// assert_eq!(nv.lookup_int64("n")?, 2);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn lookup_int64(&self, name: &str) -> Result<i64, NvListError> {
        self.as_ref().lookup_int64(name)
    }

    /// Same as [`NvListRef::lookup_uint64`].
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_uint64("n", 2)?;
    /// assert_eq!(nv.lookup_uint64("n")?, 2);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn lookup_uint64(&self, name: &str) -> Result<u64, NvListError> {
        self.as_ref().lookup_uint64(name)
    }

    /// Same as [`NvListRef::lookup_string`].
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_string("s", "v")?;
    /// assert_eq!(nv.lookup_string("s")?, "v");
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn lookup_string(&self, name: &str) -> Result<String, NvListError> {
        self.as_ref().lookup_string(name)
    }

    /// Same as [`NvListRef::lookup_nvlist`] (borrowed from this list).
    ///
    /// ```
    /// use libzfs_core::nvlist::NvList;
    /// let mut nv = NvList::new()?;
    /// nv.add_nvlist("in", &NvList::new()?)?;
    /// assert!(nv.lookup_nvlist("in")?.is_empty());
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn lookup_nvlist(&self, name: &str) -> Result<NvListRef<'_>, NvListError> {
        self.as_ref().lookup_nvlist(name)
    }

    /// Same as [`NvListRef::lookup_uint64_array`].
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_uint64_array("a", &[1])?;
    /// assert_eq!(nv.lookup_uint64_array("a")?, [1]);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn lookup_uint64_array(&self, name: &str) -> Result<Vec<u64>, NvListError> {
        self.as_ref().lookup_uint64_array(name)
    }

    /// Same as [`NvListRef::lookup_string_array`].
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_string_array("a", &["x"])?;
    /// assert_eq!(nv.lookup_string_array("a")?, ["x"]);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn lookup_string_array(&self, name: &str) -> Result<Vec<String>, NvListError> {
        self.as_ref().lookup_string_array(name)
    }

    /// Same as [`NvListRef::iter`].
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_boolean("a")?;
    /// nv.add_boolean("b")?;
    /// let names: Vec<String> = nv.iter().map(|(k, _)| k).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn iter(&self) -> NvIter<'_> {
        self.as_ref().iter()
    }

    /// Same as [`NvListRef::len`].
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_boolean("a")?;
    /// assert_eq!(nv.len(), 1);
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.as_ref().len()
    }

    /// Same as [`NvListRef::is_empty`].
    ///
    /// ```
    /// assert!(libzfs_core::nvlist::NvList::new()?.is_empty());
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.as_ref().is_empty()
    }

    /// Same as [`NvListRef::to_tree`].
    ///
    /// ```
    /// use libzfs_core::nvlist::{NvList, NvValue};
    /// let mut nv = NvList::new()?;
    /// nv.add_int32("err", 17)?;
    /// for (name, value) in nv.to_tree() {
    ///     assert_eq!((name.as_str(), value), ("err", NvValue::I32(17)));
    /// }
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn to_tree(&self) -> NvTree {
        self.as_ref().to_tree()
    }

    /// Same as [`NvListRef::to_json`].
    ///
    /// ```
    /// let mut nv = libzfs_core::nvlist::NvList::new()?;
    /// nv.add_string("s", "v")?;
    /// assert_eq!(nv.to_json(), serde_json::json!({"s": "v"}));
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    #[cfg(feature = "serde")]
    pub fn to_json(&self) -> Json {
        self.as_ref().to_json()
    }

    /// Same as [`NvListRef::pack`].
    ///
    /// ```
    /// use libzfs_core::nvlist::NvList;
    /// let mut nv = NvList::new()?;
    /// nv.add_string("s", "v")?;
    /// assert_eq!(NvList::unpack(&nv.pack()?)?.lookup_string("s")?, "v");
    /// # Ok::<(), libzfs_core::nvlist::NvListError>(())
    /// ```
    pub fn pack(&self) -> Result<Vec<u8>, NvListError> {
        self.as_ref().pack()
    }
}

impl Drop for NvList {
    fn drop(&mut self) {
        // SAFETY: we own the list; nothing borrows it any more (views borrow `self`).
        unsafe { sys::nvlist_free(self.ptr.as_ptr()) }
    }
}

impl Clone for NvList {
    /// A deep copy; panics only if `nvlist_dup` fails (out of memory), like `Vec`.
    fn clone(&self) -> NvList {
        self.try_clone().expect("nvlist_dup failed")
    }
}

impl fmt::Debug for NvList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}

impl<'a> IntoIterator for &'a NvList {
    type Item = (String, NvValue);
    type IntoIter = NvIter<'a>;
    fn into_iter(self) -> NvIter<'a> {
        self.iter()
    }
}

impl TryFrom<&NvTree> for NvList {
    type Error = NvListError;
    fn try_from(tree: &NvTree) -> Result<NvList, NvListError> {
        NvList::from_tree(tree)
    }
}

#[cfg(feature = "serde")]
impl Serialize for NvList {
    /// Serialises as a map, like [`NvList::to_json`].
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_tree().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(keys: &[&str]) -> NvValue {
        NvValue::List(
            keys.iter()
                .map(|k| (k.to_string(), NvValue::Str(k.to_string())))
                .collect(),
        )
    }

    #[test]
    fn lua_arrays_are_exactly_one_to_n() {
        let t = table(&["3", "1", "2"]);
        let got: Vec<&str> = t
            .as_lua_array()
            .unwrap()
            .into_iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(got, ["1", "2", "3"]);
        for bad in [
            &["1", "3"][..],
            &["0"],
            &["2"],
            &["1", "01"],
            &["+1"],
            &["1", "x"],
            &["-1"],
        ] {
            assert_eq!(table(bad).as_lua_array(), None, "{bad:?}");
        }
        assert_eq!(NvValue::Flag.as_lua_array(), None);
    }

    #[test]
    fn number_accessors_convert_only_without_loss() {
        assert_eq!(NvValue::I8(-1).as_i64(), Some(-1));
        assert_eq!(NvValue::I8(-1).as_u64(), None);
        assert_eq!(NvValue::U32(7).as_u64(), Some(7));
        assert_eq!(NvValue::U64(1 << 63).as_i64(), None);
        assert_eq!(NvValue::Byte(255).as_i64(), Some(255));
        assert_eq!(NvValue::HrTime(5).as_i64(), None);
        assert_eq!(NvValue::Double(1.0).as_u64(), None);
        assert_eq!(NvValue::Bool(true).as_u64(), None);
    }
    use proptest::prelude::*;
    #[cfg(feature = "serde")]
    use serde_json::json;

    fn s(v: &str) -> String {
        v.to_owned()
    }

    /// One pair of every type, built through the typed adders.
    fn every_type() -> (NvList, NvTree) {
        let mut inner = NvList::new().unwrap();
        inner.add_uint64("value", 8192).unwrap();
        inner.add_string("source", "local").unwrap();
        let mut other = NvList::new().unwrap();
        other.add_boolean("f").unwrap();

        let mut nv = NvList::new().unwrap();
        nv.add_boolean("flag").unwrap();
        nv.add_boolean_value("bool", true).unwrap();
        nv.add_byte("byte", 0xfe).unwrap();
        nv.add_int8("i8", i8::MIN).unwrap();
        nv.add_uint8("u8", u8::MAX).unwrap();
        nv.add_int16("i16", i16::MIN).unwrap();
        nv.add_uint16("u16", u16::MAX).unwrap();
        nv.add_int32("i32", i32::MIN).unwrap();
        nv.add_uint32("u32", u32::MAX).unwrap();
        nv.add_int64("i64", i64::MIN).unwrap();
        nv.add_uint64("u64", u64::MAX).unwrap();
        nv.add_double("double", -1.5e300).unwrap();
        nv.add_hrtime("hrtime", 123_456_789).unwrap();
        nv.add_string("str", "héllo wörld").unwrap();
        nv.add_string("empty_str", "").unwrap();
        nv.add_nvlist("list", &inner).unwrap();
        nv.add_boolean_array("bool_a", &[true, false, true])
            .unwrap();
        nv.add_byte_array("byte_a", &[0, 255]).unwrap();
        nv.add_int8_array("i8_a", &[-1, 1]).unwrap();
        nv.add_uint8_array("u8_a", &[1, 2, 3]).unwrap();
        nv.add_int16_array("i16_a", &[-300, 300]).unwrap();
        nv.add_uint16_array("u16_a", &[300]).unwrap();
        nv.add_int32_array("i32_a", &[-70000]).unwrap();
        nv.add_uint32_array("u32_a", &[70000, 0]).unwrap();
        nv.add_int64_array("i64_a", &[i64::MIN, i64::MAX]).unwrap();
        nv.add_uint64_array("u64_a", &[0, u64::MAX]).unwrap();
        nv.add_uint64_array("u64_empty", &[]).unwrap();
        nv.add_string_array("str_a", &["a", "", "ü"]).unwrap();
        nv.add_string_array("str_empty", &[]).unwrap();
        nv.add_nvlist_array("list_a", &[&inner, &other]).unwrap();
        nv.add_nvlist_array("list_empty", &[]).unwrap();

        let inner_t = NvTree(vec![
            (s("value"), NvValue::U64(8192)),
            (s("source"), NvValue::Str(s("local"))),
        ]);
        let other_t = NvTree(vec![(s("f"), NvValue::Flag)]);
        let tree = NvTree(vec![
            (s("flag"), NvValue::Flag),
            (s("bool"), NvValue::Bool(true)),
            (s("byte"), NvValue::Byte(0xfe)),
            (s("i8"), NvValue::I8(i8::MIN)),
            (s("u8"), NvValue::U8(u8::MAX)),
            (s("i16"), NvValue::I16(i16::MIN)),
            (s("u16"), NvValue::U16(u16::MAX)),
            (s("i32"), NvValue::I32(i32::MIN)),
            (s("u32"), NvValue::U32(u32::MAX)),
            (s("i64"), NvValue::I64(i64::MIN)),
            (s("u64"), NvValue::U64(u64::MAX)),
            (s("double"), NvValue::Double(-1.5e300)),
            (s("hrtime"), NvValue::HrTime(123_456_789)),
            (s("str"), NvValue::Str(s("héllo wörld"))),
            (s("empty_str"), NvValue::Str(s(""))),
            (s("list"), NvValue::List(inner_t.clone())),
            (s("bool_a"), NvValue::BoolArray(vec![true, false, true])),
            (s("byte_a"), NvValue::ByteArray(vec![0, 255])),
            (s("i8_a"), NvValue::I8Array(vec![-1, 1])),
            (s("u8_a"), NvValue::U8Array(vec![1, 2, 3])),
            (s("i16_a"), NvValue::I16Array(vec![-300, 300])),
            (s("u16_a"), NvValue::U16Array(vec![300])),
            (s("i32_a"), NvValue::I32Array(vec![-70000])),
            (s("u32_a"), NvValue::U32Array(vec![70000, 0])),
            (s("i64_a"), NvValue::I64Array(vec![i64::MIN, i64::MAX])),
            (s("u64_a"), NvValue::U64Array(vec![0, u64::MAX])),
            (s("u64_empty"), NvValue::U64Array(vec![])),
            (s("str_a"), NvValue::StrArray(vec![s("a"), s(""), s("ü")])),
            (s("str_empty"), NvValue::StrArray(vec![])),
            (s("list_a"), NvValue::ListArray(vec![inner_t, other_t])),
            (s("list_empty"), NvValue::ListArray(vec![])),
        ]);
        (nv, tree)
    }

    #[test]
    fn every_type_round_trips_through_lookup() {
        let (nv, tree) = every_type();
        assert_eq!(nv.len(), tree.len());
        for (name, want) in &tree {
            assert_eq!(&nv.lookup(name).unwrap(), want, "{name}");
            assert!(nv.exists(name), "{name}");
        }
        assert!(nv.lookup_boolean_value("bool").unwrap());
        assert_eq!(nv.lookup_int32("i32").unwrap(), i32::MIN);
        assert_eq!(nv.lookup_int64("i64").unwrap(), i64::MIN);
        assert_eq!(nv.lookup_uint64("u64").unwrap(), u64::MAX);
        assert_eq!(nv.lookup_string("str").unwrap(), "héllo wörld");
        assert_eq!(nv.lookup_uint64_array("u64_a").unwrap(), [0, u64::MAX]);
        assert_eq!(
            nv.lookup_uint64_array("u64_empty").unwrap(),
            Vec::<u64>::new()
        );
        assert_eq!(nv.lookup_string_array("str_a").unwrap(), ["a", "", "ü"]);
        let list = nv.lookup_nvlist("list").unwrap();
        assert_eq!(list.lookup_uint64("value").unwrap(), 8192);
        assert_eq!(list.lookup_string("source").unwrap(), "local");
    }

    #[test]
    fn every_value_variant_via_add_value() {
        let (_, tree) = every_type();
        let mut nv = NvList::new().unwrap();
        for (name, value) in &tree {
            nv.add_value(name, value).unwrap();
        }
        assert_eq!(nv.to_tree(), tree);
        let err = nv.add_value("u", &NvValue::Unknown(99)).unwrap_err();
        assert!(
            matches!(err, NvListError::UnsupportedType { type_code: 99, .. }),
            "{err:?}"
        );
        assert!(!nv.exists("u"));
    }

    #[test]
    fn missing_name_is_not_found() {
        let (nv, _) = every_type();
        for r in [
            nv.lookup("nope").map(|_| ()),
            nv.lookup_uint64("nope").map(|_| ()),
            nv.lookup_string("nope").map(|_| ()),
            nv.lookup_nvlist("nope").map(|_| ()),
            nv.lookup_string_array("nope").map(|_| ()),
        ] {
            match r {
                Err(NvListError::NotFound { name }) => assert_eq!(name, "nope"),
                other => panic!("{other:?}"),
            }
        }
        assert!(!nv.exists("nope"));
        // A nested list's names are not visible from the parent.
        assert!(!nv.exists("value"));
    }

    #[test]
    fn wrong_type_is_reported() {
        let (nv, _) = every_type();
        let check = |r: Result<(), NvListError>, exp: &str, fnd: &str| match r {
            Err(NvListError::WrongType {
                name,
                expected,
                found,
            }) => {
                assert_eq!((expected, found.as_str()), (exp, fnd), "{name}");
            }
            other => panic!("{other:?}"),
        };
        check(nv.lookup_uint64("i64").map(|_| ()), "uint64", "int64");
        check(nv.lookup_int64("u64").map(|_| ()), "int64", "uint64");
        check(nv.lookup_int32("str").map(|_| ()), "int32", "string");
        check(nv.lookup_string("list").map(|_| ()), "string", "nvlist");
        check(
            nv.lookup_nvlist("u64_a").map(|_| ()),
            "nvlist",
            "uint64_array",
        );
        check(
            nv.lookup_boolean_value("flag").map(|_| ()),
            "boolean_value",
            "boolean",
        );
        check(
            nv.lookup_uint64_array("i64_a").map(|_| ()),
            "uint64_array",
            "int64_array",
        );
        check(
            nv.lookup_string_array("str").map(|_| ()),
            "string_array",
            "string",
        );
        let msg = nv.lookup_uint64("str").unwrap_err().to_string();
        assert_eq!(
            msg,
            r#"nvlist pair "str" is of type string, expected uint64"#
        );
    }

    #[test]
    fn same_name_replaces_and_moves_to_the_end() {
        let mut nv = NvList::new().unwrap();
        nv.add_uint64("a", 1).unwrap();
        nv.add_uint64("b", 2).unwrap();
        nv.add_string("a", "x").unwrap();
        assert_eq!(nv.len(), 2);
        assert_eq!(nv.lookup_string("a").unwrap(), "x");
        assert_eq!(
            nv.to_tree(),
            NvTree(vec![
                (s("b"), NvValue::U64(2)),
                (s("a"), NvValue::Str(s("x")))
            ])
        );
        nv.add_boolean("b").unwrap();
        nv.add_boolean("b").unwrap();
        assert_eq!(
            nv.to_tree(),
            NvTree(vec![
                (s("a"), NvValue::Str(s("x"))),
                (s("b"), NvValue::Flag)
            ])
        );
        nv.add_uint64("b", 7).unwrap();
        assert_eq!(nv.lookup_uint64("b").unwrap(), 7);
        assert_eq!(nv.len(), 2);
        // A tree with a repeated name keeps the last value.
        let t = NvTree(vec![(s("k"), NvValue::U64(1)), (s("k"), NvValue::I32(2))]);
        assert_eq!(
            NvList::from_tree(&t).unwrap().to_tree(),
            NvTree(vec![(s("k"), NvValue::I32(2))])
        );
    }

    #[test]
    fn remove_pairs() {
        let mut nv = NvList::new().unwrap();
        nv.add_uint64("a", 1).unwrap();
        nv.add_boolean("b").unwrap();
        assert!(nv.remove("a"));
        assert!(!nv.remove("a"));
        assert!(!nv.remove("b\0"));
        assert_eq!(nv.to_tree(), NvTree(vec![(s("b"), NvValue::Flag)]));
        assert!(nv.remove("b"));
        assert!(nv.is_empty());
    }

    #[test]
    fn nested_lists_are_copies_and_borrowable() {
        let mut leaf = NvList::new().unwrap();
        leaf.add_int64("n", 1).unwrap();
        let mut mid = NvList::new().unwrap();
        mid.add_nvlist("leaf", &leaf).unwrap();
        let mut top = NvList::new().unwrap();
        top.add_nvlist("mid", &mid).unwrap();
        // Later changes to the sources do not show in the copies.
        leaf.add_int64("n", 2).unwrap();
        mid.remove("leaf");
        drop(leaf);
        drop(mid);
        let view = top
            .lookup_nvlist("mid")
            .unwrap()
            .lookup_nvlist("leaf")
            .unwrap();
        assert_eq!(view.lookup_int64("n").unwrap(), 1);
        #[cfg(feature = "serde")]
        assert_eq!(top.to_json(), json!({"mid": {"leaf": {"n": 1}}}),);
        let owned = view.to_nvlist().unwrap();
        drop(top);
        assert_eq!(owned.lookup_int64("n").unwrap(), 1);
        assert_eq!(format!("{owned:?}"), r#"{"n": I64(1)}"#);
    }

    #[test]
    fn iteration_follows_insertion_order() {
        let names = ["zeta", "alpha", "mid", "0", "tank/vol@snap", "ü"];
        let mut nv = NvList::new().unwrap();
        for (i, n) in names.iter().enumerate() {
            nv.add_uint64(n, i as u64).unwrap();
        }
        let got: Vec<(String, NvValue)> = nv.iter().collect();
        let want: Vec<(String, NvValue)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), NvValue::U64(i as u64)))
            .collect();
        assert_eq!(got, want);
        let mut it = nv.iter();
        assert_eq!(it.by_ref().count(), names.len());
        assert!(it.next().is_none(), "fused");
        // By-value and by-reference iteration over the tree and the list agree.
        let tree = nv.to_tree();
        let by_ref: Vec<&str> = (&tree).into_iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(by_ref, names);
        let by_list: Vec<String> = (&nv).into_iter().map(|(k, _)| k).collect();
        assert_eq!(by_list, names);
        let mut n = 0;
        for (k, v) in tree {
            assert_eq!((k.as_str(), v), (names[n], NvValue::U64(n as u64)));
            n += 1;
        }
        assert_eq!(n, names.len());
    }

    #[test]
    fn tree_round_trip() {
        let (nv, tree) = every_type();
        assert_eq!(nv.to_tree(), tree);
        let rebuilt = NvList::from_tree(&tree).unwrap();
        assert_eq!(rebuilt.to_tree(), tree);
        assert_eq!(NvList::try_from(&tree).unwrap().to_tree(), tree);
        assert_eq!(tree.to_nvlist().unwrap().to_tree(), tree);
        // NvTree helpers.
        assert_eq!(tree.get("u64"), Some(&NvValue::U64(u64::MAX)));
        assert_eq!(tree.get("missing"), None);
        let mut t: NvTree = tree.iter().take(2).cloned().collect();
        t.push("x", NvValue::Flag);
        t.extend([(s("y"), NvValue::I32(1))]);
        assert_eq!(t.len(), 4);
        assert!(!t.is_empty() && NvTree::new().is_empty());
    }

    #[test]
    #[cfg(feature = "serde")]
    fn json_shape() {
        let (nv, tree) = every_type();
        let j = nv.to_json();
        assert_eq!(j, tree.to_json());
        assert_eq!(
            j,
            json!({
                "flag": true, "bool": true, "byte": 254, "i8": -128, "u8": 255,
                "i16": -32768, "u16": 65535, "i32": -2147483648i64, "u32": 4294967295u64,
                "i64": i64::MIN, "u64": u64::MAX, "double": -1.5e300, "hrtime": 123456789,
                "str": "héllo wörld", "empty_str": "",
                "list": {"value": 8192, "source": "local"},
                "bool_a": [true, false, true], "byte_a": [0, 255], "i8_a": [-1, 1],
                "u8_a": [1, 2, 3], "i16_a": [-300, 300], "u16_a": [300], "i32_a": [-70000],
                "u32_a": [70000, 0], "i64_a": [i64::MIN, i64::MAX], "u64_a": [0, u64::MAX],
                "u64_empty": [], "str_a": ["a", "", "ü"], "str_empty": [],
                "list_a": [{"value": 8192, "source": "local"}, {"f": true}],
                "list_empty": [],
            })
        );
        // Serialize agrees with to_json, also for the values to_json maps to null.
        assert_eq!(serde_json::to_value(&tree).unwrap(), j);
        assert_eq!(serde_json::to_value(&nv).unwrap(), j);
        let odd = NvTree(vec![
            (s("nan"), NvValue::Double(f64::NAN)),
            (s("u"), NvValue::Unknown(42)),
        ]);
        assert_eq!(odd.to_json(), json!({"nan": null, "u": null}));
        assert_eq!(
            serde_json::to_string(&odd).unwrap(),
            r#"{"nan":null,"u":null}"#
        );
        assert_eq!(NvValue::Unknown(42).type_name(), "unknown");
    }

    #[test]
    fn pack_unpack_round_trip() {
        let (nv, tree) = every_type();
        let buf = nv.pack().unwrap();
        assert!(!buf.is_empty());
        let back = NvList::unpack(&buf).unwrap();
        assert_eq!(back.to_tree(), tree);
        // Still a unique-name list after unpacking.
        let mut back = back;
        back.add_string("u64", "replaced").unwrap();
        assert_eq!(back.len(), tree.len());
        // Empty list, and nested views pack too.
        let empty = NvList::new().unwrap();
        assert!(NvList::unpack(&empty.pack().unwrap()).unwrap().is_empty());
        let inner = nv.lookup_nvlist("list").unwrap().pack().unwrap();
        assert_eq!(
            NvList::unpack(&inner)
                .unwrap()
                .lookup_uint64("value")
                .unwrap(),
            8192
        );
    }

    #[test]
    fn unpack_rejects_garbage() {
        let good = every_type().0.pack().unwrap();
        for bad in [
            &b""[..],
            b"\0",
            b"garbage that is not an nvlist",
            &good[..good.len() / 2],
            &[0xff; 64],
        ] {
            match NvList::unpack(bad) {
                Err(NvListError::Unpack(e)) => assert_ne!(e, 0),
                other => panic!("{} bytes: {other:?}", bad.len()),
            }
        }
    }

    #[test]
    fn clones_are_independent() {
        let (mut a, tree) = every_type();
        let mut b = a.clone();
        let c = a.try_clone().unwrap();
        b.add_uint64("u64", 1).unwrap();
        b.remove("str");
        a.add_string("new", "x").unwrap();
        assert_eq!(c.to_tree(), tree);
        assert_eq!(b.lookup_uint64("u64").unwrap(), 1);
        assert!(!b.exists("str") && a.exists("str"));
        assert!(!b.exists("new") && !c.exists("new"));
        assert_eq!(a.lookup_uint64("u64").unwrap(), u64::MAX);
    }

    #[test]
    fn raw_ownership_round_trip() {
        let (nv, tree) = every_type();
        let p = nv.into_raw();
        // SAFETY: `p` came from into_raw and is owned again exactly once.
        let nv = unsafe { NvList::from_raw_owned(p) };
        assert_eq!(nv.to_tree(), tree);
        // SAFETY: `nv` outlives the view and is not modified meanwhile.
        let view = unsafe { NvListRef::from_raw(nv.as_ptr()) };
        assert_eq!(view.as_ptr(), nv.as_ptr());
        assert_eq!(view.to_tree(), tree);
        let mut nv = nv;
        assert_eq!(nv.as_mut_ptr().cast_const(), nv.as_ptr());
        // Send: an NvList can move to another thread.
        let t = std::thread::spawn(move || nv.to_tree()).join().unwrap();
        assert_eq!(t, tree);
    }

    #[test]
    fn nul_bytes_are_rejected_not_truncated() {
        let mut nv = NvList::new().unwrap();
        let is_nul = |r: Result<(), NvListError>, what_: &str, value_: &str| match r {
            Err(NvListError::Nul { what, value }) => {
                assert_eq!((what, value.as_str()), (what_, value_))
            }
            other => panic!("{other:?}"),
        };
        is_nul(nv.add_boolean("a\0b"), "name", "a\0b");
        is_nul(nv.add_uint64("a\0", 1), "name", "a\0");
        is_nul(nv.add_string("a", "x\0y"), "string value", "x\0y");
        is_nul(nv.add_string("a\0", "x"), "name", "a\0");
        is_nul(
            nv.add_string_array("a", &["ok", "b\0ad"]),
            "string value",
            "b\0ad",
        );
        is_nul(nv.add_nvlist("a\0", &NvList::new().unwrap()), "name", "a\0");
        is_nul(
            nv.add_value("\0", &NvValue::List(NvTree::new())),
            "name",
            "\0",
        );
        is_nul(
            nv.add_value("l", &NvValue::StrArray(vec![s("\0")])),
            "string value",
            "\0",
        );
        let t = NvTree(vec![(s("in\0ner"), NvValue::Flag)]);
        is_nul(nv.add_value("l", &NvValue::List(t)), "name", "in\0ner");
        assert!(nv.is_empty(), "nothing was added: {:?}", nv.to_tree());
        nv.add_boolean("a").unwrap();
        assert!(!nv.exists("a\0"));
        is_nul(nv.lookup("a\0").map(|_| ()), "name", "a\0");
        is_nul(nv.lookup_uint64("a\0junk").map(|_| ()), "name", "a\0junk");
        let msg = nv.add_string("k", "x\0").unwrap_err().to_string();
        assert_eq!(msg, r#"nvlist string value "x\0" contains a NUL byte"#);
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily() {
        let mut nv = NvList::new().unwrap();
        let name = c"k\xff";
        let val = c"v\xfe";
        // SAFETY: our live list and two NUL-terminated strings.
        let rc = unsafe { sys::nvlist_add_string(nv.as_mut_ptr(), name.as_ptr(), val.as_ptr()) };
        assert_eq!(rc, 0);
        assert_eq!(
            nv.to_tree(),
            NvTree(vec![(s("k\u{fffd}"), NvValue::Str(s("v\u{fffd}")))])
        );
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            NvListError::Add {
                name: s("x"),
                errno: libc::ENOMEM
            }
            .to_string(),
            format!(
                "cannot add \"x\" to an nvlist: {}",
                std::io::Error::from_raw_os_error(libc::ENOMEM)
            ),
        );
        assert!(NvListError::Alloc(libc::ENOMEM)
            .to_string()
            .starts_with("cannot allocate an nvlist: "));
        assert!(NvListError::Pack(libc::EINVAL)
            .to_string()
            .starts_with("cannot pack an nvlist: "));
        assert_eq!(
            NvListError::UnsupportedType {
                name: s("x"),
                type_code: 99
            }
            .to_string(),
            "cannot add \"x\" to an nvlist: unsupported data type 99",
        );
    }

    // ---- property tests --------------------------------------------------------------

    /// Any non-NUL text (names may be empty).
    fn text() -> impl Strategy<Value = String> {
        "[^\u{0}]{0,12}"
    }

    /// Values that survive NvTree -> nvlist -> NvTree unchanged (no Unknown, no NaN).
    fn leaf() -> impl Strategy<Value = NvValue> {
        prop_oneof![
            Just(NvValue::Flag),
            any::<bool>().prop_map(NvValue::Bool),
            any::<u8>().prop_map(NvValue::Byte),
            any::<i8>().prop_map(NvValue::I8),
            any::<u8>().prop_map(NvValue::U8),
            any::<i16>().prop_map(NvValue::I16),
            any::<u16>().prop_map(NvValue::U16),
            any::<i32>().prop_map(NvValue::I32),
            any::<u32>().prop_map(NvValue::U32),
            any::<i64>().prop_map(NvValue::I64),
            any::<u64>().prop_map(NvValue::U64),
            any::<f64>()
                .prop_filter("NaN != NaN", |f| !f.is_nan())
                .prop_map(NvValue::Double),
            any::<i64>().prop_map(NvValue::HrTime),
            text().prop_map(NvValue::Str),
            prop::collection::vec(any::<bool>(), 0..4).prop_map(NvValue::BoolArray),
            prop::collection::vec(any::<u8>(), 0..4).prop_map(NvValue::ByteArray),
            prop::collection::vec(any::<i8>(), 0..4).prop_map(NvValue::I8Array),
            prop::collection::vec(any::<u8>(), 0..4).prop_map(NvValue::U8Array),
            prop::collection::vec(any::<i16>(), 0..4).prop_map(NvValue::I16Array),
            prop::collection::vec(any::<u16>(), 0..4).prop_map(NvValue::U16Array),
            prop::collection::vec(any::<i32>(), 0..4).prop_map(NvValue::I32Array),
            prop::collection::vec(any::<u32>(), 0..4).prop_map(NvValue::U32Array),
            prop::collection::vec(any::<i64>(), 0..4).prop_map(NvValue::I64Array),
            prop::collection::vec(any::<u64>(), 0..4).prop_map(NvValue::U64Array),
            prop::collection::vec(text(), 0..4).prop_map(NvValue::StrArray),
        ]
    }

    /// A tree with unique names (an NV_UNIQUE_NAME list cannot hold duplicates).
    fn tree_of(value: impl Strategy<Value = NvValue>) -> impl Strategy<Value = NvTree> {
        prop::collection::vec((text(), value), 0..6).prop_map(|pairs| {
            let mut seen = std::collections::HashSet::new();
            pairs
                .into_iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .collect()
        })
    }

    fn value() -> impl Strategy<Value = NvValue> {
        leaf().prop_recursive(3, 48, 6, |inner| {
            prop_oneof![
                tree_of(inner.clone()).prop_map(NvValue::List),
                prop::collection::vec(tree_of(inner), 0..3).prop_map(NvValue::ListArray),
            ]
        })
    }

    proptest! {
        #[test]
        fn prop_tree_and_pack_round_trip(tree in tree_of(value())) {
            let nv = NvList::from_tree(&tree).unwrap();
            prop_assert_eq!(&nv.to_tree(), &tree);
            let back = NvList::unpack(&nv.pack().unwrap()).unwrap();
            prop_assert_eq!(&back.to_tree(), &tree);
            prop_assert_eq!(&nv.try_clone().unwrap().to_tree(), &tree);
            prop_assert_eq!(nv.len(), tree.len());
            for (k, v) in &tree {
                prop_assert_eq!(&nv.lookup(k).unwrap(), v);
            }
            #[cfg(feature = "serde")]
            prop_assert_eq!(serde_json::to_value(&tree).unwrap(), tree.to_json());
        }
    }
}
