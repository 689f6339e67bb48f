//! Serde types for the SMAPIv3 IDL results (contract §3, §4.1), encoded exactly as rpclib does.
//!
//! Encoding rules that matter here:
//! * `option` record fields are **omitted** when `None` (rpclib drops them; `null` is rejected);
//! * `(string * string) list` is a JSON object, hence [`BTreeMap`] (sorted: deterministic output);
//! * variants with payload are `["Tag", payload]` ([`Health`], [`Implementation`]), unit variants
//!   are bare strings ([`VolumeType`]);
//! * `int64` is a JSON integer, hence `i64` (never a float).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// SR device-config / `configuration`: a JSON object of string to string.
pub type Configuration = BTreeMap<String, String>;

/// Volume `keys` (metadata written by xapi through `Volume.set`): a JSON object of string to string.
pub type Keys = BTreeMap<String, String>;

/// Result of `Plugin.query` (`plugin.ml` `query_result`); every field is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryResult {
    /// Plugin name; xapi uses `lowercase(plugin)` as the SR type.
    pub plugin: String,
    /// Short human-readable name.
    pub name: String,
    /// Longer description.
    pub description: String,
    /// Vendor.
    pub vendor: String,
    /// Copyright notice.
    pub copyright: String,
    /// Plugin version.
    pub version: String,
    /// SMAPIv3 API version this plugin speaks ("5.0").
    pub required_api_version: String,
    /// Declared capabilities (contract §6).
    pub features: Vec<String>,
    /// device-config key → description.
    pub configuration: Configuration,
    /// Cluster stacks needed (`[]` for local storage).
    pub required_cluster_stack: Vec<String>,
}

/// SR health (`control.ml` `health`), encoded `["Healthy", "message"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Fully working. Also used for degraded-but-usable pools, with the detail in the message,
    /// because any other state makes `sr-scan` fail.
    Healthy(String),
    /// Recovering: scans are refused until it clears.
    Recovering(String),
    /// Temporarily unreachable (scan retries a few times).
    Unreachable(String),
    /// Unavailable (e.g. pool suspended/faulted).
    Unavailable(String),
}

impl Health {
    /// The wire tag.
    pub fn tag(&self) -> &'static str {
        match self {
            Health::Healthy(_) => "Healthy",
            Health::Recovering(_) => "Recovering",
            Health::Unreachable(_) => "Unreachable",
            Health::Unavailable(_) => "Unavailable",
        }
    }

    /// The payload message.
    pub fn message(&self) -> &str {
        match self {
            Health::Healthy(m)
            | Health::Recovering(m)
            | Health::Unreachable(m)
            | Health::Unavailable(m) => m,
        }
    }
}

impl Serialize for Health {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(self.tag())?;
        t.serialize_element(self.message())?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for Health {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (tag, msg): (String, String) = Deserialize::deserialize(d)?;
        // rpclib matches variant tags case-insensitively.
        match tag.to_ascii_lowercase().as_str() {
            "healthy" => Ok(Health::Healthy(msg)),
            "recovering" => Ok(Health::Recovering(msg)),
            "unreachable" => Ok(Health::Unreachable(msg)),
            "unavailable" => Ok(Health::Unavailable(msg)),
            _ => Err(de::Error::custom(format!("unknown health variant {tag:?}"))),
        }
    }
}

/// Result of `SR.stat` (`control.ml` `sr_stat`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrStat {
    /// The opaque SR string returned by `SR.attach`.
    pub sr: String,
    /// SR name.
    pub name: String,
    /// SR uuid, if known; omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// SR description.
    pub description: String,
    /// Free bytes.
    pub free_space: i64,
    /// Total bytes.
    pub total_space: i64,
    /// Datasource URIs (`[]` for us).
    pub datasources: Vec<String>,
    /// Whether the SR is clustered (false: local).
    pub clustered: bool,
    /// Health.
    pub health: Health,
}

/// Volume type (`control.ml` `volume_type`), encoded as a bare string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeType {
    /// Ordinary data volume (the default when absent).
    Data,
    /// CBT metadata only (after data_destroy).
    #[serde(rename = "CBT_Metadata")]
    CbtMetadata,
    /// Data plus CBT metadata.
    #[serde(rename = "Data_and_CBT_Metadata")]
    DataAndCbtMetadata,
}

/// A volume (`control.ml` `volume`): result of `Volume.create/snapshot/clone/stat`, elements of `SR.ls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Primary key, unique in the SR; becomes `VDI.location`.
    pub key: String,
    /// VDI uuid (used by xapi if it parses as a UUID); omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// name-label.
    pub name: String,
    /// name-description.
    pub description: String,
    /// false for snapshots.
    pub read_write: bool,
    /// Whether several hosts may attach it at once (required field).
    pub sharable: bool,
    /// Size in bytes.
    pub virtual_size: i64,
    /// Bytes used.
    pub physical_utilisation: i64,
    /// Datapath URIs, in order of preference (scheme selects the datapath plugin).
    pub uri: Vec<String>,
    /// xapi's metadata (`Volume.set`).
    pub keys: Keys,
    /// Volume type; omitted when `None` (xapi's default is `Data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<VolumeType>,
    /// CBT enabled; omitted when `None` (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cbt_enabled: Option<bool>,
}

/// The result of `Volume.list_changed_blocks` (`control.ml` `changed_blocks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedBlocks {
    /// Bytes per bit of `bitmap` (always 65536: xapi keeps only the bitmap).
    pub granularity: i64,
    /// One bit per block, most significant bit first, base64-encoded.
    pub bitmap: String,
}

/// One element of the `SR.probe` result (`control.ml` `probe_result`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// A device-config that would attach (or further probe) this SR.
    pub configuration: Configuration,
    /// Whether `configuration` is complete (must be true when it contains `sr_uuid`).
    pub complete: bool,
    /// The SR found, if any (then `configuration` must contain `sr_uuid`); omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sr: Option<SrStat>,
    /// Extra information.
    pub extra_info: BTreeMap<String, String>,
}

/// Result of `Datapath.attach` (`data.ml` `backend`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    /// Ways to access the volume; xenopsd needs a `XenDisk` one.
    pub implementations: Vec<Implementation>,
}

/// One way to access an attached volume (`data.ml` `implementation`), encoded `["Tag", {...}]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Implementation {
    /// A Xen disk backend: `backend_type` becomes xenstore `backend-kind` ("vbd" = blkback).
    XenDisk {
        /// Device parameters (the block device path for blkback).
        params: String,
        /// Extra key/values written to xenstore `sm-data`.
        extra: BTreeMap<String, String>,
        /// "vbd", "vbd3", "qdisk" or "9pfs".
        backend_type: String,
    },
    /// A dom0 block device.
    BlockDevice {
        /// Device path.
        path: String,
    },
    /// A dom0 file.
    File {
        /// File path.
        path: String,
    },
    /// An NBD export.
    Nbd {
        /// NBD URI.
        uri: String,
    },
}

#[derive(Serialize, Deserialize)]
struct XenDiskPayload {
    params: String,
    extra: BTreeMap<String, String>,
    backend_type: String,
}

#[derive(Serialize, Deserialize)]
struct PathPayload {
    path: String,
}

#[derive(Serialize, Deserialize)]
struct UriPayload {
    uri: String,
}

impl Serialize for Implementation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        match self {
            Implementation::XenDisk {
                params,
                extra,
                backend_type,
            } => {
                t.serialize_element("XenDisk")?;
                t.serialize_element(&XenDiskPayload {
                    params: params.clone(),
                    extra: extra.clone(),
                    backend_type: backend_type.clone(),
                })?;
            }
            Implementation::BlockDevice { path } => {
                t.serialize_element("BlockDevice")?;
                t.serialize_element(&PathPayload { path: path.clone() })?;
            }
            Implementation::File { path } => {
                t.serialize_element("File")?;
                t.serialize_element(&PathPayload { path: path.clone() })?;
            }
            Implementation::Nbd { uri } => {
                t.serialize_element("Nbd")?;
                t.serialize_element(&UriPayload { uri: uri.clone() })?;
            }
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Implementation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Implementation;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a [tag, payload] implementation pair")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Implementation, A::Error> {
                let tag: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let missing = || de::Error::invalid_length(1, &"a [tag, payload] pair");
                let imp = match tag.to_ascii_lowercase().as_str() {
                    "xendisk" => {
                        let p: XenDiskPayload = seq.next_element()?.ok_or_else(missing)?;
                        Implementation::XenDisk {
                            params: p.params,
                            extra: p.extra,
                            backend_type: p.backend_type,
                        }
                    }
                    "blockdevice" => {
                        let p: PathPayload = seq.next_element()?.ok_or_else(missing)?;
                        Implementation::BlockDevice { path: p.path }
                    }
                    "file" => {
                        let p: PathPayload = seq.next_element()?.ok_or_else(missing)?;
                        Implementation::File { path: p.path }
                    }
                    "nbd" => {
                        let p: UriPayload = seq.next_element()?.ok_or_else(missing)?;
                        Implementation::Nbd { uri: p.uri }
                    }
                    _ => return Err(de::Error::custom(format!("unknown implementation {tag:?}"))),
                };
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &"a [tag, payload] pair"));
                }
                Ok(imp)
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vol() -> Volume {
        Volume {
            key: "k".into(),
            uuid: None,
            name: "n".into(),
            description: "d".into(),
            read_write: true,
            sharable: false,
            virtual_size: 10,
            physical_utilisation: 0,
            uri: vec!["zvol:///dev/zvol/tank/v".into()],
            keys: Keys::new(),
            volume_type: None,
            cbt_enabled: None,
        }
    }

    #[test]
    fn volume_omits_none_options() {
        let v = serde_json::to_value(vol()).unwrap();
        let o = v.as_object().unwrap();
        assert!(!o.contains_key("uuid"));
        assert!(!o.contains_key("volume_type"));
        assert!(!o.contains_key("cbt_enabled"));
        assert_eq!(o["sharable"], json!(false));
        assert_eq!(o["keys"], json!({}));
        assert!(!serde_json::to_string(&vol()).unwrap().contains("null"));
    }

    #[test]
    fn volume_some_options_are_bare_values() {
        let mut x = vol();
        x.uuid = Some("u".into());
        x.volume_type = Some(VolumeType::DataAndCbtMetadata);
        x.cbt_enabled = Some(false);
        let v = serde_json::to_value(&x).unwrap();
        assert_eq!(v["uuid"], json!("u"));
        assert_eq!(v["volume_type"], json!("Data_and_CBT_Metadata"));
        assert_eq!(v["cbt_enabled"], json!(false));
        let back: Volume = serde_json::from_value(v).unwrap();
        assert_eq!(back, x);
        assert_eq!(
            serde_json::to_value(VolumeType::CbtMetadata).unwrap(),
            json!("CBT_Metadata")
        );
        assert_eq!(
            serde_json::to_value(VolumeType::Data).unwrap(),
            json!("Data")
        );
    }

    #[test]
    fn health_is_a_tag_payload_pair() {
        for (h, tag) in [
            (Health::Healthy("ok".into()), "Healthy"),
            (Health::Recovering("ok".into()), "Recovering"),
            (Health::Unreachable("ok".into()), "Unreachable"),
            (Health::Unavailable("ok".into()), "Unavailable"),
        ] {
            let v = serde_json::to_value(&h).unwrap();
            assert_eq!(v, json!([tag, "ok"]));
            assert_eq!(serde_json::from_value::<Health>(v).unwrap(), h);
        }
        assert_eq!(
            serde_json::from_value::<Health>(json!(["healthy", ""])).unwrap(),
            Health::Healthy("".into())
        );
        assert!(serde_json::from_value::<Health>(json!(["Sick", ""])).is_err());
    }

    #[test]
    fn sr_stat_shape() {
        let s = SrStat {
            sr: "zvol:///tank/sr".into(),
            name: "n".into(),
            uuid: None,
            description: "".into(),
            free_space: 1,
            total_space: 2,
            datasources: vec![],
            clustered: false,
            health: Health::Healthy("".into()),
        };
        let v = serde_json::to_value(&s).unwrap();
        assert!(v.get("uuid").is_none());
        assert_eq!(v["health"], json!(["Healthy", ""]));
        assert!(v["free_space"].is_i64());
    }

    #[test]
    fn backend_implementations_encoding() {
        let b = Backend {
            implementations: vec![
                Implementation::XenDisk {
                    params: "/dev/zd16".into(),
                    extra: BTreeMap::new(),
                    backend_type: "vbd".into(),
                },
                Implementation::BlockDevice {
                    path: "/dev/zd16".into(),
                },
                Implementation::File { path: "/f".into() },
                Implementation::Nbd {
                    uri: "nbd:unix:/s:exportname=x".into(),
                },
            ],
        };
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(
            v,
            json!({"implementations": [
                ["XenDisk", {"params": "/dev/zd16", "extra": {}, "backend_type": "vbd"}],
                ["BlockDevice", {"path": "/dev/zd16"}],
                ["File", {"path": "/f"}],
                ["Nbd", {"uri": "nbd:unix:/s:exportname=x"}]
            ]})
        );
        assert_eq!(serde_json::from_value::<Backend>(v).unwrap(), b);
    }

    #[test]
    fn probe_result_omits_sr() {
        let p = ProbeResult {
            configuration: Configuration::from([("pool".into(), "tank".into())]),
            complete: false,
            sr: None,
            extra_info: BTreeMap::new(),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            json!({"configuration": {"pool": "tank"}, "complete": false, "extra_info": {}})
        );
    }
}
