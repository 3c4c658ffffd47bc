//! Strøm's one integration-test binary (STYLE §9): each module tests one part through its
//! public surface — files on disk, the real `stroem` binary, real processes.

mod config_example;
mod run;
