//! The subcommands that are more than a call into the library.

pub(crate) mod run;
