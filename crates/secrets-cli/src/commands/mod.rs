//! One module per command.

pub(crate) mod completions;
pub(crate) mod crypto;
pub(crate) mod delete;
pub(crate) mod doctor;
pub(crate) mod get;
pub(crate) mod set;
