//! Dataset lifecycle: create (zvols, thin or thick), clone, promote, rename, destroy,
//! rollback.

use super::props::Props;
use super::util::{check, name};
use super::{Errno, Zfs};
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;
use std::ptr;

/// What to create with [`Zfs::create_volume`].
///
/// ```
/// use libzfs_core::VolumeSpec;
/// let spec = VolumeSpec::new(1 << 30).volblocksize(16384).refreservation(1_090_519_040);
/// assert_eq!(spec.size, 1 << 30);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VolumeSpec {
    /// `volsize` in bytes: > 0 and a multiple of the volblocksize.
    pub size: u64,
    /// `volblocksize` in bytes; `None` takes the kernel default (8 KiB on 2.1, 16 KiB
    /// from 2.2).
    pub volblocksize: Option<u64>,
    /// `refreservation` in bytes (thick provisioning); `None` is sparse (thin), which is
    /// what `lzc_create` gives by default. See [`super::reservation`].
    pub refreservation: Option<u64>,
    /// Further properties (native, typed, or user).
    pub props: Props,
}

impl VolumeSpec {
    /// A sparse volume of `size` bytes.
    pub fn new(size: u64) -> VolumeSpec {
        VolumeSpec {
            size,
            ..Default::default()
        }
    }
    /// Set the volblocksize.
    pub fn volblocksize(mut self, b: u64) -> VolumeSpec {
        self.volblocksize = Some(b);
        self
    }
    /// Reserve space (thick provisioning).
    pub fn refreservation(mut self, r: u64) -> VolumeSpec {
        self.refreservation = Some(r);
        self
    }
    /// Extra properties.
    pub fn props(mut self, p: Props) -> VolumeSpec {
        self.props = p;
        self
    }
}

impl Zfs {
    /// Create a zvol (one ioctl; the properties are applied in the same call).
    ///
    /// Errors: `EEXIST` (exists), `ENOENT` (no parent), `EINVAL` (size not a multiple of
    /// the block size), `EDOM` (bad volblocksize), `ENOSPC` (reservation does not fit).
    ///
    /// ```no_run
    /// use libzfs_core::{Zfs, VolumeSpec};
    /// Zfs::get()?.create_volume("tank/vol", &VolumeSpec::new(64 << 20))?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn create_volume(&self, dataset: &str, spec: &VolumeSpec) -> Result<()> {
        if spec.size == 0 {
            return Err(Error::invalid("volume size", "must be greater than zero"));
        }
        let mut props = spec.props.to_nvlist()?;
        props.add_uint64("volsize", spec.size)?;
        if let Some(b) = spec.volblocksize {
            props.add_uint64("volblocksize", b)?;
        }
        if let Some(r) = spec.refreservation {
            props.add_uint64("refreservation", r)?;
        }
        let c = name(dataset)?;
        // SAFETY: valid C string and nvlist; lzc only reads (borrows) the props.
        let rc = unsafe {
            sys::lzc_create(
                c.as_ptr(),
                sys::LZC_DATSET_TYPE_ZVOL,
                props.as_mut_ptr(),
                ptr::null_mut(),
                0,
            )
        };
        self.check_created(rc, Op::Create, dataset, dataset)
    }

    /// Create a filesystem dataset (used for SR containers).
    ///
    /// ```no_run
    /// use libzfs_core::{Zfs, Props};
    /// Zfs::get()?.create_filesystem("tank/sr", &Props::new().string("mountpoint", "none"))?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn create_filesystem(&self, dataset: &str, props: &Props) -> Result<()> {
        let mut nv = props.to_nvlist()?;
        let c = name(dataset)?;
        // SAFETY: as in create_volume.
        let rc = unsafe {
            sys::lzc_create(
                c.as_ptr(),
                sys::LZC_DATSET_TYPE_ZFS,
                nv.as_mut_ptr(),
                ptr::null_mut(),
                0,
            )
        };
        self.check_created(rc, Op::Create, dataset, dataset)
    }

    /// Clone `origin` (a snapshot) into the new dataset `dataset`, with properties set in
    /// the same call (a failed property destroys the clone). A zvol clone gets no
    /// refreservation unless one is passed.
    ///
    /// ```no_run
    /// use libzfs_core::{Zfs, Props};
    /// Zfs::get()?.clone("tank/copy", "tank/vol@s1", &Props::new().user("xapi-zvol:name", "copy"))?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn clone(&self, dataset: &str, origin: &str, props: &Props) -> Result<()> {
        let mut nv = props.to_nvlist()?;
        let c = name(dataset)?;
        let o = name(origin)?;
        // SAFETY: valid strings and nvlist; props are borrowed.
        let rc = unsafe { sys::lzc_clone(c.as_ptr(), o.as_ptr(), nv.as_mut_ptr()) };
        // The message names both: "cannot clone into tank/copy from tank/vol@s1: ...".
        self.check_created(rc, Op::Clone, dataset, &format!("{dataset} from {origin}"))
    }

    /// The result of lzc_create / lzc_clone. When setting a property fails after the
    /// dataset was made, the kernel destroys it again — but that destroy fails silently
    /// when the new zvol is already open (udev probes every new zvol device), leaving a
    /// half-made dataset behind (seen on OpenZFS 2.1). Finish that cleanup here, retrying
    /// briefly while the device is busy.
    fn check_created(&self, rc: i32, op: Op, dataset: &str, target: &str) -> Result<()> {
        if rc == 0 {
            return Ok(());
        }
        let mut e = Error::zfs(op, target, Errno(rc));
        // EEXIST: it was there before the call; ours to leave alone.
        if rc == libc::EEXIST || !self.exists(dataset) {
            return Err(e);
        }
        let c = name(dataset)?;
        let start = std::time::Instant::now();
        loop {
            // SAFETY: valid C string.
            let d = unsafe { sys::lzc_destroy(c.as_ptr()) };
            if d == 0 || d == libc::ENOENT {
                return Err(e);
            }
            if d != libc::EBUSY || start.elapsed() > std::time::Duration::from_secs(5) {
                if let Error::Zfs { reason, .. } = &mut e {
                    *reason = format!(
                        "{reason}; the partly created {dataset} could not be removed ({}): destroy it",
                        Errno(d).name()
                    );
                }
                return Err(e);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Promote a clone: it takes over its origin's snapshots up to the origin snapshot, and
    /// the former parent becomes its clone.
    ///
    /// Errors: `EINVAL` (not a clone), `ENOENT`, `EBUSY` (a snapshot that would move is
    /// held or in use), `EEXIST`: the error names the conflicting snapshot (the clone
    /// already has a snapshot of a name that would move).
    ///
    /// ```no_run
    /// libzfs_core::Zfs::get()?.promote("tank/copy")?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn promote(&self, dataset: &str) -> Result<()> {
        let c = name(dataset)?;
        let mut buf = [0 as libc::c_char; sys::ZFS_MAX_DATASET_NAME_LEN as usize];
        // SAFETY: buf is writable for its full length, which we pass.
        let rc =
            unsafe { sys::lzc_promote(c.as_ptr(), buf.as_mut_ptr(), buf.len() as libc::c_int) };
        if rc == 0 {
            return Ok(());
        }
        let mut e = Error::zfs(Op::Promote, dataset, Errno(rc));
        if rc == libc::EEXIST {
            // SAFETY: lzc wrote a NUL-terminated name into buf (it is zero-initialised).
            let conflict = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            if let Error::Zfs { reason, .. } = &mut e {
                *reason = format!(
                    "the clone already has a snapshot named '{dataset}@{conflict}', as does the origin: \
                     rename or destroy one of them, then promote again"
                );
            }
        }
        Err(e)
    }

    /// Rename a dataset (or, within one dataset, a snapshot). Not recursive.
    ///
    /// Errors: `ENOENT` (no source, or no parent for the new name), `EEXIST` (the new
    /// name is taken), `EXDEV` (a snapshot renamed into another dataset). The message
    /// names both names.
    ///
    /// ```no_run
    /// libzfs_core::Zfs::get()?.rename("tank/a", "tank/b")?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        let f = name(from)?;
        let t = name(to)?;
        // SAFETY: valid C strings.
        let rc = unsafe { sys::lzc_rename(f.as_ptr(), t.as_ptr()) };
        check(rc, Op::Rename, &format!("{from} to {to}"))
    }

    /// Destroy one dataset, or one snapshot when the name has an `@`.
    ///
    /// Errors: `ENOENT` (missing), `EBUSY` (has snapshots, holds, or is open), `EEXIST`
    /// (has children, or the snapshot has clones).
    ///
    /// ```no_run
    /// libzfs_core::Zfs::get()?.destroy("tank/old")?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn destroy(&self, dataset: &str) -> Result<()> {
        let c = name(dataset)?;
        // SAFETY: valid C string.
        let rc = unsafe { sys::lzc_destroy(c.as_ptr()) };
        check(rc, Op::Destroy, dataset)
    }

    /// Roll `dataset` back to `snapshot`, which must be its most recent snapshot (`EEXIST`
    /// otherwise; the safe form of rollback, unlike `lzc_rollback`). An open zvol sees its
    /// contents change underneath it: detach it first.
    ///
    /// Errors: `EEXIST` (newer snapshots or bookmarks), `ESRCH` (no such snapshot, or
    /// not one of this dataset), `ENOENT` (no such dataset).
    ///
    /// ```no_run
    /// libzfs_core::Zfs::get()?.rollback_to("tank/vol", "tank/vol@s2")?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn rollback_to(&self, dataset: &str, snapshot: &str) -> Result<()> {
        let d = name(dataset)?;
        let s = name(snapshot)?;
        // SAFETY: valid C strings.
        let rc = unsafe { sys::lzc_rollback_to(d.as_ptr(), s.as_ptr()) };
        check(rc, Op::Rollback, &format!("{dataset} to {snapshot}"))
    }
}
