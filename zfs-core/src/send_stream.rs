//! Changed blocks from a ZFS send stream: a strict reader of the stream format that marks,
//! in a [`BlockBitmap`], every block of a zvol that an incremental stream writes or frees
//! (`docs/zfs-facts.md` §1.10).
//!
//! A stream is a sequence of 312-byte records (`dmu_replay_record_t` in OpenZFS's
//! `include/sys/zfs_ioctl.h`, in the sender's byte order). Some records are followed by a
//! payload: block contents, a dnode's bonus buffer, the BEGIN record's nvlist. Every
//! payload is skipped through one fixed buffer, so the memory used is the bitmap's plus
//! 128 KiB, whatever the size of the stream.
//!
//! A missed block is a silently corrupt backup, so the reader refuses what it does not
//! understand instead of guessing: an unknown record type or feature flag, a stream in the
//! other byte order, a compound stream, a truncated record or payload, a record whose
//! checksum does not match, a missing BEGIN or END, or data after the END.
#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use std::fmt;
use std::io::{ErrorKind, Read};

/// A bitmap of fixed-size blocks covering `size` bytes: bit `i` stands for the bytes
/// `[i * granularity, (i + 1) * granularity)`, clamped to `size`.
///
/// Bit `i` is in byte `i / 8`, most significant bit first (block 0 is `0x80` of byte 0).
/// The bits after the last block in the last byte are always 0.
///
/// ```
/// use libzfs_core::BlockBitmap;
/// let mut b = BlockBitmap::new(65536, 200_000); // 4 blocks, the last one partial
/// b.mark(65_000, 1_000); // touches blocks 0 and 1
/// assert_eq!(b.as_bytes(), &[0b1100_0000]);
/// assert_eq!(b.count(), 2);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BlockBitmap {
    granularity: u64,
    shift: u32,
    size: u64,
    blocks: u64,
    bits: Vec<u8>,
}

impl BlockBitmap {
    /// An empty bitmap (no bit set) of `ceil(size / granularity)` blocks.
    ///
    /// # Panics
    ///
    /// If `granularity` is not a power of two, or the bitmap would not fit in memory.
    pub fn new(granularity: u64, size: u64) -> BlockBitmap {
        assert!(
            granularity.is_power_of_two(),
            "the block size of a bitmap must be a power of two, not {granularity}"
        );
        let blocks = size.div_ceil(granularity);
        let bytes = usize::try_from(blocks.div_ceil(8)).expect("bitmap larger than memory");
        BlockBitmap {
            granularity,
            shift: granularity.trailing_zeros(),
            size,
            blocks,
            bits: vec![0; bytes],
        }
    }

    /// Bytes per block.
    pub fn granularity(&self) -> u64 {
        self.granularity
    }

    /// Bytes covered (the volume size the bitmap was made for).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of blocks (bits that mean something): `ceil(size / granularity)`.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Mark every block that `[offset, offset + len)` touches, clamped to the size. A zero
    /// `len` marks nothing; a range running past `u64::MAX` runs to the end.
    pub fn mark(&mut self, offset: u64, len: u64) {
        if len == 0 || offset >= self.size {
            return;
        }
        let end = offset.saturating_add(len).min(self.size);
        self.set_range(offset >> self.shift, (end - 1) >> self.shift);
    }

    /// Mark every block from the one holding `offset` to the end.
    pub fn mark_from(&mut self, offset: u64) {
        self.mark(offset, u64::MAX);
    }

    /// Mark every block.
    pub fn mark_all(&mut self) {
        if self.blocks > 0 {
            self.set_range(0, self.blocks - 1);
        }
    }

    /// Whether block `i` is marked (false for a block past the end).
    pub fn is_set(&self, i: u64) -> bool {
        i < self.blocks && self.bits[(i / 8) as usize] & (0x80 >> (i % 8)) != 0
    }

    /// Number of marked blocks.
    pub fn count(&self) -> u64 {
        self.bits.iter().map(|b| u64::from(b.count_ones())).sum()
    }

    /// The bitmap's bytes: `ceil(blocks / 8)` of them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// The bitmap's bytes, without a copy.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bits
    }

    /// A new bitmap over `[offset, offset + length)` of this one, clamped to the size (empty
    /// when `offset` is at or past the end): its bit 0 is the block at `offset`, its
    /// granularity this one's. `None` when `offset` is not a multiple of the granularity
    /// (the window's blocks would straddle this bitmap's).
    ///
    /// ```
    /// use libzfs_core::BlockBitmap;
    /// let mut b = BlockBitmap::new(4096, 16 * 4096);
    /// b.mark(9 * 4096, 1);
    /// let w = b.window(8 * 4096, 4 * 4096).unwrap();
    /// assert_eq!((w.blocks(), w.as_bytes()), (4, &[0b0100_0000][..]));
    /// assert!(b.window(100, 4096).is_none());
    /// ```
    pub fn window(&self, offset: u64, length: u64) -> Option<BlockBitmap> {
        if offset & (self.granularity - 1) != 0 {
            return None;
        }
        let end = offset.saturating_add(length).min(self.size);
        let mut w = BlockBitmap::new(self.granularity, end.saturating_sub(offset));
        let first = offset >> self.shift;
        // Byte j of the window is bits [first + 8j, first + 8j + 8) of this bitmap: the
        // low bits of one source byte followed by the high bits of the next.
        let (k, s) = ((first / 8) as usize, (first % 8) as u32);
        for (j, out) in w.bits.iter_mut().enumerate() {
            let hi = self.bits[k + j] << s;
            let lo = match (s, self.bits.get(k + j + 1)) {
                (0, _) | (_, None) => 0,
                (_, Some(b)) => b >> (8 - s),
            };
            *out = hi | lo;
        }
        w.clear_padding();
        Some(w)
    }

    /// Set blocks `first..=last` (both < blocks).
    fn set_range(&mut self, first: u64, last: u64) {
        debug_assert!(first <= last && last < self.blocks);
        let (fb, lb) = ((first / 8) as usize, (last / 8) as usize);
        // Most significant bit first: block r of a byte is 0x80 >> r.
        let head = 0xFFu8 >> (first % 8);
        let tail = 0xFFu8 << (7 - last % 8);
        if fb == lb {
            self.bits[fb] |= head & tail;
        } else {
            self.bits[fb] |= head;
            self.bits[fb + 1..lb].fill(0xFF);
            self.bits[lb] |= tail;
        }
    }

    /// Zero the bits after the last block.
    fn clear_padding(&mut self) {
        let r = self.blocks % 8;
        if let (true, Some(last)) = (r != 0, self.bits.last_mut()) {
            *last &= 0xFFu8 << (8 - r);
        }
    }
}

impl fmt::Debug for BlockBitmap {
    // The bytes can be megabytes: show the shape and the count.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockBitmap")
            .field("granularity", &self.granularity)
            .field("size", &self.size)
            .field("blocks", &self.blocks)
            .field("marked", &self.count())
            .finish()
    }
}

/// What a send stream held, as counted while its changed blocks were marked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamStats {
    /// Records read, BEGIN and END included.
    pub records: u64,
    /// WRITE, WRITE_BYREF and WRITE_EMBEDDED records on the data object.
    pub writes: u64,
    /// Logical bytes those writes cover (whole ZFS blocks, at least the guest's writes).
    pub write_bytes: u64,
    /// FREE records on the data object.
    pub frees: u64,
    /// Of those, the ones running to the end of the object (`length = UINT64_MAX`).
    pub frees_to_end: u64,
    /// OBJECT records for the data object. They mark nothing: a zvol's data object is
    /// never reallocated, and the WRITE and FREE records that follow say what changed.
    pub objects: u64,
    /// FREEOBJECTS records covering the data object (each marks every block).
    pub objects_freed: u64,
    /// REDACT records on the data object (marked as changed).
    pub redactions: u64,
    /// Records that mark nothing: about other objects (object 2 of a zvol is its property
    /// ZAP), SPILL and OBJECT_RANGE records, FREEOBJECTS not covering the data object.
    pub ignored: u64,
    /// Payload bytes skipped (block contents, bonus buffers, the BEGIN nvlist).
    pub payload_bytes: u64,
    /// Bytes of the whole stream, records and payloads.
    pub bytes: u64,
    /// The stream's feature flags (`DMU_BACKUP_FEATURE_*` of the BEGIN record).
    pub features: u64,
    /// The guid of the snapshot the stream starts from (`drr_fromguid` of the BEGIN record;
    /// a bookmark keeps its snapshot's guid), 0 for a full stream: the point the changes
    /// are counted from, as the sender saw it.
    pub from_guid: u64,
    /// The guid of the snapshot the stream ends at (`drr_toguid`).
    pub to_guid: u64,
}

/// Size of the one buffer that records are read into and payloads skipped through.
const BUF_SIZE: usize = 128 << 10;

// The record: a u32 type, a u32 payload length (meaningful for BEGIN only: the other
// payloads' lengths follow from the record's fields), a union of per-type structs, and in
// its last 32 bytes (`drr_checksum`, which no union member reaches) the fletcher-4
// checksum of everything in the stream before those 32 bytes.
const RECORD: usize = 312;
const CKSUM: usize = 280;

// drr_type values, in the order of the enum in zfs_ioctl.h.
const DRR_BEGIN: u32 = 0;
const DRR_OBJECT: u32 = 1;
const DRR_FREEOBJECTS: u32 = 2;
const DRR_WRITE: u32 = 3;
const DRR_FREE: u32 = 4;
const DRR_END: u32 = 5;
const DRR_WRITE_BYREF: u32 = 6;
const DRR_SPILL: u32 = 7;
const DRR_WRITE_EMBEDDED: u32 = 8;
const DRR_OBJECT_RANGE: u32 = 9;
const DRR_REDACT: u32 = 10;

const DMU_BACKUP_MAGIC: u64 = 0x2_F5BA_CBAC;
// drr_versioninfo: the header type in bits 0-1, the feature flags in bits 2-57.
const DMU_SUBSTREAM: u64 = 1;
const DMU_COMPOUNDSTREAM: u64 = 2;
const FEATURE_RAW: u64 = 1 << 24;
/// Every `DMU_BACKUP_FEATURE_*` OpenZFS 2.1 to 2.4 defines: DEDUP, DEDUPPROPS and SA_SPILL
/// (bits 0-2), EMBED_DATA and LZ4 (16, 17), then LARGE_BLOCKS, RESUMING, REDACTED,
/// COMPRESSED, LARGE_DNODE, RAW, ZSTD, HOLDS, SWITCH_TO_LARGE_BLOCKS, LONGNAME and
/// LARGE_MICROZAP (19-29). A newer flag may change what records mean, so a stream with one
/// is refused rather than read by guesswork.
const KNOWN_FEATURES: u64 = 0b111 | 0b11 << 16 | 0x7FF << 19;

/// The largest block (SPA_MAXBLOCKSIZE): no WRITE or SPILL payload is larger.
const MAX_BLOCK: u64 = 16 << 20;
/// The data an embedded block pointer holds (BPE_PAYLOAD_SIZE: 14 words of 8 bytes).
const BPE_PAYLOAD: u64 = 112;

/// The name of a record type, for messages.
fn type_name(t: u32) -> &'static str {
    match t {
        DRR_BEGIN => "BEGIN",
        DRR_OBJECT => "OBJECT",
        DRR_FREEOBJECTS => "FREEOBJECTS",
        DRR_WRITE => "WRITE",
        DRR_FREE => "FREE",
        DRR_END => "END",
        DRR_WRITE_BYREF => "WRITE_BYREF",
        DRR_SPILL => "SPILL",
        DRR_WRITE_EMBEDDED => "WRITE_EMBEDDED",
        DRR_OBJECT_RANGE => "OBJECT_RANGE",
        DRR_REDACT => "REDACT",
        _ => "unknown",
    }
}

/// Read `stream`, an incremental send stream, and mark in `bitmap` every block of object
/// `data_object` that it writes or frees: the blocks that may differ between the stream's
/// source and its target. `bitmap` is sized for the target (blocks past its size are
/// clamped away). Records about other objects are ignored.
///
/// On error (a malformed or truncated stream, a failed read), every bit of `bitmap` is
/// set, so that a caller that ignored the error would copy everything rather than miss a
/// block; the error is what counts.
pub(crate) fn mark_changes<R: Read>(
    stream: R,
    data_object: u64,
    bitmap: &mut BlockBitmap,
) -> Result<StreamStats> {
    let r = read_stream(stream, data_object, bitmap);
    if r.is_err() {
        bitmap.mark_all();
    }
    r
}

/// A record header, read at native byte order.
struct Rec<'a>(&'a [u8; RECORD]);

impl Rec<'_> {
    fn u8(&self, at: usize) -> u8 {
        self.0[at]
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_ne_bytes(self.0[at..at + 4].try_into().expect("4 bytes"))
    }
    fn u64(&self, at: usize) -> u64 {
        u64::from_ne_bytes(self.0[at..at + 8].try_into().expect("8 bytes"))
    }
    fn cksum(&self, at: usize) -> [u64; 4] {
        [
            self.u64(at),
            self.u64(at + 8),
            self.u64(at + 16),
            self.u64(at + 24),
        ]
    }
}

fn round8(n: u64) -> u64 {
    n.div_ceil(8) * 8
}

fn read_stream<R: Read>(stream: R, obj: u64, bm: &mut BlockBitmap) -> Result<StreamStats> {
    let mut input = Input::new(stream);
    let mut st = StreamStats::default();
    let mut hdr = [0u8; RECORD];

    // BEGIN: the magic says the stream's byte order, the version word its kind and features.
    if !input.record(&mut hdr, "the BEGIN record")? {
        return Err(Error::stream(
            0,
            "the stream is empty (the send wrote nothing)",
        ));
    }
    let rec = Rec(&hdr);
    if rec.u32(0) != DRR_BEGIN {
        return Err(Error::stream(
            0,
            format!(
                "it does not start with a BEGIN record (record type {}): not a ZFS send stream",
                rec.u32(0)
            ),
        ));
    }
    let magic = rec.u64(8);
    if magic == DMU_BACKUP_MAGIC.swap_bytes() {
        return Err(Error::stream(
            8,
            "it was written in the other byte order (by a host of the other endianness); \
             only streams in this host's byte order are read",
        ));
    }
    if magic != DMU_BACKUP_MAGIC {
        return Err(Error::stream(
            8,
            format!("its BEGIN record has the magic {magic:#x}, not {DMU_BACKUP_MAGIC:#x}: not a ZFS send stream"),
        ));
    }
    let version = rec.u64(16);
    match version & 3 {
        DMU_SUBSTREAM => {}
        DMU_COMPOUNDSTREAM => {
            return Err(Error::stream(
                16,
                "it is a compound stream (zfs send -R or -p: several datasets), which \
                 lzc_send never writes; only the stream of one snapshot is read",
            ))
        }
        t => {
            return Err(Error::stream(
                16,
                format!("its BEGIN record has the unknown header type {t}"),
            ))
        }
    }
    st.features = (version >> 2) & ((1 << 56) - 1);
    let unknown = st.features & !KNOWN_FEATURES;
    if unknown != 0 {
        return Err(Error::stream(
            16,
            format!(
                "it uses stream features this reader does not know (flags {unknown:#x}): it \
                 was probably written by a newer OpenZFS, and is refused rather than misread"
            ),
        ));
    }
    let raw = st.features & FEATURE_RAW != 0;
    // struct drr_begin, after magic and versioninfo: creation time, objset type and flags,
    // then the two guids.
    st.to_guid = rec.u64(40);
    st.from_guid = rec.u64(48);
    // The BEGIN record carries no checksum (the sum starts with it), but the running sum
    // covers all of it, its checksum field included.
    input.cksum.update(&hdr);
    st.records = 1;
    let nvlist = u64::from(Rec(&hdr).u32(4));
    input.skip(nvlist, DRR_BEGIN)?;
    st.payload_bytes += nvlist;

    loop {
        let at = input.offset;
        let before = input.cksum.sum();
        if !input.record(&mut hdr, "a record")? {
            return Err(Error::stream(
                at,
                "it ends without an END record: the send stopped early",
            ));
        }
        st.records += 1;
        // Each record but BEGIN carries the checksum of everything before its last 32
        // bytes; the sender always sets it (the receiver skips a zero one, from senders
        // that predate it, and so does this reader).
        input.cksum.update(&hdr[..CKSUM]);
        let rec = Rec(&hdr);
        let t = rec.u32(0);
        let stored = rec.cksum(CKSUM);
        if stored != [0; 4] && stored != input.cksum.sum() {
            return Err(Error::stream(
                at,
                format!(
                    "the checksum of its {} record (record {}) does not match the stream: \
                     the stream is corrupt, or was misread",
                    type_name(t),
                    st.records
                ),
            ));
        }
        input.cksum.update(&hdr[CKSUM..]);
        let object = rec.u64(8);
        let mine = object == obj;
        let payload = match t {
            DRR_END => {
                // The END record repeats the checksum of everything before it.
                if rec.cksum(8) != before {
                    return Err(Error::stream(
                        at,
                        "the checksum in its END record does not match the stream: the \
                         stream is corrupt",
                    ));
                }
                if !input.at_end()? {
                    return Err(Error::stream(
                        input.offset,
                        "data follows its END record (only one stream is read)",
                    ));
                }
                st.bytes = input.offset;
                return Ok(st);
            }
            DRR_BEGIN => {
                return Err(Error::stream(
                    at,
                    "a second BEGIN record (a compound stream, or a misread one)",
                ))
            }
            DRR_OBJECT => {
                // A zvol's data object is created with the zvol (zvol_create_cb claims
                // object 1) and never freed or reallocated, and its block size
                // (volblocksize) never changes: its OBJECT record, sent because the dnode
                // changed (new block pointers), says nothing the WRITE and FREE records
                // after it do not. A freed object would come as FREEOBJECTS.
                if mine {
                    st.objects += 1;
                } else {
                    st.ignored += 1;
                }
                // Payload: the bonus buffer, padded to 8 bytes (raw: as stored).
                let raw_bonus = u64::from(rec.u32(36));
                if raw_bonus != 0 {
                    raw_bonus
                } else {
                    round8(u64::from(rec.u32(28)))
                }
            }
            DRR_FREEOBJECTS => {
                let (first, n) = (object, rec.u64(16));
                let Some(end) = first.checked_add(n) else {
                    return Err(Error::stream(
                        at,
                        format!("a FREEOBJECTS record's range ({first} + {n}) overflows"),
                    ));
                };
                if (first..end).contains(&obj) {
                    // The data object was freed: every block may differ.
                    bm.mark_all();
                    st.objects_freed += 1;
                } else {
                    st.ignored += 1;
                }
                0
            }
            DRR_WRITE => {
                let (offset, lsize) = (rec.u64(24), rec.u64(32));
                let (compression, csize) = (rec.u8(50), rec.u64(96));
                // DRR_WRITE_PAYLOAD_SIZE: a block sent as stored (compressed or raw) names
                // its on-disk algorithm and size; ZIO_COMPRESS_OFF is 2, so a raw record
                // always has a nonzero type and a zero one in a raw stream is a misread.
                if raw && compression == 0 {
                    return Err(Error::stream(
                        at,
                        "a WRITE record of a raw stream has no compression type",
                    ));
                }
                if mine {
                    bm.mark(offset, lsize);
                    st.writes += 1;
                    st.write_bytes += lsize;
                } else {
                    st.ignored += 1;
                }
                let payload = if compression != 0 { csize } else { lsize };
                check_block(at, "WRITE", payload)?
            }
            DRR_FREE => {
                let (offset, length) = (rec.u64(16), rec.u64(24));
                if mine {
                    // UINT64_MAX (DMU_OBJECT_END) is "to the end of the object".
                    if length == u64::MAX {
                        bm.mark_from(offset);
                        st.frees_to_end += 1;
                    } else {
                        bm.mark(offset, length);
                    }
                    st.frees += 1;
                } else {
                    st.ignored += 1;
                }
                0
            }
            DRR_WRITE_BYREF => {
                // A dedup stream's copy of a block sent earlier: a write all the same.
                let (offset, length) = (rec.u64(16), rec.u64(24));
                if mine {
                    bm.mark(offset, length);
                    st.writes += 1;
                    st.write_bytes += length;
                } else {
                    st.ignored += 1;
                }
                0
            }
            DRR_SPILL => {
                // A spill block holds an object's overflowing attributes, not its data.
                st.ignored += 1;
                let (length, csize) = (rec.u64(16), rec.u64(40));
                check_block(at, "SPILL", if csize != 0 { csize } else { length })?
            }
            DRR_WRITE_EMBEDDED => {
                // A block small enough to live in its block pointer: the record carries
                // the block's logical length and its (compressed) data, padded to 8.
                let (offset, length, psize) = (rec.u64(16), rec.u64(24), rec.u32(52));
                if u64::from(psize) > BPE_PAYLOAD {
                    return Err(Error::stream(
                        at,
                        format!(
                            "a WRITE_EMBEDDED record claims {psize} bytes of data; a block \
                             pointer holds at most {BPE_PAYLOAD}"
                        ),
                    ));
                }
                if mine {
                    bm.mark(offset, length);
                    st.writes += 1;
                    st.write_bytes += length;
                } else {
                    st.ignored += 1;
                }
                round8(u64::from(psize))
            }
            DRR_OBJECT_RANGE => {
                // Raw streams: the encryption parameters of a block of dnodes.
                st.ignored += 1;
                0
            }
            DRR_REDACT => {
                // A redacted range is not sent: its content is unknown, so it counts as
                // changed.
                let (offset, length) = (rec.u64(16), rec.u64(24));
                if mine {
                    bm.mark(offset, length);
                    st.redactions += 1;
                } else {
                    st.ignored += 1;
                }
                0
            }
            t => {
                return Err(Error::stream(
                    at,
                    format!(
                        "record {} has the unknown type {t}: the stream is corrupt, or was \
                         written by a newer OpenZFS",
                        st.records
                    ),
                ))
            }
        };
        input.skip(payload, t)?;
        st.payload_bytes += payload;
    }
}

/// A WRITE or SPILL payload: no block is larger than [`MAX_BLOCK`].
fn check_block(at: u64, what: &str, payload: u64) -> Result<u64> {
    if payload > MAX_BLOCK {
        return Err(Error::stream(
            at,
            format!(
                "a {what} record claims a {payload}-byte block; ZFS blocks are at most \
                 {MAX_BLOCK} bytes"
            ),
        ));
    }
    Ok(payload)
}

/// The stream, read through one buffer, with the running checksum of what was consumed.
struct Input<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Bytes consumed from the start of the stream.
    offset: u64,
    cksum: Fletcher4,
}

impl<R: Read> Input<R> {
    fn new(inner: R) -> Input<R> {
        Input {
            inner,
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            pos: 0,
            end: 0,
            offset: 0,
            cksum: Fletcher4::default(),
        }
    }

    /// Refill an empty buffer; false at the end of the stream.
    fn fill(&mut self) -> Result<bool> {
        debug_assert_eq!(self.pos, self.end);
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(n) => {
                    (self.pos, self.end) = (0, n);
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::Io {
                        what: format!("reading the send stream at byte {}", self.offset),
                        source: e,
                    })
                }
            }
        }
    }

    /// The next record into `out`: false at a clean end of the stream (no byte left), an
    /// error if it ends inside the record. Not checksummed (the caller checks the sum
    /// between the record's two parts).
    fn record(&mut self, out: &mut [u8; RECORD], what: &str) -> Result<bool> {
        let start = self.offset;
        let mut got = 0;
        while got < RECORD {
            if self.pos == self.end && !self.fill()? {
                if got == 0 {
                    return Ok(false);
                }
                return Err(Error::stream(
                    start,
                    format!(
                        "it ends inside {what} ({got} of its {RECORD} bytes): the send \
                         stopped early"
                    ),
                ));
            }
            let n = (RECORD - got).min(self.end - self.pos);
            out[got..got + n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            (got, self.pos) = (got + n, self.pos + n);
            self.offset += n as u64;
        }
        Ok(true)
    }

    /// Consume and checksum the `n`-byte payload of a record of type `t`, without keeping
    /// it.
    fn skip(&mut self, n: u64, t: u32) -> Result<()> {
        let start = self.offset;
        let mut left = n;
        while left > 0 {
            if self.pos == self.end && !self.fill()? {
                return Err(Error::stream(
                    start,
                    format!(
                        "it ends inside the payload of a {} record ({} of its {n} bytes): \
                         the send stopped early",
                        type_name(t),
                        n - left
                    ),
                ));
            }
            let k = (self.end - self.pos).min(usize::try_from(left).unwrap_or(usize::MAX));
            self.cksum.update(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            self.offset += k as u64;
            left -= k as u64;
        }
        self.cksum.end_piece();
        Ok(())
    }

    /// Whether the stream has no byte left.
    fn at_end(&mut self) -> Result<bool> {
        Ok(self.pos == self.end && !self.fill()?)
    }
}

/// The running fletcher-4 checksum of a send stream: four 64-bit sums over the stream's
/// native-order 32-bit words (`fletcher_4_incremental_native`). The sender sums each piece
/// it writes (a record's first 280 bytes, its last 32, a payload) on its own, so the 1 to 3
/// bytes at the end of a piece whose length is not a multiple of 4 (raw payloads only) are
/// left out: [`Fletcher4::end_piece`] drops them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Fletcher4 {
    s: [u64; 4],
    tail: [u8; 4],
    tail_len: usize,
}

impl Fletcher4 {
    fn update(&mut self, mut data: &[u8]) {
        if self.tail_len > 0 {
            // A word split between two reads of the same piece.
            let k = (4 - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + k].copy_from_slice(&data[..k]);
            self.tail_len += k;
            data = &data[k..];
            if self.tail_len < 4 {
                return;
            }
            self.tail_len = 0;
            let w = u32::from_ne_bytes(self.tail);
            self.words(std::iter::once(w));
        }
        let words = data.chunks_exact(4);
        let rest = words.remainder();
        self.words(words.map(|w| u32::from_ne_bytes(w.try_into().expect("4 bytes"))));
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    fn words(&mut self, words: impl Iterator<Item = u32>) {
        let [mut a, mut b, mut c, mut d] = self.s;
        for w in words {
            a = a.wrapping_add(u64::from(w));
            b = b.wrapping_add(a);
            c = c.wrapping_add(b);
            d = d.wrapping_add(c);
        }
        self.s = [a, b, c, d];
    }

    /// The end of a piece: a partial last word is not summed.
    fn end_piece(&mut self) {
        self.tail_len = 0;
    }

    fn sum(&self) -> [u64; 4] {
        self.s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const G: u64 = 64 << 10;
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    const COMPRESSED: u64 = 1 << 22;
    const LZ4: u8 = 15;

    // ---- building streams record by record, as the sender does (dump_record) -----------

    fn put32(h: &mut [u8; RECORD], at: usize, v: u32) {
        h[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    fn put64(h: &mut [u8; RECORD], at: usize, v: u64) {
        h[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    }

    fn header(t: u32, u64s: &[(usize, u64)]) -> [u8; RECORD] {
        let mut h = [0; RECORD];
        put32(&mut h, 0, t);
        for &(at, v) in u64s {
            put64(&mut h, at, v);
        }
        h
    }

    /// Payload bytes that read as WRITE records of object 1 at offset 0: a reader that
    /// took a payload for records would mark block 0 (or fail its checksum).
    fn payload(n: u64) -> Vec<u8> {
        let fake = header(DRR_WRITE, &[(8, 1), (24, 0), (32, G)]);
        fake.iter().copied().cycle().take(n as usize).collect()
    }

    /// A synthetic stream with the sender's running checksum in every record.
    struct Stream {
        out: Vec<u8>,
        ck: Fletcher4,
        /// Leave the records' checksum fields zero, as senders before them did.
        legacy: bool,
    }

    impl Stream {
        /// BEGIN (native order, a substream with `features`, an nvlist of `nvlist` bytes).
        fn new(features: u64, nvlist: u32) -> Stream {
            Stream::with_begin(DMU_BACKUP_MAGIC, features << 2 | DMU_SUBSTREAM, nvlist)
        }

        fn with_begin(magic: u64, version: u64, nvlist: u32) -> Stream {
            let mut s = Stream {
                out: vec![],
                ck: Fletcher4::default(),
                legacy: false,
            };
            let mut h = header(DRR_BEGIN, &[(8, magic), (16, version), (40, 7), (48, 5)]);
            put32(&mut h, 4, nvlist);
            h[56..62].copy_from_slice(b"p/v@s2");
            s.record(h, &payload(u64::from(nvlist)));
            s
        }

        fn record(&mut self, mut h: [u8; RECORD], payload: &[u8]) -> &mut Stream {
            self.ck.update(&h[..CKSUM]);
            if h[..4] != DRR_BEGIN.to_ne_bytes() && !self.legacy {
                for (i, w) in self.ck.sum().iter().enumerate() {
                    put64(&mut h, CKSUM + 8 * i, *w);
                }
            }
            self.ck.update(&h[CKSUM..]);
            self.out.extend_from_slice(&h);
            self.out.extend_from_slice(payload);
            self.ck.update(payload);
            self.ck.end_piece();
            self
        }

        fn object(&mut self, obj: u64, bonuslen: u32, raw_bonuslen: u32) -> &mut Stream {
            let mut h = header(DRR_OBJECT, &[(8, obj)]);
            put32(&mut h, 24, 16384);
            put32(&mut h, 28, bonuslen);
            put32(&mut h, 36, raw_bonuslen);
            let n = if raw_bonuslen != 0 {
                u64::from(raw_bonuslen)
            } else {
                round8(u64::from(bonuslen))
            };
            self.record(h, &payload(n))
        }

        fn write(&mut self, obj: u64, offset: u64, lsize: u64) -> &mut Stream {
            let h = header(DRR_WRITE, &[(8, obj), (24, offset), (32, lsize)]);
            self.record(h, &payload(lsize))
        }

        /// A block sent as stored: `csize` bytes of payload for `lsize` logical ones.
        fn write_stored(
            &mut self,
            obj: u64,
            offset: u64,
            lsize: u64,
            csize: u64,
            c: u8,
        ) -> &mut Stream {
            let mut h = header(
                DRR_WRITE,
                &[(8, obj), (24, offset), (32, lsize), (96, csize)],
            );
            h[50] = c;
            self.record(h, &payload(csize))
        }

        fn embedded(&mut self, obj: u64, offset: u64, length: u64, psize: u32) -> &mut Stream {
            let mut h = header(DRR_WRITE_EMBEDDED, &[(8, obj), (16, offset), (24, length)]);
            put32(&mut h, 48, 4096);
            put32(&mut h, 52, psize);
            self.record(h, &payload(round8(u64::from(psize))))
        }

        fn simple(&mut self, t: u32, obj: u64, offset: u64, length: u64) -> &mut Stream {
            self.record(header(t, &[(8, obj), (16, offset), (24, length)]), &[])
        }

        fn free(&mut self, obj: u64, offset: u64, length: u64) -> &mut Stream {
            self.simple(DRR_FREE, obj, offset, length)
        }

        fn freeobjects(&mut self, first: u64, n: u64) -> &mut Stream {
            self.record(header(DRR_FREEOBJECTS, &[(8, first), (16, n)]), &[])
        }

        fn spill(&mut self, obj: u64, length: u64, csize: u64) -> &mut Stream {
            let h = header(DRR_SPILL, &[(8, obj), (16, length), (40, csize)]);
            let n = if csize != 0 { csize } else { length };
            self.record(h, &payload(n))
        }

        fn end(&mut self) -> &mut Stream {
            let before = self.ck.sum();
            let mut h = header(DRR_END, &[]);
            for (i, w) in before.iter().enumerate() {
                put64(&mut h, 8 + 8 * i, *w);
            }
            self.record(h, &[])
        }

        fn bytes(&self) -> Vec<u8> {
            self.out.clone()
        }
    }

    fn read(stream: &[u8], size: u64) -> Result<(BlockBitmap, StreamStats)> {
        let mut bm = BlockBitmap::new(G, size);
        let r = mark_changes(stream, 1, &mut bm);
        r.map(|st| (bm, st))
    }

    fn set_bits(b: &BlockBitmap) -> Vec<u64> {
        (0..b.blocks()).filter(|i| b.is_set(*i)).collect()
    }

    /// The error of reading `stream`, which must fail and leave the bitmap all set.
    #[track_caller]
    fn refused(stream: &[u8], words: &[&str]) -> Error {
        let mut bm = BlockBitmap::new(G, 3 * G + 1);
        let e = mark_changes(stream, 1, &mut bm).expect_err("the stream must be refused");
        assert_eq!(bm.count(), 4, "an error leaves every bit set");
        let msg = e.to_string();
        for w in words {
            assert!(msg.contains(w), "{msg:?} does not contain {w:?}");
        }
        e
    }

    // ---- the bitmap ---------------------------------------------------------------------

    #[test]
    fn bitmap_shape_and_bit_order() {
        let mut b = BlockBitmap::new(G, 64 * MIB + 16 * KIB);
        assert_eq!((b.blocks(), b.as_bytes().len()), (1025, 129));
        assert_eq!((b.granularity(), b.size()), (G, 64 * MIB + 16 * KIB));
        assert_eq!(b.count(), 0);
        b.mark(0, 1);
        b.mark(9 * G, G);
        assert_eq!(
            b.as_bytes()[..2],
            [0x80, 0x40],
            "most significant bit first"
        );
        // The last block is partial (16 KiB): a write into it, or running past the size.
        b.mark(64 * MIB + 8 * KIB, 1 << 30);
        assert!(b.is_set(1024));
        assert_eq!(b.as_bytes()[128], 0x80, "padding bits stay 0");
        assert!(!b.is_set(1025), "past the end");
        assert_eq!(b.count(), 3);
        b.mark_all();
        assert_eq!(b.count(), 1025);
        assert_eq!(b.as_bytes()[128], 0x80, "mark_all leaves the padding 0");
        assert!(b.as_bytes()[..128].iter().all(|x| *x == 0xFF));
        assert_eq!(b.clone().into_bytes().len(), 129);
        assert_eq!(
            format!("{b:?}"),
            "BlockBitmap { granularity: 65536, size: 67125248, blocks: 1025, marked: 1025 }"
        );
        let empty = BlockBitmap::new(G, 0);
        assert_eq!((empty.blocks(), empty.as_bytes().len()), (0, 0));
    }

    #[test]
    fn bitmap_mark_edges() {
        let size = 10 * G + 5;
        let mut b = BlockBitmap::new(G, size);
        b.mark(3 * G, 0);
        b.mark(size, 100);
        b.mark(u64::MAX, u64::MAX);
        b.mark(u64::MAX - 5, 10);
        assert_eq!(
            b.count(),
            0,
            "zero length or at/after the end marks nothing"
        );
        // A range touching two blocks by one byte each.
        b.mark(2 * G - 1, 2);
        assert_eq!(set_bits(&b), [1, 2]);
        // Overflowing ranges run to the end.
        let mut c = BlockBitmap::new(G, size);
        c.mark(9 * G, u64::MAX);
        assert_eq!(set_bits(&c), [9, 10]);
        let mut d = BlockBitmap::new(G, size);
        d.mark_from(size - 1);
        assert_eq!(set_bits(&d), [10]);
        d.mark_from(0);
        assert_eq!(d.count(), 11);
        // Exactly one block; a whole-byte span plus partial ends.
        let mut e = BlockBitmap::new(G, 40 * G);
        e.mark(5 * G, G);
        assert_eq!(set_bits(&e), [5]);
        e.mark(7 * G + 1, 20 * G);
        assert_eq!(
            set_bits(&e),
            [&[5][..], &(7..=27).collect::<Vec<_>>()].concat()
        );
        // Granularity 1.
        let mut f = BlockBitmap::new(1, 9);
        f.mark(8, 1);
        assert_eq!(f.as_bytes(), [0, 0x80]);
    }

    #[test]
    #[should_panic(expected = "power of two")]
    fn bitmap_granularity_must_be_a_power_of_two() {
        BlockBitmap::new(3 * KIB, MIB);
    }

    #[test]
    fn bitmap_window() {
        let mut b = BlockBitmap::new(G, 20 * G + 7);
        for i in [0, 3, 8, 9, 15, 20] {
            b.mark(i * G, 1);
        }
        let w = b.window(3 * G, 13 * G).unwrap();
        assert_eq!((w.size(), w.blocks()), (13 * G, 13));
        assert_eq!(set_bits(&w), [0, 5, 6, 12]);
        assert_eq!(w.as_bytes(), [0b1000_0110, 0b0000_1000]);
        // Clamped to the size: the last, partial block.
        let t = b.window(16 * G, 100 * G).unwrap();
        assert_eq!(
            (t.size(), t.blocks(), set_bits(&t)),
            (4 * G + 7, 5, vec![4])
        );
        assert_eq!(t.as_bytes(), [0b0000_1000]);
        // Whole, empty, past the end, unaligned.
        assert_eq!(b.window(0, u64::MAX).unwrap(), b);
        assert_eq!(b.window(8 * G, 0).unwrap().blocks(), 0);
        assert_eq!(b.window(64 * G, G).unwrap().blocks(), 0);
        assert_eq!(b.window(u64::MAX - G + 1, u64::MAX).unwrap().blocks(), 0);
        assert!(b.window(G / 2, G).is_none());
    }

    // ---- the stream ---------------------------------------------------------------------

    #[test]
    fn every_record_kind_marks_its_blocks() {
        let s = Stream::new(COMPRESSED | 1 << 16, 24)
            .object(1, 13, 0)
            .object(2, 260, 0)
            .write(1, 3 * G, 16 * KIB)
            .write_stored(1, 5 * G, 128 * KIB, 4096, LZ4)
            .embedded(1, 9 * G + 16 * KIB, 16 * KIB, 37)
            .simple(DRR_WRITE_BYREF, 1, 11 * G, 4096)
            .free(1, 13 * G + 1, 100)
            .simple(DRR_REDACT, 1, 15 * G, 1)
            .spill(1, 512, 0)
            .record(header(DRR_OBJECT_RANGE, &[(8, 0), (16, 32)]), &[])
            .free(2, 512, u64::MAX)
            .write(2, 0, 512)
            .simple(DRR_REDACT, 2, 0, G)
            .free(1, 20 * G, u64::MAX)
            .end()
            .bytes();
        let (bm, st) = read(&s, 24 * G).unwrap();
        assert_eq!(set_bits(&bm), [3, 5, 6, 9, 11, 13, 15, 20, 21, 22, 23]);
        let payload = 24 + 16 + 264 + 16 * KIB + 4096 + 40 + 512 + 512;
        assert_eq!(
            st,
            StreamStats {
                records: 16,
                writes: 4,
                write_bytes: 16 * KIB + 128 * KIB + 16 * KIB + 4096,
                frees: 2,
                frees_to_end: 1,
                objects: 1,
                objects_freed: 0,
                redactions: 1,
                ignored: 6,
                payload_bytes: payload,
                bytes: 16 * RECORD as u64 + payload,
                features: COMPRESSED | 1 << 16,
                from_guid: 5,
                to_guid: 7,
            }
        );
        assert_eq!(st.bytes, s.len() as u64);
    }

    #[test]
    fn only_the_data_object_counts() {
        // Object 2 is a zvol's property ZAP: its records mark nothing.
        let s = Stream::new(0, 0)
            .object(2, 0, 0)
            .write(2, 0, 512)
            .free(2, 512, u64::MAX)
            .write(3, G, 4096)
            .end()
            .bytes();
        let (bm, st) = read(&s, 4 * G).unwrap();
        assert_eq!((bm.count(), st.ignored, st.writes), (0, 4, 0));
        // Another data object number.
        let mut bm = BlockBitmap::new(G, 4 * G);
        mark_changes(&s[..], 3, &mut bm).unwrap();
        assert_eq!(set_bits(&bm), [1]);
    }

    #[test]
    fn free_to_the_end_and_past_the_size() {
        let s = Stream::new(0, 0)
            .free(1, 6 * G + 5, u64::MAX)
            .free(1, 100 * G, 5)
            .free(1, u64::MAX - 1, 10)
            .end()
            .bytes();
        let (bm, st) = read(&s, 10 * G).unwrap();
        assert_eq!(set_bits(&bm), [6, 7, 8, 9]);
        assert_eq!((st.frees, st.frees_to_end), (3, 1));
    }

    #[test]
    fn freeobjects_covering_the_data_object_marks_everything() {
        for (first, n, all) in [
            (0, 2, true),
            (1, 1, true),
            (0, 1, false),
            (2, 100, false),
            (0, 0, false),
        ] {
            let s = Stream::new(0, 0).freeobjects(first, n).end().bytes();
            let (bm, st) = read(&s, 3 * G + 1).unwrap();
            assert_eq!(
                bm.count(),
                if all { 4 } else { 0 },
                "FREEOBJECTS {first} +{n}"
            );
            assert_eq!(st.objects_freed, u64::from(all));
        }
    }

    #[test]
    fn payloads_are_skipped_by_their_own_sizes() {
        // Uncompressed: logical size; stored (compressed): compressed size; embedded: psize
        // rounded to 8; OBJECT: bonus rounded to 8; SPILL: compressed size when set.
        let s = Stream::new(COMPRESSED | 1 << 19, 0)
            .write(1, 0, 512)
            .write(1, G, MIB)
            .write_stored(1, 2 * G, 128 * KIB, 1536, LZ4)
            .embedded(1, 3 * G, 8 * KIB, 1)
            .embedded(1, 4 * G, 8 * KIB, 112)
            .object(1, 1, 0)
            .spill(5, 4096, 512)
            .end()
            .bytes();
        let (bm, st) = read(&s, 8 * G).unwrap();
        assert_eq!(set_bits(&bm), [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(st.payload_bytes, 512 + MIB + 1536 + 8 + 112 + 8 + 512);
        // The largest block is a valid payload, one byte more is not.
        assert_eq!(check_block(0, "WRITE", 16 * MIB).unwrap(), 16 * MIB);
        check_block(0, "WRITE", 16 * MIB + 1).unwrap_err();
    }

    #[test]
    fn raw_streams_use_the_stored_sizes() {
        const RAW: u64 = 1 << 24;
        // Raw: the stored size even uncompressed (ZIO_COMPRESS_OFF = 2), raw bonus length.
        let s = Stream::new(RAW, 0)
            .object(1, 300, 301)
            .write_stored(1, G, 16 * KIB, 16 * KIB + 12, 2)
            .write_stored(1, 2 * G, 16 * KIB, 4096, LZ4)
            .end()
            .bytes();
        let (bm, st) = read(&s, 4 * G).unwrap();
        assert_eq!(set_bits(&bm), [1, 2]);
        assert_eq!(st.payload_bytes, 301 + 16 * KIB + 12 + 4096);
        let s = Stream::new(RAW, 0)
            .write_stored(1, G, 16 * KIB, 4096, 0)
            .end()
            .bytes();
        refused(&s, &["raw stream has no compression type"]);
    }

    #[test]
    fn readers_that_return_little_at_a_time() {
        let s = Stream::new(COMPRESSED, 40)
            .object(1, 5, 0)
            .write_stored(1, 2 * G, 4096, 1000, LZ4)
            .write(1, 7 * G, 300 * KIB)
            .free(1, 12 * G, u64::MAX)
            .end()
            .bytes();
        let want = read(&s, 16 * G).unwrap();
        /// 1 to 7 bytes per read, and an EINTR now and then.
        struct Dribble<'a>(&'a [u8], usize);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.1 += 1;
                if self.1 % 5 == 0 {
                    return Err(ErrorKind::Interrupted.into());
                }
                let n = (self.1 % 7 + 1).min(buf.len()).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut bm = BlockBitmap::new(G, 16 * G);
        let st = mark_changes(Dribble(&s, 0), 1, &mut bm).unwrap();
        assert_eq!((bm, st), want);
    }

    #[test]
    fn a_failing_reader_is_an_io_error() {
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let s = Stream::new(0, 0).bytes();
                if self.0 == 0 {
                    self.0 = 1;
                    buf[..RECORD].copy_from_slice(&s);
                    return Ok(RECORD);
                }
                Err(std::io::Error::from_raw_os_error(libc::EIO))
            }
        }
        let mut bm = BlockBitmap::new(G, G);
        let e = mark_changes(Broken(0), 1, &mut bm).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e:?}");
        assert!(e.to_string().contains("at byte 312"), "{e}");
        assert_eq!(bm.count(), 1);
    }

    #[test]
    fn malformed_streams_are_refused() {
        let good = Stream::new(0, 16).write(1, G, 4096).end().bytes();
        read(&good, 4 * G).unwrap();
        refused(&[], &["empty", "at byte 0"]);
        // Truncated: in the BEGIN record, in its nvlist, in a record, in a payload.
        refused(&good[..100], &["ends inside", "BEGIN"]);
        refused(
            &good[..RECORD + 8],
            &["ends inside the payload of a BEGIN record"],
        );
        let w = RECORD + 16;
        refused(
            &good[..w + 100],
            &["ends inside a record (100 of its 312 bytes)"],
        );
        refused(
            &good[..w + RECORD + 10],
            &["ends inside the payload of a WRITE record (10 of its 4096 bytes)"],
        );
        // No END, data after END.
        refused(&good[..w + RECORD + 4096], &["without an END record"]);
        let mut more = good.clone();
        more.push(0);
        refused(
            &more,
            &[
                "data follows its END record",
                &format!("at byte {}", good.len()),
            ],
        );
        let mut twice = good.clone();
        twice.extend_from_slice(&good);
        refused(&twice, &["data follows its END record"]);
        // Not BEGIN first; not a stream; the other byte order; compound; unknown features.
        let s = Stream::new(0, 0).write(1, 0, 512).end().bytes();
        refused(
            &s[RECORD..],
            &["does not start with a BEGIN record (record type 3)"],
        );
        refused(
            &Stream::with_begin(0x1234, 1, 0).end().bytes(),
            &["magic 0x1234", "not a ZFS send stream"],
        );
        let swapped = Stream::with_begin(DMU_BACKUP_MAGIC.swap_bytes(), 1u64.swap_bytes(), 0)
            .end()
            .bytes();
        refused(&swapped, &["other byte order", "at byte 8"]);
        refused(
            &Stream::with_begin(DMU_BACKUP_MAGIC, DMU_COMPOUNDSTREAM, 0)
                .end()
                .bytes(),
            &["compound stream"],
        );
        refused(
            &Stream::with_begin(DMU_BACKUP_MAGIC, 0, 0).end().bytes(),
            &["unknown header type 0"],
        );
        refused(
            &Stream::new(1 << 18, 0).end().bytes(),
            &["features this reader does not know (flags 0x40000)"],
        );
        refused(
            &Stream::new(1 << 30, 0).end().bytes(),
            &["flags 0x40000000"],
        );
        // A second BEGIN; an unknown record type.
        let mut s = Stream::new(0, 0);
        s.record(header(DRR_BEGIN, &[(8, DMU_BACKUP_MAGIC), (16, 1)]), &[]);
        refused(&s.end().bytes(), &["a second BEGIN record"]);
        let mut s = Stream::new(0, 0);
        s.record(header(11, &[(8, 1)]), &[]);
        refused(
            &s.end().bytes(),
            &["record 2 has the unknown type 11", "at byte 312"],
        );
        // Impossible sizes.
        // (Refused before their payloads are read: none is written.)
        let mut h = header(DRR_WRITE, &[(8, 1), (32, 32 * MIB), (96, 17 * MIB)]);
        h[50] = LZ4;
        let s = Stream::new(COMPRESSED, 0).record(h, &[]).end().bytes();
        refused(&s, &["17825792-byte block"]);
        let s = Stream::new(0, 0).embedded(1, 0, 4096, 113).end().bytes();
        refused(&s, &["113 bytes of data"]);
        let h = header(DRR_SPILL, &[(8, 1), (16, 32 * MIB)]);
        let s = Stream::new(0, 0).record(h, &[]).end().bytes();
        refused(&s, &["a SPILL record claims"]);
        let s = Stream::new(0, 0).freeobjects(2, u64::MAX).end().bytes();
        refused(&s, &["FREEOBJECTS record's range", "overflows"]);
    }

    #[test]
    fn checksums_are_verified() {
        let good = Stream::new(0, 8)
            .write(1, G, 4096)
            .free(1, 0, 512)
            .end()
            .bytes();
        let (bm, _) = read(&good, 4 * G).unwrap();
        assert_eq!(set_bits(&bm), [0, 1]);
        // A flipped bit in a payload: the next record's checksum no longer matches.
        let mut bad = good.clone();
        bad[2 * RECORD + 8 + 100] ^= 1;
        refused(
            &bad,
            &["checksum of its FREE record (record 3) does not match"],
        );
        // In a record's fields (the FREE's offset).
        let mut bad = good.clone();
        let free = 2 * RECORD + 8 + 4096;
        bad[free + 16] ^= 0x80;
        refused(&bad, &["checksum of its FREE record"]);
        // In the END record's copy of the sum.
        let mut bad = good.clone();
        let end = good.len() - RECORD;
        bad[end + 8] ^= 1;
        refused(&bad, &["checksum of its END record"]);
        // A zero checksum (senders before checksums) is not checked, as the receiver does;
        // the END record's copy always is.
        let mut old = Stream::new(0, 8);
        old.legacy = true;
        let old = old.write(1, G, 4096).free(1, 0, 512).end().bytes();
        assert_eq!(old[free + CKSUM..free + RECORD], [0; 32]);
        assert_eq!(read(&old, 4 * G).unwrap().0, bm);
        let mut s = Stream::new(0, 0);
        s.record(header(DRR_END, &[]), &[]);
        refused(&s.bytes(), &["checksum in its END record does not match"]);
    }

    #[test]
    fn stream_errors_read_as_sentences() {
        let e = Error::stream(624, "it ends without an END record: the send stopped early")
            .of_stream("tank/v@s2 since tank/v#b1");
        assert_eq!(
            e.to_string(),
            "cannot use the send stream of tank/v@s2 since tank/v#b1: it ends without an END \
             record: the send stopped early (at byte 624 of the stream)"
        );
        assert_eq!(e.errno(), None);
        let z = Error::zfs(
            crate::Op::ChangedBlocks,
            "tank/v@s2 since tank/v#b1",
            crate::Errno(libc::EXDEV),
        );
        assert!(z.to_string().starts_with("cannot list the changed blocks of tank/v@s2 since tank/v#b1: the source is not an earlier"), "{z}");
        assert_eq!(z.pool(), Some("tank"));
    }

    // ---- properties ---------------------------------------------------------------------

    /// The fletcher-4 of OpenZFS, word by word, as a reference.
    fn fletcher_reference(pieces: &[&[u8]]) -> [u64; 4] {
        let (mut a, mut b, mut c, mut d) = (0u64, 0u64, 0u64, 0u64);
        for p in pieces {
            for w in p.chunks_exact(4) {
                a = a.wrapping_add(u64::from(u32::from_ne_bytes(w.try_into().unwrap())));
                b = b.wrapping_add(a);
                c = c.wrapping_add(b);
                d = d.wrapping_add(c);
            }
        }
        [a, b, c, d]
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(u64, u64, u64),
        Free(u64, u64, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let obj = prop_oneof![4 => Just(1u64), 1 => 0u64..4];
        let offset = prop_oneof![8 => 0u64..40 * G, 1 => Just(u64::MAX - 3), 1 => 40 * G..50 * G];
        let len = prop_oneof![4 => 1u64..5 * G, 1 => Just(0u64), 1 => Just(u64::MAX)];
        (any::<bool>(), obj, offset, len).prop_map(|(w, o, off, len)| {
            if w {
                Op::Write(o, off, (len % (256 * KIB)).max(512))
            } else {
                Op::Free(o, off, len)
            }
        })
    }

    proptest! {
        #[test]
        fn marks_exactly_the_blocks_a_naive_model_marks(
            ops in proptest::collection::vec(op(), 0..40),
            size in 1u64..42 * G,
            gshift in 12u32..18,
        ) {
            let g = 1u64 << gshift;
            let mut s = Stream::new(COMPRESSED, 0);
            for op in &ops {
                match *op {
                    // Large blocks as stored (compressed) keep the stream small.
                    Op::Write(o, off, len) if len > 4096 => s.write_stored(o, off, len, 512, LZ4),
                    Op::Write(o, off, len) => s.write(o, off, len),
                    Op::Free(o, off, len) => s.free(o, off, len),
                };
            }
            let bytes = s.end().bytes();
            let mut bm = BlockBitmap::new(g, size);
            mark_changes(&bytes[..], 1, &mut bm).unwrap();
            // Block i is marked iff some operation on object 1 overlaps its bytes.
            let blocks = size.div_ceil(g);
            let want: Vec<u64> = (0..blocks)
                .filter(|i| {
                    let (lo, hi) = (i * g, ((i + 1) * g).min(size));
                    ops.iter().any(|op| match *op {
                        Op::Write(1, off, len) | Op::Free(1, off, len) => {
                            let end = if len == u64::MAX { u128::MAX } else { off as u128 + len as u128 };
                            len > 0 && (off as u128) < hi as u128 && end > lo as u128
                        }
                        _ => false,
                    })
                })
                .collect();
            prop_assert_eq!(set_bits(&bm), want);
            prop_assert_eq!(bm.as_bytes().len() as u64, blocks.div_ceil(8));
            if blocks % 8 != 0 {
                let last = *bm.as_bytes().last().unwrap();
                prop_assert_eq!(last & (0xFF >> (blocks % 8)), 0, "padding bits");
            }
        }

        #[test]
        fn windows_are_the_bits_they_cover(
            marks in proptest::collection::vec((0u64..100 * G, 0u64..3 * G), 0..20),
            size in 0u64..100 * G,
            first in 0u64..110,
            length in prop_oneof![0u64..110 * G, Just(u64::MAX)],
        ) {
            let mut b = BlockBitmap::new(G, size);
            for (o, l) in marks {
                b.mark(o, l);
            }
            let w = b.window(first * G, length).unwrap();
            let want_size = (first * G).saturating_add(length).min(size).saturating_sub(first * G);
            prop_assert_eq!(w.size(), want_size);
            for i in 0..w.blocks() {
                prop_assert_eq!(w.is_set(i), b.is_set(first + i), "bit {}", i);
            }
            prop_assert_eq!(w.count(), (0..w.blocks()).filter(|i| w.is_set(*i)).count() as u64);
        }

        #[test]
        fn fletcher4_matches_the_reference_whatever_the_reads(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            cuts in proptest::collection::vec(0usize..3000, 0..10),
        ) {
            // One piece (multiple of 4 bytes) fed in arbitrary slices.
            let data = &data[..data.len() / 4 * 4];
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort();
            let mut f = Fletcher4::default();
            let mut at = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                f.update(&data[at..c]);
                at = c;
            }
            prop_assert_eq!(f.sum(), fletcher_reference(&[data]));
            // Pieces whose lengths are not multiples of 4 lose their last bytes.
            let (p, q) = data.split_at(data.len() / 3);
            let mut g = Fletcher4::default();
            g.update(&p[..p.len().saturating_sub(1)]);
            g.end_piece();
            g.update(q);
            let p4 = &p[..p.len().saturating_sub(1) / 4 * 4];
            prop_assert_eq!(g.sum(), fletcher_reference(&[p4, q]));
        }
    }
}
