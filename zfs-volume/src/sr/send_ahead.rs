//! A list_changed_blocks' send, started while its pair is still being read (`cbt.rs`).
//!
//! A backup's call is a cold one, and it spent its time in two ioctls one after the other:
//! the pair's program (`cbt_pair.lua`: the SR's marker, both VDIs, what there is to recover)
//! and then the send. In the usual backup (`from` a CBT-metadata VDI or a snapshot VDI, `to` a
//! snapshot VDI) the send's names follow from one read of `to`'s dataset: its origin
//! `<sr>/vol/<source>@<to>` is the content snapshot, and `from`'s point is beside it,
//! `<sr>/vol/<source>#<from>` (the bookmark data_destroy made) or `@<from>`. So that read and
//! the send run on a thread of their own while the program runs.
//!
//! The stream is used only where the call would have sent exactly it: when what the program
//! found names the same two points and the same disk size ([`take`]); from a bookmark, it is
//! then checked like every send of a point (its starting guid against the one recorded at
//! data_destroy). Anything else (a lineage a promote or a revert rearranged, a live `to`) and
//! the call sends as it did before; the thread's work is dropped.
//!
//! What it must never do:
//! * change anything: an objset read and a send only read, and unlike a channel program neither
//!   is written into the pool's history (`docs/zfs-facts.md` §1.7);
//! * run beside a recovery, which may destroy what the send holds: it does not start when a
//!   killed call left an intent, and the call waits for it ([`discard`]) before recovering;
//! * read outside an SR: it starts under the SR's lock, and sends only when the dataset read
//!   carries the SR's marker inherited from the SR dataset itself (I8);
//! * outlive the call: it runs in a [`std::thread::scope`] that ends before the lock goes.

use std::thread::{Scope, ScopedJoinHandle};

use super::cbt::CBT_GRANULARITY;
use super::{journal, layout, meta};
use crate::lzc::{self, BlockBitmap, StreamStats, Zfs};

/// What a send started ahead read: between `to_snap` and `from`, into `bitmap`.
pub(super) struct SentAhead {
    to_snap: String,
    from: String,
    bitmap: BlockBitmap,
    result: lzc::Result<StreamStats>,
}

/// The thread of a send started ahead, until the call takes its stream or drops it.
pub(super) type Ahead<'scope> = Option<ScopedJoinHandle<'scope, Option<SentAhead>>>;

/// Start, on a thread of `scope`, the send a list_changed_blocks of `from` and `to` (keys
/// already checked) in the SR at `dataset` will most likely make. Best effort: None when a
/// killed call left something to recover, or the thread cannot be made.
pub(super) fn start<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    zfs: &'env Zfs,
    dataset: &'env str,
    from: &'env str,
    to: &'env str,
) -> Ahead<'scope> {
    if !journal::pending(dataset).is_empty() {
        return None;
    }
    std::thread::Builder::new()
        .name("send-ahead".into())
        .spawn_scoped(scope, move || send(zfs, dataset, from, to))
        .ok()
}

/// The send itself: None when `to` is not a snapshot VDI of this SR whose origin is named
/// after it, or when no point of `from` is where the usual backup has it.
fn send(zfs: &Zfs, dataset: &str, from: &str, to: &str) -> Option<SentAhead> {
    let props = zfs
        .objset_properties(&format!("{dataset}/{}/{to}", layout::SNAP))
        .ok()?;
    // Every dataset of an SR inherits the marker from the SR dataset (I8).
    if props.get(meta::SR_MARKER)?.source != dataset {
        return None;
    }
    let to_snap = props.get("origin")?.as_str()?.to_string();
    let (source, name) = to_snap.split_once('@')?;
    let vol = format!("{dataset}/{}/", layout::VOL);
    if name != to || !source.starts_with(&vol) {
        return None;
    }
    let size = props.get("volsize")?.as_u64()?;
    // A CBT-metadata `from` has its bookmark there, a snapshot VDI its content snapshot; a
    // point that is not there is no stream worth keeping (the call's own try learns that as
    // fast).
    [format!("{source}#{from}"), format!("{source}@{from}")]
        .into_iter()
        .map(|point| {
            let mut bitmap = BlockBitmap::new(CBT_GRANULARITY, size);
            let result = zfs.changed_blocks(&to_snap, &point, &mut bitmap);
            SentAhead {
                to_snap: to_snap.clone(),
                from: point,
                bitmap,
                result,
            }
        })
        .find(|sent| {
            !matches!(&sent.result, Err(e) if e.is_errno(libc::ENOENT) || e.is_errno(libc::ESRCH))
        })
}

/// The stream sent ahead, when it is the one between `to_snap` and `from` into a bitmap of
/// `size` bytes of disk: its result and bitmap (every bit set on an error, as
/// [`Zfs::changed_blocks`] leaves it). Waits for the thread; after the first call there is
/// nothing left to take.
pub(super) fn take(
    ahead: &mut Ahead<'_>,
    to_snap: &str,
    from: &str,
    size: u64,
) -> Option<(lzc::Result<StreamStats>, BlockBitmap)> {
    let sent = join(ahead.take()?)?;
    (sent.to_snap == to_snap
        && sent.from == from
        && sent.bitmap.size() == size
        && sent.bitmap.granularity() == CBT_GRANULARITY)
        .then_some((sent.result, sent.bitmap))
}

/// Wait for the send started ahead, if any, and drop what it read: before a recovery, which
/// must not run beside it.
pub(super) fn discard(ahead: &mut Ahead<'_>) {
    if let Some(h) = ahead.take() {
        join(h);
    }
}

fn join(h: ScopedJoinHandle<'_, Option<SentAhead>>) -> Option<SentAhead> {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}
