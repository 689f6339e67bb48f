//! Changed block tracking (CBT): `Volume.enable_cbt`, `disable_cbt`, `data_destroy` and
//! `list_changed_blocks`, computed by ZFS itself.
//!
//! ZFS already knows which blocks changed between two points of a zvol: an incremental send
//! from the earlier point lists every write and free since. So there is no tracking log, no
//! cost on the write path and nothing to lose in a crash; "enabled" is a flag in the VDI's
//! properties (I6) that snapshots copy and clones do not.
//!
//! * **data_destroy** of a snapshot VDI keeps the earlier point without the data: it bookmarks
//!   the ZFS snapshot holding the VDI's content (a bookmark is a snapshot's position, its guid
//!   and txg, kept without its blocks; named after the VDI's key, so it is unique in the SR),
//!   makes the VDI's metadata a filesystem `cbt/<key>` that holds no data (name, description,
//!   xapi's keys, size, and the guid and txg the bookmark keeps), and destroys the snapshot
//!   VDI's dataset like Volume.destroy does (its content snapshot goes once nothing needs it).
//! * **list_changed_blocks(from, to)** sends, in process, from `from`'s point (its content
//!   snapshot, or its bookmark) to `to`'s (its content snapshot, or a temporary snapshot of a
//!   live volume), and parses the stream into a bitmap of 64 KiB blocks
//!   (`lzc::send_stream`): memory in proportion to the bitmap, no fork or exec.
//!
//! **Where a bookmark goes.** `zfs promote` moves bookmarks with the snapshots it moves, and a
//! destroy drops the bookmarks of the dataset it destroys. Promote-on-destroy and revert's swap
//! move and destroy datasets, so a bookmark is looked up by name along `to`'s lineage (its
//! dataset, then its origin's dataset, and so on: where an incremental send to `to` can start),
//! and it must carry the guid recorded at data_destroy. When ZFS cannot compare the pair (the
//! bookmark went with its dataset, a revert moved `to` before `from`), the answer is every bit
//! set: still correct, the next backup is a full one, and the reason is logged. A bitmap that
//! is not proven is never answered.

use super::journal::{self, Intent, Journal};
use super::layout::{self, check_key, Kind, CBT};
use super::names::sr_program;
use super::record::{num, string, strings, vdi_from, VdiInfo};
use super::send_ahead::{self, Ahead};
use super::volume::{in_use, new_key, NewVdi, OnBusy, BUSY_RETRY};
use super::{fault, lock, meta, Sr};
use crate::error::{Error, Result};
use crate::lzc::{self, BlockBitmap, Limits, NvList, NvValue, Program, Props, StreamStats, Zfs};

static CBT_BOOKMARKS: Program = sr_program!("cbt_bookmarks");
static CBT_PAIR: Program = sr_program!("cbt_pair");

/// The block size of a changed-block bitmap: 64 KiB, the unit every consumer of
/// `VDI.list_changed_blocks` assumes (xapi keeps only the bitmap, not the granularity).
pub const CBT_GRANULARITY: u64 = 64 * 1024;

/// What `Volume.list_changed_blocks` answers.
#[derive(Debug, Clone)]
pub struct ChangedBlocks {
    /// One bit per [`CBT_GRANULARITY`] block of the range asked for, most significant bit
    /// first; set where the block may differ between the two VDIs.
    pub bitmap: BlockBitmap,
    /// Why every bit is set, when ZFS could not compare the two points (the answer is still
    /// correct; the backup that uses it reads everything).
    pub full: Option<String>,
    /// What the send stream held, when one was read.
    pub stats: Option<StreamStats>,
    /// Whether that stream was the one started while the pair was still being read
    /// (`send_ahead.rs`): the call then waited for one ioctl fewer.
    pub sent_ahead: bool,
}

/// The two VDIs of a list_changed_blocks, as one read found them.
struct Pair {
    from: VdiInfo,
    to: VdiInfo,
    /// The `(guid, txg)` a CBT-metadata `from` recorded at data_destroy, as the same read
    /// found it (None: not read with the pair; after a recovery it is read on demand).
    point: Option<Option<(u64, u64)>>,
}

/// The point of a CBT-metadata VDI: the guid and txg of the snapshot its bookmark keeps.
fn point_of(meta_props: &str) -> Option<(u64, u64)> {
    let (g, t) = meta_props.split_once(' ')?;
    Some((g.parse().ok()?, t.parse().ok()?))
}

/// The ZFS snapshot holding a snapshot VDI's content: its content snapshot (named after it),
/// or else its origin when that is named after the VDI it was taken of.
///
/// Why the name matters: a snapshot of snapshot VDI S clones S's content, which is named
/// `@<S>`, and that origin reads exactly as the new VDI (neither is ever written). But when a
/// destroy promotes it, ZFS gives it the origin of the dataset it was promoted over: a
/// snapshot of some other VDI (when that dataset was itself a clone), whose blocks are not its
/// content. Sending from there would miss every block written between the two (the model test
/// found such a bitmap). None: no snapshot is known to hold its content (the caller snapshots
/// the VDI itself, or reports every block).
fn content_of(v: &VdiInfo) -> Option<&str> {
    v.content.as_deref().or_else(|| {
        let origin = v.origin.as_deref()?;
        let (_, name) = origin.rsplit_once('@')?;
        (Some(name) == v.snapshot_of.as_deref()).then_some(origin)
    })
}

/// The volume a VDI belongs to, for telling related VDIs from unrelated ones: a volume's own
/// key, a snapshot's source.
fn lineage(v: &VdiInfo) -> &str {
    match v.kind {
        Kind::Volume => &v.key,
        Kind::Snapshot | Kind::CbtMetadata => v.snapshot_of.as_deref().unwrap_or(&v.key),
    }
}

/// What `cbt_pair.lua` reads of the SR at `dataset` for a list_changed_blocks of `from` and
/// `to`, under the SR lock: its marker, both VDIs, the recovery state and `from`'s point, in
/// one nosync program (a backup's first reads are cold ones: each program costs a few
/// metadata reads). None when an interrupted call left an intent to recover: the pair is then
/// read after the recovery, one part at a time.
fn pair_program(zfs: &Zfs, dataset: &str, from: &str, to: &str) -> Result<Option<NvValue>> {
    if !journal::pending(dataset).is_empty() {
        return Ok(None);
    }
    let mut args = NvList::new()?;
    args.add_string("root", dataset)?;
    args.add_string("from", from)?;
    args.add_string("to", to)?;
    let pool = dataset.split('/').next().unwrap_or(dataset);
    match zfs.program_nosync(pool, &CBT_PAIR, &args, Limits::large()) {
        // No such pool.
        Err(e) if e.is_errno(libc::ENOENT) => Err(Error::SrNotFound(dataset.to_string())),
        r => Ok(Some(r?)),
    }
}

/// Whether a send failed because ZFS cannot compare the two points: EXDEV, not an earlier
/// point of `to`'s lineage; ENOENT, ESRCH, no such snapshot or bookmark.
fn cannot_compare(e: &lzc::Error) -> bool {
    e.is_errno(libc::EXDEV) || e.is_errno(libc::ENOENT) || e.is_errno(libc::ESRCH)
}

fn refused(key: &str, reason: impl Into<String>) -> Error {
    Error::Refused {
        key: key.to_string(),
        reason: reason.into(),
    }
}

impl Sr {
    /// Volume.enable_cbt: the VDI's snapshots from now on are points of a CBT chain.
    pub fn volume_enable_cbt(&self, key: &str) -> Result<()> {
        self.set_cbt(key, true)
    }

    /// Volume.disable_cbt.
    pub fn volume_disable_cbt(&self, key: &str) -> Result<()> {
        self.set_cbt(key, false)
    }

    fn set_cbt(&self, key: &str, on: bool) -> Result<()> {
        check_key(key)?;
        let _l = self.lock()?;
        let v = self.recover_and_stat(key)?;
        if v.cbt_enabled == on {
            return Ok(());
        }
        let (set, unset): (&[(&str, &str)], &[&str]) = if on {
            (&[(meta::VDI_CBT, "true")], &[])
        } else {
            (&[], &[meta::VDI_CBT])
        };
        self.set_user_props_of(&v, set, unset)
    }

    /// Volume.data_destroy: the data of snapshot VDI `key` goes, the VDI stays as CBT
    /// metadata (a valid earlier point of [`Sr::volume_list_changed_blocks`]). Refused, with
    /// nothing changed, for a writable volume, a VDI without CBT, or a missing key; a VDI whose
    /// data is gone already succeeds (xapi may retry).
    pub fn volume_data_destroy(&self, key: &str) -> Result<()> {
        check_key(key)?;
        let _l = self.lock()?;
        let v = self.recover_and_stat(key)?;
        match v.kind {
            Kind::CbtMetadata => return Ok(()),
            Kind::Volume => return Err(refused(
                key,
                "it is a writable volume: VDI.data_destroy destroys the data of snapshot VDIs only",
            )),
            Kind::Snapshot => {}
        }
        if !v.cbt_enabled {
            return Err(refused(
                key,
                "changed block tracking is not enabled on it (VDI.enable_cbt on its volume before \
                 the snapshot): without it its data is all there is of this point",
            ));
        }
        let meta_ds = self.vdi_dataset(key, Kind::CbtMetadata);
        let container = self.layout.container(CBT);

        // The names are the intent record after a reboot (recovery on SR.attach: a metadata
        // VDI beside its snapshot VDI is an unfinished data_destroy, undone); the journal
        // record covers a killed process before that.
        let mut j = Journal::begin(self.dataset());
        j.record(&Intent::DataDestroy(key.to_string()))?;
        let content = match content_of(&v) {
            Some(c) => c.to_string(),
            None => {
                // No snapshot holds its content under its name (a destroy promoted this
                // snapshot of a snapshot VDI: semantics.md §3). It is never written, so a
                // snapshot of it now is its content. A killed call leaves that snapshot, which
                // then is its content by name (describe), and goes with it.
                let s = format!("{}@{key}", v.dataset);
                self.zfs.snapshot([&s], &[])?;
                let s2 = s.clone();
                j.on_undo("destroy the snapshot taken for the bookmark", move || {
                    self.zfs
                        .destroy_snapshots([&s2], false)
                        .map_err(Error::from)
                });
                s
            }
        };
        let guid_txg = self.zfs.get_properties(&content, ["guid", "createtxg"])?;
        let num = |p: &str| guid_txg.get(p).and_then(|r| r.as_u64());
        let (Some(guid), Some(txg)) = (num("guid"), num("createtxg")) else {
            return Err(refused(key, format!("cannot read the guid of {content}")));
        };
        let (content_ds, _) = content.split_once('@').unwrap_or((&content, ""));
        let bookmark = format!("{content_ds}#{key}");
        if !self.zfs.exists(&container) {
            self.zfs.create_filesystem(&container, &Props::new())?;
            let c = container.clone();
            j.on_undo("remove the empty CBT container", move || {
                self.destroy_cbt_container_if_empty(&c)
            });
        }
        let keys: Vec<(&str, &str)> = v
            .keys
            .iter()
            .map(|(k, val)| (k.as_str(), val.as_str()))
            .collect();
        let new = NewVdi {
            key,
            name: &v.name,
            description: &v.description,
            sharable: v.sharable,
            thick: false,
            snapshot_of: v.snapshot_of.as_deref(),
            volsize: v.virtual_size,
            referenced: Some(0),
            keys: &keys,
            cbt: true,
        };
        // A filesystem that is never mounted: it only carries properties.
        let props = new
            .props()?
            .u64("canmount", 0)
            .user(meta::VDI_SIZE, &v.virtual_size.to_string())
            .user(meta::VDI_CBT_POINT, &format!("{guid} {txg}"));
        self.zfs.create_filesystem(&meta_ds, &props)?;
        j.on_undo("destroy the CBT-metadata dataset", || {
            self.zfs.destroy(&meta_ds).map_err(Error::from)
        });
        fault::point("data-destroy:after-metadata");
        match self.zfs.bookmark([(&bookmark, &content)]) {
            Ok(()) => {}
            // Made by a call killed after it (and not undone): the same snapshot, so the same
            // point; anything else is refused below by the guid check of its users.
            Err(e) if e.is_errno(libc::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let b = bookmark.clone();
        j.on_undo("destroy the bookmark", move || {
            self.zfs.destroy_bookmarks([&b]).map_err(Error::from)
        });
        fault::point("data-destroy:after-bookmark");
        // As Volume.destroy: dependents are promoted, the content snapshot goes once nothing
        // needs it, the bookmark stays (it moves with promoted snapshots).
        self.destroy_with_dependents(&v.dataset, OnBusy::RetryFor(BUSY_RETRY))
            .map_err(|e| in_use(e, key))?;
        fault::point("data-destroy:after-destroy");
        j.commit();
        Ok(())
    }

    /// Undo an unfinished data_destroy of `key` (recovery): when the snapshot VDI is still
    /// there, its metadata VDI and bookmark go; when it is gone, the data_destroy is complete.
    pub(super) fn undo_data_destroy(&self, key: &str) -> Result<()> {
        if !self.zfs.exists(&self.vdi_dataset(key, Kind::Snapshot)) {
            return Ok(());
        }
        self.destroy_cbt_bookmarks(key)?;
        let meta_ds = self.vdi_dataset(key, Kind::CbtMetadata);
        if self.zfs.exists(&meta_ds) {
            self.zfs.destroy(&meta_ds)?;
        }
        self.destroy_cbt_container_if_empty(&self.layout.container(CBT))
    }

    /// Destroy the CBT-metadata VDI `key` (Volume.destroy): its bookmark, its dataset, and the
    /// container once it is empty (I4).
    pub(super) fn destroy_cbt_metadata(&self, key: &str) -> Result<()> {
        self.destroy_cbt_bookmarks(key)?;
        let ds = self.vdi_dataset(key, Kind::CbtMetadata);
        if self.zfs.exists(&ds) {
            self.zfs.destroy(&ds)?;
        }
        self.destroy_cbt_container_if_empty(&self.layout.container(CBT))
    }

    fn destroy_cbt_bookmarks(&self, key: &str) -> Result<()> {
        let found = self.cbt_bookmarks(key, None)?;
        let refs: Vec<&str> = found.iter().map(String::as_str).collect();
        self.zfs.destroy_bookmarks(&refs).map_err(Error::from)
    }

    fn destroy_cbt_container_if_empty(&self, container: &str) -> Result<()> {
        if !self.zfs.exists(container) {
            return Ok(());
        }
        match self.zfs.destroy(container) {
            // Not empty (EEXIST: it has children): it stays for them.
            Err(e) if e.is_errno(libc::EEXIST) || e.is_errno(libc::EBUSY) => Ok(()),
            r => r.map_err(Error::from),
        }
    }

    /// The bookmarks named `#<key>`: along `lineage`'s origin chain (nearest first), or
    /// anywhere in the SR.
    fn cbt_bookmarks(&self, key: &str, lineage: Option<&str>) -> Result<Vec<String>> {
        let mut args = NvList::new()?;
        args.add_string("root", self.dataset())?;
        args.add_string("name", key)?;
        if let Some(l) = lineage {
            args.add_string("lineage", l)?;
        }
        let out = self
            .zfs
            .program_nosync(self.pool(), &CBT_BOOKMARKS, &args, Limits::large())?;
        Ok(match out {
            NvValue::List(t) => strings(&t, "bookmarks"),
            _ => vec![],
        })
    }

    /// Volume.list_changed_blocks: which [`CBT_GRANULARITY`] blocks may differ between VDI
    /// `from` (a snapshot VDI or CBT metadata: the earlier point) and VDI `to` (a snapshot VDI
    /// or a live volume), for the byte range `offset` (a multiple of the granularity) to
    /// `offset + length` (`None`: the end of `to`). Blocks of `to` beyond `from`'s size (a
    /// grow) are set. Unrelated VDIs and a `from` newer than `to` are refused.
    pub fn volume_list_changed_blocks(
        &self,
        from: &str,
        to: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<ChangedBlocks> {
        check_key(from)?;
        check_key(to)?;
        // A live `to` gets a temporary snapshot, and neither point may be destroyed while the
        // send reads them: the SR lock keeps the tree still.
        let _l = self.lock()?;
        std::thread::scope(|s| {
            let mut ahead = send_ahead::start(s, self.zfs, self.dataset(), from, to);
            let pair = match pair_program(self.zfs, self.dataset(), from, to)? {
                Some(out) => self.pair_from(&out, from, to, &mut ahead)?,
                None => {
                    send_ahead::discard(&mut ahead);
                    self.pair_the_slow_way(from, to)?
                }
            };
            self.changed_blocks_of(pair, from, to, offset, length, &mut ahead)
        })
    }

    /// [`Sr::volume_list_changed_blocks`] on the SR at `dataset`, opened by the same program
    /// that reads the pair: the SR's marker (I8) is checked before anything else is used, in
    /// one ioctl fewer than [`Sr::open`] then the call (a backup's first call is a cold one).
    pub fn list_changed_blocks_at(
        dataset: &str,
        from: &str,
        to: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<ChangedBlocks> {
        layout::check_dataset_name(dataset).map_err(|_| Error::SrNotFound(dataset.to_string()))?;
        check_key(from)?;
        check_key(to)?;
        let zfs = Zfs::get()?;
        // The lock before the read, as above, when its file is there: a foreign or mistyped
        // `sr` must leave nothing behind, and has its marker read first, as in every call.
        let Some(_l) = lock::SrLock::acquire_existing(dataset, lock::wait_limit())? else {
            return Sr::open(dataset)?.volume_list_changed_blocks(from, to, offset, length);
        };
        std::thread::scope(|s| {
            let mut ahead = send_ahead::start(s, zfs, dataset, from, to);
            let (sr, pair) = match pair_program(zfs, dataset, from, to)? {
                Some(out) => {
                    let NvValue::List(t) = &out else {
                        return Err(Error::SrNotFound(dataset.to_string()));
                    };
                    let info = t.get("sr").cloned().unwrap_or(NvValue::Bool(false));
                    let sr = Sr::from_info(zfs, dataset, &info)?;
                    let pair = sr.pair_from(&out, from, to, &mut ahead)?;
                    (sr, pair)
                }
                None => {
                    send_ahead::discard(&mut ahead);
                    let sr = Sr::open(dataset)?;
                    let pair = sr.pair_the_slow_way(from, to)?;
                    (sr, pair)
                }
            };
            sr.changed_blocks_of(pair, from, to, offset, length, &mut ahead)
        })
    }

    /// The rest of a list_changed_blocks, under the SR lock, once its pair is read; `ahead`,
    /// the send started while it was read, is used if it is the send this needs.
    fn changed_blocks_of(
        &self,
        pair: Pair,
        from: &str,
        to: &str,
        offset: u64,
        length: Option<u64>,
        ahead: &mut Ahead<'_>,
    ) -> Result<ChangedBlocks> {
        let Pair {
            from: f,
            to: t,
            point,
        } = pair;
        let pair = |why: &str| Error::Cbt {
            from: from.to_string(),
            to: to.to_string(),
            reason: why.to_string(),
        };
        if !t.holds_data() {
            return Err(pair(
                "the later VDI is CBT metadata: its data was destroyed, there is nothing to compare \
                 (pass a snapshot VDI or the volume itself as the later VDI)",
            ));
        }
        if f.kind == Kind::Volume {
            return Err(pair(
                "the earlier VDI is a writable volume: pass one of its snapshot VDIs (or their \
                 CBT metadata)",
            ));
        }
        if offset % CBT_GRANULARITY != 0 || offset > t.virtual_size {
            return Err(pair(&format!(
                "offset {offset} must be a multiple of {CBT_GRANULARITY} within the disk ({} bytes)",
                t.virtual_size
            )));
        }
        let mut bitmap = BlockBitmap::new(CBT_GRANULARITY, t.virtual_size);
        let related = lineage(&f) == lineage(&t);
        let mut j = Journal::begin(self.dataset());
        let mut full = None;
        let mut stats = None;
        if f.key == t.key {
            // The same snapshot VDI: nothing differs.
        } else {
            let (to_snap, temporary) = match content_of(&t).filter(|_| t.kind != Kind::Volume) {
                Some(c) => (c.to_string(), false),
                None => {
                    // The live volume's current content (or a snapshot VDI's whose content no
                    // snapshot is known to hold: it is never written), as a snapshot: the next
                    // call's recovery destroys it if this process is killed (it has no clone).
                    let s = format!("{}@{}", t.dataset, new_key());
                    self.snapshot_for_clone(&mut j, &s, "destroy the temporary snapshot")?;
                    (s, true)
                }
            };
            let (to_ds, _) = to_snap.split_once('@').unwrap_or((&to_snap, ""));
            let sent = match f.kind {
                Kind::Snapshot => match content_of(&f) {
                    Some(p) => self.send_between(ahead, &to_snap, p, &mut bitmap).map(Some),
                    None => Ok(None),
                },
                _ => {
                    self.changed_blocks_since_point(&f, &to_snap, to_ds, point, &mut bitmap, ahead)?
                }
            };
            match sent {
                Ok(Some(s)) => stats = Some(s),
                // Any failure but "cannot compare" is an error, never a guess.
                Err(e) if !cannot_compare(&e) => return Err(e.into()),
                failed => {
                    // ZFS cannot compare the pair: unrelated VDIs, `from` after `to`, or a
                    // bookmark that went with its dataset.
                    let why = match failed {
                        Err(e) => e.to_string(),
                        _ if f.kind == Kind::Snapshot => {
                            format!("no ZFS snapshot is known to hold the content of {from}")
                        }
                        _ => format!("the bookmark of {from} is no longer on {to}'s lineage"),
                    };
                    if !related {
                        return Err(pair(&format!(
                            "Source and target VDI are unrelated (ZFS: {why})"
                        )));
                    }
                    if let (Some(ft), Some(tt)) =
                        (self.point_txg(&f)?, self.snapshot_txg(&to_snap)?)
                    {
                        if ft > tt {
                            return Err(pair("the earlier VDI is newer than the later one"));
                        }
                    }
                    bitmap.mark_all();
                    let reason = format!(
                        "ZFS cannot compare {from} and {to} ({why}): every block is reported \
                         changed, so the next backup of this disk is a full one"
                    );
                    log::warn!("Volume.list_changed_blocks: {reason}");
                    full = Some(reason);
                }
            }
            if f.virtual_size < t.virtual_size {
                // Grown since `from`: what lies beyond its old end is new.
                bitmap.mark_from(f.virtual_size - f.virtual_size % CBT_GRANULARITY);
            }
            if temporary {
                self.zfs.destroy_snapshots([&to_snap], false)?;
            }
        }
        j.commit();
        let bitmap = bitmap
            .window(offset, length.unwrap_or(u64::MAX))
            .ok_or_else(|| pair(&format!("offset {offset} is not a block of the disk")))?;
        Ok(ChangedBlocks {
            bitmap,
            full,
            sent_ahead: stats.as_ref().is_some_and(|s| s.1),
            stats: stats.map(|s| s.0),
        })
    }

    /// The changed blocks between `to_snap` and `from` (a snapshot or a bookmark) into
    /// `bitmap`: the stream sent ahead when it is this one, else a send now. With the stream's
    /// figures, whether it was the one sent ahead.
    fn send_between(
        &self,
        ahead: &mut Ahead<'_>,
        to_snap: &str,
        from: &str,
        bitmap: &mut BlockBitmap,
    ) -> lzc::Result<(StreamStats, bool)> {
        match send_ahead::take(ahead, to_snap, from, bitmap.size()) {
            Some((result, sent)) => {
                *bitmap = sent;
                result.map(|s| (s, true))
            }
            None => self
                .zfs
                .changed_blocks(to_snap, from, bitmap)
                .map(|s| (s, false)),
        }
    }

    /// The pair `cbt_pair.lua` read ([`pair_program`]), in `self`'s SR. Each side is the VDI,
    /// or not found; a side the program could not describe (in a revert's swap, or a listing
    /// record this version cannot read), or anything to recover, sends it the slow way.
    /// Before a slow read (which recovers first), the send started ahead is waited for.
    fn pair_from(
        &self,
        out: &NvValue,
        from: &str,
        to: &str,
        ahead: &mut Ahead<'_>,
    ) -> Result<Pair> {
        let NvValue::List(t) = out else {
            send_ahead::discard(ahead);
            return self.pair_the_slow_way(from, to);
        };
        let clean = matches!(t.get("tombstones"), Some(NvValue::List(l)) if l.is_empty())
            && num(t, "busy") == 0;
        let side = |k: &str, key: &str| -> Result<Option<VdiInfo>> {
            match t.get(k) {
                Some(NvValue::List(v)) => match v.get("found") {
                    Some(NvValue::Bool(true)) if v.get("swapping").is_none() => Ok(vdi_from(v)),
                    Some(NvValue::Bool(true)) => Ok(None),
                    _ => Err(Error::VolumeNotFound(key.to_string())),
                },
                _ => Ok(None),
            }
        };
        if clean {
            if let (Some(f), Some(to_v)) = (side("from", from)?, side("to", to)?) {
                let point = (f.kind == Kind::CbtMetadata)
                    .then(|| string(t, "point").as_deref().and_then(point_of));
                return Ok(Pair {
                    from: f,
                    to: to_v,
                    point,
                });
            }
        }
        send_ahead::discard(ahead);
        self.pair_the_slow_way(from, to)
    }

    /// The pair after a recovery, read one part at a time.
    fn pair_the_slow_way(&self, from: &str, to: &str) -> Result<Pair> {
        Ok(Pair {
            from: self.recover_and_stat(from)?,
            to: self.stat_existing(to)?,
            point: None,
        })
    }

    /// Send from CBT-metadata VDI `f`'s point to `to_snap` (a snapshot of `to_ds`) into
    /// `bitmap`: from the first bookmark named after `f` along `to_ds`'s lineage whose stream
    /// starts at the point recorded at data_destroy (`point`, when [`pair_program`] read it).
    ///
    /// The bookmark is tried first where data_destroy made it unless a promote moved it: on
    /// `to_ds` (beside the content snapshot, on the volume's dataset), so a backup's call
    /// lists no bookmarks. The send itself says whether it is there (ENOENT, ESRCH), and the
    /// guid its stream starts from (the BEGIN record's `drr_fromguid`: a bookmark keeps its
    /// snapshot's guid) whether it keeps the point: the bookmark used is the one checked, with
    /// no read of its own. Otherwise the lineage is walked (`cbt_bookmarks.lua`). Inner
    /// `Ok(None)`: no bookmark keeps the point; inner `Err`: the send failed (EXDEV, ENOENT
    /// or ESRCH from every bookmark the walk found: the last).
    fn changed_blocks_since_point(
        &self,
        f: &VdiInfo,
        to_snap: &str,
        to_ds: &str,
        point: Option<Option<(u64, u64)>>,
        bitmap: &mut BlockBitmap,
        ahead: &mut Ahead<'_>,
    ) -> Result<std::result::Result<Option<(StreamStats, bool)>, lzc::Error>> {
        let recorded = match point {
            Some(p) => p,
            None => self.recorded_point(f)?,
        };
        let Some((guid, _)) = recorded else {
            return Ok(Ok(None));
        };
        let mut marks = vec![format!("{to_ds}#{}", f.key)];
        let mut walked = false;
        let mut tried: Vec<String> = vec![];
        let mut failed = None;
        loop {
            for b in marks {
                if tried.contains(&b) {
                    continue;
                }
                tried.push(b.clone());
                let mut bm = BlockBitmap::new(bitmap.granularity(), bitmap.size());
                match self.send_between(ahead, to_snap, &b, &mut bm) {
                    Ok(s) if s.0.from_guid == guid => {
                        *bitmap = bm;
                        return Ok(Ok(Some(s)));
                    }
                    Ok((s, _)) => log::warn!(
                        "bookmark {b} does not keep the point of VDI {} (its guid is {}, the \
                         point's {guid})",
                        f.key,
                        s.from_guid
                    ),
                    // The first try is a guess: not there is no failure (the walk says
                    // whether there is one at all).
                    Err(e) if !walked && (e.is_errno(libc::ENOENT) || e.is_errno(libc::ESRCH)) => {}
                    Err(e) if cannot_compare(&e) => failed = Some(e),
                    Err(e) => return Ok(Err(e)),
                }
            }
            if walked {
                return Ok(failed.map_or(Ok(None), Err));
            }
            marks = self.cbt_bookmarks(&f.key, Some(to_ds))?;
            walked = true;
        }
    }

    /// The `(guid, txg)` a CBT-metadata VDI recorded at data_destroy.
    fn recorded_point(&self, f: &VdiInfo) -> Result<Option<(u64, u64)>> {
        let props = self.zfs.user_properties(&f.dataset)?;
        Ok(props
            .get(meta::VDI_CBT_POINT)
            .and_then(|p| p.as_str())
            .and_then(point_of))
    }

    /// The txg of `f`'s point: its content snapshot's, or the one recorded at data_destroy.
    fn point_txg(&self, f: &VdiInfo) -> Result<Option<u64>> {
        match f.kind {
            Kind::CbtMetadata => Ok(self.recorded_point(f)?.map(|(_, t)| t)),
            _ => match content_of(f) {
                Some(s) => self.snapshot_txg(s),
                None => Ok(None),
            },
        }
    }

    fn snapshot_txg(&self, snap: &str) -> Result<Option<u64>> {
        Ok(self
            .zfs
            .get_properties(snap, ["createtxg"])?
            .get("createtxg")
            .and_then(|r| r.as_u64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_points_parse() {
        assert_eq!(point_of("123 45"), Some((123, 45)));
        assert_eq!(point_of("123"), None);
        assert_eq!(point_of("x 45"), None);
        assert_eq!(point_of(""), None);
    }
}
