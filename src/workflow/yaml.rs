//! A YAML tree that remembers where every node came from.
//!
//! serde_yaml keeps no positions of values, and the language's diagnostics need file, line and
//! column for every key and value. This module builds its own tree from yaml-rust2's marked
//! events: anchors and aliases expanded, `<<` merge keys applied, duplicate keys reported.
//!
//! OWNER: front-end helper.
