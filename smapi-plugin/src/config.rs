//! The plugin's settings: read once from the environment by `main` and passed down (the SR
//! layer's part is installed as its [`HostSettings`], the datapath's goes into every call's
//! context). Nothing else reads the environment, except the fault points of test builds.
//!
//! | variable | setting | default |
//! |---|---|---|
//! | `XAPI_ZVOL_RUN_DIR` | directory of lock files, hold marks and intent records | `/run/xapi-zvol` |
//! | `XAPI_ZVOL_LOCK_WAIT_SECS` | how long a changing call waits for the SR lock | 60 |
//! | `XAPI_ZVOL_ATTACH_WAIT_MS` | how long `Datapath.attach` waits for an existing zvol's device | 10000 |
//!
//! An unset or empty variable keeps the default; one that does not parse is ignored with a
//! warning in the log.

use std::path::PathBuf;
use std::time::Duration;

use zfs_volume::sr::HostSettings;

use crate::api::context::DatapathConfig;
use crate::logging;

/// Directory of lock files, hold marks and intent records.
pub const ENV_RUN_DIR: &str = "XAPI_ZVOL_RUN_DIR";
/// Seconds a changing call waits for the SR lock.
pub const ENV_LOCK_WAIT_SECS: &str = "XAPI_ZVOL_LOCK_WAIT_SECS";
/// Milliseconds `Datapath.attach` waits for the device of an existing zvol to appear.
pub const ENV_ATTACH_WAIT_MS: &str = "XAPI_ZVOL_ATTACH_WAIT_MS";

/// Everything the plugin reads from its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The SR layer's settings (installed once per process).
    pub host: HostSettings,
    /// The datapath plugin's settings.
    pub datapath: DatapathConfig,
}

impl Config {
    /// The settings from the process environment.
    pub fn from_env() -> Config {
        Config::from_lookup(|k| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()))
    }

    /// The settings from `lookup` (an environment accessor).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Config {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let number = |k: &str| {
            get(k).and_then(|v| match v.trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(e) => {
                    logging::warn(&format!("ignoring {k}={v:?}: {e}"));
                    None
                }
            })
        };
        let mut c = Config::default();
        if let Some(dir) = get(ENV_RUN_DIR) {
            c.host.run_dir = PathBuf::from(dir);
        }
        if let Some(s) = number(ENV_LOCK_WAIT_SECS) {
            c.host.lock_wait = Duration::from_secs(s);
        }
        if let Some(ms) = number(ENV_ATTACH_WAIT_MS) {
            c.datapath.wait = Duration::from_millis(ms);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_override_the_defaults_and_bad_values_are_ignored() {
        let c = Config::from_lookup(|k| match k {
            ENV_ATTACH_WAIT_MS => Some("250".into()),
            ENV_LOCK_WAIT_SECS => Some(" 3 ".into()),
            ENV_RUN_DIR => Some("/tmp/r".into()),
            "XAPI_ZVOL_ZVOL_ROOT" => Some("/tmp/fake".into()),
            _ => None,
        });
        assert_eq!(c.datapath.wait, Duration::from_millis(250));
        assert_eq!(c.host.lock_wait, Duration::from_secs(3));
        assert_eq!(c.host.run_dir, PathBuf::from("/tmp/r"));
        // The device-link root is not configurable: a test hook that pointed the datapath at
        // regular files, gone with the checks of Datapath.attach (only VDIs of our SRs).
        assert_eq!(c.datapath.zvol_root, DatapathConfig::default().zvol_root);
        let c = Config::from_lookup(|k| match k {
            ENV_ATTACH_WAIT_MS => Some("soon".into()),
            ENV_LOCK_WAIT_SECS => Some("-1".into()),
            ENV_RUN_DIR => Some("".into()),
            _ => None,
        });
        assert_eq!(c, Config::default());
    }
}
