//! What an interpreter is started with so it marks its prompts and can `require`
//! the `bioxen` module: the embedded REPL needs nothing; `lua5.4` gets `_PROMPT`s
//! that carry OSC 133 and a preloaded module.

use super::*;

/// Samples CPU and memory of live local VMs: once a second while any VM uses CPU or
/// its figures change, backing off to every 30 s while all are idle (idle VMs then
/// wake the server about never). Output from any VM brings it back to once a second
/// at once; a new process is sampled on the next look. Stops with the manager.
/// For a Lua interpreter other than bioxen's (`lua5.4`, `lua`): a `LUA_INIT_5_4` that
/// makes its prompts carry the OSC 133 prompt mark, so the list can say busy or idle.
/// A `LUA_INIT_5_4` or `LUA_INIT` of the user's still runs, after.
pub(super) fn marked_prompts(argv: &[String], env: &[(String, String)]) -> Vec<(String, String)> {
    let program = argv.first().map(String::as_str).unwrap_or_default();
    if !is_reference_lua(program) {
        return Vec::new();
    }
    let theirs = ["LUA_INIT_5_4", "LUA_INIT"].iter().find_map(|var| {
        env.iter()
            .rev()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(var).ok())
    });
    let mut vars = Vec::new();
    if let Some(theirs) = theirs {
        vars.push(("BIOXEN_LUA_INIT".to_string(), theirs));
    }
    vars.push(("LUA_INIT_5_4".to_string(), lua_init(false)));
    vars
}

/// Whether `program` is a reference `lua` (not bioxen's, not luarocks or luajit).
pub(super) fn is_reference_lua(program: &str) -> bool {
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.starts_with("lua") && !name.starts_with("luarocks") && !name.starts_with("luajit")
}

/// The Lua a reference interpreter runs first (as `LUA_INIT_5_4`): prompts with the
/// OSC 133 mark, which `lua.c` prints through readline (`\1`..`\2` keep it out of the
/// prompt's width); with `module`, `require "bioxen"` served from the module itself,
/// for hosts it is not installed on; then the user's own init: the `LUA_INIT_5_4` or
/// `LUA_INIT` kept in `BIOXEN_LUA_INIT`, else a `LUA_INIT` set on the command line.
pub(super) fn lua_init(module: bool) -> String {
    let mark = r"'\1\27]133;A\7\2'";
    let mut init = format!("_PROMPT = {mark} .. '> ' _PROMPT2 = {mark} .. '>> '");
    if module {
        init.push_str(&format!(
            " package.preload.bioxen = package.preload.bioxen or load({}, '=bioxen')",
            bioxen_text::lua_literal::quote(bioxen_repl::BIOXEN_MODULE)
        ));
    }
    init.push_str(
        " local i = os.getenv('BIOXEN_LUA_INIT') \
         if not i or i == '' then i = os.getenv('LUA_INIT') end \
         if i and i ~= '' then \
         if i:sub(1, 1) == '@' then dofile(i:sub(2)) else assert(load(i, '=LUA_INIT'))() end end",
    );
    init
}

/// Puts the `bioxen` Lua module in the rocks tree that local VMs' `LUA_PATH` holds,
/// so `require "bioxen"` works in `lua5.4` as in the embedded REPL.
pub(super) fn install_lua_module(tree: &Path) {
    let path = tree.join("share/lua/5.4/bioxen.lua");
    let module = bioxen_repl::BIOXEN_MODULE;
    if std::fs::read_to_string(&path).is_ok_and(|m| m == module) {
        return;
    }
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, module));
    if let Err(e) = written {
        tracing::warn!(
            "cannot put the bioxen Lua module at {}: {e}",
            path.display()
        );
    }
}
