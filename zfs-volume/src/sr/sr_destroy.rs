//! SR.destroy: every VDI left (through the same path as Volume.destroy), the containers, the
//! SR dataset, and the pool when SR.create made it for this SR and nothing else lives in it
//! (I8: never a pool we did not create). Only a name of our SR shape carrying our marker is
//! destroyed; an SR dataset that is gone is destroyed already (xapi retries).

use super::admin::{zpool, COUNT_CHILDREN, POOL_OWNER};
use super::layout::{self, CBT, GC, SNAP, VOL};
use super::{fault, Sr};
use crate::error::{Error, Result};
use crate::lzc::{Limits, NvList, NvValue, Zfs};

impl Sr {
    /// Destroy the SR: every VDI left (through the same path as Volume.destroy), the
    /// containers, the SR dataset, and the pool if SR.create made it and nothing else
    /// lives in it. Destroying an SR that is already gone succeeds.
    ///
    /// ```no_run
    /// zfs_volume::sr::Sr::destroy_sr("zvol-5e0a/zvol-sr-5e0a")?;
    /// # Ok::<(), zfs_volume::Error>(())
    /// ```
    pub fn destroy_sr(dataset: &str) -> Result<()> {
        // Only a name of our SR shape can be an SR of ours: anything else (a pool's root, a
        // foreign dataset, a bare uuid) is refused before anything looks at the pool, so a
        // wrong device-config never "destroys" nothing and reports success. An SR dataset
        // that exists must also carry our marker (Sr::open); one that is gone is destroyed
        // already (xapi retries SR.destroy after a failure).
        let Some(uuid) = layout::sr_uuid_of(dataset) else {
            return Err(Error::SrNotFound(dataset.to_string()));
        };
        let uuid_from_name = Some(uuid);
        let zfs = Zfs::get()?;
        let pool = dataset.split('/').next().unwrap_or(dataset).to_string();
        if zfs.exists(dataset) {
            let sr = Sr::open(dataset)?;
            let _l = sr.lock()?;
            sr.recover_all()?;
            for v in sr.ls_with_tombstones()?.0 {
                sr.destroy_locked(&v.key)?;
            }
            sr.recover_all()?;
            fault::point("sr-destroy:after-volumes");
            // A mounted container cannot be destroyed.
            sr.release_containers();
            for c in [VOL, SNAP, CBT, GC] {
                let d = sr.layout.container(c);
                if zfs.exists(&d) {
                    zfs.destroy(&d)?;
                }
            }
            zfs.destroy(dataset)?;
            fault::point("sr-destroy:after-root");
        }
        // The pool goes only if we made it for this SR and it is now empty.
        if let Some(uuid) = uuid_from_name {
            if zfs.exists(&pool) && dataset.matches('/').count() == 1 {
                let owner = zfs.user_properties(&pool)?;
                let ours = owner
                    .get(POOL_OWNER)
                    .map(|p| p.as_str() == Some(uuid) && p.source == pool)
                    .unwrap_or(false);
                if ours && pool == format!("{}{uuid}", layout::POOL_PREFIX) {
                    let mut a = NvList::new()?;
                    a.add_string("parent", &pool)?;
                    let empty = matches!(
                        zfs.program_nosync(&pool, &COUNT_CHILDREN, &a, Limits::default())?,
                        NvValue::I64(0)
                    );
                    if empty {
                        zpool(&["destroy", &pool])?;
                    }
                }
            }
        }
        Ok(())
    }
}
