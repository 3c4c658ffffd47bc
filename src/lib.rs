//! Strøm: workflow and task orchestration.
//!
//! One crate builds the one `stroem` binary; `main` only dispatches to [`cli`]. See
//! `ARCHITECTURE.md` for the codemap and the invariants between these modules.

pub mod api;
pub mod cli;
pub mod config;
pub mod engine;
pub mod local;
pub mod logs;
pub mod mask;
pub mod orchestrator;
pub mod private;
pub mod runner;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod webhook;
pub mod worker;
pub mod workflow;
pub mod workspace;
