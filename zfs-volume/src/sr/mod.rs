//! The SR/Volume semantics of xapi-zvol, on top of [`crate::lzc`].
//!
//! XAPI sees a flat set of volumes with independent lifetimes; ZFS is a dependency tree.
//! This module holds the invariants of `docs/semantics.md` (I1–I10):
//!
//! * a **writable VDI** is a zvol `SR/vol/<key>`;
//! * a **snapshot VDI** is a read-only clone `SR/snap/<key>` of the ZFS snapshot
//!   `<source>@<key>` (clone-on-snapshot: attachable, I5 by the container's readonly=on);
//! * a **clone** of VDI `X` is `SR/vol/<new>`, cloned from X's origin when X is a
//!   snapshot VDI with one (its content), else from a new snapshot `X@<new>`;
//! * every ZFS snapshot in an SR is named after the VDI first cloned from it (globally
//!   unique, so promote never clashes) and exists only while it has a clone: a
//!   snapshot without clones is garbage, collected by the calls themselves (I4);
//! * **destroy** promotes the clone of the newest clone-bearing snapshot, so the VDI
//!   becomes a leaf, and destroys it, all in one sync channel program (I3);
//! * **revert** rolls back when the target is the volume's latest snapshot, else clones
//!   the snapshot's content and swaps it in under the same key (I1, I2).
//!
//! Keys are lower-case UUIDs we issue; every dataset name is derived from them, so a
//! lookup is O(1) (Volume.stat stays cheap as the SR grows). Metadata lives in user
//! properties of the datasets (I6). Tree changes hold a per-SR lock ([`lock`], I10);
//! compound steps are crash-safe by naming ([`Sr::recover`], I9).

pub mod fault;
pub mod layout;
pub use crate::host::lock;
pub mod meta;
mod names;
pub mod record;

mod admin;
pub mod device;
mod journal;
mod mounts;
mod recover;
mod sr_create;
mod sr_destroy;

// The volume operations: what they share, then one file per SMAPI method.
mod cbt;
mod clone;
mod create;
mod destroy;
mod metadata;
mod read;
mod resize;
mod revert;
mod send_ahead;
mod snapshot;
mod volume;

pub use admin::{PoolSource, Provisioning, SrConfig, SrFound, DEFAULT_VOLBLOCKSIZE};
pub use cbt::{ChangedBlocks, CBT_GRANULARITY};
pub use layout::Kind;
pub use lock::HostSettings;
pub use record::{Health, SrInfo, VdiInfo};
pub use recover::CheckReport;
pub use volume::{round_size, NewVdi};

use crate::error::Result;
use crate::lzc::{Capabilities, Zfs};
use layout::Layout;

/// An attached SR: the handle every Volume operation goes through.
///
/// ```no_run
/// use zfs_volume::sr::Sr;
/// let sr = Sr::open("tank/zvol-sr-5e0a3e4c-1f7b-4c1e-8f1a-0d3c2b1a0f9e")?;
/// let v = sr.volume_create("disk", "", 1 << 30, false)?;
/// let s = sr.volume_snapshot(&v.key)?;
/// sr.volume_destroy(&v.key)?;       // the snapshot VDI survives (I3)
/// sr.volume_destroy(&s.key)?;       // and nothing is left behind (I4)
/// # Ok::<(), zfs_volume::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sr {
    zfs: &'static Zfs,
    layout: Layout,
    uuid: String,
    provisioning: Provisioning,
    volblocksize: u64,
}

impl Sr {
    /// The SR dataset (also the opaque `sr` string given to xapi).
    pub fn dataset(&self) -> &str {
        self.layout.root()
    }
    /// The SR uuid (from the marker).
    pub fn uuid(&self) -> &str {
        &self.uuid
    }
    /// The pool holding the SR.
    pub fn pool(&self) -> &str {
        self.layout.pool()
    }
    /// Thin or thick provisioning of new volumes.
    pub fn provisioning(&self) -> Provisioning {
        self.provisioning
    }
    /// volblocksize of new volumes, bytes.
    pub fn volblocksize(&self) -> u64 {
        self.volblocksize
    }
    /// Kernel module capabilities.
    pub fn capabilities(&self) -> Result<&'static Capabilities> {
        Ok(self.zfs.capabilities()?)
    }
    fn lock(&self) -> Result<lock::SrLock> {
        lock::SrLock::acquire(self.dataset(), lock::wait_limit())
    }
}
