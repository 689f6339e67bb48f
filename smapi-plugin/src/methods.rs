//! The SMAPIv3 methods this plugin serves: names, which plugin serves them, their installed entry
//! names and their parameters (contract §4.2–§4.5).
//!
//! The table here drives method resolution (dispatch), request validation (dispatch) and the set
//! of installed entry points (install). The daemon advertises features from the entries present,
//! so only methods in [`Method::ALL`] get an entry.

use crate::query::VOLUME_DIR_PREFIX;

/// Which of the two plugins an invocation belongs to (decided from the entry's directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// The volume plugin (`<root>/volume/org.xen.xapi.storage.zvol`).
    Volume,
    /// The datapath plugin (`<root>/datapath/zvol`).
    Datapath,
}

impl PluginKind {
    /// Classifies an entry's parent directory name: `org.xen.xapi.storage.*` is a volume plugin
    /// (that prefix is what the daemon and xapi require of volume plugin queues); anything else
    /// is a datapath plugin (their directory name is a URI scheme such as `zvol`).
    pub fn from_dir_name(dir_name: &str) -> PluginKind {
        let prefix_len = VOLUME_DIR_PREFIX.len();
        if dir_name.len() > prefix_len
            && dir_name.is_char_boundary(prefix_len)
            && dir_name[..prefix_len].eq_ignore_ascii_case(VOLUME_DIR_PREFIX)
        {
            PluginKind::Volume
        } else {
            PluginKind::Datapath
        }
    }
}

/// Where a method has an entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedBy {
    /// Both plugin directories (the `Plugin` interface).
    Both,
    /// The volume plugin only (`SR`, `Volume`).
    Volume,
    /// The datapath plugin only (`Datapath`).
    Datapath,
}

/// JSON type of a request parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// A JSON string.
    String,
    /// An int64: JSON integer or numeric string.
    Int64,
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

const fn s(name: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        ty: ParamType::String,
    }
}
const fn i(name: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        ty: ParamType::Int64,
    }
}
const fn b(name: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        ty: ParamType::Bool,
    }
}
const fn c(name: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        ty: ParamType::Configuration,
    }
}

/// A method this plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // variant names are the IDL method names, see `Method::name`
pub enum Method {
    PluginQuery,
    PluginDiagnostics,
    SrProbe,
    SrCreate,
    SrAttach,
    SrDetach,
    SrDestroy,
    SrStat,
    SrSetName,
    SrSetDescription,
    SrLs,
    VolumeCreate,
    VolumeSnapshot,
    VolumeClone,
    VolumeDestroy,
    VolumeRevert,
    VolumeSetName,
    VolumeSetDescription,
    VolumeSet,
    VolumeUnset,
    VolumeResize,
    VolumeStat,
    DatapathOpen,
    DatapathAttach,
    DatapathActivate,
    DatapathDeactivate,
    DatapathDetach,
    DatapathClose,
}

/// IDL methods that exist but that we deliberately do not implement. They get no entry point
/// (so no feature is advertised for them); if invoked anyway they answer `Unimplemented`.
pub const UNIMPLEMENTED_METHODS: &[&str] = &[
    "Plugin.ls",
    "Volume.copy",
    "Volume.compare",
    "Volume.similar_content",
    "Volume.enable_cbt",
    "Volume.disable_cbt",
    "Volume.data_destroy",
    "Volume.list_changed_blocks",
    "Volume.compose",
    "Datapath.activate_readonly",
    "Datapath.import_activate",
    "Data.copy",
    "Data.mirror",
    "Data.stat",
    "Data.cancel",
    "Data.destroy",
    "Data.ls",
];

/// Outcome of looking a method name up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// A method we serve.
    Known(Method),
    /// An IDL method we do not implement (canonical name).
    Unimplemented(&'static str),
    /// Not an IDL method at all.
    Unknown,
}

impl Method {
    /// Every implemented method, in installation order.
    pub const ALL: &'static [Method] = &[
        Method::PluginQuery,
        Method::PluginDiagnostics,
        Method::SrProbe,
        Method::SrCreate,
        Method::SrAttach,
        Method::SrDetach,
        Method::SrDestroy,
        Method::SrStat,
        Method::SrSetName,
        Method::SrSetDescription,
        Method::SrLs,
        Method::VolumeCreate,
        Method::VolumeSnapshot,
        Method::VolumeClone,
        Method::VolumeDestroy,
        Method::VolumeRevert,
        Method::VolumeSetName,
        Method::VolumeSetDescription,
        Method::VolumeSet,
        Method::VolumeUnset,
        Method::VolumeResize,
        Method::VolumeStat,
        Method::DatapathOpen,
        Method::DatapathAttach,
        Method::DatapathActivate,
        Method::DatapathDeactivate,
        Method::DatapathDetach,
        Method::DatapathClose,
    ];

    /// The IDL method name (`Interface.method`).
    pub fn name(self) -> &'static str {
        match self {
            Method::PluginQuery => "Plugin.query",
            Method::PluginDiagnostics => "Plugin.diagnostics",
            Method::SrProbe => "SR.probe",
            Method::SrCreate => "SR.create",
            Method::SrAttach => "SR.attach",
            Method::SrDetach => "SR.detach",
            Method::SrDestroy => "SR.destroy",
            Method::SrStat => "SR.stat",
            Method::SrSetName => "SR.set_name",
            Method::SrSetDescription => "SR.set_description",
            Method::SrLs => "SR.ls",
            Method::VolumeCreate => "Volume.create",
            Method::VolumeSnapshot => "Volume.snapshot",
            Method::VolumeClone => "Volume.clone",
            Method::VolumeDestroy => "Volume.destroy",
            Method::VolumeRevert => "Volume.revert",
            Method::VolumeSetName => "Volume.set_name",
            Method::VolumeSetDescription => "Volume.set_description",
            Method::VolumeSet => "Volume.set",
            Method::VolumeUnset => "Volume.unset",
            Method::VolumeResize => "Volume.resize",
            Method::VolumeStat => "Volume.stat",
            Method::DatapathOpen => "Datapath.open",
            Method::DatapathAttach => "Datapath.attach",
            Method::DatapathActivate => "Datapath.activate",
            Method::DatapathDeactivate => "Datapath.deactivate",
            Method::DatapathDetach => "Datapath.detach",
            Method::DatapathClose => "Datapath.close",
        }
    }

    /// The installed entry file name. `Plugin.Query` by convention (the daemon resolves names
    /// case-insensitively, and every shipped plugin spells it so); otherwise the IDL name.
    pub fn entry_name(self) -> &'static str {
        match self {
            Method::PluginQuery => "Plugin.Query",
            other => other.name(),
        }
    }

    /// Which plugin directories carry an entry for this method.
    pub fn served_by(self) -> ServedBy {
        match self {
            Method::PluginQuery | Method::PluginDiagnostics => ServedBy::Both,
            Method::DatapathOpen
            | Method::DatapathAttach
            | Method::DatapathActivate
            | Method::DatapathDeactivate
            | Method::DatapathDetach
            | Method::DatapathClose => ServedBy::Datapath,
            _ => ServedBy::Volume,
        }
    }

    /// Whether `kind`'s directory gets an entry for this method.
    pub fn installed_in(self, kind: PluginKind) -> bool {
        match self.served_by() {
            ServedBy::Both => true,
            ServedBy::Volume => kind == PluginKind::Volume,
            ServedBy::Datapath => kind == PluginKind::Datapath,
        }
    }

    /// Entry names to install in `kind`'s directory.
    pub fn entries(kind: PluginKind) -> Vec<&'static str> {
        Method::ALL
            .iter()
            .filter(|m| m.installed_in(kind))
            .map(|m| m.entry_name())
            .collect()
    }

    /// The request parameters (contract §4 tables), all required.
    pub fn params(self) -> &'static [ParamSpec] {
        const DBG: &[ParamSpec] = &[s("dbg")];
        const SR: &[ParamSpec] = &[s("dbg"), s("sr")];
        const KEY: &[ParamSpec] = &[s("dbg"), s("sr"), s("key")];
        match self {
            Method::PluginQuery | Method::PluginDiagnostics => DBG,
            Method::SrProbe | Method::SrAttach => const { &[s("dbg"), c("configuration")] },
            Method::SrCreate => {
                const {
                    &[
                        s("dbg"),
                        s("uuid"),
                        c("configuration"),
                        s("name"),
                        s("description"),
                    ]
                }
            }
            Method::SrDetach | Method::SrDestroy | Method::SrStat | Method::SrLs => SR,
            Method::SrSetName => const { &[s("dbg"), s("sr"), s("new_name")] },
            Method::SrSetDescription => const { &[s("dbg"), s("sr"), s("new_description")] },
            Method::VolumeCreate => {
                const {
                    &[
                        s("dbg"),
                        s("sr"),
                        s("name"),
                        s("description"),
                        i("size"),
                        b("sharable"),
                    ]
                }
            }
            Method::VolumeSnapshot
            | Method::VolumeClone
            | Method::VolumeDestroy
            | Method::VolumeStat => KEY,
            Method::VolumeRevert => const { &[s("dbg"), s("sr"), s("snapshot"), s("key")] },
            Method::VolumeSetName => const { &[s("dbg"), s("sr"), s("key"), s("new_name")] },
            Method::VolumeSetDescription => {
                const { &[s("dbg"), s("sr"), s("key"), s("new_description")] }
            }
            Method::VolumeSet => const { &[s("dbg"), s("sr"), s("key"), s("k"), s("v")] },
            Method::VolumeUnset => const { &[s("dbg"), s("sr"), s("key"), s("k")] },
            Method::VolumeResize => const { &[s("dbg"), s("sr"), s("key"), i("new_size")] },
            Method::DatapathOpen => const { &[s("dbg"), s("uri"), b("persistent")] },
            Method::DatapathAttach
            | Method::DatapathActivate
            | Method::DatapathDeactivate
            | Method::DatapathDetach => const { &[s("dbg"), s("uri"), s("domain")] },
            Method::DatapathClose => const { &[s("dbg"), s("uri")] },
        }
    }

    /// Looks up a method name case-insensitively (the daemon calls `Plugin.Query` for
    /// `Plugin.query`, and resolves script names case-insensitively itself).
    pub fn resolve(name: &str) -> Resolution {
        if let Some(m) = Method::ALL
            .iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
        {
            return Resolution::Known(*m);
        }
        match UNIMPLEMENTED_METHODS
            .iter()
            .find(|u| u.eq_ignore_ascii_case(name))
        {
            Some(u) => Resolution::Unimplemented(u),
            None => Resolution::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn resolution_is_case_insensitive() {
        assert_eq!(
            Method::resolve("Plugin.Query"),
            Resolution::Known(Method::PluginQuery)
        );
        assert_eq!(
            Method::resolve("plugin.query"),
            Resolution::Known(Method::PluginQuery)
        );
        assert_eq!(
            Method::resolve("VOLUME.SNAPSHOT"),
            Resolution::Known(Method::VolumeSnapshot)
        );
        assert_eq!(
            Method::resolve("sr.set_description"),
            Resolution::Known(Method::SrSetDescription)
        );
        assert_eq!(
            Method::resolve("volume.compose"),
            Resolution::Unimplemented("Volume.compose")
        );
        assert_eq!(Method::resolve("Volume.frobnicate"), Resolution::Unknown);
        assert_eq!(Method::resolve("xapi-zvol"), Resolution::Unknown);
    }

    #[test]
    fn every_method_round_trips_through_its_names() {
        for m in Method::ALL {
            assert_eq!(Method::resolve(m.name()), Resolution::Known(*m));
            assert_eq!(Method::resolve(m.entry_name()), Resolution::Known(*m));
            assert_eq!(Method::params(*m)[0].name, "dbg");
        }
        let names: HashSet<_> = Method::ALL
            .iter()
            .map(|m| m.name().to_lowercase())
            .collect();
        assert_eq!(names.len(), Method::ALL.len());
        for u in UNIMPLEMENTED_METHODS {
            assert!(!names.contains(&u.to_lowercase()));
        }
    }

    #[test]
    fn dir_classification() {
        assert_eq!(
            PluginKind::from_dir_name("org.xen.xapi.storage.zvol"),
            PluginKind::Volume
        );
        assert_eq!(
            PluginKind::from_dir_name("org.xen.xapi.storage.dummyv5"),
            PluginKind::Volume
        );
        assert_eq!(
            PluginKind::from_dir_name("ORG.xen.xapi.storage.zvol"),
            PluginKind::Volume
        );
        assert_eq!(PluginKind::from_dir_name("zvol"), PluginKind::Datapath);
        assert_eq!(
            PluginKind::from_dir_name("org.xen.xapi.storage."),
            PluginKind::Datapath
        );
        assert_eq!(PluginKind::from_dir_name(""), PluginKind::Datapath);
    }

    #[test]
    fn entries_per_directory() {
        let vol = Method::entries(PluginKind::Volume);
        let dp = Method::entries(PluginKind::Datapath);
        assert_eq!(
            vol,
            [
                "Plugin.Query",
                "Plugin.diagnostics",
                "SR.probe",
                "SR.create",
                "SR.attach",
                "SR.detach",
                "SR.destroy",
                "SR.stat",
                "SR.set_name",
                "SR.set_description",
                "SR.ls",
                "Volume.create",
                "Volume.snapshot",
                "Volume.clone",
                "Volume.destroy",
                "Volume.revert",
                "Volume.set_name",
                "Volume.set_description",
                "Volume.set",
                "Volume.unset",
                "Volume.resize",
                "Volume.stat"
            ]
        );
        assert_eq!(
            dp,
            [
                "Plugin.Query",
                "Plugin.diagnostics",
                "Datapath.open",
                "Datapath.attach",
                "Datapath.activate",
                "Datapath.deactivate",
                "Datapath.detach",
                "Datapath.close"
            ]
        );
    }

    /// The daemon autodetects features from entry presence (contract §6): every autodetected
    /// feature must correspond to something we declare or that the daemon always adds, and the
    /// SR_PROBE we declare must have its entry.
    #[test]
    fn entries_and_declared_features_agree() {
        let vol = Method::entries(PluginKind::Volume);
        let declared = crate::query::VOLUME_FEATURES;
        assert!(vol.contains(&"SR.probe") && declared.contains(&"SR_PROBE"));
        for (entry, feature) in [
            ("Volume.create", "VDI_CREATE"),
            ("Volume.clone", "VDI_CLONE"),
            ("Volume.snapshot", "VDI_SNAPSHOT"),
            ("Volume.resize", "VDI_RESIZE"),
            ("Volume.destroy", "VDI_DESTROY"),
            ("Volume.stat", "VDI_UPDATE"),
            ("Volume.revert", "VDI_REVERT"),
        ] {
            assert_eq!(
                vol.contains(&entry),
                declared.contains(&feature),
                "{entry} vs {feature}"
            );
        }
    }
}
