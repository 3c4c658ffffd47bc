//! The credentials `stroem login` keeps (issue #12 item 11): one API key per server, in
//! `$XDG_CONFIG_HOME/stroem/credentials.json` (else `~/.config/stroem/…`), a file only its owner
//! may read (mode 0600, in a 0700 directory). Client verbs use the key stored for their
//! `--server` when no `--token`/`STROEM_TOKEN` is given.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file's name inside the configuration directory.
const FILE: &str = "credentials.json";

/// Every stored credential, by server URL (without a trailing slash).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub servers: BTreeMap<String, Stored>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.servers
                    .iter()
                    .map(|(server, stored)| (server, &stored.email)),
            )
            .finish()
    }
}

/// One server's credential.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// An `strm_` API key.
    pub token: String,
    /// Who it signs in as, for messages.
    pub email: Option<String>,
}

/// Where the file lives, from the environment captured at start-up.
pub fn path(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    let base = env
        .get("XDG_CONFIG_HOME")
        .filter(|dir| Path::new(dir).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            env.get("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| Path::new(home).join(".config"))
        })?;
    Some(base.join("stroem").join(FILE))
}

/// The stored credentials; none when the file does not exist.
pub fn load(path: &Path) -> Result<Credentials, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|error| format!("cannot read {}: {error}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

/// Writes the credentials, readable by the owner only; a file left world-readable by
/// something else is tightened.
pub fn save(path: &Path, credentials: &Credentials) -> Result<(), String> {
    let fail = |error: std::io::Error| format!("cannot write {}: {error}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)?;
    }
    let text = serde_json::to_string_pretty(credentials).map_err(|error| error.to_string())?;
    // Write a new file next to the old one and rename it over, so a crash never leaves half a
    // file, and the new file is created with mode 0600 from the start.
    let temporary = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(fail)
}

/// The server URL as credentials are keyed.
pub fn key(server: &str) -> String {
    server.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_written_for_the_owner_only() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let env = BTreeMap::from([(
            "XDG_CONFIG_HOME".to_owned(),
            dir.path().display().to_string(),
        )]);
        let file = path(&env).expect("a path");
        assert_eq!(file, dir.path().join("stroem/credentials.json"));
        assert_eq!(
            load(&file).expect("absent is empty"),
            Credentials::default()
        );
        let mut credentials = Credentials::default();
        credentials.servers.insert(
            key("http://localhost:8080/"),
            Stored {
                token: "strm_0123".to_owned(),
                email: Some("a@example.test".to_owned()),
            },
        );
        save(&file, &credentials).expect("saves");
        let mode = std::fs::metadata(&file)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(file.parent().expect("dir"))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(load(&file).expect("loads"), credentials);
        assert!(!format!("{credentials:?}").contains("strm_0123"));
        let home = BTreeMap::from([("HOME".to_owned(), "/home/ada".to_owned())]);
        assert_eq!(
            path(&home),
            Some(PathBuf::from("/home/ada/.config/stroem/credentials.json"))
        );
    }
}
