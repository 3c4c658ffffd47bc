//! What a git workspace fetches from, and the one place that decides what of it may be shown.

use std::fmt;
use std::path::PathBuf;

/// How to authenticate to the remote (API §10.2 `workspaces.<name>.auth`).
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// HTTP(S): the token is the password of `username` (`x-access-token` by default).
    Token { username: String, token: String },
    /// ssh: the private key file handed to `ssh -i`, and the user name when the URL has none.
    SshKey {
        username: Option<String>,
        key_path: PathBuf,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Token { username, .. } => f
                .debug_struct("Token")
                .field("username", username)
                .field("token", &"***")
                .finish(),
            Auth::SshKey { username, key_path } => f
                .debug_struct("SshKey")
                .field("username", username)
                .field("key_path", key_path)
                .finish(),
        }
    }
}

/// One git source: a URL, a ref (branch, tag or full commit id) and its credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Remote {
    /// As configured; may hold userinfo, so it is never shown as it is.
    url: String,
    pub git_ref: String,
    pub auth: Option<Auth>,
    /// What a push webhook from the git host authenticates with; `None` ⇒ no push hook.
    webhook_secret: Option<String>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.display_url())
            .field("git_ref", &self.git_ref)
            .field("auth", &self.auth)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

impl Remote {
    pub fn new(url: impl Into<String>, git_ref: impl Into<String>, auth: Option<Auth>) -> Remote {
        Remote {
            url: url.into(),
            git_ref: git_ref.into(),
            auth,
            webhook_secret: None,
        }
    }

    /// Enables the push webhook with `secret`.
    #[must_use]
    pub fn with_webhook_secret(mut self, secret: Option<String>) -> Remote {
        self.webhook_secret = secret;
        self
    }

    /// The push webhook's secret, for the one check that needs it.
    pub fn webhook_secret(&self) -> Option<&str> {
        self.webhook_secret.as_deref()
    }

    /// The URL to connect to, userinfo included. Only the fetch itself reads this.
    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// The URL without its userinfo part (API §2.1): what the API, the UI and the log show.
    pub fn display_url(&self) -> String {
        match userinfo_span(&self.url) {
            Some((start, end)) => format!("{}{}", &self.url[..start], &self.url[end + 1..]),
            None => self.url.clone(),
        }
    }

    /// The texts that must never be shown: the token, the URL's userinfo (raw and
    /// percent-decoded) and the password alone.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = Vec::new();
        if let Some(Auth::Token { token, .. }) = &self.auth {
            secrets.push(token.clone());
        }
        if let Some((start, end)) = userinfo_span(&self.url) {
            let userinfo = &self.url[start..end];
            secrets.push(userinfo.to_owned());
            secrets.push(percent_decode(userinfo));
            if let Some((_, password)) = userinfo.split_once(':') {
                secrets.push(password.to_owned());
                secrets.push(percent_decode(password));
            }
        }
        secrets.retain(|s| !s.is_empty());
        // Longest first, so a value containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets
    }

    /// `text` with the raw URL replaced by [`display_url`](Self::display_url) and every secret
    /// by `***`. Every message about this remote passes through here before anyone sees it.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.replace(&self.url, &self.display_url());
        for secret in self.secrets() {
            text = text.replace(&secret, "***");
        }
        text
    }
}

/// The byte range of the userinfo in `scheme://userinfo@host/…` (without the `@`), and the
/// index of the `@`.
fn userinfo_span(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let at = url[start..authority_end].rfind('@')? + start;
    Some((start, at))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| Some(hex(*bytes.get(i + 1)?)? * 16 + hex(*bytes.get(i + 2)?)?))
            .flatten();
        match escaped.and_then(|value| u8::try_from(value).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
