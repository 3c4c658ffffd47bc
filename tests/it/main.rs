//! The one integration-test binary (STYLE §9): every module drives real parts — here the real
//! `stroem` binary through [`support::Stroem`].

mod support;
mod validate;
