//! What a method function knows besides its parameters: which plugin it was called as, and the
//! settings `main` read once from the environment.

use std::path::PathBuf;
use std::time::Duration;

use crate::query::VOLUME_DIR_PREFIX;

/// What a call knows besides its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The plugin the entry belongs to (`Plugin.query` and `Plugin.diagnostics` answer per plugin).
    pub plugin: PluginKind,
    /// The datapath settings.
    pub datapath: DatapathConfig,
}

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

/// Where udev puts zvol links on a host.
pub const DEFAULT_ZVOL_ROOT: &str = "/dev/zvol";

/// How long `attach` waits by default for the device of an existing zvol to appear (ZFS makes a
/// new zvol's minor shortly after the transaction that created it); 10 s covers a loaded host
/// without hanging xapi (the daemon has no timeout).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// Datapath settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatapathConfig {
    /// Absolute, normalised directory every URI path must be under (`/dev/zvol`).
    pub zvol_root: PathBuf,
    /// Maximum time to wait for the device of an existing zvol to appear.
    pub wait: Duration,
}

impl Default for DatapathConfig {
    fn default() -> Self {
        DatapathConfig {
            zvol_root: PathBuf::from(DEFAULT_ZVOL_ROOT),
            wait: DEFAULT_WAIT,
        }
    }
}
