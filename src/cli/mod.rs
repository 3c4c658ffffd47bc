//! The command line: one clap `Cli`, one module per verb. `main` only calls [`main`].
//!
//! In a container the role may come from `STROEM_ROLE=serve|work` when no verb is given; that is
//! resolved here, in one place, into the same [`Command`] enum.

pub mod approve;
pub mod cancel;
pub mod client;
pub mod completions;
pub mod credentials;
pub mod follow;
pub mod healthcheck;
pub mod job_input;
pub mod jobs;
pub mod login;
pub mod logs;
mod out;
mod prompt;
pub mod render;
pub mod rerun;
pub mod run;
mod runners;
pub mod serve;
pub mod status;
pub mod tasks;
pub mod trigger;
pub mod validate;
pub mod work;
pub mod workspaces;

use std::process::ExitCode;

use crate::config::DEFAULT_SERVER_URL;

use clap::{FromArgMatches, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "stroem",
    version = env!("STROEM_LONG_VERSION"),
    about = "Strøm: workflow and task orchestration"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The global options of API §9.1, accepted before or after the verb.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// The server's URL (client verbs and `work`; default `http://localhost:8080`).
    #[arg(
        short = 's',
        long = "server",
        env = "STROEM_URL",
        global = true,
        value_name = "URL"
    )]
    pub server: Option<String>,
    /// API token: a JWT or an `strm_` API key (client verbs).
    #[arg(
        long,
        env = "STROEM_TOKEN",
        hide_env_values = true,
        global = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Output format: `json` prints exactly the API's response body.
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        default_value_t,
        global = true
    )]
    pub output: OutputFormat,
}

impl Global {
    /// A client for `--server` with `--token`, else the credential `stroem login` stored for
    /// that server.
    pub fn client(&self) -> Result<client::Client, client::ClientError> {
        let server = self.server_url();
        let token = match self.token.clone().filter(|token| !token.is_empty()) {
            Some(token) => Some(token),
            None => stored_token(&server)?,
        };
        client::Client::new(&server, token)
    }

    /// `--server`, `STROEM_URL`, or the default.
    pub fn server_url(&self) -> String {
        self.server
            .as_deref()
            .unwrap_or(DEFAULT_SERVER_URL)
            .to_owned()
    }

    pub fn json(&self) -> bool {
        self.output == OutputFormat::Json
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a task from a local workspace without a server.
    Run(run::Args),
    /// Serve the HTTP API and web UI, run the job engine and an embedded worker.
    Serve(serve::Args),
    /// Lint workflow files: every problem, with file, line and a suggestion.
    Validate(validate::Args),
    /// Run steps for a server: register, claim, run, stream logs, report.
    Work(work::Args),
    /// List the server's workspaces.
    Workspaces(workspaces::Args),
    /// List tasks (of all workspaces without `-w`).
    Tasks(tasks::Args),
    /// Start a job of a task; optionally wait for it or follow its log.
    Trigger(trigger::Args),
    /// Show a job and its steps.
    Status(status::Args),
    /// Print a job's log, or follow it live.
    Logs(logs::Args),
    /// List recent jobs.
    Jobs(jobs::Args),
    /// Cancel a job.
    Cancel(cancel::Args),
    /// Approve (or with `--reject`, reject) a suspended approval step.
    Approve(approve::Args),
    /// Start a job again with the same input (secret fields reused on the server), or with
    /// `--from-failed` restart it from the failed step, reusing what completed.
    Rerun(rerun::Args),
    /// Sign in to a server and keep the credential for the other verbs.
    Login(login::LoginArgs),
    /// Forget (and revoke) the credential `stroem login` stored for a server.
    Logout(login::LogoutArgs),
    /// Print a shell completion script.
    Completions(completions::Args),
    /// Exit 0 when the server's `/healthz` answers ok (the container image's HEALTHCHECK).
    #[command(hide = true)]
    Healthcheck(healthcheck::Args),
}

/// The key `stroem login` stored for `server`, if any.
fn stored_token(server: &str) -> Result<Option<String>, client::ClientError> {
    let Some(path) = credentials::path(&environment()) else {
        return Ok(None);
    };
    let stored = credentials::load(&path).map_err(client::ClientError::Usage)?;
    Ok(stored
        .servers
        .get(&credentials::key(server))
        .map(|entry| entry.token.clone()))
}

/// `-o text|json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

/// The global options (API §9.1) each verb uses; the others are hidden from its help (they
/// are still accepted, so `stroem -o json serve` does not fail): `--server`/`--token` are
/// for the client verbs (`--server` also `work`), `-o` for the verbs that print documents.
const VERB_OPTIONS: [(&str, &[&str]); 5] = [
    ("run", &["output"]),
    ("serve", &[]),
    ("validate", &["output"]),
    ("work", &["server"]),
    ("completions", &[]),
];

/// The command line as `main` parses it: [`Cli`] with the help of each verb showing only the
/// global options that verb uses.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut command = Cli::command();
    // A verb that already has an argument does not get the global one: give the verbs that do
    // not use an option a hidden copy of it (values still reach `Global`).
    let globals: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .cloned()
        .collect();
    for (verb, used) in VERB_OPTIONS {
        command = command.mut_subcommand(verb, |mut sub| {
            for arg in &globals {
                if !used.contains(&arg.get_id().as_str()) {
                    sub = sub.arg(arg.clone().hide(true));
                }
            }
            sub
        });
    }
    command
}

/// Parses the command line (applying `STROEM_ROLE`) and runs the verb.
pub fn main() -> ExitCode {
    let mut args = std::env::args_os();
    if let (Some(_), Some(verb)) = (args.next(), args.next())
        && verb == crate::runner::supervise::SUBCOMMAND
    {
        // A step's supervisor, started by a worker of this binary: no configuration, no clap.
        return crate::runner::supervise::main(args.collect());
    }
    // Workers of this process start steps through this very binary: `/proc/self/exe` runs it
    // even after an upgrade replaced the file.
    let this = std::path::PathBuf::from("/proc/self/exe");
    if let Ok(program) = if this.exists() {
        Ok(this)
    } else {
        std::env::current_exe()
    } {
        crate::runner::supervise::install(program);
    }
    let role = std::env::var("STROEM_ROLE").ok();
    let args = with_role(std::env::args_os().collect(), role.as_deref());
    let cli = command()
        .try_get_matches_from(args)
        .and_then(|matches| Cli::from_arg_matches(&matches))
        .unwrap_or_else(|error| error.exit());
    let global = cli.global;
    let result = match cli.command {
        Command::Run(mut args) => {
            args.output = global.output;
            return run::run(args);
        }
        Command::Serve(args) => return serve::run(args),
        Command::Work(mut args) => {
            // `--server`/`STROEM_URL` override `server_url` only when given (API §9.1).
            args.server = global.server.clone();
            return work::run(args);
        }
        Command::Validate(mut args) => {
            args.output = global.output;
            return validate::run(args);
        }
        Command::Completions(args) => return completions::run(args),
        Command::Healthcheck(mut args) => {
            args.role = role;
            return healthcheck::run(args);
        }
        Command::Workspaces(args) => workspaces::run(args, &global),
        Command::Tasks(args) => tasks::run(args, &global),
        Command::Trigger(args) => trigger::run(args, &global),
        Command::Status(args) => status::run(args, &global),
        Command::Logs(args) => logs::run(args, &global),
        Command::Jobs(args) => jobs::run(args, &global),
        Command::Cancel(args) => cancel::run(args, &global),
        Command::Approve(args) => approve::run(args, &global),
        Command::Rerun(args) => rerun::run(args, &global),
        Command::Login(args) => login::login(args, &global),
        Command::Logout(args) => login::logout(args, &global),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprint!("{}", error.report());
            ExitCode::from(error.exit_code())
        }
    }
}

/// The process environment, read once per command: it feeds configuration, secrets' `env` and
/// the steps' environment (WF §11.1, §16.1). Variables that are not UTF-8 are left out.
pub(crate) fn environment() -> std::collections::BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

/// Runs a long-lived role (`serve`, `work`) on a multi-threaded runtime; a failure prints
/// `error: …` with its causes and exits 2 (API §9.3).
pub(crate) fn run_role(role: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(role);
    // Dropping the runtime would wait for every blocking thread, and a worker's long-poll
    // claim (ureq on the blocking pool) may be waiting up to its `wait_secs` for an answer
    // nobody needs any more: the role has finished its own orderly shutdown (a worker has
    // deregistered, so whatever that claim is granted is re-queued), so give stragglers a
    // moment and exit.
    runtime.shutdown_timeout(BLOCKING_SHUTDOWN);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// How long a finished role waits for blocking threads still running (see [`run_role`]).
const BLOCKING_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(2);

/// In a container the verb may come from `STROEM_ROLE` (API §9): when no verb is given (no
/// argument, or only options), the role is inserted as the verb. The verb is the first
/// argument that is not an option, after skipping the global options (with their values, which
/// are not verbs: `-o json validate`); any other option before it belongs to the role's verb
/// (`--listen 0:1`), so there is none. A request for help or the version gets clap's own.
fn with_role(mut args: Vec<std::ffi::OsString>, role: Option<&str>) -> Vec<std::ffi::OsString> {
    let Some(role) = role.filter(|role| !role.is_empty()) else {
        return args;
    };
    let command = <Cli as clap::CommandFactory>::command();
    let mut index = 1;
    let mut has_verb = false;
    while let Some(arg) = args.get(index) {
        let text = arg.to_string_lossy();
        if matches!(&*text, "-h" | "--help" | "-V" | "--version") {
            return args;
        }
        if !text.starts_with('-') {
            has_verb = true;
            break;
        }
        match global_option(&command, &text) {
            Some(GlobalValue::Next) => index += 2,
            Some(GlobalValue::Within) => index += 1,
            // `--`, `-` or an option of a verb.
            None => break,
        }
    }
    if !has_verb {
        args.insert(1.min(args.len()), role.into());
    }
    args
}

/// Where a global option's value is.
enum GlobalValue {
    /// In the next argument (`-o json`, `--output json`).
    Next,
    /// In this one (`-ojson`, `--output=json`), or the option takes none.
    Within,
}

/// Whether `text` spells one of `command`'s top-level (global) options, and where its value is.
fn global_option(command: &clap::Command, text: &str) -> Option<GlobalValue> {
    let (option, attached) = if let Some(long) = text.strip_prefix("--") {
        let (name, value) = match long.split_once('=') {
            Some((name, _)) => (name, true),
            None => (long, false),
        };
        let option = command
            .get_arguments()
            .find(|arg| !name.is_empty() && arg.get_long() == Some(name))?;
        (option, value)
    } else {
        let mut chars = text.chars().skip(1);
        let short = chars.next()?;
        let option = command
            .get_arguments()
            .find(|arg| arg.get_short() == Some(short))?;
        (option, chars.next().is_some())
    };
    if option.get_action().takes_values() && !attached {
        Some(GlobalValue::Next)
    } else {
        Some(GlobalValue::Within)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
        command().debug_assert();
    }

    #[test]
    fn stroem_role_supplies_a_missing_verb_only() {
        let args = |list: &[&str]| list.iter().map(Into::into).collect::<Vec<_>>();
        assert_eq!(
            with_role(args(&["stroem"]), Some("serve")),
            args(&["stroem", "serve"])
        );
        assert_eq!(
            with_role(args(&["stroem", "--listen", "0:1"]), Some("serve")),
            args(&["stroem", "serve", "--listen", "0:1"])
        );
        assert_eq!(
            with_role(args(&["stroem", "validate"]), Some("serve")),
            args(&["stroem", "validate"])
        );
        assert_eq!(with_role(args(&["stroem"]), None), args(&["stroem"]));
    }

    #[test]
    fn stroem_role_sees_the_verb_after_global_options() {
        let args = |list: &[&str]| list.iter().map(Into::into).collect::<Vec<_>>();
        for given in [
            &["stroem", "-o", "json", "validate"][..],
            &["stroem", "--output", "json", "validate"],
            &["stroem", "--output=json", "validate"],
            &["stroem", "-ojson", "validate"],
            &["stroem", "-s", "http://h:1", "--token", "t", "jobs"],
            &["stroem", "--help"],
            &["stroem", "-o", "json", "--version"],
        ] {
            assert_eq!(
                with_role(args(given), Some("serve")),
                args(given),
                "{given:?}"
            );
        }
        assert_eq!(
            with_role(args(&["stroem", "-o", "json"]), Some("work")),
            args(&["stroem", "work", "-o", "json"])
        );
        assert_eq!(
            with_role(
                args(&["stroem", "-s", "http://h:1", "--listen", "0:1"]),
                Some("serve")
            ),
            args(&["stroem", "serve", "-s", "http://h:1", "--listen", "0:1"])
        );
        // The rewritten line parses: the role no longer lands between an option and its value.
        let parsed = Cli::try_parse_from(with_role(
            args(&["stroem", "-o", "json", "validate", "."]),
            Some("serve"),
        ))
        .expect("parses");
        assert!(matches!(parsed.command, Command::Validate(_)), "{parsed:?}");
        assert!(parsed.global.json());
    }
}
