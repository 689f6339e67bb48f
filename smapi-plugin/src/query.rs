//! `Plugin.query` answers for the volume and datapath plugins, and the fixed names they rest on.
//!
//! This is the single place for the SR type, the declared features and the SR.create
//! configuration keys, so that the query answer, the installed entry points and the backend's
//! validation cannot drift apart.

use crate::types::{Configuration, QueryResult};

/// SR type and `Plugin.query().plugin`: lower-case, no `.`, unique among XAPI storage plugins.
pub const PLUGIN_NAME: &str = "zvol";

/// Volume plugin directory (also the message-switch queue name) under `<root>/volume/`.
pub const VOLUME_PLUGIN_DIR: &str = "org.xen.xapi.storage.zvol";

/// Datapath plugin directory under `<root>/datapath/`; equal to the volume URI scheme.
pub const DATAPATH_PLUGIN_DIR: &str = "zvol";

/// URI scheme of volume URIs (`zvol:///dev/zvol/<pool>/<dataset...>`).
pub const URI_SCHEME: &str = "zvol";

/// Prefix of volume plugin directory names; any other parent directory means "datapath plugin".
pub const VOLUME_DIR_PREFIX: &str = "org.xen.xapi.storage.";

/// SMAPIv3 API version we speak. "5.0" avoids the daemon's 3.0 compat rewriting.
pub const REQUIRED_API_VERSION: &str = "5.0";

/// Features declared by the volume plugin. The daemon adds the SR_* and most VDI_* ones
/// by itself from the entry points present, but declaring them too is harmless; REVERT,
/// THIN_PROVISIONING and LARGE_VDI must be declared explicitly. No `VDI_RESIZE_ONLINE` (blkback
/// does not pick up a new size). `VDI_ACTIVATE_READONLY`: `Datapath.activate_readonly` makes the
/// device read-only. `VDI_CONFIG_CBT`: the four CBT methods (enable, disable, data_destroy,
/// list_changed_blocks), proven by the reconstruction oracle of `tests/vm_cbt.rs`.
pub const VOLUME_FEATURES: &[&str] = &[
    "SR_PROBE",
    "VDI_CREATE",
    "VDI_DESTROY",
    "VDI_SNAPSHOT",
    "VDI_CLONE",
    "VDI_RESIZE",
    "VDI_UPDATE",
    "VDI_REVERT",
    "VDI_ACTIVATE_READONLY",
    "VDI_CONFIG_CBT",
    "THIN_PROVISIONING",
    "LARGE_VDI",
];

/// SR.create configuration key: comma-separated devices/files to create a new pool from.
pub const CONFIG_DEVICE: &str = "device";
/// SR.create configuration key: a zpool vdev specification for a new pool.
pub const CONFIG_VDEV: &str = "vdev";
/// SR.create configuration key: an existing pool; the SR becomes a dataset under it.
pub const CONFIG_POOL: &str = "pool";
/// SR.create configuration key: `thin` (default) or `thick`.
pub const CONFIG_PROVISIONING: &str = "provisioning";
/// SR.create configuration key: volblocksize of new zvols.
pub const CONFIG_VOLBLOCKSIZE: &str = "volblocksize";
/// SR.create configuration key: compression of the SR dataset.
pub const CONFIG_COMPRESSION: &str = "compression";

/// The SR.create configuration keys with their descriptions, as reported in
/// `Plugin.query().configuration` (shown by `xe sm-list`).
pub const SR_CONFIG_KEYS: &[(&str, &str)] = &[
    (
        CONFIG_DEVICE,
        "Comma-separated block devices or files to build a NEW ZFS pool from (exactly one of device, vdev, pool)",
    ),
    (
        CONFIG_VDEV,
        "zpool vdev specification for a NEW ZFS pool, e.g. 'mirror /dev/sdb /dev/sdc' (exactly one of device, vdev, pool)",
    ),
    (
        CONFIG_POOL,
        "Existing ZFS pool (or dataset) under which the SR is created as a dataset; never destroyed by the plugin (exactly one of device, vdev, pool)",
    ),
    (CONFIG_PROVISIONING, "thin or thick provisioning of new volumes (default: thin)"),
    (CONFIG_VOLBLOCKSIZE, "volblocksize of new volumes, e.g. 64K (default: 16K, on every OpenZFS version)"),
    (CONFIG_COMPRESSION, "compression of the SR dataset, e.g. lz4, zstd or off (default: inherited)"),
];

/// `Plugin.query` of the volume plugin. Answered by the adapter, never by the backend, so it
/// works even when ZFS is unavailable (xapi queries at start-up and on every PBD.plug).
pub fn volume_query() -> QueryResult {
    QueryResult {
        plugin: PLUGIN_NAME.into(),
        name: "ZFS zvol SR".into(),
        description: "Local SR storing each VDI as a ZFS volume (zvol), with ZFS snapshots and clones, thin or thick provisioned".into(),
        vendor: "xapi-zvol".into(),
        copyright: "Copyright (c) the xapi-zvol authors; licensed MIT OR Apache-2.0".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        required_api_version: REQUIRED_API_VERSION.into(),
        features: VOLUME_FEATURES.iter().map(|s| s.to_string()).collect(),
        configuration: SR_CONFIG_KEYS.iter().map(|(k, d)| (k.to_string(), d.to_string())).collect(),
        required_cluster_stack: Vec::new(),
    }
}

/// `Plugin.query` of the datapath plugin. No `NONPERSISTENT` feature: the daemon then implements
/// reset-on-boot through `Volume.clone`, and never calls `Datapath.open`/`close` with it.
pub fn datapath_query() -> QueryResult {
    QueryResult {
        plugin: PLUGIN_NAME.into(),
        name: "zvol datapath".into(),
        description: "Attaches ZFS zvol block devices to guests through kernel blkback (vbd)"
            .into(),
        vendor: "xapi-zvol".into(),
        copyright: "Copyright (c) the xapi-zvol authors; licensed MIT OR Apache-2.0".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        required_api_version: REQUIRED_API_VERSION.into(),
        features: Vec::new(),
        configuration: Configuration::new(),
        required_cluster_stack: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn volume_query_content() {
        let v = serde_json::to_value(volume_query()).unwrap();
        assert_eq!(v["plugin"], "zvol");
        assert_eq!(v["name"], "ZFS zvol SR");
        assert_eq!(v["vendor"], "xapi-zvol");
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["required_api_version"], "5.0");
        assert_eq!(
            v["features"],
            json!([
                "SR_PROBE",
                "VDI_CREATE",
                "VDI_DESTROY",
                "VDI_SNAPSHOT",
                "VDI_CLONE",
                "VDI_RESIZE",
                "VDI_UPDATE",
                "VDI_REVERT",
                "VDI_ACTIVATE_READONLY",
                "VDI_CONFIG_CBT",
                "THIN_PROVISIONING",
                "LARGE_VDI"
            ])
        );
        let keys: Vec<&str> = v["configuration"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut expected = vec![
            "device",
            "vdev",
            "pool",
            "provisioning",
            "volblocksize",
            "compression",
        ];
        expected.sort();
        assert_eq!(keys, expected);
        assert_eq!(v["required_cluster_stack"], json!([]));
        assert_eq!(v.as_object().unwrap().len(), 10);
    }

    #[test]
    fn datapath_query_content() {
        let v = serde_json::to_value(datapath_query()).unwrap();
        assert_eq!(v["plugin"], "zvol");
        assert_eq!(v["required_api_version"], "5.0");
        assert_eq!(v["features"], json!([]));
        assert_eq!(v["configuration"], json!({}));
        assert_eq!(v["required_cluster_stack"], json!([]));
    }

    #[test]
    fn names_agree() {
        assert_eq!(
            VOLUME_PLUGIN_DIR,
            format!("{VOLUME_DIR_PREFIX}{PLUGIN_NAME}")
        );
        assert_eq!(DATAPATH_PLUGIN_DIR, URI_SCHEME);
        assert!(!PLUGIN_NAME.contains('.'));
        assert_eq!(PLUGIN_NAME, PLUGIN_NAME.to_lowercase());
    }
}
