//! `stroem serve` end to end (issue 3's acceptance): a real server started in-process on port 0
//! with [`stroem::cli::serve::start`], driven over real HTTP and, for the worker protocol's
//! fencing and recovery, through its orchestrator. Every test runs on SQLite and PostgreSQL
//! ([`serve_test!`](crate::server_harness::serve_test)).

mod approvals;
mod cancel;
mod chains;
mod examples;
mod git;
mod hardening;
mod hook_jobs;
mod leases;
mod load;
mod local_mode;
mod metrics;
mod missing_secret;
mod private_files;
mod quickstart;
mod recovery;
mod rejections;
mod reruns;
mod restart;
mod retention;
mod schedule;
mod secrets;
mod semantics;
mod short_ids;
mod shutdown;
mod transitions;
mod upgrade;
mod webhooks;
mod workspace_token;
