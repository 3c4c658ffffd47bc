//! Strøm's own credentials as loaded (issue #16 item 5): every 🔒 value the configuration read
//! — `worker_token`, `db.url`, the JWT and refresh secrets, OIDC client secrets, git tokens,
//! whatever key is marked 🔒 next — with the password inside a URL as a value of its own, and
//! the names of the environment variables they were read from.
//!
//! Every 🔒 key is read through one function of the loader, which records what it read here,
//! so a key added later is covered without more code. The CLI scrubs the environment it hands
//! to steps and to the secrets' `env` context with [`Credentials::scrub`], and masks the values
//! wherever job text is stored or shown, should a step get hold of one anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::mask::Masker;

/// The variable holding the CLI's API credential (API §9.1).
pub const CLI_TOKEN_VAR: &str = "STROEM_TOKEN";

/// Credentials and where they came from. `Debug` prints the variable names and how many
/// values there are, never a value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    values: BTreeSet<String>,
    names: BTreeSet<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("values", &self.values.len())
            .field("names", &self.names)
            .finish()
    }
}

impl Credentials {
    /// Records a credential, and the variable it was read from when it came from one.
    pub fn add(&mut self, value: &str, variable: Option<&str>) {
        if value.is_empty() {
            return;
        }
        self.values.insert(value.to_owned());
        if let Some(password) = url_password(value) {
            self.values.insert(password);
        }
        if let Some(name) = variable {
            self.names.insert(name.to_owned());
        }
    }

    /// The credentials a client command holds: the API token in `STROEM_TOKEN`.
    pub fn of_client(env: &BTreeMap<String, String>) -> Credentials {
        let mut credentials = Credentials::default();
        if let Some(token) = env.get(CLI_TOKEN_VAR) {
            credentials.add(token, Some(CLI_TOKEN_VAR));
        }
        credentials
    }

    /// These credentials and `other`'s.
    pub fn merge(&mut self, other: &Credentials) {
        self.values.extend(other.values.iter().cloned());
        self.names.extend(other.names.iter().cloned());
    }

    /// A masker for the values, to hide them in logs, errors and views.
    pub fn masker(&self) -> Masker {
        Masker::new(&self.values)
    }

    /// `env` without Strøm's credentials: the variables they were read from and every variable
    /// whose value contains one (`DATABASE_URL` holding `db.url`, a copy of the worker token).
    /// What remains is what steps inherit and what the secrets' `env` context reads (WF §11.1,
    /// §16.1), which also hide every name starting with `STROEM`.
    pub fn scrub(&self, env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let values = self.masker();
        env.iter()
            .filter(|(name, value)| !self.names.contains(*name) && !values.matches(value))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }
}

/// The password of a URL with credentials (`postgres://user:password@host/db`), as written and
/// percent-decoded; `None` without one.
fn url_password(value: &str) -> Option<String> {
    let (_, rest) = value.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then(|| percent_decode(password))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let decoded = (bytes[index] == b'%')
            .then(|| text.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn scrub_drops_the_source_variables_and_every_copy_of_a_value() {
        let mut credentials = Credentials::default();
        credentials.add(
            "postgres://app:p%40ss-word@db:5432/stroem",
            Some("STROEM__DB__URL"),
        );
        credentials.add("worker-token-0123456789", None);
        let scrubbed = credentials.scrub(&env(&[
            (
                "STROEM__DB__URL",
                "postgres://app:p%40ss-word@db:5432/stroem",
            ),
            ("DATABASE_URL", "postgres://app:p%40ss-word@db:5432/stroem"),
            ("PGPASSWORD", "p@ss-word"),
            ("TOKEN_COPY", "Bearer worker-token-0123456789"),
            ("HOME", "/home/stroem"),
            ("SHORT", "p"),
        ]));
        assert_eq!(
            scrubbed.keys().collect::<Vec<_>>(),
            ["HOME", "SHORT"],
            "{scrubbed:?}"
        );
    }

    #[test]
    fn url_passwords_are_credentials_of_their_own() {
        assert_eq!(
            url_password("postgres://u:s3cr%2Ft@h/db?x=1").as_deref(),
            Some("s3cr/t")
        );
        assert_eq!(url_password("postgres://u@h/db"), None);
        assert_eq!(url_password("sqlite:///data/stroem.db"), None);
        assert_eq!(url_password("not a url"), None);
    }

    #[test]
    fn the_client_token_and_debug_output() {
        let credentials = Credentials::of_client(&env(&[("STROEM_TOKEN", "cli-token-value")]));
        assert!(credentials.masker().matches("Bearer cli-token-value"));
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("cli-token-value"), "{shown}");
        assert!(shown.contains("STROEM_TOKEN"), "{shown}");
    }
}
