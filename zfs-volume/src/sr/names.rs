//! The names the Rust code and the channel programs share: the SR's containers, the property
//! namespace and the properties the programs read, the listing record's head, and the marks in
//! a revert's tombstone names. Each is written once, in [`shared_names!`]: it defines the Rust
//! constants (re-exported where they belong: `layout`, `meta`, `record`) and the Lua table `N`
//! that opens every program of the SR layer ([`sr_program!`]), so renaming one here renames it
//! in both languages.

/// Calls `$then!` with the shared names: `NAME = "value", "doc";` each.
macro_rules! shared_names {
    ($($then:ident)::+) => {
        $($then)::+! {
            VOL = "vol", "Container of writable VDIs.";
            SNAP = "snap", "Container of snapshot VDIs (readonly=on).";
            GC = "gc", "Container of tombstones.";
            CBT = "cbt", "Container of CBT-metadata VDIs (filesystems holding no data; made on demand, gone when empty).";
            NS = "xapi-zvol:", "Namespace of every user property we write.";
            SR_MARKER = "xapi-zvol:sr", "On the SR dataset: the SR uuid. Its presence is the SR marker (invariant I8).";
            SR_PROVISIONING = "xapi-zvol:sr-provisioning", "On the SR dataset: `thin` or `thick`.";
            SR_VOLBLOCKSIZE = "xapi-zvol:sr-volblocksize", "On the SR dataset: volblocksize for new volumes, bytes (absent: the kernel default).";
            LISTING = "xapi-zvol:ls", "On a VDI: its listing record (`record.rs`).";
            VDI_CBT_POINT = "xapi-zvol:cbt-point", "On a CBT-metadata VDI's dataset: `<guid> <createtxg>` of the ZFS snapshot that held its content, which the bookmark `#<key>` keeps (`cbt.rs`).";
            REFERENCED_HEAD = "{\"r\":", "How a listing record whose `referenced` a program filled in starts (snapshot_clone.lua); list_sr.lua reads `referenced` itself when a snapshot VDI's record does not start so.";
            NEW_MARK = ".new-", "In `gc/<key>.new-<token>`: a revert's new content, before it becomes `vol/<key>`.";
            OLD_MARK = ".old-", "In `gc/<key>.old-<token>`: a reverted volume's old content.";
        }
    };
}

macro_rules! rust_consts {
    ($($name:ident = $value:literal, $doc:literal;)*) => {
        $(#[doc = $doc] pub const $name: &str = $value;)*
    };
}

shared_names!(rust_consts);
pub(crate) use shared_names;

/// The Lua table `N` of the shared names (long-bracket strings: the values hold quotes).
macro_rules! lua_table {
    ($($name:ident = $value:literal, $doc:literal;)*) => {
        concat!("local N = {", $(stringify!($name), " = [[", $value, "]], ",)* "}\n")
    };
}
pub(crate) use lua_table;

/// A program of `src/lua/<name>.lua` for the SR layer: the shared names (`N`), the prelude
/// (`src/lua/prelude.lua`, helpers every SR program may use), then the program; included at
/// compile time as `build.rs` writes it (`lua_min.rs`: only the prelude functions it uses,
/// without comments; the kernel compiles it at every call).
macro_rules! sr_program {
    ($name:literal) => {
        $crate::lzc::Program::from_static(
            $name,
            concat!(
                $crate::sr::names::shared_names!($crate::sr::names::lua_table),
                include_str!(concat!(env!("OUT_DIR"), "/lua/", $name, ".lua"))
            ),
        )
    };
}
pub(crate) use sr_program;

/// The header every SR program starts with (for tests).
#[cfg(test)]
const HEADER: &str = shared_names!(lua_table);

#[cfg(test)]
use crate::lzc::Program;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lua_table_holds_every_rust_name() {
        for (name, value) in [
            ("VOL", VOL),
            ("SNAP", SNAP),
            ("GC", GC),
            ("CBT", CBT),
            ("NS", NS),
            ("SR_MARKER", SR_MARKER),
            ("SR_PROVISIONING", SR_PROVISIONING),
            ("SR_VOLBLOCKSIZE", SR_VOLBLOCKSIZE),
            ("LISTING", LISTING),
            ("REFERENCED_HEAD", REFERENCED_HEAD),
            ("NEW_MARK", NEW_MARK),
            ("OLD_MARK", OLD_MARK),
        ] {
            assert!(
                HEADER.contains(&format!("{name} = [[{value}]], ")),
                "{name} in {HEADER}"
            );
            assert!(
                !value.contains("]]"),
                "{name}: a long bracket cannot hold ]]"
            );
        }
        let p: Program = sr_program!("stat_vdi");
        assert!(p.source().starts_with("local N = {VOL = [[vol]], "));
    }
}
