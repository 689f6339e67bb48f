//! Installing and removing the two plugin directories (contract §1, §6, §11 "Packaging"):
//!
//! * `ROOT/volume/org.xen.xapi.storage.zvol/`: `Plugin.Query`, `Plugin.diagnostics`, and the
//!   `SR.*`/`Volume.*` methods we implement;
//! * `ROOT/datapath/zvol/`: `Plugin.Query`, `Plugin.diagnostics` and `Datapath.*`.
//!
//! The entry set comes from [`Method::entries`]; IDL methods we do not implement (compare,
//! similar_content, CBT, …) get **no** entry, because the daemon advertises features from the
//! entries present. Default `ROOT` is [`DEFAULT_ROOT`].
//!
//! # Entry styles
//! * [`EntryStyle::Symlink`] (default): each entry is a symlink to the absolute, canonical path of
//!   the binary. The daemon executes the entry path, so `argv[0]` names the method.
//! * [`EntryStyle::Shim`] (`--shims`): each entry is a small script, for hosts where the SMAPI
//!   tracing observer is enabled. In that mode the daemon runs
//!   `/usr/bin/python3 -m observer <entry> --json`, and `observer.py` `runpy.run_path`s the entry,
//!   which only works if the entry is Python source (contract §2.1, fact 17): a symlink to an ELF
//!   binary then fails (runpy cannot compile it), and so would a plain shell script. Our shim is
//!   a **bash/Python polyglot** ([`shim_script`]): executed directly (observer off) bash runs its
//!   `"exec" "-a" <entry> <binary> "$@"` line, which costs no interpreter start-up; run by
//!   `runpy` (observer on) the same line is a no-op string expression and the following
//!   `os.execv(<binary>, [<entry>] + sys.argv[1:])` replaces the Python process. Either way the
//!   binary runs with `argv[0]` = the entry path. The Python part is valid Python 2 and 3. The
//!   trace span of the observer is lost (the process is replaced), which is acceptable: the call
//!   works, which is the point.
//!
//! # Atomicity
//! The daemon watches `ROOT/volume` and `ROOT/datapath` with inotify and registers a datapath
//! plugin by running its `Plugin.Query` as soon as its directory appears; a half-populated
//! directory would stay unregistered. So each plugin directory is built complete in a staging
//! directory `ROOT/.xapi-zvol.staging-<pid>/` — **outside** the watched directories (a temporary
//! directory inside them would itself be registered as a plugin) but on the same filesystem —
//! and then moved into place with one `rename(2)`. An existing directory is swapped atomically
//! with `renameat2(RENAME_EXCHANGE)` (falling back to rename-aside-then-rename where the kernel
//! or filesystem lacks it) and the old one is removed afterwards. Re-installing identical
//! content changes nothing on disk (no needless reload in the daemon). The `volume`/`datapath`
//! roots are created if missing and never removed (deleting them breaks the daemon's inotify).
//!
//! A directory we are about to replace or remove must "look like ours" ([`looks_like_ours`]):
//! every entry is a method name and either a symlink to a binary named `xapi-zvol*` or one of our
//! shims. Anything else is left alone with an error.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::methods::{Method, PluginKind, Resolution};
use crate::query::{DATAPATH_PLUGIN_DIR, VOLUME_PLUGIN_DIR};

/// Where `xapi-storage-script` looks for plugins on XenServer/XCP-ng (packaging sets it in
/// `/etc/xapi-storage-script.conf`).
pub const DEFAULT_ROOT: &str = "/usr/libexec/xapi-storage-script";

/// Text every shim carries on its second line; [`looks_like_ours`] recognises shims by it.
pub const SHIM_MARKER: &str = "xapi-zvol entry-point shim";

/// Prefix of the binary's file name that symlink entries must point to to count as ours.
pub const BINARY_NAME_PREFIX: &str = "xapi-zvol";

/// How entries are materialised (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStyle {
    /// Symlinks to the binary.
    Symlink,
    /// bash/Python polyglot shims that exec the binary with `argv[0]` = the entry path.
    Shim,
}

/// What went wrong during install/uninstall.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// A filesystem operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The target directory exists but was not installed by us; it is left untouched.
    #[error("{0} exists but does not look like an xapi-zvol installation (unexpected entries: {1}); refusing to touch it, remove it by hand if it is stale")]
    NotOurs(PathBuf, String),
    /// The binary path cannot be embedded safely into a shim.
    #[error("cannot install shims for binary/entry path {0:?}: {1}")]
    BadPath(PathBuf, String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> InstallError {
    let context = context.into();
    move |source| InstallError::Io { context, source }
}

/// What [`install`] did to one plugin directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirOutcome {
    /// Did not exist; created.
    Created,
    /// Existed with different content; replaced atomically.
    Replaced,
    /// Already exactly as wanted; left untouched.
    Unchanged,
}

/// Result of [`install`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// `ROOT/volume/org.xen.xapi.storage.zvol`.
    pub volume_dir: PathBuf,
    /// What happened to it.
    pub volume: DirOutcome,
    /// `ROOT/datapath/zvol`.
    pub datapath_dir: PathBuf,
    /// What happened to it.
    pub datapath: DirOutcome,
}

/// The volume plugin directory under `root`.
pub fn volume_dir(root: &Path) -> PathBuf {
    root.join("volume").join(VOLUME_PLUGIN_DIR)
}

/// The datapath plugin directory under `root`.
pub fn datapath_dir(root: &Path) -> PathBuf {
    root.join("datapath").join(DATAPATH_PLUGIN_DIR)
}

/// The absolute, canonical path of the running binary (what entries point to).
pub fn current_binary() -> Result<PathBuf, InstallError> {
    let exe = std::env::current_exe().map_err(io_err("cannot find the running executable"))?;
    fs::canonicalize(&exe).map_err(io_err(format!("cannot canonicalise {}", exe.display())))
}

/// Characters refused in paths embedded in shims: they would need quoting in bash or Python.
fn check_embeddable(p: &Path) -> Result<&str, InstallError> {
    let s = p
        .to_str()
        .ok_or_else(|| InstallError::BadPath(p.to_path_buf(), "not UTF-8".into()))?;
    if let Some(c) = s
        .chars()
        .find(|c| matches!(c, '"' | '\\' | '$' | '`' | '!') || c.is_control())
    {
        return Err(InstallError::BadPath(
            p.to_path_buf(),
            format!("contains {c:?}"),
        ));
    }
    if !p.is_absolute() {
        return Err(InstallError::BadPath(
            p.to_path_buf(),
            "not absolute".into(),
        ));
    }
    Ok(s)
}

/// The shim for `entry` (its final installed path, which becomes `argv[0]`) running `binary`.
/// See the module docs for why it is a bash/Python polyglot.
pub fn shim_script(binary: &Path, entry: &Path) -> Result<String, InstallError> {
    let bin = check_embeddable(binary)?;
    let ent = check_embeddable(entry)?;
    Ok(format!(
        "#!/bin/bash\n\
         # {SHIM_MARKER} (generated by `xapi-zvol install --shims`; do not edit).\n\
         # Valid bash and valid Python: run directly, bash execs the binary; run by the SMAPI\n\
         # observer (python3 -m observer <this file> --json), Python execs it. Either way argv[0]\n\
         # is this entry's path, which selects the method.\n\
         \"exec\" \"-a\" \"{ent}\" \"{bin}\" \"$@\"\n\
         import os, sys\n\
         os.execv(\"{bin}\", [\"{ent}\"] + sys.argv[1:])\n"
    ))
}

/// What one entry should be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    Link(PathBuf),
    Shim(String),
}

fn wanted(
    kind: PluginKind,
    final_dir: &Path,
    binary: &Path,
    style: EntryStyle,
) -> Result<BTreeMap<String, Want>, InstallError> {
    Method::entries(kind)
        .into_iter()
        .map(|name| {
            let want = match style {
                EntryStyle::Symlink => Want::Link(binary.to_path_buf()),
                EntryStyle::Shim => Want::Shim(shim_script(binary, &final_dir.join(name))?),
            };
            Ok((name.to_string(), want))
        })
        .collect()
}

/// Whether `dir` already holds exactly `want`.
fn matches(dir: &Path, want: &BTreeMap<String, Want>) -> bool {
    let Ok(rd) = fs::read_dir(dir) else {
        return false;
    };
    let mut n = 0;
    for e in rd {
        let Ok(e) = e else { return false };
        n += 1;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let ok = match want.get(&name) {
            Some(Want::Link(target)) => fs::read_link(&path).map(|t| &t == target).unwrap_or(false),
            Some(Want::Shim(text)) => {
                fs::symlink_metadata(&path)
                    .map(|m| m.is_file() && m.permissions().mode() & 0o777 == 0o755)
                    .unwrap_or(false)
                    && fs::read_to_string(&path)
                        .map(|t| &t == text)
                        .unwrap_or(false)
            }
            None => false,
        };
        if !ok {
            return false;
        }
    }
    n == want.len()
}

/// Whether `dir` looks like one of our plugin directories: every entry is a method name, and is
/// either a symlink to a file named `xapi-zvol*` or a regular file carrying [`SHIM_MARKER`].
/// An empty directory counts as ours. Returns the offending entry names otherwise.
pub fn looks_like_ours(dir: &Path) -> Result<Result<(), Vec<String>>, InstallError> {
    let mut bad = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err(format!("cannot list {}", dir.display())))? {
        let e = e.map_err(io_err(format!("cannot list {}", dir.display())))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let is_method = matches!(Method::resolve(&name), Resolution::Known(_));
        let meta = fs::symlink_metadata(&path)
            .map_err(io_err(format!("cannot stat {}", path.display())))?;
        let ours = is_method
            && if meta.file_type().is_symlink() {
                fs::read_link(&path)
                    .ok()
                    .and_then(|t| {
                        t.file_name()
                            .map(|f| f.to_string_lossy().starts_with(BINARY_NAME_PREFIX))
                    })
                    .unwrap_or(false)
            } else {
                meta.is_file()
                    && fs::read_to_string(&path)
                        .map(|t| t.contains(SHIM_MARKER))
                        .unwrap_or(false)
            };
        if !ours {
            bad.push(name);
        }
    }
    bad.sort();
    Ok(if bad.is_empty() { Ok(()) } else { Err(bad) })
}

fn ensure_ours(dir: &Path) -> Result<(), InstallError> {
    looks_like_ours(dir)?.map_err(|bad| InstallError::NotOurs(dir.to_path_buf(), bad.join(", ")))
}

/// The staging directory: under `root` (same filesystem as the targets, so renames are atomic)
/// but outside the watched `volume/` and `datapath/` directories.
fn staging_dir(root: &Path) -> PathBuf {
    root.join(format!(".xapi-zvol.staging-{}", std::process::id()))
}

/// Removes the staging directory on every exit path.
struct Staging(PathBuf);

impl Staging {
    fn create(root: &Path) -> Result<Staging, InstallError> {
        let dir = staging_dir(root);
        if dir.exists() {
            // Left over by a killed run with a recycled pid.
            fs::remove_dir_all(&dir)
                .map_err(io_err(format!("cannot remove stale {}", dir.display())))?;
        }
        fs::create_dir(&dir).map_err(io_err(format!("cannot create {}", dir.display())))?;
        Ok(Staging(dir))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Atomically exchanges two paths (`renameat2(RENAME_EXCHANGE)`, Linux ≥ 3.15). Called through
/// `syscall(2)` because old dom0 glibc (2.17) has no `renameat2` wrapper.
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two valid NUL-terminated paths, AT_FDCWD, and a flag value; the kernel reads only.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Moves the complete directory `staged` to `target`, swapping out an existing one (which must be
/// ours). `scratch` is a path inside the staging directory for the old content.
fn swap_into_place(
    staged: &Path,
    target: &Path,
    scratch: &Path,
) -> Result<DirOutcome, InstallError> {
    if fs::symlink_metadata(target).is_err() {
        fs::rename(staged, target).map_err(io_err(format!(
            "cannot move {} to {}",
            staged.display(),
            target.display()
        )))?;
        return Ok(DirOutcome::Created);
    }
    ensure_ours(target)?;
    match exchange(staged, target) {
        Ok(()) => {
            // `staged` now holds the old directory.
            fs::remove_dir_all(staged)
                .map_err(io_err(format!("cannot remove old {}", staged.display())))?;
        }
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::EINVAL | libc::ENOTSUP)
            ) =>
        {
            fs::rename(target, scratch).map_err(io_err(format!(
                "cannot move old {} aside",
                target.display()
            )))?;
            fs::rename(staged, target).map_err(io_err(format!(
                "cannot move {} to {}",
                staged.display(),
                target.display()
            )))?;
            fs::remove_dir_all(scratch)
                .map_err(io_err(format!("cannot remove old {}", scratch.display())))?;
        }
        Err(e) => {
            return Err(InstallError::Io {
                context: format!(
                    "cannot exchange {} with {}",
                    staged.display(),
                    target.display()
                ),
                source: e,
            })
        }
    }
    Ok(DirOutcome::Replaced)
}

fn install_one(
    root: &Path,
    staging: &Path,
    kind: PluginKind,
    binary: &Path,
    style: EntryStyle,
) -> Result<(PathBuf, DirOutcome), InstallError> {
    let (target, tag) = match kind {
        PluginKind::Volume => (volume_dir(root), "volume"),
        PluginKind::Datapath => (datapath_dir(root), "datapath"),
    };
    let parent = target.parent().expect("plugin dir has a parent");
    fs::create_dir_all(parent).map_err(io_err(format!("cannot create {}", parent.display())))?;
    let want = wanted(kind, &target, binary, style)?;
    if matches(&target, &want) {
        return Ok((target, DirOutcome::Unchanged));
    }
    let staged = staging.join(tag);
    fs::create_dir(&staged).map_err(io_err(format!("cannot create {}", staged.display())))?;
    fs::set_permissions(&staged, fs::Permissions::from_mode(0o755))
        .map_err(io_err(format!("cannot chmod {}", staged.display())))?;
    for (name, w) in &want {
        let p = staged.join(name);
        match w {
            Want::Link(t) => {
                symlink(t, &p).map_err(io_err(format!("cannot create symlink {}", p.display())))?
            }
            Want::Shim(text) => {
                fs::write(&p, text).map_err(io_err(format!("cannot write {}", p.display())))?;
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755))
                    .map_err(io_err(format!("cannot chmod {}", p.display())))?;
            }
        }
    }
    let outcome = swap_into_place(&staged, &target, &staging.join(format!("{tag}.old")))?;
    Ok((target, outcome))
}

/// Installs (or updates) both plugin directories under `root`, with entries pointing at
/// `binary` (an absolute path; see [`current_binary`]). Idempotent. The datapath directory is
/// installed first, so that volume URIs always find their datapath plugin.
pub fn install(root: &Path, binary: &Path, style: EntryStyle) -> Result<Installed, InstallError> {
    if !binary.is_absolute() {
        return Err(InstallError::BadPath(
            binary.to_path_buf(),
            "binary path must be absolute".into(),
        ));
    }
    fs::create_dir_all(root).map_err(io_err(format!("cannot create {}", root.display())))?;
    let staging = Staging::create(root)?;
    let (datapath_dir, datapath) =
        install_one(root, &staging.0, PluginKind::Datapath, binary, style)?;
    let (volume_dir, volume) = install_one(root, &staging.0, PluginKind::Volume, binary, style)?;
    Ok(Installed {
        volume_dir,
        volume,
        datapath_dir,
        datapath,
    })
}

/// Removes both plugin directories under `root` if present and ours (volume first, so no volume
/// plugin is ever left without its datapath). Returns the directories removed. Each directory
/// disappears with one rename (into the staging directory) before being deleted.
pub fn uninstall(root: &Path) -> Result<Vec<PathBuf>, InstallError> {
    let targets = [volume_dir(root), datapath_dir(root)];
    // Check both first so that a refusal leaves everything in place.
    for t in &targets {
        if fs::symlink_metadata(t).is_ok() {
            ensure_ours(t)?;
        }
    }
    let mut removed = Vec::new();
    if targets.iter().all(|t| fs::symlink_metadata(t).is_err()) {
        return Ok(removed);
    }
    let staging = Staging::create(root)?;
    for (i, t) in targets.iter().enumerate() {
        if fs::symlink_metadata(t).is_err() {
            continue;
        }
        let aside = staging.0.join(format!("old-{i}"));
        fs::rename(t, &aside).map_err(io_err(format!("cannot move {} aside", t.display())))?;
        fs::remove_dir_all(&aside).map_err(io_err(format!("cannot remove {}", aside.display())))?;
        removed.push(t.clone());
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_binary(dir: &Path) -> PathBuf {
        let b = dir.join("bin/xapi-zvol");
        fs::create_dir_all(b.parent().unwrap()).unwrap();
        fs::write(&b, "#!/bin/sh\necho \"$0 $*\"\n").unwrap();
        fs::set_permissions(&b, fs::Permissions::from_mode(0o755)).unwrap();
        b
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn install_symlinks_then_reinstall_is_unchanged_then_shims_replace() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let bin = fake_binary(tmp.path());
        let r = install(&root, &bin, EntryStyle::Symlink).unwrap();
        assert_eq!(
            (r.volume, r.datapath),
            (DirOutcome::Created, DirOutcome::Created)
        );
        let mut want: Vec<String> = Method::entries(PluginKind::Volume)
            .iter()
            .map(|s| s.to_string())
            .collect();
        want.sort();
        assert_eq!(names(&r.volume_dir), want);
        assert_eq!(fs::read_link(r.volume_dir.join("SR.attach")).unwrap(), bin);
        assert!(!r.volume_dir.join("Volume.compare").exists());
        assert!(!r.datapath_dir.join("SR.attach").exists());
        assert!(r.datapath_dir.join("Datapath.attach").exists());

        let r2 = install(&root, &bin, EntryStyle::Symlink).unwrap();
        assert_eq!(
            (r2.volume, r2.datapath),
            (DirOutcome::Unchanged, DirOutcome::Unchanged)
        );

        let r3 = install(&root, &bin, EntryStyle::Shim).unwrap();
        assert_eq!(
            (r3.volume, r3.datapath),
            (DirOutcome::Replaced, DirOutcome::Replaced)
        );
        let shim = fs::read_to_string(r3.volume_dir.join("Plugin.Query")).unwrap();
        assert!(shim.contains(SHIM_MARKER));
        // No staging leftovers, only the two roots.
        assert_eq!(names(&root), ["datapath", "volume"]);
        assert_eq!(uninstall(&root).unwrap().len(), 2);
        assert!(!r3.volume_dir.exists() && !r3.datapath_dir.exists());
        assert!(root.join("volume").is_dir() && root.join("datapath").is_dir());
        assert!(uninstall(&root).unwrap().is_empty());
    }

    #[test]
    fn foreign_directories_are_never_touched() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let bin = fake_binary(tmp.path());
        let vd = volume_dir(&root);
        fs::create_dir_all(&vd).unwrap();
        fs::write(
            vd.join("SR.attach"),
            "#!/usr/bin/python3\nprint('someone else')\n",
        )
        .unwrap();
        let e = install(&root, &bin, EntryStyle::Symlink).unwrap_err();
        assert!(matches!(e, InstallError::NotOurs(..)), "{e}");
        assert!(e.to_string().contains("SR.attach"));
        let e = uninstall(&root).unwrap_err();
        assert!(matches!(e, InstallError::NotOurs(..)));
        assert_eq!(
            fs::read_to_string(vd.join("SR.attach")).unwrap(),
            "#!/usr/bin/python3\nprint('someone else')\n"
        );
    }

    #[test]
    fn shim_text_embeds_binary_and_entry_for_bash_and_python() {
        let shim = shim_script(
            Path::new("/opt/x/xapi-zvol"),
            Path::new("/r/volume/d/SR.ls"),
        )
        .unwrap();
        let lines: Vec<&str> = shim.lines().collect();
        assert_eq!(lines[0], "#!/bin/bash");
        assert!(lines[1].contains(SHIM_MARKER));
        assert!(
            lines.contains(&"\"exec\" \"-a\" \"/r/volume/d/SR.ls\" \"/opt/x/xapi-zvol\" \"$@\""),
            "{shim}"
        );
        assert!(
            lines.contains(
                &"os.execv(\"/opt/x/xapi-zvol\", [\"/r/volume/d/SR.ls\"] + sys.argv[1:])"
            ),
            "{shim}"
        );
    }

    #[test]
    fn shim_refuses_unquotable_paths() {
        for bad in ["/a\"b", "/a$b", "/a\\b", "/a`b", "rel/path", "/a\nb"] {
            assert!(
                shim_script(Path::new("/bin/xapi-zvol"), Path::new(bad)).is_err(),
                "{bad:?}"
            );
            assert!(
                shim_script(Path::new(bad), Path::new("/x/SR.ls")).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn relative_binary_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            install(tmp.path(), Path::new("xapi-zvol"), EntryStyle::Symlink),
            Err(InstallError::BadPath(..))
        ));
    }
}
