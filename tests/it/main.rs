//! Strøm's one integration-test binary (STYLE §9): each module tests one part through its
//! public surface — files on disk, the real `stroem` binary (through [`support::Stroem`]), real
//! processes.

mod auth;
mod client;
mod config_example;
mod credentials;
mod faults;
#[cfg(feature = "kubernetes")]
mod kubernetes;
mod logging;
mod openapi_check;
mod run;
mod serve;
mod server_harness;
mod support;
mod validate;
mod worker;
