//! The subcommands besides the dashboard: `run`, `ls` and `demo`.

pub mod demo;
pub mod ls;
pub mod run;
