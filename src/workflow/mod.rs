//! The workflow language (WORKFLOW-FORMAT.md): YAML in, a typed [`model::WorkspaceDef`] and
//! every [`diagnostic::Diagnostic`] out, plus the pure helpers every entry point shares
//! (templating, input schemas).
//!
//! *Invariant*: nothing in this module does I/O. Callers read the files (see
//! [`crate::workspace`]) and hand their text in as [`WorkspaceFiles`].

pub mod decode;
pub mod diagnostic;
pub mod input;
pub mod manifest;
pub mod model;
pub mod reach;
pub mod source;
pub mod template;
pub mod validate;
pub mod yaml;

use std::collections::BTreeSet;

use diagnostic::Diagnostic;
use model::WorkspaceDef;
use source::SourceMap;

/// One workflow file: its path relative to the workspace root and its text.
#[derive(Debug, Clone)]
pub struct WorkflowFile {
    pub path: String,
    pub text: String,
}

/// What the language needs to know about a workspace's files.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceFiles {
    /// The workflow files in byte order of their relative paths (WF §1.1).
    pub workflow_files: Vec<WorkflowFile>,
    /// Every regular file of the workspace (relative paths), for `source` checks (rule 10).
    pub all_files: BTreeSet<String>,
}

/// A decoded and validated workspace. `def` is usable only when no diagnostic is an error.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub def: WorkspaceDef,
    pub sources: SourceMap,
    /// Every problem found, sorted by location.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Decodes and validates a whole workspace, collecting every problem in one pass (WF §18).
pub fn load(files: &WorkspaceFiles) -> Loaded {
    let mut loaded = decode::decode(files);
    validate::validate(&mut loaded, files);
    diagnostic::sort(&mut loaded.diagnostics);
    loaded
}
