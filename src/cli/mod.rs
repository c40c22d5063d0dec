//! The subcommands besides the dashboard: `run` and `ls`.

pub mod ls;
pub mod run;
