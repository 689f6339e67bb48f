//! Request structs: the typed parameters of each SMAPI method.
//!
//! Each method's parameters are one struct declared with [`request!`]: the field names are the
//! IDL parameter names, the field types say their wire types. The macro derives
//! `serde::Deserialize` and the [`Request::PARAMS`] list the dispatcher validates against, so a
//! parameter's name is written once. Decoding ([`decode`]) first checks every declared parameter
//! with the wire rules the daemon's JSON follows ([`Params`]: names matched case-insensitively,
//! an int64 as a JSON integer or a decimal string, each failure naming its field), then checks
//! that sizes are not negative, and only then builds the struct, so a handler never sees a
//! half-valid request.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::PluginError;
use crate::wire::Params;

/// Wire type of a request parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// A JSON string.
    String,
    /// An int64: JSON integer or numeric string.
    Int64,
    /// A size in bytes: an int64 that must not be negative (`SR_BACKEND_FAILURE_79`).
    Size,
    /// A JSON boolean.
    Bool,
    /// A JSON object of string values (`(string * string) list`).
    Configuration,
}

/// One declared request parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    /// Name as in the IDL (matched case-insensitively on the wire).
    pub name: &'static str,
    /// Expected type.
    pub ty: ParamType,
}

/// A size in bytes from the wire (an int64 the dispatcher has checked is not negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Size(pub u64);

/// The parameters of one SMAPI method (declared with [`request!`]).
pub trait Request: DeserializeOwned + std::fmt::Debug {
    /// Every parameter, in IDL order; all are required.
    const PARAMS: &'static [ParamSpec];
}

/// Declares a request struct: `request! { /// doc \n Name { field: Type, ... } }` where each
/// `Type` is a [`ParamType`] variant (`String`, `Int64`, `Size`, `Bool`, `Configuration`).
#[macro_export]
macro_rules! request {
    ($(#[$meta:meta])* $name:ident { $($field:ident : $ty:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
        #[allow(missing_docs)] // the fields are the IDL parameters of the same names
        pub struct $name {
            $(pub $field: $crate::request!(@rust $ty)),*
        }
        impl $crate::request::Request for $name {
            const PARAMS: &'static [$crate::request::ParamSpec] = &[$(
                $crate::request::ParamSpec {
                    name: stringify!($field),
                    ty: $crate::request::ParamType::$ty,
                }
            ),*];
        }
    };
    (@rust String) => { ::std::string::String };
    (@rust Int64) => { i64 };
    (@rust Size) => { $crate::request::Size };
    (@rust Bool) => { bool };
    (@rust Configuration) => { $crate::types::Configuration };
}

/// Checks every parameter in `specs` (presence and type first, then that sizes are not
/// negative) and returns them in canonical JSON form, keyed by their IDL names.
pub fn validate(p: &Params, specs: &[ParamSpec]) -> Result<Map<String, Value>, PluginError> {
    let mut out = Map::new();
    for spec in specs {
        let v = match spec.ty {
            ParamType::String => Value::from(p.string(spec.name)?),
            ParamType::Int64 | ParamType::Size => Value::from(p.int64(spec.name)?),
            ParamType::Bool => Value::from(p.bool(spec.name)?),
            ParamType::Configuration => {
                let c = p.configuration(spec.name)?;
                Value::Object(c.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
            }
        };
        out.insert(spec.name.to_string(), v);
    }
    for spec in specs.iter().filter(|s| s.ty == ParamType::Size) {
        let n = out[spec.name].as_i64().unwrap_or_default();
        if n < 0 {
            return Err(PluginError::invalid_size(format!(
                "{}: {} must not be negative, got {n}",
                p.method(),
                spec.name
            )));
        }
    }
    Ok(out)
}

/// Validates `p` against `R`'s parameters ([`validate`]) and builds the request struct.
pub fn decode<R: Request>(p: &Params) -> Result<R, PluginError> {
    let canonical = validate(p, R::PARAMS)?;
    serde_json::from_value(Value::Object(canonical)).map_err(|e| {
        PluginError::backend(format!(
            "internal error: {} parameters validated but did not decode: {e}",
            p.method()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;

    crate::request! {
        /// A request with one field of each type.
        Every { dbg: String, n: Int64, size: Size, flag: Bool, configuration: Configuration }
    }

    fn params(v: Value) -> Params {
        Params::from_map("T.every", v.as_object().unwrap().clone())
    }

    #[test]
    fn fields_decode_from_their_wire_forms_and_names_are_case_insensitive() {
        let r: Every = decode(&params(json!({
            "DBG": "d", "n": "-5", "size": 7, "Flag": true, "configuration": {"a": "b"}
        })))
        .unwrap();
        assert_eq!(r.dbg, "d");
        assert_eq!(r.n, -5);
        assert_eq!(r.size, Size(7));
        assert!(r.flag);
        assert_eq!(r.configuration["a"], "b");
        let names: Vec<_> = Every::PARAMS.iter().map(|s| s.name).collect();
        assert_eq!(names, ["dbg", "n", "size", "flag", "configuration"]);
    }

    #[test]
    fn types_are_checked_before_sizes_and_each_error_names_its_field() {
        // A negative size and a missing flag: the missing field is reported first.
        let e = decode::<Every>(&params(
            json!({"dbg": "d", "n": 1, "size": -1, "configuration": {}}),
        ))
        .unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::MissingParam { name, .. } if name == "flag"),
            "{e:?}"
        );
        let e = decode::<Every>(&params(
            json!({"dbg": "d", "n": 1, "size": -1, "flag": false, "configuration": {}}),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("size must not be negative"), "{e}");
        let e = decode::<Every>(&params(
            json!({"dbg": "d", "n": 1.5, "size": 1, "flag": false, "configuration": {}}),
        ))
        .unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::BadParam { name, .. } if name == "n"),
            "{e:?}"
        );
    }
}
