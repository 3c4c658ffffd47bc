//! Strøm: workflow and task orchestration.
//!
//! One crate builds the one `stroem` binary; `main` only dispatches to [`cli`]. See
//! `ARCHITECTURE.md` for the codemap and the invariants between these modules.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod engine;
pub mod local;
pub mod logs;
pub mod mask;
pub mod metrics;
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

/// Makes ring rustls's process-wide crypto provider. rustls panics when it cannot tell which
/// provider to use (API clients of OIDC, git and Kubernetes all build rustls configurations);
/// Strøm compiles only ring in, and installs it explicitly, first thing in `main` and in every
/// test that builds such a client. Idempotent: a second call keeps the first provider.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
