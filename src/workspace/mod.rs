//! Workspaces on disk: scanning a folder into [`crate::workflow::WorkspaceFiles`] (WF §1),
//! content-hash revisions and secret resolution (WF §16.1), the built-in example workspace and the
//! server's registry of loaded revisions. This is the I/O side of the language.

pub mod example;
pub mod folder;
pub mod git;
pub mod manager;
pub mod secrets;
