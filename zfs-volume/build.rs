//! Writes every SR channel program (`src/lua/<name>.lua` after the prelude) as the kernel is
//! given it: only the prelude functions the program uses, without comments (`lua_min.rs`).

#[path = "lua_min.rs"]
mod lua_min;

use std::path::PathBuf;

fn main() {
    let src = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("src/lua");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it")).join("lua");
    println!("cargo:rerun-if-changed=src/lua");
    println!("cargo:rerun-if-changed=lua_min.rs");
    std::fs::create_dir_all(&out).expect("create OUT_DIR/lua");
    let prelude =
        std::fs::read_to_string(src.join("prelude.lua")).expect("read src/lua/prelude.lua");
    for entry in std::fs::read_dir(&src).expect("read src/lua") {
        let path = entry.expect("list src/lua").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !name.ends_with(".lua") || name == "prelude.lua" {
            continue;
        }
        let program = std::fs::read_to_string(&path).expect("read a program");
        std::fs::write(out.join(&name), lua_min::program_text(&prelude, &program))
            .expect("write OUT_DIR/lua/<program>");
    }
}
