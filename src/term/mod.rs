//! The terminal engine: turning a session's output bytes into a screen, and the
//! dashboard's keystrokes into the bytes a program expects.

pub mod encode;
mod escapes;
mod osc_guard;
pub mod screen;
mod scrollback;
pub mod signals;

pub use bioxen_proto::Snapshot;
pub use escapes::dec_special_graphics;
pub use screen::Screen;
