//! `stroem login` and `stroem logout` (issue #12 item 11).
//!
//! `login` signs in with e-mail and password (prompted without echo on the terminal, or read
//! from stdin with `--password-stdin`), makes an API key named for this machine with that
//! session, signs the session out again, and stores the key for the server
//! ([`super::credentials`]); `--api-key` stores a key made elsewhere after checking it. Keeping
//! a key rather than the session's refresh token means two `stroem` commands at once never race
//! to rotate one token — which the server would treat as theft and answer by signing out.
//! `logout` revokes the stored key on the server and forgets it.

use std::io::BufRead;

use serde_json::json;

use super::Global;
use super::client::{Client, ClientError, exit};
use super::credentials::{self, Credentials, Stored};
use crate::api::auth::{ApiKeyCreatedReply, TokenReply, UserView};

/// How long a key made by `stroem login` lives.
const KEY_DAYS: u32 = 90;

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The account's e-mail (prompted when absent).
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,
    /// Read the password from the first line of stdin instead of prompting.
    #[arg(long, conflicts_with = "api_key")]
    pub password_stdin: bool,
    /// Store this API key (`strm_…`, made in the web UI or with `POST /api/auth/api-keys`)
    /// instead of signing in with a password.
    #[arg(
        long,
        value_name = "KEY",
        env = "STROEM_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {}

pub fn login(args: LoginArgs, global: &Global) -> Result<u8, ClientError> {
    let env = super::environment();
    let path = credentials::path(&env).ok_or_else(|| {
        ClientError::Usage(
            "cannot find a configuration directory: set HOME or XDG_CONFIG_HOME".to_owned(),
        )
    })?;
    let server = global.server_url();
    let anonymous = Client::new(&server, None)?;
    let (token, email) = match args.api_key {
        Some(key) => {
            let checked = Client::new(&server, Some(key.clone()))?;
            let me: UserView = checked.get("/api/auth/me", &[])?.parse()?;
            (key, me.email)
        }
        None => {
            let stdin = std::io::stdin();
            let email = match args.email {
                Some(email) => email,
                None => {
                    eprint!("E-mail: ");
                    read_line(&mut stdin.lock())?
                }
            };
            let password = if args.password_stdin {
                read_line(&mut stdin.lock())?
            } else {
                rpassword::prompt_password("Password: ").map_err(|error| {
                    ClientError::Usage(format!(
                        "cannot read the password from the terminal ({error}); use --password-stdin or --api-key"
                    ))
                })?
            };
            let session: TokenReply = anonymous
                .post(
                    "/api/auth/login",
                    Some(&json!({"email": email, "password": password})),
                )?
                .parse()?;
            let signed_in = Client::new(&server, Some(session.access_token.clone()))?;
            let host = env
                .get("HOSTNAME")
                .cloned()
                .unwrap_or_else(|| "cli".to_owned());
            let name = format!(
                "stroem login {host} {}",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
            );
            let created: ApiKeyCreatedReply = signed_in
                .post(
                    "/api/auth/api-keys",
                    Some(&json!({"name": name, "expires_in_days": KEY_DAYS})),
                )?
                .parse()?;
            // The session was only needed to make the key.
            let _ = anonymous.post(
                "/api/auth/logout",
                Some(&json!({"refresh_token": session.refresh_token})),
            );
            (created.key, email)
        }
    };
    let mut stored = credentials::load(&path).map_err(ClientError::Usage)?;
    stored.servers.insert(
        credentials::key(&server),
        Stored {
            token,
            email: Some(email.clone()),
        },
    );
    credentials::save(&path, &stored).map_err(ClientError::Usage)?;
    super::out::line(format_args!("signed in to {server} as {email}"));
    Ok(exit::OK)
}

pub fn logout(_args: LogoutArgs, global: &Global) -> Result<u8, ClientError> {
    let env = super::environment();
    let path = credentials::path(&env).ok_or_else(|| {
        ClientError::Usage(
            "cannot find a configuration directory: set HOME or XDG_CONFIG_HOME".to_owned(),
        )
    })?;
    let server = global.server_url();
    let mut stored: Credentials = credentials::load(&path).map_err(ClientError::Usage)?;
    let Some(entry) = stored.servers.remove(&credentials::key(&server)) else {
        super::out::line(format_args!("not signed in to {server}"));
        return Ok(exit::OK);
    };
    // Revoke the key on the server too; a server that is gone or already forgot the key does
    // not keep the local credential alive.
    let prefix = crate::auth::token::api_key_prefix(&entry.token).to_owned();
    if let Ok(client) = Client::new(&server, Some(entry.token.clone())) {
        let _ = client.delete(&format!("/api/auth/api-keys/{prefix}"));
    }
    credentials::save(&path, &stored).map_err(ClientError::Usage)?;
    super::out::line(format_args!("signed out of {server}"));
    Ok(exit::OK)
}

fn read_line(input: &mut impl BufRead) -> Result<String, ClientError> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|error| ClientError::Usage(format!("cannot read stdin: {error}")))?;
    let line = line.trim_end_matches(['\n', '\r']).to_owned();
    if line.is_empty() {
        return Err(ClientError::Usage("no input on stdin".to_owned()));
    }
    Ok(line)
}
