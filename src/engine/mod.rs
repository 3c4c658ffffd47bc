//! The job engine's rules (WF §10, §13; API §8): readiness, skipping, convergence, `when`,
//! `for_each`, retries, timeouts, cancellation and job outcome — as pure functions of a job's
//! state and an event.
//!
//! *Invariant*: no I/O, no clock, no randomness of its own. Callers pass `now` and a jitter
//! source, so `stroem run`, the server and the tests all drive the same code deterministically.
//!
//! OWNER: engine helper.
