//! Tests of the wire types: a job run by the real engine converted to its API shape, and the
//! request bodies' parsing and validation rules.

mod job;
mod wire;
