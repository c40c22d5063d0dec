//! Exports the embedded Lua's C API from the `bioxen` binary, so that C modules from
//! Debian's `lua-*` packages (`require "socket"`) can be loaded by `bioxen lua`.
//!
//! Only the Lua API is exported (`lua_*`, `luaL_*`, `luaopen_*`), through a dynamic
//! list, not every symbol as `-rdynamic` would: the modules need nothing else, and the
//! dynamic linker then has 160 symbols to place at start-up instead of 12,000.
fn main() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let list = out.join("lua-api.list");
    std::fs::write(&list, "{\n  lua_*;\n  luaL_*;\n  luaopen_*;\n};\n")
        .expect("the dynamic list is written into OUT_DIR");
    println!(
        "cargo:rustc-link-arg-bin=bioxen=-Wl,--dynamic-list={}",
        list.display()
    );
    // 32,000 relative relocations as a bitmap (DT_RELR, glibc 2.36 and later) rather
    // than 24 bytes each: fewer pages to touch before main.
    println!("cargo:rustc-link-arg-bin=bioxen=-Wl,-z,pack-relative-relocs");
    println!("cargo:rerun-if-changed=build.rs");
}
