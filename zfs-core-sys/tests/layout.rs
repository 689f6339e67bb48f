//! Layout check: the sizes and constants the safe layer relies on, as bindgen generated
//! them, must equal what a C compiler sees in the same OpenZFS headers. A small C probe
//! is compiled against the pkg-config include paths and its output compared here.
//! Runs on the host (no kernel module needed).

use libzfs_core_sys as sys;
use std::collections::BTreeMap;
use std::process::Command;

/// (C expression, value seen by Rust).
fn expectations() -> Vec<(&'static str, i128)> {
    use std::mem::size_of;
    vec![
        ("sizeof(boolean_t)", size_of::<sys::boolean_t>() as i128),
        ("sizeof(uint_t)", size_of::<sys::uint_t>() as i128),
        ("sizeof(data_type_t)", size_of::<sys::data_type_t>() as i128),
        (
            "sizeof(enum lzc_dataset_type)",
            size_of::<sys::lzc_dataset_type>() as i128,
        ),
        (
            "sizeof(enum lzc_send_flags)",
            size_of::<sys::lzc_send_flags>() as i128,
        ),
        ("sizeof(zfs_ioc_t)", size_of::<sys::zfs_ioc_t>() as i128),
        ("B_TRUE", sys::B_TRUE as i128),
        ("B_FALSE", sys::B_FALSE as i128),
        ("LZC_DATSET_TYPE_ZFS", sys::LZC_DATSET_TYPE_ZFS as i128),
        ("LZC_DATSET_TYPE_ZVOL", sys::LZC_DATSET_TYPE_ZVOL as i128),
        (
            "LZC_SEND_FLAG_EMBED_DATA",
            sys::LZC_SEND_FLAG_EMBED_DATA as i128,
        ),
        (
            "LZC_SEND_FLAG_LARGE_BLOCK",
            sys::LZC_SEND_FLAG_LARGE_BLOCK as i128,
        ),
        (
            "LZC_SEND_FLAG_COMPRESS",
            sys::LZC_SEND_FLAG_COMPRESS as i128,
        ),
        ("LZC_SEND_FLAG_RAW", sys::LZC_SEND_FLAG_RAW as i128),
        ("NV_UNIQUE_NAME", sys::NV_UNIQUE_NAME as i128),
        ("NV_ENCODE_NATIVE", sys::NV_ENCODE_NATIVE as i128),
        ("DATA_TYPE_BOOLEAN", sys::DATA_TYPE_BOOLEAN as i128),
        ("DATA_TYPE_INT32", sys::DATA_TYPE_INT32 as i128),
        ("DATA_TYPE_INT64", sys::DATA_TYPE_INT64 as i128),
        ("DATA_TYPE_UINT64", sys::DATA_TYPE_UINT64 as i128),
        ("DATA_TYPE_STRING", sys::DATA_TYPE_STRING as i128),
        ("DATA_TYPE_NVLIST", sys::DATA_TYPE_NVLIST as i128),
        (
            "DATA_TYPE_BOOLEAN_VALUE",
            sys::DATA_TYPE_BOOLEAN_VALUE as i128,
        ),
        ("DATA_TYPE_UINT8_ARRAY", sys::DATA_TYPE_UINT8_ARRAY as i128),
        (
            "DATA_TYPE_UINT64_ARRAY",
            sys::DATA_TYPE_UINT64_ARRAY as i128,
        ),
        (
            "DATA_TYPE_STRING_ARRAY",
            sys::DATA_TYPE_STRING_ARRAY as i128,
        ),
        (
            "DATA_TYPE_NVLIST_ARRAY",
            sys::DATA_TYPE_NVLIST_ARRAY as i128,
        ),
        (
            "ZFS_MAX_DATASET_NAME_LEN",
            sys::ZFS_MAX_DATASET_NAME_LEN as i128,
        ),
        (
            "ZCP_DEFAULT_INSTRLIMIT",
            sys::ZCP_DEFAULT_INSTRLIMIT as i128,
        ),
        ("ZCP_MAX_INSTRLIMIT", sys::ZCP_MAX_INSTRLIMIT as i128),
        ("ZCP_DEFAULT_MEMLIMIT", sys::ZCP_DEFAULT_MEMLIMIT as i128),
        ("ZCP_MAX_MEMLIMIT", sys::ZCP_MAX_MEMLIMIT as i128),
        ("ZFS_IOC_SET_PROP", sys::ZFS_IOC_SET_PROP as i128),
        ("ZFS_IOC_OBJSET_STATS", sys::ZFS_IOC_OBJSET_STATS as i128),
        (
            "ZFS_ERR_CHECKPOINT_EXISTS",
            sys::ZFS_ERR_CHECKPOINT_EXISTS as i128,
        ),
        (
            "ZFS_ERR_IOC_CMD_UNAVAIL",
            sys::ZFS_ERR_IOC_CMD_UNAVAIL as i128,
        ),
        (
            "ZFS_ERR_IOC_ARG_UNAVAIL",
            sys::ZFS_ERR_IOC_ARG_UNAVAIL as i128,
        ),
        (
            "ZFS_ERR_IOC_ARG_REQUIRED",
            sys::ZFS_ERR_IOC_ARG_REQUIRED as i128,
        ),
        (
            "ZFS_ERR_IOC_ARG_BADTYPE",
            sys::ZFS_ERR_IOC_ARG_BADTYPE as i128,
        ),
        ("ZFS_ERR_BADPROP", sys::ZFS_ERR_BADPROP as i128),
    ]
}

fn pkg_config(arg: &str) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args([arg, "libzfs_core"])
        .output()
        .expect("pkg-config");
    assert!(out.status.success(), "pkg-config {arg} libzfs_core failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn bindgen_layout_matches_the_c_compiler() {
    let exp = expectations();
    let dir = std::env::temp_dir().join(format!("zfs-core-sys-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut src = String::from(
        "#include <stdio.h>\n#include <libzfs_core.h>\n#include <libnvpair.h>\n#include <sys/fs/zfs.h>\nint main(void) {\n",
    );
    for (expr, _) in &exp {
        src.push_str(&format!(
            "  printf(\"%s %lld\\n\", \"{expr}\", (long long)({expr}));\n"
        ));
    }
    src.push_str("  return 0;\n}\n");
    let c_file = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(&c_file, src).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(pkg_config("--cflags"))
        .arg(&c_file)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("C compiler");
    assert!(status.success(), "the C probe did not compile");
    let out = Command::new(&exe).output().unwrap();
    let seen: BTreeMap<String, i128> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect();
    let mut bad = vec![];
    for (expr, rust) in &exp {
        if seen.get(*expr) != Some(rust) {
            bad.push(format!("{expr}: C {:?} vs Rust {rust}", seen.get(*expr)));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(bad.is_empty(), "layout mismatches: {bad:#?}");
    eprintln!(
        "{} sizes/constants match the C headers (OpenZFS {})",
        exp.len(),
        sys::HEADER_VERSION
    );
}

/// The hand-described zfs_cmd_t: the verified size and offsets (OpenZFS 2.1 .. 2.4,
/// x86_64), and a command buffer that is larger than that struct by its headroom, because
/// the kernel copies its own `sizeof (zfs_cmd_t)` back out.
#[test]
fn zfs_cmd_layout() {
    assert_eq!(sys::ZFS_CMD_SIZE, 13744);
    assert_eq!(sys::ZFS_CMD_NAME_LEN, 4096);
    assert_eq!(sys::ZFS_CMD_NVLIST_SRC_OFFSET, 4096);
    assert_eq!(sys::ZFS_CMD_NVLIST_SRC_SIZE_OFFSET, 4104);
    assert_eq!(sys::ZFS_CMD_NVLIST_DST_OFFSET, 4112);
    assert_eq!(sys::ZFS_CMD_NVLIST_DST_SIZE_OFFSET, 4120);
    assert_eq!(sys::ZFS_CMD_NVLIST_DST_FILLED_OFFSET, 4128);
    assert_eq!(sys::ZFS_CMD_COOKIE_OFFSET, 12616);
    let mut zc = sys::ZfsCmd::new();
    assert_eq!(zc.len(), sys::ZFS_CMD_BUF_SIZE);
    assert_eq!(
        sys::ZFS_CMD_BUF_SIZE,
        sys::ZFS_CMD_SIZE + sys::ZFS_CMD_HEADROOM
    );
    const { assert!(sys::ZFS_CMD_HEADROOM >= 64 * 1024) };
    assert_eq!(zc.as_mut_ptr() as usize % 8, 0);
    assert!(zc.to_bytes().iter().all(|&b| b == 0));
}

/// A command built the way SET_PROP builds it reads back field by field at the offsets
/// the kernel uses.
#[test]
fn zfs_cmd_set_prop_shape() {
    let packed = [0xabu8; 40];
    let mut errbuf = vec![0u8; 16 * 1024];
    let mut zc = sys::ZfsCmd::new();
    zc.set_name(c"pool/vol").unwrap();
    zc.set_nvlist_src(packed.as_ptr() as u64, packed.len() as u64);
    zc.set_nvlist_dst(errbuf.as_mut_ptr() as u64, errbuf.len() as u64);
    zc.set_cookie(0);
    let b = zc.to_bytes();
    let at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap());
    assert_eq!(&b[..9], b"pool/vol\0");
    assert_eq!(at(4096), packed.as_ptr() as u64);
    assert_eq!(at(4104), 40);
    assert_eq!(at(4112), errbuf.as_ptr() as u64);
    assert_eq!(at(4120), 16 * 1024);
    assert_eq!(at(12616), 0);
    assert!(b[sys::ZFS_CMD_SIZE..].iter().all(|&x| x == 0));
    let long = std::ffi::CString::new(vec![b'p'; 4096]).unwrap();
    assert_eq!(zc.set_name(&long).unwrap_err().len, 4097);
}
