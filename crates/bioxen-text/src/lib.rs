//! Text helpers every layer of bioxen uses, with no dependency on any of them: text
//! from outside made safe for a terminal, widths in display columns, the figures the
//! list shows, Lua string literals and base64.
//!
//! They live apart from the terminal emulator so that the configuration and the
//! backends, which never draw a screen, can sanitize what they log without linking a
//! VT parser.

pub mod base64;
pub mod columns;
pub mod figures;
pub mod lua_literal;
pub mod sanitize;
