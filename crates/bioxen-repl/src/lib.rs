//! `bioxen lua`: an embedded Lua 5.4 interpreter that behaves like the reference `lua`
//! command, so a fresh machine needs nothing installed to run a VM.
//!
//! Options, the `arg` table, `LUA_INIT`, how lines are read (an expression first, then
//! statements, more lines while the chunk is incomplete), how results and errors are
//! printed: all follow `lua.c` from Lua 5.4. On top it has line editing and history
//! (arrows, Home/End, Ctrl-A/E, Ctrl-R) and a Ctrl-C that interrupts the running chunk
//! without losing the VM's state, while a Ctrl-C at the prompt only clears the line.

pub mod args;
mod interrupt;
mod line_editor;
mod output;
mod warnings;

use args::{Action, Options};
use line_editor::{LineEditor, Read as LineRead};

use std::io::{IsTerminal, Read, Write};

use mlua::{Function, Lua, MultiValue, Value};

const PROGNAME: &str = "bioxen lua";

/// Lua code for the message handler of every protected call: like `lua.c`'s
/// `msghandler`, it appends a traceback, cut where bioxen's own frames begin.
const MSGHANDLER: &str = r#"
local traceback, tostring, type, getmetatable = debug.traceback, tostring, type, getmetatable
return function(msg)
  if type(msg) ~= "string" and type(msg) ~= "number" then
    local mt = getmetatable(msg)
    if mt and mt.__tostring then
      local s = tostring(msg)
      if type(s) == "string" then return s end
    end
    msg = "(error object is a " .. type(msg) .. " value)"
  end
  local tb = traceback(tostring(msg), 2)
  local cut = tb:find("\n\t%[C%]: in function 'xpcall'")
  if cut then tb = tb:sub(1, cut) .. "\t[C]: in ?" end
  return tb
end
"#;

/// Runs the interpreter with `args` (without the program name); returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let options = match args::parse(&args) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{PROGNAME}: {msg}");
            eprintln!("{}", args::usage("bioxen lua [options] [script [args]]"));
            return 1;
        }
    };
    let buffered = output::block_buffer_terminal();
    match Repl::new(&options, buffered) {
        Ok(repl) => repl.run(&options, &args),
        Err(e) => {
            eprintln!("{PROGNAME}: cannot start Lua: {e}");
            1
        }
    }
}

struct Repl {
    lua: Lua,
    msghandler: Function,
}

impl Repl {
    /// `buffered`: stdout is block-buffered (see [`output`]).
    fn new(options: &Options, buffered: bool) -> mlua::Result<Repl> {
        // The unsafe constructor loads the debug library and allows C modules
        // (`require "socket"`), as the reference interpreter does.
        // SAFETY: the interpreter is owned by this process alone; running arbitrary
        // code is its purpose.
        let lua = unsafe { Lua::unsafe_new() };
        set_module_paths(&lua, options.ignore_env)?;
        preload_bioxen_module(&lua)?;
        let msghandler: Function = lua.load(MSGHANDLER).set_name("=bioxen").call(())?;
        interrupt::install(lua.state());
        warnings::install(&lua);
        if buffered {
            lua.load(output::FLUSH_BEFORE_PROGRAMS)
                .set_name("=bioxen")
                .exec()?;
            // SAFETY: `print` follows the C function protocol (see its comment).
            let print = unsafe { lua.create_c_function(output::print)? };
            lua.globals().set("print", print)?;
        }
        Ok(Repl { lua, msghandler })
    }

    fn run(self, o: &Options, args: &[String]) -> i32 {
        if o.version {
            print_version(&self.lua);
        }
        if let Err(e) = self.create_arg_table(args, o.script) {
            eprintln!("{PROGNAME}: {e}");
            return 1;
        }
        if o.warnings {
            let _ = self.lua.load("warn('@on')").exec();
        }
        if !o.ignore_env && !self.handle_init() {
            return 1;
        }
        for action in &o.actions {
            let ok = match action {
                Action::Exec(code) => self.do_string(code, "=(command line)"),
                Action::Require(spec) => self.do_require(spec),
            };
            if !ok {
                return 1;
            }
        }
        if let Some(idx) = o.script
            && !self.do_script(&args[idx], &args[idx + 1..])
        {
            return 1;
        }
        if o.interactive {
            self.repl();
        } else if o.script.is_none() && o.actions.is_empty() && !o.version {
            if std::io::stdin().is_terminal() {
                print_version(&self.lua);
                self.repl();
            } else if !self.do_file(None, &[]) {
                return 1;
            }
        }
        0
    }

    /// `arg[0]` is the script (the interpreter when there is none), negative indices
    /// the interpreter and its options, positive ones the script's own arguments.
    fn create_arg_table(&self, args: &[String], script: Option<usize>) -> mlua::Result<()> {
        let table = self.lua.create_table()?;
        let exe = std::env::args().next().unwrap_or_else(|| "bioxen".into());
        let all = std::iter::once(exe.as_str()).chain(args.iter().map(String::as_str));
        // Position of the script in `all`, whose first word is the interpreter.
        let base = script.map(|i| i as i64 + 1).unwrap_or(0);
        for (i, a) in all.enumerate() {
            table.raw_set(i as i64 - base, a)?;
        }
        self.lua.globals().set("arg", table)
    }

    fn handle_init(&self) -> bool {
        let (name, value) = match std::env::var("LUA_INIT_5_4") {
            Ok(v) => ("=LUA_INIT_5_4", v),
            Err(_) => match std::env::var("LUA_INIT") {
                Ok(v) => ("=LUA_INIT", v),
                Err(_) => return true,
            },
        };
        match value.strip_prefix('@') {
            Some(file) => self.do_file(Some(file), &[]),
            None => self.do_string(&value, name),
        }
    }

    fn do_string(&self, code: &str, name: &str) -> bool {
        match self.lua.load(code).set_name(name).into_function() {
            Ok(f) => self.report(self.docall(f, MultiValue::new()).map(|_| ())),
            Err(e) => self.report(Err(syntax_message(&e))),
        }
    }

    fn do_require(&self, spec: &str) -> bool {
        let (global, module) = spec.split_once('=').unwrap_or((spec, spec));
        let code = format!(
            "{} = require({})",
            global_ref(global),
            bioxen_text::lua_literal::quote(module)
        );
        self.do_string(&code, "=(command line)")
    }

    fn do_script(&self, script: &str, script_args: &[String]) -> bool {
        let file = (script != "-").then_some(script);
        self.do_file(file, script_args)
    }

    fn do_file(&self, path: Option<&str>, script_args: &[String]) -> bool {
        let (source, name) = match path {
            Some(p) => match std::fs::read(p) {
                Ok(bytes) => (bytes, format!("@{p}")),
                // Worded as lauxlib's errfile words it.
                Err(e) => {
                    return self.report(Err(format!("cannot open {p}: {}", os_message(&e))));
                }
            },
            None => {
                let mut bytes = Vec::new();
                if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
                    return self.report(Err(format!("cannot read stdin: {}", os_message(&e))));
                }
                (bytes, "=stdin".to_string())
            }
        };
        let source = strip_shebang(&source);
        let f = match self.lua.load(source).set_name(name).into_function() {
            Ok(f) => f,
            Err(e) => return self.report(Err(syntax_message(&e))),
        };
        let mut values = MultiValue::new();
        for a in script_args {
            match self.lua.create_string(a) {
                Ok(s) => values.push_back(Value::String(s)),
                Err(e) => return self.report(Err(e.to_string())),
            }
        }
        self.report(self.docall(f, values).map(|_| ()))
    }

    /// Calls `f` protected, with the traceback handler and Ctrl-C armed.
    fn docall(&self, f: Function, args: MultiValue) -> Result<MultiValue, String> {
        let xpcall: Function = self
            .lua
            .globals()
            .get("xpcall")
            .map_err(|e| e.to_string())?;
        let mut call_args = MultiValue::new();
        call_args.push_back(Value::Function(f));
        call_args.push_back(Value::Function(self.msghandler.clone()));
        call_args.extend(args);
        let result = {
            let _running = interrupt::Running::start();
            let _flushing = output::Running::start();
            xpcall.call::<MultiValue>(call_args)
        };
        flush_c_stdio();
        let mut values = result.map_err(|e| e.to_string())?;
        match values.pop_front() {
            Some(Value::Boolean(true)) => Ok(values),
            _ => Err(values
                .pop_front()
                .map(|v| value_to_message(&v))
                .unwrap_or_else(|| "(error object is a nil value)".into())),
        }
    }

    /// Prints an error like `lua.c`'s `l_message`; returns whether there was none.
    fn report(&self, result: Result<(), String>) -> bool {
        match result {
            Ok(()) => true,
            Err(msg) => {
                flush_c_stdio();
                eprintln!("{PROGNAME}: {msg}");
                false
            }
        }
    }

    /// The read-eval-print loop.
    fn repl(&self) {
        let mut editor = LineEditor::new();
        loop {
            let chunk = match self.read_chunk(&mut editor) {
                ReadOutcome::Chunk(text, compiled) => {
                    editor.add_history(&text);
                    compiled
                }
                ReadOutcome::Cancelled => continue,
                ReadOutcome::Eof => break,
            };
            let Ok(f) = chunk.map_err(|msg| print_error(&msg)) else {
                continue;
            };
            mark_prompt(b'C');
            let ok = match self.docall(f, MultiValue::new()) {
                Ok(values) => {
                    self.print_values(values);
                    true
                }
                Err(msg) => {
                    print_error(&msg);
                    false
                }
            };
            mark_end(ok);
        }
    }

    /// Reads one complete chunk: first as `return <line>`, else as statements, asking
    /// for more lines (with the second prompt) while the chunk is incomplete.
    fn read_chunk(&self, editor: &mut LineEditor) -> ReadOutcome {
        let Some(line) = self.read_line(editor, true) else {
            return ReadOutcome::Eof;
        };
        let Ok(line) = line else {
            return ReadOutcome::Cancelled;
        };
        let as_expr = format!("return {line}");
        if let Ok(f) = self.lua.load(&as_expr).set_name("=stdin").into_function() {
            return ReadOutcome::Chunk(line, Ok(f));
        }
        let mut buffer = line;
        loop {
            match self.lua.load(&buffer).set_name("=stdin").into_function() {
                Ok(f) => return ReadOutcome::Chunk(buffer, Ok(f)),
                Err(mlua::Error::SyntaxError {
                    incomplete_input: true,
                    message,
                }) => match self.read_line(editor, false) {
                    Some(Ok(more)) => {
                        buffer.push('\n');
                        buffer.push_str(&more);
                    }
                    Some(Err(())) => return ReadOutcome::Cancelled,
                    None => return ReadOutcome::Chunk(buffer, Err(message)),
                },
                Err(e) => return ReadOutcome::Chunk(buffer, Err(syntax_message(&e))),
            }
        }
    }

    /// One line from the editor: `None` at end of input, `Some(Err)` on Ctrl-C.
    fn read_line(&self, editor: &mut LineEditor, first: bool) -> Option<Result<String, ()>> {
        let prompt = self.prompt(first);
        flush_c_stdio();
        if first {
            mark_prompt(b'A');
        }
        match editor.read_line(&prompt) {
            LineRead::Line(line) => Some(Ok(line)),
            LineRead::Interrupted => Some(Err(())),
            LineRead::Eof => None,
        }
    }

    /// `_PROMPT` / `_PROMPT2` when set, as in the reference interpreter.
    fn prompt(&self, first: bool) -> String {
        let (var, default) = if first {
            ("_PROMPT", "> ")
        } else {
            ("_PROMPT2", ">> ")
        };
        match self.lua.globals().get::<Value>(var) {
            // readline's `\1`..`\2` around what takes no room (a `_PROMPT` set for
            // `lua.c`'s prompt marks): this REPL marks its prompts itself.
            Ok(Value::String(s)) => without_invisible(&s.to_string_lossy()),
            Ok(v @ (Value::Integer(_) | Value::Number(_))) => v.to_string().unwrap_or_default(),
            _ => default.to_string(),
        }
    }

    /// Prints results through the global `print`, tab-separated, like `lua.c`.
    fn print_values(&self, values: MultiValue) {
        if values.is_empty() {
            return;
        }
        let result = self
            .lua
            .globals()
            .get::<Function>("print")
            .and_then(|print| print.call::<()>(values));
        flush_c_stdio();
        if let Err(e) = result {
            print_error(&format!("error calling 'print' ({e})"));
        }
    }
}

enum ReadOutcome {
    Chunk(String, Result<Function, String>),
    Cancelled,
    Eof,
}

/// A prompt without readline's invisible spans (`\1`..`\2`).
fn without_invisible(prompt: &str) -> String {
    let mut out = String::with_capacity(prompt.len());
    let mut hidden = false;
    for c in prompt.chars() {
        match c {
            '\u{1}' => hidden = true,
            '\u{2}' => hidden = false,
            c if !hidden => out.push(c),
            _ => {}
        }
    }
    out
}

fn print_error(msg: &str) {
    flush_c_stdio();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{msg}");
}

fn print_version(lua: &Lua) {
    let version: String = lua
        .globals()
        .get("_VERSION")
        .unwrap_or_else(|_| "Lua 5.4".into());
    println!("{version} (bioxen)  Copyright (C) 1994-2025 Lua.org, PUC-Rio");
}

fn value_to_message(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Integer(_) | Value::Number(_) => v.to_string().unwrap_or_default(),
        other => format!("(error object is a {} value)", other.type_name()),
    }
}

/// The compiler's message as Lua prints it (`stdin:1: unexpected symbol near 'x'`).
fn syntax_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `g` as a global assignment target, quoted when it is not a plain name.
fn global_ref(name: &str) -> String {
    let plain = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("_G[{}]", bioxen_text::lua_literal::quote(name))
    }
}

fn strip_shebang(source: &[u8]) -> &[u8] {
    if source.starts_with(b"#") {
        // Keep the newline so line numbers stay right.
        match source.iter().position(|&b| b == b'\n') {
            Some(i) => &source[i..],
            None => &[],
        }
    } else {
        source
    }
}

/// Flushes C stdio, which Lua's `print` and `io.write` go through, so their output
/// is on the terminal before a prompt or an error line is written.
fn flush_c_stdio() {
    // SAFETY: fflush(NULL) flushes every open output stream; always valid.
    unsafe {
        libc::fflush(std::ptr::null_mut());
    }
    let _ = std::io::stdout().flush();
}

/// Tells the terminal where the interpreter is (OSC 133, semantic prompts): `A` as the
/// prompt is drawn, `C` as a chunk starts running. Terminals that know the sequence
/// read busy and idle from it (bioxen's list does); others ignore it. Only on a
/// terminal: piped output stays exactly `lua`'s.
fn mark_prompt(mark: u8) {
    let mut out = std::io::stdout();
    if out.is_terminal() {
        let _ = out
            .write_all(&[0x1b, b']', b'1', b'3', b'3', b';', mark, 0x07])
            .and_then(|()| out.flush());
    }
}

/// Tells the terminal the chunk ended, and how (OSC 133;D;STATUS): bioxen marks a VM
/// back from an error apart from one back from success.
fn mark_end(ok: bool) {
    let mut out = std::io::stdout();
    if out.is_terminal() {
        let status = if ok { b'0' } else { b'1' };
        let _ = out
            .write_all(&[0x1b, b']', b'1', b'3', b'3', b';', b'D', b';', status, 0x07])
            .and_then(|()| out.flush());
    }
}

/// The `bioxen` Lua module (progress, status, notifications), shipped with bioxen.
pub const BIOXEN_MODULE: &str = include_str!("../../../assets/lua/bioxen.lua");

/// Makes `require "bioxen"` load the shipped module, and `bioxen` a global.
fn preload_bioxen_module(lua: &Lua) -> mlua::Result<()> {
    let loader = lua
        .load(BIOXEN_MODULE)
        .set_name("=bioxen")
        .into_function()?;
    let package: mlua::Table = lua.globals().get("package")?;
    let preload: mlua::Table = package.get("preload")?;
    preload.set("bioxen", loader)?;
    let require: Function = lua.globals().get("require")?;
    let module: Value = require.call("bioxen")?;
    lua.globals().set("bioxen", module)
}

/// Module search paths: the Debian layout (so `lua-*` packages load), plus
/// `LUA_PATH_5_4`/`LUA_PATH` and their CPATH twins where `;;` stands for the default.
fn set_module_paths(lua: &Lua, ignore_env: bool) -> mlua::Result<()> {
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    let default_path = "/usr/local/share/lua/5.4/?.lua;/usr/local/share/lua/5.4/?/init.lua;\
                        /usr/local/lib/lua/5.4/?.lua;/usr/local/lib/lua/5.4/?/init.lua;\
                        /usr/share/lua/5.4/?.lua;/usr/share/lua/5.4/?/init.lua;./?.lua;./?/init.lua"
        .to_string();
    let default_cpath = format!(
        "/usr/local/lib/lua/5.4/?.so;/usr/lib/{multiarch}/lua/5.4/?.so;/usr/lib/lua/5.4/?.so;\
         /usr/local/lib/lua/5.4/loadall.so;./?.so"
    );
    let pick = |vars: [&str; 2], default: &str| -> String {
        if ignore_env {
            return default.to_string();
        }
        vars.iter()
            .find_map(|v| std::env::var(v).ok())
            .map(|v| v.replace(";;", &format!(";{default};")))
            .unwrap_or_else(|| default.to_string())
    };
    let package: mlua::Table = lua.globals().get("package")?;
    package.set("path", pick(["LUA_PATH_5_4", "LUA_PATH"], &default_path))?;
    package.set(
        "cpath",
        pick(["LUA_CPATH_5_4", "LUA_CPATH"], &default_cpath),
    )?;
    Ok(())
}

/// The C library's text for an I/O error, as `strerror` gives it to Lua.
fn os_message(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        // SAFETY: strerror returns a valid C string for any error number.
        Some(code) => unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) }
            .to_string_lossy()
            .into_owned(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_line_is_dropped_but_counted() {
        assert_eq!(strip_shebang(b"#!/usr/bin/lua\nprint(1)"), b"\nprint(1)");
        assert_eq!(strip_shebang(b"print(1)"), b"print(1)");
    }
}
