//! Host concerns of the SR layer, in one place and built on rustix: the SR locks and the other
//! files kept under the run directory ([`lock`]), the mounts that keep an attached SR's
//! containers resident ([`mounts`]), and the block devices behind zvols ([`device`]). The SR
//! layer (`sr/`) decides what to do; this module does it to the host. Its only `unsafe` is the
//! two block-device ioctls (`BLKZNAME`, `BLKFLSBUF`).
#![allow(unsafe_code)]

pub mod device;
pub mod lock;
pub(crate) mod mounts;
