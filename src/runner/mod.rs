//! Runners execute one attempt of a worker step. The local runner spawns a process on this host;
//! the Docker runner (cargo feature `docker`) runs a container through the Docker Engine API;
//! the Kubernetes runner (cargo feature `kubernetes`) runs a pod through the Kubernetes API.
//!
//! *Invariant*: runners know nothing about jobs, the DAG or the store; they receive a fully
//! rendered [`spec::StepSpec`] and report lines and an [`spec::AttemptResult`].

mod capture;
mod confine;
pub mod container;
#[cfg(feature = "docker")]
pub mod docker;
mod environment;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
mod leftover;
pub mod local;
mod output;
pub mod pod;
mod process;
pub mod scratch;
mod sink;
pub mod spec;
pub mod supervise;
pub mod workcopy;

#[cfg(all(test, feature = "docker"))]
mod docker_tests;
#[cfg(test)]
mod local_tests;
#[cfg(test)]
mod stop_tests;

pub use local::LocalRunner;
pub use scratch::Scratch;
pub use sink::LogSink;
pub use workcopy::WorkingCopy;
