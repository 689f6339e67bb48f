//! The SMAPIv3 methods, one function each, grouped by interface: [`plugin`] (`Plugin.*`),
//! [`sr`] (`SR.*`), [`volume`] (`Volume.*`), [`datapath`] (`Datapath.*`).
//!
//! Every method is `fn(&Context, Request) -> Result<IdlType, PluginError>`: it gets its
//! parameters as one request struct (declared next to it with [`crate::request!`]), calls the
//! semantic operation of `zfs_volume::sr` that does the work, and returns the IDL result type,
//! which the dispatcher serialises. Errors of the storage layer become wire errors through the
//! one `From<zfs_volume::Error> for PluginError` (`error_map.rs`). The table that maps method
//! names to these functions is [`crate::methods`].

pub mod context;
pub mod datapath;
pub mod plugin;
pub mod sr;
pub mod sr_config;
pub mod volume;

pub use context::Context;
