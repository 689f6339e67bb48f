//! ZFS channel programs: Lua run inside the kernel.
//!
//! A *sync* program runs as one sync task: all its changes land in one txg and no other
//! administrative operation interleaves. A *nosync* program only reads, in open context,
//! without waiting for a txg: it is how we list and stat in one ioctl.
//!
//! Our programs are `.lua` files under `src/lua/`, included at compile time (see
//! [`program!`]; the SR layer's programs also get its shared names and prelude). Arguments are an nvlist (accepted types: boolean_value,
//! string, int64, nvlist and string/int64/uint64 arrays — not plain uint64 nor presence
//! booleans); the output is parsed into an [`NvValue`] tree. Lua numbers come back as
//! int64.

use super::nvlist::{NvList, NvValue};
use super::util::{cstring, name};
use super::{Errno, Zfs};
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;
use std::ptr;

/// A channel program: a name (for messages) and its full Lua source.
///
/// ```
/// use libzfs_core::Program;
/// let p = Program::new("count", "local n = 0; for c in zfs.list.children(...) do n = n + 1 end; return n");
/// assert_eq!(p.name, "count");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// Short name, used in errors and logs.
    pub name: &'static str,
    /// Lua source.
    pub source: &'static str,
}

impl Program {
    /// A program from static source.
    pub const fn new(name: &'static str, source: &'static str) -> Program {
        Program { name, source }
    }
}

/// A program of this crate's `src/lua/<name>.lua`, included at compile time.
macro_rules! program {
    ($name:literal) => {
        $crate::Program::new(
            $name,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/lua/",
                $name,
                ".lua"
            )),
        )
    };
}
pub(crate) use program;

/// Instruction and memory limits of one run. The memory limit also bounds the output.
///
/// ```
/// let l = libzfs_core::Limits::default();
/// assert_eq!(l.instructions, 10_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Lua instructions (kernel maximum 100,000,000 by default; 0 would be unlimited and
    /// is refused here: a runaway sync program would stall the pool).
    pub instructions: u64,
    /// Bytes of Lua memory, also the output buffer size (maximum 100 MiB by default).
    pub memory: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            instructions: 10_000_000,
            memory: 10 << 20,
        }
    }
}

impl Limits {
    /// Limits for listing programs whose output grows with the SR (1,000s of datasets).
    ///
    /// ```
    /// assert!(libzfs_core::Limits::large().memory > libzfs_core::Limits::default().memory);
    /// ```
    pub fn large() -> Limits {
        Limits {
            instructions: 100_000_000,
            memory: 100 << 20,
        }
    }
}

impl Zfs {
    /// Run a program that changes things, in one txg (`lzc_channel_program`). Returns
    /// what the program returned.
    ///
    /// Errors: [`Error::Program`] with the Lua message (`EINVAL` compile error — nothing
    /// ran; `ECHRNG` runtime error, `ETIME`/`ENOSPC` limits — partial execution possible).
    ///
    /// ```no_run
    /// use libzfs_core::{Zfs, Limits, NvList, Program};
    /// let p = Program::new("snap", "return zfs.sync.snapshot(...)");
    /// let mut args = NvList::new()?;
    /// args.add_string("x", "y")?;
    /// let out = Zfs::get()?.program_sync("tank", &p, &args, Limits::default())?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn program_sync(
        &self,
        pool: &str,
        program: &Program,
        args: &NvList,
        limits: Limits,
    ) -> Result<NvValue> {
        self.run_program(pool, program, args, limits, true)
    }

    /// Run a read-only program without waiting for a txg (`lzc_channel_program_nosync`).
    ///
    /// ```no_run
    /// use libzfs_core::{Zfs, Limits, NvList, Program};
    /// let p = Program::new("n", "local n = 0 for c in zfs.list.children('tank') do n = n + 1 end return n");
    /// let out = Zfs::get()?.program_nosync("tank", &p, &NvList::new()?, Limits::default())?;
    /// # Ok::<(), libzfs_core::Error>(())
    /// ```
    pub fn program_nosync(
        &self,
        pool: &str,
        program: &Program,
        args: &NvList,
        limits: Limits,
    ) -> Result<NvValue> {
        self.run_program(pool, program, args, limits, false)
    }

    fn run_program(
        &self,
        pool: &str,
        program: &Program,
        args: &NvList,
        limits: Limits,
        sync: bool,
    ) -> Result<NvValue> {
        if limits.instructions == 0 || limits.memory == 0 {
            return Err(Error::invalid(
                "channel program limits",
                "instruction and memory limits must be > 0",
            ));
        }
        // Above the module's maxima the kernel says EINVAL, but libzfs_core first mallocs
        // an output buffer of `memory` bytes and fails with a misleading ENOMEM when that
        // is large: check here, against the module parameters.
        let (max_instr, max_mem) = module_limits();
        if limits.instructions > max_instr || limits.memory > max_mem {
            return Err(Error::invalid(
                "channel program limits",
                format!(
                    "{} instructions / {} bytes exceeds the zfs module maximum of {max_instr} / {max_mem} \
                     (zfs_lua_max_instrlimit / zfs_lua_max_memlimit)",
                    limits.instructions, limits.memory
                ),
            ));
        }
        let p = name(pool)?;
        let src = cstring("channel program", program.source)?;
        let mut out: *mut sys::nvlist_t = ptr::null_mut();
        // lzc only copies the argument list into its request (fnvlist_add_nvlist); the
        // mutable pointer in its signature is historical.
        let a = args.as_ptr() as *mut sys::nvlist_t;
        // SAFETY: valid C strings and nvlist; `out` is an out-pointer we own afterwards.
        let rc = unsafe {
            if sync {
                sys::lzc_channel_program(
                    p.as_ptr(),
                    src.as_ptr(),
                    limits.instructions,
                    limits.memory,
                    a,
                    &mut out,
                )
            } else {
                sys::lzc_channel_program_nosync(
                    p.as_ptr(),
                    src.as_ptr(),
                    limits.instructions,
                    limits.memory,
                    a,
                    &mut out,
                )
            }
        };
        let out = if out.is_null() {
            None
        } else {
            // SAFETY: lzc allocated this list for us.
            Some(unsafe { NvList::from_raw_owned(out) }.to_tree())
        };
        if rc == 0 {
            return Ok(match out.as_ref().and_then(|t| t.get("return")) {
                Some(v) => v.clone(),
                None => NvValue::Flag,
            });
        }
        let why = crate::error::reason(Op::ChannelProgram, Errno(rc));
        let message = match out.as_ref().and_then(|t| t.get("error")) {
            // The kernel's words for the limits ("Channel program timed out.", "Memory
            // limit exhausted.") do not say which limit or what to do: add ours.
            Some(NvValue::Str(s)) if matches!(rc, libc::ETIME | libc::ENOSPC | libc::ENOMEM) => {
                format!("{why}: {s}")
            }
            Some(NvValue::Str(s)) => s.clone(),
            _ => why,
        };
        if rc == libc::ENOENT && !self.exists(pool) {
            return Err(Error::zfs(Op::ChannelProgram, pool, Errno(rc)));
        }
        Err(Error::Program {
            program: program.name.to_string(),
            pool: pool.to_string(),
            errno: Errno(rc),
            message,
        })
    }
}

/// The module's `zfs_lua_max_instrlimit` and `zfs_lua_max_memlimit` (defaults 100,000,000
/// and 100 MiB when unreadable).
fn module_limits() -> (u64, u64) {
    let read = |p: &str, d: u64| {
        std::fs::read_to_string(format!("/sys/module/zfs/parameters/{p}"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(d)
    };
    (
        read("zfs_lua_max_instrlimit", 100_000_000),
        read("zfs_lua_max_memlimit", 100 << 20),
    )
}

/// For programs that return `{err = 0 | errno, step = "..."}` (this crate's, and any that
/// follow the same convention): turn a non-zero `err` into an [`Error::Zfs`] naming the step.
#[doc(hidden)]
pub fn check_step(program: &Program, op: Op, target: &str, out: &NvValue) -> Result<()> {
    let NvValue::List(t) = out else {
        return Err(Error::invalid(
            "channel program output",
            format!("channel program {} returned {:?}", program.name, out),
        ));
    };
    let err = match t.get("err") {
        Some(NvValue::I64(e)) => *e as i32,
        _ => {
            return Err(Error::invalid(
                "channel program output",
                format!("channel program {} returned no err field", program.name),
            ))
        }
    };
    if err == 0 {
        return Ok(());
    }
    let step = match t.get("step") {
        Some(NvValue::Str(s)) => s.clone(),
        _ => String::new(),
    };
    let mut e = Error::zfs(op, target, Errno(err));
    if let Error::Zfs { reason, .. } = &mut e {
        *reason = format!("{} (at step '{step}' of {})", reason, program.name);
    }
    Err(e)
}
