//! The standing fault-injection suite (issue #16 items 17–19): real `stroem serve` and
//! `stroem work` processes (or an in-process server, where the fault is in the server's
//! surroundings) meet `kill -9`, a full disk, a locked or dropped database, a stalling network
//! and hostile workers. Every scenario asserts the same four things: no job is lost, no step
//! runs twice at once, every job ends within a bound, and the database stays consistent.

mod bodies;
mod cluster;
mod database;
mod disk;
mod kill;
mod network;
mod reports;
mod stream;
