//! Runners execute one attempt of a worker step. The local runner spawns a process on this host.
//!
//! *Invariant*: runners know nothing about jobs, the DAG or the store; they receive a fully
//! rendered [`spec::StepSpec`] and report lines and an [`spec::AttemptResult`].

pub mod spec;
