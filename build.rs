//! Exports the embedded Lua's C API from the `bioxen` binary, so that C modules from
//! Debian's `lua-*` packages (`require "socket"`) can be loaded by `bioxen lua`.
fn main() {
    println!("cargo:rustc-link-arg-bin=bioxen=-rdynamic");
}
