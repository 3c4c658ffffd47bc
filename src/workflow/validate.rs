//! Cross-reference validation on the decoded model (WF §18.2).
//!
//! OWNER: front-end helper.

use super::{Loaded, WorkspaceFiles};

pub fn validate(loaded: &mut Loaded, files: &WorkspaceFiles) {
    let _ = (loaded, files);
}
