//! The terminal engine: a session's output bytes become a screen, with its scrollback
//! and what the program said about itself. The server keeps one screen per VM; a
//! dashboard keeps a mirror of each screen it shows, made from a snapshot and the same
//! bytes. No async runtime, no terminal library: bytes in, cells out.

mod escapes;
mod osc_guard;
pub mod screen;
mod scrollback;
pub mod signals;

pub use bioxen_proto::Snapshot;
pub use escapes::dec_special_graphics;
pub use screen::{LogicalText, Screen};
