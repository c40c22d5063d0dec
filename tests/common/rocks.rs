//! Rocks built for the tests, into a local rocks directory that luarocks installs from
//! offline (the public servers cannot be reached here).

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct RockRepo {
    /// A directory of packed rocks with a manifest: a `rocks_servers` entry.
    pub dir: PathBuf,
    /// A pure-Lua package and the module it installs.
    pub package: String,
    pub module: String,
    /// A C package (built against liblua5.4-dev) and its module.
    pub c_package: String,
    pub c_module: String,
    /// A value only this build's module returns, so a test knows it got this build.
    pub token: String,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run luarocks");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Packs `package` from `src` (with its rockspec) into `repo`.
fn pack(src: &Path, build_tree: &Path, repo: &Path, package: &str) {
    run(Command::new("luarocks")
        .args(["--lua-version", "5.4", "--tree"])
        .arg(build_tree)
        .args(["make", &format!("{package}-1.0-1.rockspec")])
        .current_dir(src));
    run(Command::new("luarocks")
        .args(["--lua-version", "5.4", "--tree"])
        .arg(build_tree)
        .args(["pack", package])
        .current_dir(repo));
}

pub fn build(name: &str) -> RockRepo {
    super::require_program("luarocks", "luarocks");
    super::require_program("luarocks-admin", "luarocks");
    assert!(
        Path::new("/usr/include/lua5.4/lua.h").exists(),
        "building the C test rock needs Lua's headers: apt-get install -y liblua5.4-dev"
    );
    let nonce = format!("{}{}", std::process::id(), name);
    let base = std::env::temp_dir().join(format!("bioxen-rocks-{nonce}"));
    let _ = std::fs::remove_dir_all(&base);
    let (src, repo, build_tree) = (base.join("src"), base.join("repo"), base.join("build"));
    for d in [&src, &repo] {
        std::fs::create_dir_all(d).unwrap();
    }
    let token = format!("token-{nonce}");
    let package = format!("bxgreet-{nonce}");
    let module = format!("bxgreet_{nonce}");
    std::fs::write(
        src.join("greet.lua"),
        format!(
            "return {{ token = \"{token}\", hello = function(n) return 'hello, ' .. n end }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        src.join(format!("{package}-1.0-1.rockspec")),
        format!(
            "package = \"{package}\"\nversion = \"1.0-1\"\nsource = {{ url = \"file://{}\" }}\n\
             build = {{ type = \"builtin\", modules = {{ [\"{module}\"] = \"greet.lua\" }} }}\n",
            src.display()
        ),
    )
    .unwrap();
    pack(&src, &build_tree, &repo, &package);

    let c_package = format!("bxcadd-{nonce}");
    let c_module = format!("bxcadd_{nonce}");
    std::fs::write(
        src.join("cadd.c"),
        format!(
            "#include <lua.h>\n#include <lauxlib.h>\n\
             static int add(lua_State *L) {{ lua_pushinteger(L, luaL_checkinteger(L, 1) + luaL_checkinteger(L, 2)); return 1; }}\n\
             int luaopen_{c_module}(lua_State *L) {{ lua_newtable(L); lua_pushcfunction(L, add); lua_setfield(L, -2, \"add\"); return 1; }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        src.join(format!("{c_package}-1.0-1.rockspec")),
        format!(
            "package = \"{c_package}\"\nversion = \"1.0-1\"\nsource = {{ url = \"file://{}\" }}\n\
             build = {{ type = \"builtin\", modules = {{ [\"{c_module}\"] = \"cadd.c\" }} }}\n",
            src.display()
        ),
    )
    .unwrap();
    pack(&src, &build_tree, &repo, &c_package);
    run(Command::new("luarocks-admin")
        .arg("make-manifest")
        .arg(&repo));
    RockRepo {
        dir: repo,
        package,
        module,
        c_package,
        c_module,
        token,
    }
}

impl Drop for RockRepo {
    fn drop(&mut self) {
        if let Some(base) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}
