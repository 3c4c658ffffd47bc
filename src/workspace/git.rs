//! Git sources (API §10.2, DESIGN §4): a workspace read from one ref of a remote repository
//! with gix — `file://`, smart HTTP(S) with a token, or ssh with a key file.
//!
//! Each git workspace keeps a bare **mirror** under `<data_dir>/git/<ws>/`. A fetch lists the
//! remote's refs first and downloads a pack only when the configured ref points at a commit
//! the mirror does not have; the pack is **shallow** (depth 1: the commit and its tree, no
//! history). The commit's tree is then written into the loader's staging directory
//! ([`export`]); from there on a git revision is loaded exactly like a folder's, and the
//! revision id is the commit id.
//!
//! *Credentials.* A token travels only through gix's credential callback, never in a URL; a
//! URL's own userinfo is accepted but removed from everything shown ([`Remote::display_url`]),
//! and every error text passes through [`Remote::redact`], which removes the token, the
//! userinfo and the raw URL, whatever gix or the server put in the message. The mirror is
//! opened *isolated*: no user or system git configuration (credential helpers, URL rewrites)
//! takes part, and nothing ever prompts.

mod export;
mod fetch;
mod remote;

pub use export::export;
pub use fetch::{fetch, last_good, mark_good};
pub use remote::{Auth, Remote};

use std::path::{Path, PathBuf};

/// The mirror of workspace `ws`.
pub fn mirror_dir(data_dir: &Path, ws: &str) -> PathBuf {
    data_dir.join("git").join(ws)
}

/// Why a fetch or an export failed. The message is already redacted and names the URL (without
/// userinfo) and the ref.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GitError(pub String);

#[cfg(test)]
pub(crate) mod tests;
