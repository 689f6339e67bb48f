//! The libzfs_core/libnvpair bindings: generated at build time from the system headers (found
//! through pkg-config `libzfs_core`), so the declarations always match the OpenZFS the crate is
//! built against (2.1.11 .. 2.4.x). Without the `bindgen` feature, or on docs.rs (`DOCS_RS`: no
//! libzfs headers, no libclang there), the bindings pre-generated from OpenZFS 2.1.11's headers
//! (the oldest supported: every declaration in them exists in every later version) are used.

use std::env;
use std::path::{Path, PathBuf};

/// The headers `src/bindings/zfs-2.1.11.rs` was generated from (`scripts/zfs-ref-libs`).
const PREGENERATED_VERSION: &str = "2.1.11";

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    for v in [
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "PKG_CONFIG_SYSROOT_DIR",
    ] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");

    if env::var_os("DOCS_RS").is_some() {
        // Documentation only: nothing is linked, and the host has no OpenZFS.
        return pregenerated(&out);
    }
    let lib = pkg_config::Config::new()
        .atleast_version("2.1")
        .probe("libzfs_core")
        .unwrap_or_else(|e| {
            panic!(
                "libzfs_core not found through pkg-config ({e}).\n\
                 Install the OpenZFS development files: run scripts/setup \
                 (Debian: apt-get install libzfslinux-dev libclang-dev pkg-config)"
            )
        });
    println!("cargo:version={}", lib.version);
    println!(
        "cargo:include={}",
        env::join_paths(&lib.include_paths)
            .unwrap()
            .to_string_lossy()
    );
    generate(&lib, &out);
}

/// The bindings pre-generated from OpenZFS 2.1.11's headers.
fn pregenerated(out: &Path) {
    let src = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("src/bindings")
        .join(format!("zfs-{PREGENERATED_VERSION}.rs"));
    println!("cargo:rerun-if-changed={}", src.display());
    std::fs::copy(&src, out).unwrap_or_else(|e| panic!("cannot copy {}: {e}", src.display()));
    println!("cargo:rustc-env=ZFS_CORE_SYS_HEADER_VERSION={PREGENERATED_VERSION}");
}

#[cfg(not(feature = "bindgen"))]
fn generate(_lib: &pkg_config::Library, out: &Path) {
    pregenerated(out)
}

#[cfg(feature = "bindgen")]
fn generate(lib: &pkg_config::Library, out: &Path) {
    println!(
        "cargo:rustc-env=ZFS_CORE_SYS_HEADER_VERSION={}",
        lib.version
    );
    let include_args: Vec<String> = lib
        .include_paths
        .iter()
        .map(|p| format!("-I{}", p.display()))
        .collect();
    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&include_args)
        .allowlist_function("lzc_.*|libzfs_core_(init|fini)")
        .allowlist_function("nvlist_.*|nvpair_.*|fnvlist_free")
        .allowlist_type("lzc_.*|zfs_errno_t|zfs_ioc_t|data_type_t|boolean_t|zpool_wait_activity_t")
        .allowlist_type(
            "zfs_wait_activity_t|pool_trim_func_t|pool_initialize_func_t|dmu_objset_type_t",
        )
        .allowlist_type("zfs_prop_t|zfs_volmode_t|zfs_snapdev_type_t|zfs_sync_type_t")
        .allowlist_var(
            "ZCP_.*|NV_UNIQUE_NAME.*|NV_ENCODE_.*|ZFS_MAX_DATASET_NAME_LEN|ZVOL_DEFAULT_BLOCKSIZE",
        )
        .allowlist_var(
            "SPA_MINBLOCKSIZE|SPA_OLD_MAXBLOCKSIZE|SPA_MAXBLOCKSIZE|ZAP_MAXNAMELEN|ZAP_MAXVALUELEN",
        )
        // Declared in every header up to 2.4 but defined in no library: referencing it
        // would fail to link.
        .blocklist_function("lzc_send_progress")
        .opaque_type("zfs_cmd|dmu_replay_record")
        // The kernel can return enum values newer than our headers: never a Rust enum.
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on the libzfs_core headers");
    bindings
        .write_to_file(out)
        .expect("cannot write bindings.rs");
}
