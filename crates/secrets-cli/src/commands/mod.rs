//! One module per command.

pub(crate) mod audit;
pub(crate) mod completions;
pub(crate) mod config;
pub(crate) mod config_migrate;
pub(crate) mod crypto;
pub(crate) mod delete;
pub(crate) mod doctor;
pub(crate) mod get;
pub(crate) mod migrate_db;
pub(crate) mod rotate_db;
pub(crate) mod set;
