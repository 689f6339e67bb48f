//! The one place where storage errors ([`zfs_volume::Error`]) become wire errors
//! ([`PluginError`]).
//!
//! | `zfs_volume::Error` | `PluginError` | code | `params` |
//! |---|---|---|---|
//! | `VolumeNotFound(key)` | `volume_does_not_exist` | `SR_BACKEND_FAILURE` | `["Volume_does_not_exist", key]` |
//! | `SrNotFound` | `sr_does_not_exist` | `SR_BACKEND_FAILURE` | `["SR_does_not_exist", msg]` |
//! | `Shrink` | `invalid_size` | `SR_BACKEND_FAILURE_79` | `["VDI Invalid size", msg]` |
//! | `Invalid{what: "volume size"}` | `invalid_size` | `SR_BACKEND_FAILURE_79` | `["VDI Invalid size", msg]` |
//! | `Invalid` (anything else: key, name, value, dataset name), and `Zfs(Invalid)` (an argument the ZFS layer refused) | `custom` | `SR_BACKEND_FAILURE` | `["Invalid_argument", msg]` |
//! | `InUse` | `in_use` | `SR_BACKEND_FAILURE_24` | `["VDIInUse", msg]` |
//! | `Busy` | `busy` | `SR_BACKEND_FAILURE_201` | `["Currently unavailable, try again", msg]` |
//! | `Config{key, reason}` | `bad_configuration` | `SR_BACKEND_FAILURE_109` | `["Invalid configuration", "key: reason"]` |
//! | `NoSpace`, and `Zfs` (a ZFS call or a channel program) with `ENOSPC`/`EDQUOT` | `no_space` | `SR_BACKEND_FAILURE_44` | `["There is insufficient space", msg]` |
//! | `Refused` | `backend` | `SR_BACKEND_FAILURE` | `["Backend_failure", msg]` |
//! | `NotOurs` | `backend` | `SR_BACKEND_FAILURE` | `["Backend_failure", msg]` |
//! | `Zfs` (a ZFS call or a channel program) while the pool is not imported or is suspended (checked on this error path only) | `backend` | `SR_BACKEND_FAILURE` | `["Backend_failure", "pool P is not imported: check the name ... 'zpool import' lists ... (msg)"]` or `"pool P is suspended ...: ... 'zpool clear P' ... (msg)"` |
//! | everything else (`Zfs`: a ZFS call, a program, an nvlist, a send stream; `Command`, `Io`, `Corrupt`, future variants) | `backend` | `SR_BACKEND_FAILURE` | `["Backend_failure", msg]` |
//!
//! `msg` is always the `Display` of the zfs-volume error, which is written as an actionable
//! sentence, so the admin sees *why* in `xe` output and in XenCenter/XO.
//!
//! Choices worth a word:
//! * **`Invalid` is not `Volume_does_not_exist`.** A malformed key (`../x`, `a@b`, 300
//!   characters, NUL) was never issued by us and never will be; answering "does not exist"
//!   would read as "it was there and is gone" and could make xapi forget a VDI record. It is an
//!   invalid argument of the call, so it gets the IDL-style exception name `Invalid_argument`
//!   (the name OCaml/xapi uses for that condition) under the generic code, like the other typed
//!   conditions the Python bindings print (contract §2.3). No numbered SMAPIv1 code fits: 109 is
//!   about device-config, 79 about sizes (used for the one `Invalid` that *is* a size).
//! * **`Refused`** (e.g. reverting onto a snapshot VDI) and **`NotOurs`** (a dataset without our
//!   marker) are conditions of the storage, not of the request shape, and no IDL exception or
//!   SMAPIv1 code names them; `Backend_failure` with the explicit sentence ("volume X cannot be
//!   changed: ...", "... is not an xapi-zvol SR dataset ...; refusing to touch it") is the
//!   clearest we can give. (SR.create/SR.attach turn `NotOurs` into a configuration error
//!   naming `pool`, where it is one; see `api/sr_config.rs`.)
//! * The source location recorded in the backtrace is the `?` (or `.into()`) site, thanks to
//!   `#[track_caller]`, which points at the SMAPI method that failed.

use zfs_volume::Error;

use crate::error::{PluginError, CODE_GENERIC};

/// The IDL-style name used in `params[0]` for a malformed argument (see the module docs).
pub const INVALID_ARGUMENT: &str = "Invalid_argument";

fn is_space_errno(e: &Error) -> bool {
    e.is_errno(libc::ENOSPC) || e.is_errno(libc::EDQUOT)
}

/// A ZFS step failed: if its pool is gone or suspended, that is the news, not the errno
/// of the step (`ENOENT` from an exported pool reads "the parent dataset does not exist").
/// One pool-stats ioctl, on the error path only.
fn pool_problem(e: &Error) -> Option<String> {
    let pool = e.pool()?;
    zfs_volume::Zfs::get().ok()?.pool_problem(pool)
}

impl From<Error> for PluginError {
    #[track_caller]
    fn from(e: Error) -> PluginError {
        let msg = e.to_string();
        match e {
            Error::VolumeNotFound(key) => PluginError::volume_does_not_exist(key),
            Error::SrNotFound(_) => PluginError::sr_does_not_exist(msg),
            Error::Shrink { .. } => PluginError::invalid_size(msg),
            Error::Invalid { ref what, .. } if what == "volume size" => {
                PluginError::invalid_size(msg)
            }
            Error::Invalid { .. } | Error::Zfs(zfs_volume::lzc::Error::Invalid { .. }) => {
                PluginError::custom(
                    CODE_GENERIC,
                    vec![INVALID_ARGUMENT.to_string(), msg.clone()],
                    msg,
                )
            }
            Error::InUse { .. } => PluginError::in_use(msg),
            Error::Busy { .. } => PluginError::busy(msg),
            Error::Config { key, reason } => PluginError::bad_configuration(key, reason),
            Error::NoSpace { .. } => PluginError::no_space(msg),
            ref z @ Error::Zfs(_) if is_space_errno(z) => PluginError::no_space(msg),
            ref z @ Error::Zfs(_) if z.errno().is_some() => match pool_problem(z) {
                Some(why) => PluginError::backend(format!("{why} ({msg})")),
                None => PluginError::backend(msg),
            },
            _ => PluginError::backend(msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use zfs_volume::{Errno, Op};

    fn wire(e: Error) -> (String, Vec<String>) {
        let p: PluginError = e.into();
        (p.code(), p.params())
    }

    #[test]
    fn every_variant_maps_with_the_message_in_params() {
        let (c, p) = wire(Error::VolumeNotFound("k1".into()));
        assert_eq!(
            (c.as_str(), p),
            (
                "SR_BACKEND_FAILURE",
                vec!["Volume_does_not_exist".to_string(), "k1".into()]
            )
        );

        let (c, p) = wire(Error::SrNotFound("tank/zvol-sr-x".into()));
        assert_eq!(c, "SR_BACKEND_FAILURE");
        assert_eq!(p[0], "SR_does_not_exist");
        assert!(
            p[1].contains("tank/zvol-sr-x") && p[1].contains("imported"),
            "{p:?}"
        );

        let (c, p) = wire(Error::Shrink {
            key: "k".into(),
            current: 10,
            requested: 5,
        });
        assert_eq!(c, "SR_BACKEND_FAILURE_79");
        assert_eq!(p[0], "VDI Invalid size");
        assert!(p[1].contains("cannot shrink volume k"), "{p:?}");

        let (c, p) = wire(Error::invalid("volume size", "1 bytes is too large"));
        assert_eq!(
            (c.as_str(), p[0].as_str()),
            ("SR_BACKEND_FAILURE_79", "VDI Invalid size")
        );

        let (c, p) = wire(Error::invalid("volume key", "\"../x\" is not a volume key"));
        assert_eq!(c, "SR_BACKEND_FAILURE");
        assert_eq!(p[0], INVALID_ARGUMENT);
        assert!(p[1].contains("../x"), "{p:?}");
        // An argument the ZFS layer refused is an invalid argument too.
        let (c, p) = wire(Error::Zfs(zfs_volume::lzc::Error::invalid(
            "dataset name",
            "\"a\\0b\" contains a NUL byte",
        )));
        assert_eq!(
            (c.as_str(), p[0].as_str()),
            ("SR_BACKEND_FAILURE", INVALID_ARGUMENT)
        );

        let (c, p) = wire(Error::InUse {
            key: "k".into(),
            detail: "EBUSY".into(),
        });
        assert_eq!(
            (c.as_str(), p[0].as_str()),
            ("SR_BACKEND_FAILURE_24", "VDIInUse")
        );
        assert!(p[1].contains("volume k is in use"));

        let (c, p) = wire(Error::Busy {
            sr: "t/s".into(),
            waited_secs: 30,
        });
        assert_eq!(c, "SR_BACKEND_FAILURE_201");
        assert!(p[1].contains("t/s is busy"));

        let p: PluginError = Error::Config {
            key: "device".into(),
            reason: "no such file".into(),
        }
        .into();
        assert_eq!(
            p.kind(),
            &ErrorKind::BadConfiguration {
                key: "device".into(),
                detail: "no such file".into()
            }
        );
        assert_eq!(p.code(), "SR_BACKEND_FAILURE_109");
        assert_eq!(p.params()[1], "device: no such file");

        let (c, p) = wire(Error::NoSpace {
            what: "create".into(),
            detail: "ENOSPC".into(),
        });
        assert_eq!(
            (c.as_str(), p[0].as_str()),
            ("SR_BACKEND_FAILURE_44", "There is insufficient space")
        );
        let (c, _) = wire(Error::zfs(Op::Create, "t/v", Errno(libc::ENOSPC)));
        assert_eq!(c, "SR_BACKEND_FAILURE_44");

        for e in [
            Error::Refused {
                key: "k".into(),
                reason: "a snapshot VDI cannot be reverted".into(),
            },
            Error::NotOurs("tank/x".into()),
            Error::zfs(Op::Destroy, "tank/x", Errno(libc::EEXIST)),
            Error::Command {
                command: "zpool create".into(),
                stderr: "no such device".into(),
            },
            Error::Corrupt("odd".into()),
        ] {
            let msg = e.to_string();
            let (c, p) = wire(e);
            assert_eq!(c, "SR_BACKEND_FAILURE");
            assert_eq!(p, vec!["Backend_failure".to_string(), msg]);
        }
    }

    #[test]
    fn the_location_is_the_conversion_site() {
        let f = || -> Result<(), PluginError> { Err(Error::VolumeNotFound("k".into()))? };
        let e = f().unwrap_err();
        assert!(e.file().ends_with("error_map.rs"), "{}", e.file());
        assert_eq!(e.line(), line!() - 3);
    }
}
