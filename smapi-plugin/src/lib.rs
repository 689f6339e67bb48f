//! `xapi-zvol`: the SMAPIv3 (xapi-storage) **volume** plugin `org.xen.xapi.storage.zvol` and
//! **datapath** plugin `zvol` for ZFS zvols, as one multi-call binary.
//!
//! `xapi-storage-script` runs `<root>/volume/org.xen.xapi.storage.zvol/<Interface.method> --json`
//! (and `<root>/datapath/zvol/Datapath.<op> --json`) with the named-params object on stdin; every
//! such entry is a symlink (or a shim, see [`install`]) to this binary, which dispatches on
//! `basename(argv[0])`. The wire contract is `docs/contract.md` §2–§4:
//!
//! * success: exit 0, exactly one JSON value on stdout (`null` for unit);
//! * failure: exit 1, `{"code", "params", "backtrace": {"error", "files", "lines"}}` on stdout;
//! * logs: syslog `local2` and stderr, never stdout.
//!
//! Module map:
//! * [`dispatch`]: one invocation end to end (method resolution, validation, backend call,
//!   encoding, panic containment, call log);
//! * [`methods`]: the method table (names, entries, parameters);
//! * [`wire`]: stdin parsing and stdout rendering; [`types`]: IDL result types;
//!   [`error`]: the error type and its wire form;
//! * [`query`]: `Plugin.query` answers and fixed names; [`datapath`]: the datapath plugin;
//! * [`backend`]: the [`backend::VolumeBackend`] trait; [`zfs_backend`]: its ZFS implementation
//!   over `zfs_volume::sr`; [`error_map`]: storage errors → wire errors (one place);
//! * [`install`]: installing/removing the plugin directories; [`logging`]: syslog + stderr.

#![warn(missing_docs)]

pub mod backend;
pub mod datapath;
pub mod dispatch;
pub mod error;
pub mod error_map;
pub mod install;
pub mod logging;
pub mod methods;
pub mod query;
pub mod types;
pub mod wire;
pub mod zfs_backend;

pub use backend::{AdminCmd, VolumeBackend};
pub use dispatch::run;
pub use error::{ErrorKind, PluginError};
