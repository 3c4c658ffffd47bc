//! `stroem run`'s executor: one job (and its child jobs) in memory, steps run by the local
//! runner, no server and no database.

pub mod approve;
pub mod executor;
mod hooks;
pub mod print;
