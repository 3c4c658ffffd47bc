//! Decoding: YAML trees of every workflow file → one merged [`WorkspaceDef`](super::model::WorkspaceDef).
//!
//! OWNER: front-end helper.

use super::{Loaded, WorkspaceFiles};

pub fn decode(files: &WorkspaceFiles) -> Loaded {
    let _ = files;
    Loaded::default()
}
