//! One fetch: list the remote's refs, pick the configured one, download its commit shallowly
//! when the mirror lacks it, and name the commit.

use std::fmt::Write as _;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use gix::bstr::ByteSlice;
use gix::remote::Direction;
use gix::remote::fetch::{Shallow, Tags, refmap::Source};
use gix::remote::ref_map;

use super::{Auth, GitError, Remote};

/// The commit the last fetch found, so the next fetch negotiates from it.
const FETCHED_REF: &str = "refs/stroem/fetched";
/// The commit of the last revision that loaded without errors ([`mark_good`]).
const GOOD_REF: &str = "refs/stroem/good";

/// Fetches `remote`'s ref into the bare mirror at `mirror` (created when missing or broken)
/// and returns its commit id (lowercase hex). The error names the URL without userinfo and
/// the ref, and holds no credential.
pub fn fetch(mirror: &Path, remote: &Remote) -> Result<String, GitError> {
    let fail = |detail: String| {
        // gix's words when the server asks for credentials and the callback has none.
        let detail = if detail.contains("No credentials were returned") {
            "the server requires authentication (HTTP 401) and no credentials were accepted: \
             configure 'auth' (type token), or check the user and password in the URL"
                .to_owned()
        } else {
            detail
        };
        GitError(remote.redact(&format!(
            "cannot fetch '{}' from {}: {detail}",
            remote.git_ref,
            remote.display_url()
        )))
    };
    // gix's HTTP client is reqwest on rustls without a built-in provider: the tests and any
    // caller other than `main` get ring here too.
    crate::install_crypto_provider();
    let repo = open_mirror(mirror, remote).map_err(|e| fail(chain(&e)))?;
    let spec = refspec(&remote.git_ref).map_err(&fail)?;
    let wanted = {
        let connection = repo
            .remote_at(remote.url())
            .map_err(|e| fail(chain(&e)))?
            .with_fetch_tags(Tags::None);
        let auth = remote.auth.clone();
        let connection = connection
            .connect(Direction::Fetch)
            .map_err(|e| fail(chain(&e)))?
            .with_credentials(move |action| Ok(credentials(auth.as_ref(), action)));
        let options = ref_map::Options {
            extra_refspecs: vec![spec],
            ..Default::default()
        };
        let prepare = connection
            .prepare_fetch(gix::progress::Discard, options)
            .map_err(|e| fail(chain(&e)))?;
        let wanted = pick(prepare.ref_map(), &remote.git_ref).ok_or_else(|| {
            fail("the remote has no branch, tag or commit of that name (deleted?)".to_owned())
        })?;
        if !repo.has_object(wanted) {
            let depth = NonZeroU32::MIN;
            prepare
                .with_shallow(Shallow::DepthAtRemote(depth))
                .receive(gix::progress::Discard, &AtomicBool::new(false))
                .map_err(|e| fail(chain(&e)))?;
        }
        wanted
    };
    let commit = repo
        .find_object(wanted)
        .and_then(|object| object.peel_to_commit())
        .map_err(|e| fail(format!("'{}' is not a commit: {}", wanted, chain(&e))))?
        .id;
    set_ref(&repo, FETCHED_REF, commit).map_err(|e| fail(chain(&e)))?;
    Ok(commit.to_string())
}

/// Records `commit` as the last good revision, for [`last_good`] after a restart.
pub fn mark_good(mirror: &Path, commit: &str) -> Result<(), GitError> {
    let detail = |e: &dyn std::error::Error| {
        GitError(format!("cannot record commit {commit}: {}", chain(e)))
    };
    let repo = open_existing(mirror).map_err(|e| detail(&e))?;
    let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| detail(&e))?;
    set_ref(&repo, GOOD_REF, id).map_err(|e| detail(&e))
}

/// The commit [`mark_good`] recorded last, when the mirror still holds it: what a server that
/// cannot reach its remote at start-up serves.
pub fn last_good(mirror: &Path) -> Option<String> {
    let repo = open_existing(mirror).ok()?;
    let mut reference = repo.try_find_reference(GOOD_REF).ok()??;
    let id = reference.peel_to_id().ok()?.detach();
    repo.has_object(id).then(|| id.to_string())
}

/// Configuration that makes the mirror independent of the machine's git setup: no reflogs, a
/// fixed identity for ref updates, and the ssh key when there is one.
fn overrides(remote: &Remote) -> Vec<String> {
    let mut overrides = vec![
        "core.logAllRefUpdates=false".to_owned(),
        "user.name=stroem".to_owned(),
        "user.email=stroem@localhost".to_owned(),
    ];
    if let Some(Auth::SshKey { username, key_path }) = &remote.auth {
        let mut command = format!(
            "ssh -i '{}' -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=20",
            key_path.display().to_string().replace('\'', "'\\''")
        );
        if let Some(user) = username {
            let _ = write!(command, " -l '{}'", user.replace('\'', "'\\''"));
        }
        overrides.push(format!("core.sshCommand={command}"));
    }
    overrides
}

fn open_options(remote: Option<&Remote>) -> gix::open::Options {
    let overrides = remote.map(overrides).unwrap_or_default();
    gix::open::Options::isolated().config_overrides(overrides)
}

fn open_existing(mirror: &Path) -> Result<gix::Repository, gix::Error> {
    gix::open_opts(mirror, open_options(None))
}

/// Opens the mirror, or makes a new one when it is missing or unreadable (a crash mid-write
/// costs one full shallow fetch, nothing more).
fn open_mirror(mirror: &Path, remote: &Remote) -> Result<gix::Repository, gix::Error> {
    if let Ok(repo) = gix::open_opts(mirror, open_options(Some(remote))) {
        return Ok(repo);
    }
    if mirror.exists() {
        let _ = std::fs::remove_dir_all(mirror);
    }
    crate::private::create_dir(mirror).map_err(gix::Error::from_error)?;
    gix::init_bare(mirror)?;
    gix::open_opts(mirror, open_options(Some(remote)))
}

fn set_ref(repo: &gix::Repository, name: &str, id: gix::ObjectId) -> Result<(), gix::Error> {
    repo.reference(
        name,
        id,
        gix::refs::transaction::PreviousValue::Any,
        "stroem fetch",
    )?;
    Ok(())
}

/// The fetch refspec for a configured ref: a full commit id as itself, anything else as the
/// partial name git would match (`main` → `refs/heads/main`, `v1` → `refs/tags/v1`).
fn refspec(git_ref: &str) -> Result<gix::refspec::RefSpec, String> {
    let invalid = || format!("'{git_ref}' is not a valid ref name");
    if git_ref.is_empty() || git_ref.starts_with('-') || git_ref.contains([':', '*', '^', '~']) {
        return Err(invalid());
    }
    gix::refspec::parse(git_ref.into(), gix::refspec::parse::Operation::Fetch)
        .map(|spec| spec.to_owned())
        .map_err(|_| invalid())
}

/// The object the configured ref names among the remote's refs: the full name when one
/// matches exactly, else a branch before a tag before anything else.
fn pick(map: &gix::remote::fetch::RefMap, git_ref: &str) -> Option<gix::ObjectId> {
    let mut best: Option<(u8, gix::ObjectId)> = None;
    for mapping in &map.mappings {
        let (rank, id) = match &mapping.remote {
            Source::ObjectId(id) => (0, *id),
            Source::Ref(r) => {
                let (name, target, _peeled) = r.unpack();
                let Some(target) = target else { continue };
                let name = name.to_str_lossy();
                let rank = if name == git_ref {
                    0
                } else if name.starts_with("refs/heads/") {
                    1
                } else if name.starts_with("refs/tags/") {
                    2
                } else {
                    3
                };
                (rank, target.to_owned())
            }
        };
        if best.is_none_or(|(have, _)| rank < have) {
            best = Some((rank, id));
        }
    }
    best.map(|(_, id)| id)
}

/// Credentials for the remote, or none: a remote that asks without a configured token gets a
/// clear "authentication required" instead of a prompt or a helper of the server's user.
fn credentials(
    auth: Option<&Auth>,
    action: gix::credentials::helper::Action,
) -> Option<gix::credentials::protocol::Outcome> {
    let gix::credentials::helper::Action::Get(context) = action else {
        return None;
    };
    let Some(Auth::Token { username, token }) = auth else {
        return None;
    };
    Some(gix::credentials::protocol::Outcome {
        identity: gix::sec::identity::Account {
            username: username.clone(),
            password: token.clone(),
            oauth_refresh_token: None,
        },
        next: context.into(),
    })
}

/// An error and its causes, one sentence each, without repeats.
pub(super) fn chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let text = error.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}
