//! ZFS channel programs: Lua run inside the kernel.
//!
//! A *sync* program ([`Zfs::program_sync`]) runs as one sync task: all its changes land in
//! one txg and no other administrative operation interleaves; it blocks the txg sync while
//! it runs, so keep it short. A *nosync* program ([`Zfs::program_nosync`]) only reads, in
//! open context, without waiting for a txg: one ioctl to list or stat many datasets.
//!
//! This crate's own programs are `.lua` files under `src/lua/`, included at compile time.
//! Yours can be static text ([`Program::from_static`], usable in a `static`) or built at
//! run time ([`Program::new`] takes a `String` as well).
//!
//! The conventions (arguments, results, errors, limits) are documented on [`Program`],
//! where rustdoc shows them.

use super::nvlist::{NvList, NvValue};
use super::util::{cstring, name};
use super::{Errno, Zfs};
use crate::error::{Error, Op, Result};
use libzfs_core_sys as sys;
use std::borrow::Cow;
use std::ptr;

/// A channel program: a name (for messages) and its full Lua source, run with
/// [`Zfs::program_sync`] or [`Zfs::program_nosync`].
///
/// Static text costs nothing to wrap ([`Program::from_static`] is `const`, for a
/// `static`); [`Program::new`] also takes source made at run time.
///
/// # Conventions
///
/// **Arguments** arrive as *one* Lua table, the program's `...`: write
/// `local args = ...` and read `args.dataset`, `args["props"]`. The table is the
/// [`NvList`] you pass, converted pair by pair:
///
/// | nvlist pair | Lua value |
/// |---|---|
/// | `boolean_value` ([`NvList::add_boolean_value`]) | boolean |
/// | `string` | string |
/// | `int64` | number |
/// | `nvlist` | table |
/// | `string_array`, `int64_array`, `uint64_array` | array table (indices from 1) |
///
/// Any other type (plain `uint64` included, or a presence flag among other pairs) is
/// refused with `EINVAL` before anything runs.
/// A list whose pairs are *all* presence flags ([`NvList::add_boolean`]) arrives as an
/// array of their names (`{"a", "b"}`, not `{a = true}`); an empty list as an empty table.
///
/// **The result** is the one value the program returns, as an [`NvValue`]:
///
/// | Lua value | [`NvValue`] |
/// |---|---|
/// | number | [`NvValue::I64`] (Lua numbers are 64-bit integers in the kernel: no floats) |
/// | string | [`NvValue::Str`] |
/// | boolean | [`NvValue::Bool`] |
/// | table | [`NvValue::List`], keys turned into strings: an array `{a, b}` has names `"1"`, `"2"` ([`NvValue::as_lua_array`] gives it back in order); an empty table is an empty list |
/// | `nil`, or no `return` | [`NvValue::Flag`] |
///
/// Returning several values is a runtime error. A number above `i64::MAX` (a `guid`
/// property, say) comes back negative: reinterpret it with `as u64`; [`NvValue::as_u64`]
/// only converts what fits.
///
/// **Errors**: a program that does not compile fails with [`Error::Program`] and `EINVAL`
/// (nothing ran). A Lua runtime error, yours (`error("...")`) or one raised by a `zfs.*`
/// function (a `zfs.get_prop` of a dataset that does not exist, a name that is not a
/// property), fails with [`Error::Program`] and `ECHRNG`, the message and a Lua traceback
/// in its text. Lua in the kernel has no `pcall`, and a sync program's `zfs.sync.*` calls
/// done before the error are *not* undone: check first (`zfs.exists`, `zfs.check.*`) and
/// return an error code rather than raise, e.g. `{err = errno, step = "..."}`, the
/// convention [`check_step`] reads. A pool that is not imported is an [`Error::Zfs`] with
/// `ENOENT`.
///
/// **Limits** ([`Limits`]): each run has an instruction and a memory limit, `ETIME` and
/// `ENOSPC` when hit (partial execution possible for a sync program); the memory limit
/// also bounds the output (`ENOMEM` when the result does not fit). Both must be > 0 and at
/// most the module's `zfs_lua_max_instrlimit` / `zfs_lua_max_memlimit` (100,000,000 and
/// 100 MiB by default); larger ones are refused before the call.
///
/// # Examples
///
/// ```
/// use libzfs_core::Program;
///
/// static COUNT: Program = Program::from_static(
///     "count",
///     "local args = ...
///      local n = 0
///      for _ in zfs.list.children(args.dataset) do n = n + 1 end
///      return n",
/// );
/// assert_eq!(COUNT.name(), "count");
///
/// // Built at run time: the property name is part of the source.
/// let prop = "used";
/// let p = Program::new(
///     format!("get_{prop}"),
///     format!("local args = ... return zfs.get_prop(args.dataset, '{prop}')"),
/// );
/// assert!(p.source().contains("'used'"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    name: Cow<'static, str>,
    source: Cow<'static, str>,
}

impl Program {
    /// A program from its name (used in errors and logs) and Lua source, static or owned.
    ///
    /// ```
    /// let p = libzfs_core::Program::new("one", String::from("return 1"));
    /// assert_eq!(p.source(), "return 1");
    /// ```
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        source: impl Into<Cow<'static, str>>,
    ) -> Program {
        Program {
            name: name.into(),
            source: source.into(),
        }
    }

    /// A program from static text, in a `const` context (a `static` program).
    ///
    /// ```
    /// static P: libzfs_core::Program = libzfs_core::Program::from_static("one", "return 1");
    /// assert_eq!(P.name(), "one");
    /// ```
    pub const fn from_static(name: &'static str, source: &'static str) -> Program {
        Program {
            name: Cow::Borrowed(name),
            source: Cow::Borrowed(source),
        }
    }

    /// The program's name, as errors show it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Lua source.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// A program of this crate's `src/lua/<name>.lua`, included at compile time.
macro_rules! program {
    ($name:literal) => {
        $crate::Program::from_static(
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
/// [`Limits::default`] (10,000,000 instructions, 10 MiB) suits a program that touches a
/// few datasets; [`Limits::large`] (the module's default maxima) one whose work or output
/// grows with the number of datasets.
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
    /// libzfs_core allocates an output buffer of this size for each run.
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
    /// Limits for programs whose work or output grows with the number of datasets
    /// (listings of thousands): 100,000,000 instructions and 100 MiB, the module's default
    /// maxima. A listing costs some tens of instructions and, with a few properties,
    /// about a kilobyte of Lua memory and of output per dataset, so these cover tens of
    /// thousands of datasets. A module whose maxima were lowered refuses them (an
    /// [`Error::Invalid`] naming the maxima).
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
    /// Run a program that changes things, in one txg (`lzc_channel_program`) on `pool`.
    /// `args` arrive as the program's `...` (one table); returns what the program returned,
    /// converted as [`Program`] documents (numbers as
    /// [`NvValue::I64`], `nil` or no return as [`NvValue::Flag`]).
    ///
    /// Errors: [`Error::Program`] with the Lua message (`EINVAL` compile error or bad
    /// argument types: nothing ran; `ECHRNG` runtime error, `ETIME`/`ENOSPC` limits:
    /// partial execution possible, nothing is undone); [`Error::Zfs`] with `ENOENT` for a
    /// pool that is not imported; [`Error::Invalid`] for limits the module refuses.
    ///
    /// ```no_run
    /// use libzfs_core::{Limits, NvList, NvValue, Program, Zfs};
    /// // zfs.sync.snapshot returns an errno (0 on success): a Lua number, so an I64.
    /// let p = Program::from_static(
    ///     "snap",
    ///     "local args = ... return zfs.sync.snapshot(args.snapshot)",
    /// );
    /// let mut args = NvList::new()?;
    /// args.add_string("snapshot", "tank/vol@now")?;
    /// let out = Zfs::get()?.program_sync("tank", &p, &args, Limits::default())?;
    /// assert_eq!(out, NvValue::I64(0));
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

    /// Run a read-only program on `pool` without waiting for a txg
    /// (`lzc_channel_program_nosync`): one ioctl, in open context; a `zfs.sync.*` call in
    /// it is a runtime error. Arguments, result and errors as [`Zfs::program_sync`].
    ///
    /// ```no_run
    /// use libzfs_core::{Limits, NvList, Program, Zfs};
    /// let p = Program::from_static(
    ///     "count_children",
    ///     "local args = ...
    ///      local n = 0
    ///      for _ in zfs.list.children(args.dataset) do n = n + 1 end
    ///      return n",
    /// );
    /// let mut args = NvList::new()?;
    /// args.add_string("dataset", "tank/vms")?;
    /// let out = Zfs::get()?.program_nosync("tank", &p, &args, Limits::default())?;
    /// println!("{} children", out.as_u64().unwrap_or(0));
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
        let src = cstring("channel program", program.source())?;
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
            program: program.name().to_string(),
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
/// follow the same convention): turn a non-zero `err` into an [`Error::Zfs`] of `op` on
/// `target` naming the step; `Ok` for `err = 0`, [`Error::Invalid`] for output of another
/// shape.
///
/// ```
/// use libzfs_core::{check_step, Op, Program};
/// use libzfs_core::nvlist::{NvTree, NvValue};
/// let p = Program::from_static("p", "");
/// let mut out = NvTree::new();
/// out.push("err", NvValue::I64(libc::EBUSY.into()));
/// out.push("step", NvValue::Str("destroy tank/a".into()));
/// let e = check_step(&p, Op::Destroy, "tank/a", &NvValue::List(out)).unwrap_err();
/// assert!(e.to_string().contains("at step 'destroy tank/a' of p"), "{e}");
/// ```
pub fn check_step(program: &Program, op: Op, target: &str, out: &NvValue) -> Result<()> {
    let NvValue::List(t) = out else {
        return Err(Error::invalid(
            "channel program output",
            format!("channel program {} returned {:?}", program.name(), out),
        ));
    };
    let err = match t.get("err") {
        Some(NvValue::I64(e)) => *e as i32,
        _ => {
            return Err(Error::invalid(
                "channel program output",
                format!("channel program {} returned no err field", program.name()),
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
        *reason = format!("{} (at step '{step}' of {})", reason, program.name());
    }
    Err(e)
}
