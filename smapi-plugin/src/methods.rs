//! The table of SMAPIv3 methods this plugin serves: one row per method, naming it, saying which
//! plugin serves it, and pointing at the one function that implements it ([`crate::api`]); its
//! parameters come from that function's request struct (contract §4.2–§4.5).
//!
//! The table drives method resolution and the call (dispatch), request validation, and the set
//! of installed entry points (install). The daemon advertises features from the entries present,
//! so only methods in [`Method::ALL`] get an entry. Adding a method is one row here plus its
//! function.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::Serialize;

use crate::api::context::Context;
pub use crate::api::context::PluginKind;
use crate::api::{datapath, plugin, sr, volume};
use crate::error::PluginError;
use crate::request::{decode, Request};
pub use crate::request::{ParamSpec, ParamType};
use crate::wire::{render_success, Params};

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

/// IDL methods that exist but that we deliberately do not implement. They get no entry point
/// (so no feature is advertised for them); if invoked anyway they answer `Unimplemented`.
pub const UNIMPLEMENTED_METHODS: &[&str] = &[
    "Plugin.ls",
    "Volume.copy",
    "Volume.compare",
    "Volume.similar_content",
    "Volume.compose",
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

/// A method this plugin implements: one row of [`Method::ALL`].
#[derive(Clone, Copy)]
pub struct Method {
    name: &'static str,
    served_by: ServedBy,
    params: &'static [ParamSpec],
    call: fn(&Context, &Params) -> Result<String, PluginError>,
    decoded: fn(&Params) -> Result<String, PluginError>,
}

/// The parameters of a method function (those of its request struct).
const fn params_of<A: Request, R>(
    _: fn(&Context, A) -> Result<R, PluginError>,
) -> &'static [ParamSpec] {
    A::PARAMS
}

/// Decodes the request, calls `f` and renders its result.
fn call<A: Request, R: Serialize>(
    cx: &Context,
    p: &Params,
    f: fn(&Context, A) -> Result<R, PluginError>,
) -> Result<String, PluginError> {
    render_success(&f(cx, decode::<A>(p)?)?)
}

/// The decoded request of `f`, shown with `Debug` (for tests and fuzzing).
fn decoded<A: Request, R>(
    p: &Params,
    _: fn(&Context, A) -> Result<R, PluginError>,
) -> Result<String, PluginError> {
    Ok(format!("{:?}", decode::<A>(p)?))
}

/// One row of the table: the IDL name, the plugin(s) with an entry for it, its function.
macro_rules! method {
    ($name:literal, $served:ident, $f:path) => {
        Method {
            name: $name,
            served_by: ServedBy::$served,
            params: params_of($f),
            call: |cx, p| call(cx, p, $f),
            decoded: |p| decoded(p, $f),
        }
    };
}

impl Method {
    /// Every implemented method, in installation order.
    pub const ALL: &'static [Method] = &[
        method!("Plugin.query", Both, plugin::query),
        method!("Plugin.diagnostics", Both, plugin::diagnostics),
        method!("SR.probe", Volume, sr::probe),
        method!("SR.create", Volume, sr::create),
        method!("SR.attach", Volume, sr::attach),
        method!("SR.detach", Volume, sr::detach),
        method!("SR.destroy", Volume, sr::destroy),
        method!("SR.stat", Volume, sr::stat),
        method!("SR.set_name", Volume, sr::set_name),
        method!("SR.set_description", Volume, sr::set_description),
        method!("SR.ls", Volume, sr::ls),
        method!("Volume.create", Volume, volume::create),
        method!("Volume.snapshot", Volume, volume::snapshot),
        method!("Volume.clone", Volume, volume::clone),
        method!("Volume.destroy", Volume, volume::destroy),
        method!("Volume.revert", Volume, volume::revert),
        method!("Volume.set_name", Volume, volume::set_name),
        method!("Volume.set_description", Volume, volume::set_description),
        method!("Volume.set", Volume, volume::set),
        method!("Volume.unset", Volume, volume::unset),
        method!("Volume.resize", Volume, volume::resize),
        method!("Volume.stat", Volume, volume::stat),
        method!("Volume.enable_cbt", Volume, volume::enable_cbt),
        method!("Volume.disable_cbt", Volume, volume::disable_cbt),
        method!("Volume.data_destroy", Volume, volume::data_destroy),
        method!(
            "Volume.list_changed_blocks",
            Volume,
            volume::list_changed_blocks
        ),
        method!("Datapath.open", Datapath, datapath::open),
        method!("Datapath.attach", Datapath, datapath::attach),
        method!("Datapath.activate", Datapath, datapath::activate),
        method!(
            "Datapath.activate_readonly",
            Datapath,
            datapath::activate_readonly
        ),
        method!("Datapath.deactivate", Datapath, datapath::deactivate),
        method!("Datapath.detach", Datapath, datapath::detach),
        method!("Datapath.close", Datapath, datapath::close),
    ];

    /// The IDL method name (`Interface.method`).
    pub fn name(self) -> &'static str {
        self.name
    }

    /// The installed entry file name. `Plugin.Query` by convention (the daemon resolves names
    /// case-insensitively, and every shipped plugin spells it so); otherwise the IDL name.
    pub fn entry_name(self) -> &'static str {
        match self.name {
            "Plugin.query" => "Plugin.Query",
            other => other,
        }
    }

    /// Which plugin directories carry an entry for this method.
    pub fn served_by(self) -> ServedBy {
        self.served_by
    }

    /// Whether `kind`'s directory gets an entry for this method.
    pub fn installed_in(self, kind: PluginKind) -> bool {
        match self.served_by {
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

    /// The request parameters (contract §4 tables), all required, in IDL order.
    pub fn params(self) -> &'static [ParamSpec] {
        self.params
    }

    /// Validates and decodes `p`, calls the method's function, and renders its result.
    pub fn call(self, cx: &Context, p: &Params) -> Result<String, PluginError> {
        (self.call)(cx, p)
    }

    /// The request struct `p` decodes to, shown with `Debug`, without calling the method: what
    /// the function would get (tests and fuzzing check the parameter-to-field mapping with it).
    pub fn decode_only(self, p: &Params) -> Result<String, PluginError> {
        (self.decoded)(p)
    }

    /// Looks up a method name case-insensitively (the daemon calls `Plugin.Query` for
    /// `Plugin.query`, and resolves script names case-insensitively itself).
    pub fn resolve(name: &str) -> Resolution {
        Method::resolve_in(Method::ALL, name)
    }

    /// [`Method::resolve`] in another table (dispatcher tests).
    pub(crate) fn resolve_in(table: &[Method], name: &str) -> Resolution {
        if let Some(m) = table.iter().find(|m| m.name().eq_ignore_ascii_case(name)) {
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

    /// A row with a hand-written call, for dispatcher tests (a call that panics, say).
    #[cfg(test)]
    pub(crate) fn for_tests(
        name: &'static str,
        call: fn(&Context, &Params) -> Result<String, PluginError>,
    ) -> Method {
        Method {
            name,
            served_by: ServedBy::Volume,
            params: &[],
            call,
            decoded: |_| Ok(String::new()),
        }
    }

    /// The method of this exact IDL name, if we implement it.
    pub fn named(name: &str) -> Option<Method> {
        Method::ALL.iter().copied().find(|m| m.name == name)
    }
}

impl PartialEq for Method {
    fn eq(&self, other: &Method) -> bool {
        self.name == other.name
    }
}

impl Eq for Method {}

impl Hash for Method {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.name.hash(h)
    }
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Method({})", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn m(name: &str) -> Method {
        Method::named(name).unwrap()
    }

    #[test]
    fn resolution_is_case_insensitive() {
        assert_eq!(
            Method::resolve("Plugin.Query"),
            Resolution::Known(m("Plugin.query"))
        );
        assert_eq!(
            Method::resolve("plugin.query"),
            Resolution::Known(m("Plugin.query"))
        );
        assert_eq!(
            Method::resolve("VOLUME.SNAPSHOT"),
            Resolution::Known(m("Volume.snapshot"))
        );
        assert_eq!(
            Method::resolve("sr.set_description"),
            Resolution::Known(m("SR.set_description"))
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
                "Volume.stat",
                "Volume.enable_cbt",
                "Volume.disable_cbt",
                "Volume.data_destroy",
                "Volume.list_changed_blocks"
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
                "Datapath.activate_readonly",
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
            ("Volume.enable_cbt", "VDI_CONFIG_CBT"),
            ("Volume.list_changed_blocks", "VDI_CONFIG_CBT"),
        ] {
            assert_eq!(
                vol.contains(&entry),
                declared.contains(&feature),
                "{entry} vs {feature}"
            );
        }
    }
}
