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
//! * [`api`]: **one function per SMAPI method**, grouped by interface (`plugin`, `sr`, `volume`,
//!   `datapath`), each taking its request struct and returning its IDL type;
//! * [`methods`]: the table mapping method names to those functions (and the installed entries);
//! * [`dispatch`]: one invocation end to end (method resolution, the call, encoding, panic
//!   containment, call log);
//! * [`request`]: request structs and their validation; [`wire`]: stdin parsing and stdout
//!   rendering; [`types`]: IDL result types; [`error`]: the error type and its wire form;
//!   [`error_map`]: storage errors → wire errors (one place);
//! * [`query`]: `Plugin.query` answers and fixed names; [`admin`]: the admin CLI's SR reports;
//! * [`config`]: the settings read once from the environment; [`install`]: installing/removing
//!   the plugin directories; [`logging`]: syslog + stderr.

#![warn(missing_docs)]

pub mod admin;
pub mod api;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod error_map;
pub mod install;
pub mod logging;
pub mod methods;
pub mod prefetch;
pub mod query;
pub mod request;
pub mod types;
pub mod wire;

pub use admin::AdminCmd;
pub use dispatch::run;
pub use error::{ErrorKind, PluginError};
