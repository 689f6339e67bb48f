//! The boundary between the protocol adapter and the storage implementation.
//!
//! The adapter (dispatch) decodes and validates each request, calls exactly one method of
//! [`VolumeBackend`] with typed arguments, and encodes the typed result or [`PluginError`].
//! `Plugin.query` and the whole datapath plugin are answered by the adapter itself; everything
//! that touches ZFS goes through this trait.
//!
//! Every method takes `dbg`, the daemon's opaque debug context (it may contain a newline followed
//! by a JSON trace context), so an implementation can correlate its own log lines.
//!
//! Sizes are `i64` because the IDL uses `int64`; the adapter has already rejected negative sizes
//! with `SR_BACKEND_FAILURE_79`.

use std::fmt;

use crate::error::PluginError;
use crate::types::{Configuration, ProbeResult, SrStat, Volume};

/// An operator command of the admin CLI (`xapi-zvol status|tree|check --sr SR`), answered by the
/// backend as human-readable text. Not part of SMAPIv3: the daemon never sends these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCmd {
    /// Summary of one SR: dataset, space, health, volume count.
    Status {
        /// The SR, as the opaque `sr` string returned by `SR.attach` or as a dataset name.
        sr: String,
    },
    /// The SR's volumes, snapshots, clones and internal datasets as a tree.
    Tree {
        /// The SR, as for [`AdminCmd::Status`].
        sr: String,
    },
    /// Consistency check of the SR against the invariants of `semantics.md` (read-only).
    Check {
        /// The SR, as for [`AdminCmd::Status`].
        sr: String,
    },
}

impl AdminCmd {
    /// The subcommand name (`status`, `tree`, `check`).
    pub fn name(&self) -> &'static str {
        match self {
            AdminCmd::Status { .. } => "status",
            AdminCmd::Tree { .. } => "tree",
            AdminCmd::Check { .. } => "check",
        }
    }

    /// The SR the command is about.
    pub fn sr(&self) -> &str {
        match self {
            AdminCmd::Status { sr } | AdminCmd::Tree { sr } | AdminCmd::Check { sr } => sr,
        }
    }
}

impl fmt::Display for AdminCmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} --sr {}", self.name(), self.sr())
    }
}

/// The SR/Volume operations of the SMAPIv3 volume plugin (contract §4.3, §4.4; semantics in
/// `docs/semantics.md`).
pub trait VolumeBackend {
    /// `Plugin.diagnostics` of the volume plugin: free text describing the backend state.
    fn diagnostics(&self, dbg: &str) -> Result<String, PluginError>;

    /// `SR.probe`: SRs (and partial configurations) reachable from `configuration`. A result with
    /// `sr` must have `sr_uuid` in its configuration, and one with `sr_uuid` must be `complete`.
    fn sr_probe(
        &self,
        dbg: &str,
        configuration: &Configuration,
    ) -> Result<Vec<ProbeResult>, PluginError>;

    /// `SR.create`: creates the SR and returns the configuration xapi stores as device-config.
    fn sr_create(
        &self,
        dbg: &str,
        uuid: &str,
        configuration: &Configuration,
        name: &str,
        description: &str,
    ) -> Result<Configuration, PluginError>;

    /// `SR.attach` (idempotent): returns the opaque `sr` string used in all later calls.
    fn sr_attach(&self, dbg: &str, configuration: &Configuration) -> Result<String, PluginError>;

    /// `SR.detach`.
    fn sr_detach(&self, dbg: &str, sr: &str) -> Result<(), PluginError>;

    /// `SR.destroy` (no detach follows).
    fn sr_destroy(&self, dbg: &str, sr: &str) -> Result<(), PluginError>;

    /// `SR.stat`.
    fn sr_stat(&self, dbg: &str, sr: &str) -> Result<SrStat, PluginError>;

    /// `SR.set_name`.
    fn sr_set_name(&self, dbg: &str, sr: &str, new_name: &str) -> Result<(), PluginError>;

    /// `SR.set_description`.
    fn sr_set_description(
        &self,
        dbg: &str,
        sr: &str,
        new_description: &str,
    ) -> Result<(), PluginError>;

    /// `SR.ls`: every live volume, snapshots included, with its keys.
    fn sr_ls(&self, dbg: &str, sr: &str) -> Result<Vec<Volume>, PluginError>;

    /// `Volume.create`: a new volume of at least `size` bytes (`size >= 0`).
    fn volume_create(
        &self,
        dbg: &str,
        sr: &str,
        name: &str,
        description: &str,
        size: i64,
        sharable: bool,
    ) -> Result<Volume, PluginError>;

    /// `Volume.snapshot`: a new read-only, attachable snapshot volume of `key`.
    fn volume_snapshot(&self, dbg: &str, sr: &str, key: &str) -> Result<Volume, PluginError>;

    /// `Volume.clone`: a new writable copy of any volume, snapshot or not.
    fn volume_clone(&self, dbg: &str, sr: &str, key: &str) -> Result<Volume, PluginError>;

    /// `Volume.destroy` (idempotent: a missing key succeeds).
    fn volume_destroy(&self, dbg: &str, sr: &str, key: &str) -> Result<(), PluginError>;

    /// `Volume.revert`: `key` takes the content of `snapshot`, keeping its identity.
    fn volume_revert(
        &self,
        dbg: &str,
        sr: &str,
        snapshot: &str,
        key: &str,
    ) -> Result<(), PluginError>;

    /// `Volume.set_name`.
    fn volume_set_name(
        &self,
        dbg: &str,
        sr: &str,
        key: &str,
        new_name: &str,
    ) -> Result<(), PluginError>;

    /// `Volume.set_description`.
    fn volume_set_description(
        &self,
        dbg: &str,
        sr: &str,
        key: &str,
        new_description: &str,
    ) -> Result<(), PluginError>;

    /// `Volume.set`: stores xapi key `k` = `v` (also on snapshots).
    fn volume_set(
        &self,
        dbg: &str,
        sr: &str,
        key: &str,
        k: &str,
        v: &str,
    ) -> Result<(), PluginError>;

    /// `Volume.unset`: removes xapi key `k`.
    fn volume_unset(&self, dbg: &str, sr: &str, key: &str, k: &str) -> Result<(), PluginError>;

    /// `Volume.resize`: grows to at least `new_size` bytes (`new_size >= 0`); shrink is
    /// refused with [`PluginError::invalid_size`].
    fn volume_resize(
        &self,
        dbg: &str,
        sr: &str,
        key: &str,
        new_size: i64,
    ) -> Result<(), PluginError>;

    /// `Volume.stat`: cheap and side-effect free.
    fn volume_stat(&self, dbg: &str, sr: &str, key: &str) -> Result<Volume, PluginError>;

    /// Operator command of the admin CLI (not an SMAPIv3 call): returns the text printed on
    /// stdout. `status` and `tree` must be read-only; `check` reports problems without fixing
    /// them. An `Err` makes the CLI print the error on stderr and exit 1.
    fn admin(&self, cmd: AdminCmd) -> Result<String, PluginError>;
}

/// A backend that fails every call with "backend not built yet".
///
/// It exists so the protocol layer, installer and datapath can be built and tested before the
/// ZFS backend; kept as a protocol-test double (the real one is [`crate::zfs_backend::ZfsBackend`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct UnbuiltBackend;

impl UnbuiltBackend {
    #[track_caller]
    fn fail<T>(what: &str) -> Result<T, PluginError> {
        Err(PluginError::backend(format!(
            "{what}: backend not built yet (xapi-zvol was built without its ZFS backend)"
        )))
    }
}

impl VolumeBackend for UnbuiltBackend {
    fn diagnostics(&self, _: &str) -> Result<String, PluginError> {
        Self::fail("Plugin.diagnostics")
    }
    fn sr_probe(&self, _: &str, _: &Configuration) -> Result<Vec<ProbeResult>, PluginError> {
        Self::fail("SR.probe")
    }
    fn sr_create(
        &self,
        _: &str,
        _: &str,
        _: &Configuration,
        _: &str,
        _: &str,
    ) -> Result<Configuration, PluginError> {
        Self::fail("SR.create")
    }
    fn sr_attach(&self, _: &str, _: &Configuration) -> Result<String, PluginError> {
        Self::fail("SR.attach")
    }
    fn sr_detach(&self, _: &str, _: &str) -> Result<(), PluginError> {
        Self::fail("SR.detach")
    }
    fn sr_destroy(&self, _: &str, _: &str) -> Result<(), PluginError> {
        Self::fail("SR.destroy")
    }
    fn sr_stat(&self, _: &str, _: &str) -> Result<SrStat, PluginError> {
        Self::fail("SR.stat")
    }
    fn sr_set_name(&self, _: &str, _: &str, _: &str) -> Result<(), PluginError> {
        Self::fail("SR.set_name")
    }
    fn sr_set_description(&self, _: &str, _: &str, _: &str) -> Result<(), PluginError> {
        Self::fail("SR.set_description")
    }
    fn sr_ls(&self, _: &str, _: &str) -> Result<Vec<Volume>, PluginError> {
        Self::fail("SR.ls")
    }
    fn volume_create(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
        _: i64,
        _: bool,
    ) -> Result<Volume, PluginError> {
        Self::fail("Volume.create")
    }
    fn volume_snapshot(&self, _: &str, _: &str, _: &str) -> Result<Volume, PluginError> {
        Self::fail("Volume.snapshot")
    }
    fn volume_clone(&self, _: &str, _: &str, _: &str) -> Result<Volume, PluginError> {
        Self::fail("Volume.clone")
    }
    fn volume_destroy(&self, _: &str, _: &str, _: &str) -> Result<(), PluginError> {
        Self::fail("Volume.destroy")
    }
    fn volume_revert(&self, _: &str, _: &str, _: &str, _: &str) -> Result<(), PluginError> {
        Self::fail("Volume.revert")
    }
    fn volume_set_name(&self, _: &str, _: &str, _: &str, _: &str) -> Result<(), PluginError> {
        Self::fail("Volume.set_name")
    }
    fn volume_set_description(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<(), PluginError> {
        Self::fail("Volume.set_description")
    }
    fn volume_set(&self, _: &str, _: &str, _: &str, _: &str, _: &str) -> Result<(), PluginError> {
        Self::fail("Volume.set")
    }
    fn volume_unset(&self, _: &str, _: &str, _: &str, _: &str) -> Result<(), PluginError> {
        Self::fail("Volume.unset")
    }
    fn volume_resize(&self, _: &str, _: &str, _: &str, _: i64) -> Result<(), PluginError> {
        Self::fail("Volume.resize")
    }
    fn volume_stat(&self, _: &str, _: &str, _: &str) -> Result<Volume, PluginError> {
        Self::fail("Volume.stat")
    }
    fn admin(&self, cmd: AdminCmd) -> Result<String, PluginError> {
        Self::fail(&format!("xapi-zvol {}", cmd.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_backend_fails_with_a_clear_message() {
        let b: Box<dyn VolumeBackend> = Box::new(UnbuiltBackend);
        let e = b.volume_stat("d", "sr", "k").unwrap_err();
        assert_eq!(e.code(), "SR_BACKEND_FAILURE");
        assert!(e.to_string().contains("backend not built yet"));
        assert!(e.to_string().contains("Volume.stat"));
        assert!(b.diagnostics("d").is_err());
        let e = b
            .admin(AdminCmd::Tree {
                sr: "tank/sr".into(),
            })
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("xapi-zvol tree: backend not built yet"),
            "{e}"
        );
    }

    #[test]
    fn admin_cmd_accessors() {
        let c = AdminCmd::Check {
            sr: "zvol:///tank/sr".into(),
        };
        assert_eq!(c.name(), "check");
        assert_eq!(c.sr(), "zvol:///tank/sr");
        assert_eq!(c.to_string(), "check --sr zvol:///tank/sr");
        assert_eq!(AdminCmd::Status { sr: "a".into() }.name(), "status");
    }
}
