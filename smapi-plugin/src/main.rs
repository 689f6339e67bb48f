//! `xapi-zvol`: one binary, two roles.
//!
//! * Invoked through a plugin entry (`.../org.xen.xapi.storage.zvol/SR.attach --json`,
//!   `.../datapath/zvol/Datapath.attach --json`, ...): **plugin mode**, one SMAPIv3 call handled
//!   by [`smapi_plugin::dispatch::run`]. stdout carries only the result JSON.
//! * Invoked as itself (`basename(argv[0])` starts with `xapi-zvol`): the **admin CLI**
//!   (`install`, `uninstall`, `version`, and the SR reports `status`/`tree`/`check`).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use smapi_plugin::admin::{self, AdminCmd};
use smapi_plugin::config::Config;
use smapi_plugin::install::{self, DirOutcome, EntryStyle, BINARY_NAME_PREFIX, DEFAULT_ROOT};
use smapi_plugin::query::{
    DATAPATH_PLUGIN_DIR, PLUGIN_NAME, REQUIRED_API_VERSION, VOLUME_PLUGIN_DIR,
};
use smapi_plugin::{dispatch, logging, prefetch};

/// Admin CLI of xapi-zvol, the SMAPIv3 ZFS zvol storage plugin.
#[derive(Debug, Parser)]
#[command(name = "xapi-zvol", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Install (or update) the volume and datapath plugin directories, atomically.
    Install {
        /// xapi-storage-script plugin root.
        #[arg(long, default_value = DEFAULT_ROOT)]
        root: PathBuf,
        /// Install bash/Python polyglot shims instead of symlinks (needed when the SMAPI tracing
        /// observer is enabled; see README).
        #[arg(long)]
        shims: bool,
    },
    /// Remove the plugin directories (only if they were installed by xapi-zvol).
    Uninstall {
        /// xapi-storage-script plugin root.
        #[arg(long, default_value = DEFAULT_ROOT)]
        root: PathBuf,
    },
    /// Print the version and the names the plugin registers.
    Version,
    /// Show an SR's dataset, space and health (read-only).
    Status {
        /// The SR: its `sr` string (from SR.attach) or dataset name.
        #[arg(long)]
        sr: String,
    },
    /// Show an SR's volumes, snapshots and internal datasets as a tree (read-only).
    Tree {
        /// The SR: its `sr` string (from SR.attach) or dataset name.
        #[arg(long)]
        sr: String,
    },
    /// Check an SR's consistency and report problems (read-only).
    Check {
        /// The SR: its `sr` string (from SR.attach) or dataset name.
        #[arg(long)]
        sr: String,
    },
}

fn main() -> ExitCode {
    // First: the rest of the call's code pages arrive while it runs (prefetch.rs).
    prefetch::own_executable();
    let mut argv = std::env::args_os();
    let argv0 = PathBuf::from(argv.next().unwrap_or_default());
    let rest: Vec<OsString> = argv.collect();
    let name = argv0
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    logging::init();
    // The environment is read here, once; the SR layer gets its part for the whole process.
    let config = Config::from_env();
    let _ = config.host.clone().install();
    if name.starts_with(BINARY_NAME_PREFIX) {
        admin_main(&argv0, rest)
    } else {
        plugin_main(&config, &argv0, rest)
    }
}

/// Plugin mode: one SMAPIv3 call; the process ends here.
fn plugin_main(config: &Config, argv0: &Path, rest: Vec<OsString>) -> ! {
    // The default hook prints to stderr, which is fine; this one also reaches syslog. The panic
    // itself is caught by dispatch::run and turned into the error JSON.
    std::panic::set_hook(Box::new(|info| logging::error(&format!("panic: {info}"))));
    let args: Vec<String> = rest
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let code = match private_stdout() {
        Some(proto) => dispatch::run(
            &config.datapath,
            argv0,
            &args,
            std::io::stdin().lock(),
            proto,
        ),
        None => dispatch::run(
            &config.datapath,
            argv0,
            &args,
            std::io::stdin().lock(),
            std::io::stdout().lock(),
        ),
    };
    exit_now(i32::from(u8::try_from(code).unwrap_or(1)))
}

/// Ends the call once its answer is written (`dispatch::run` flushed it): `_exit`, not `exit`.
/// A normal exit runs the finalizers of the eighteen libraries that libzfs_core and libnvpair
/// load (libtirpc and the Kerberos libraries behind it among them), which free memory the
/// kernel frees anyway; under the test VM's emulation that was 7 ms of every call (a cold
/// Volume.list_changed_blocks, 20 runs: 10.0 ms from the answer to the exit, 3.3 ms with
/// `_exit`). Nothing of ours needs an exit handler: the SR lock and every descriptor close with
/// the process, logs are written unbuffered (stderr, syslog), and C streams are flushed here.
fn exit_now(code: i32) -> ! {
    let _ = std::io::stderr().flush();
    // SAFETY: fflush(NULL) flushes every C stdio stream and takes no pointer we own; _exit
    // never returns and needs nothing from Rust's runtime (no destructor is left to run that
    // would write anything: the answer is flushed).
    unsafe {
        libc::fflush(std::ptr::null_mut());
        libc::_exit(code)
    }
}

/// Keeps the protocol channel private: returns a close-on-exec duplicate of fd 1 for the one
/// result value and points fd 1 at stderr, so that anything else writing to "stdout" (a
/// `println!` in a backend, a C library, a child process inheriting fd 1) ends up in the log
/// instead of corrupting the JSON the daemon parses. `None` (keep plain stdout) if the fds
/// cannot be rearranged.
fn private_stdout() -> Option<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain fd syscalls on fds 1 and 2; the duplicate is owned by the returned File only.
    unsafe {
        let proto = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if proto < 0 {
            return None;
        }
        if libc::dup2(2, 1) < 0 {
            libc::close(proto);
            return None;
        }
        Some(std::fs::File::from_raw_fd(proto))
    }
}

/// The admin CLI.
fn admin_main(argv0: &Path, rest: Vec<OsString>) -> ExitCode {
    let cli = Cli::parse_from(std::iter::once(argv0.as_os_str().to_os_string()).chain(rest));
    match admin(cli.cmd) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(msg) => {
            let _ = writeln!(std::io::stderr(), "xapi-zvol: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn describe(outcome: DirOutcome) -> &'static str {
    match outcome {
        DirOutcome::Created => "created",
        DirOutcome::Replaced => "replaced",
        DirOutcome::Unchanged => "unchanged",
    }
}

fn admin(cmd: Cmd) -> Result<String, String> {
    match cmd {
        Cmd::Install { root, shims } => {
            let binary = install::current_binary().map_err(|e| e.to_string())?;
            let style = if shims { EntryStyle::Shim } else { EntryStyle::Symlink };
            let r = install::install(&root, &binary, style).map_err(|e| e.to_string())?;
            Ok(format!(
                "{}: {}\n{}: {}\nentries -> {} ({})\n\
                 next: systemctl restart xapi-storage-script; xe-toolstack-restart; xe sm-list type={PLUGIN_NAME}\n",
                r.volume_dir.display(),
                describe(r.volume),
                r.datapath_dir.display(),
                describe(r.datapath),
                binary.display(),
                if shims { "shims" } else { "symlinks" },
            ))
        }
        Cmd::Uninstall { root } => {
            let removed = install::uninstall(&root).map_err(|e| e.to_string())?;
            if removed.is_empty() {
                Ok(format!("nothing to remove under {}\n", root.display()))
            } else {
                Ok(removed.iter().map(|p| format!("removed {}\n", p.display())).collect())
            }
        }
        Cmd::Version => Ok(format!(
            "xapi-zvol {} (SMAPIv3 API {REQUIRED_API_VERSION}; SR type {PLUGIN_NAME}; volume plugin {VOLUME_PLUGIN_DIR}; datapath plugin {DATAPATH_PLUGIN_DIR})\n",
            env!("CARGO_PKG_VERSION")
        )),
        Cmd::Status { sr } => sr_report(AdminCmd::Status { sr }),
        Cmd::Tree { sr } => sr_report(AdminCmd::Tree { sr }),
        Cmd::Check { sr } => sr_report(AdminCmd::Check { sr }),
    }
}

fn sr_report(cmd: AdminCmd) -> Result<String, String> {
    let mut text = admin::run(&cmd).map_err(|e| e.to_string())?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}
