//! Workspaces on disk: scanning a folder into [`crate::workflow::WorkspaceFiles`] (WF §1),
//! content-hash revisions and secret resolution (WF §16.1). This is the I/O side of the language.

pub mod folder;
pub mod secrets;
