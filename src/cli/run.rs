//! `stroem run <task>`: validate a local workspace, then run one job in-process with no server
//! and no database (API §9.2). Exit codes follow API §9.3: 0 completed, 1 failed or cancelled,
//! 2 usage/workspace/input errors, 130 interrupted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use crate::cli::{OutputFormat, job_input};
use crate::config::Credentials;
use crate::engine::{JobStatus, StepState};
use crate::local::executor::{Executor, LocalWorkspace, Options, RunOutcome};
use crate::local::print::Printer;
use crate::runner::LocalRunner;
use crate::workflow::diagnostic::suggest;
use crate::workflow::{self, Loaded};
use crate::workspace::manager::revision_mask;
use crate::workspace::{folder, secrets};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Task to run.
    pub task: String,
    /// Workspace root (the directory holding `.workflows/`).
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// Job input: a JSON object, `@FILE`, or `-` for stdin.
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub input: Option<String>,
    /// Set one input key (parsed as JSON when it parses, else a string); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// How many steps may run at once (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent: Option<u16>,
    /// Seconds between SIGTERM and SIGKILL when a step is stopped.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub kill_grace: u64,
    /// `text` prints logs and a summary; `json` prints the final job detail on stdout (logs go
    /// to stderr). Set from the global `-o` (API §9.1).
    #[arg(skip)]
    pub output: OutputFormat,
}

/// Directories `file()` may read secrets from (WF §16.1).
const SECRET_FILE_DIRS: [&str; 2] = ["/run/secrets", "/var/run/secrets"];

pub fn run(args: Args) -> ExitCode {
    // The environment is read once, here: it feeds secrets' `env` and the steps' environment,
    // which never see the CLI's own credential.
    let captured = super::environment();
    let credentials = Credentials::of_client(&captured);
    let environment = credentials.scrub(&captured);
    let no_color = environment.contains_key("NO_COLOR");
    let printer = Printer::new(args.output == OutputFormat::Json, no_color);

    let workspace = match prepare(&args, &environment) {
        Ok(workspace) => workspace,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let raw_input = match job_input::build(args.input.as_deref(), &args.sets) {
        Ok(input) => Value::Object(input),
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let max_concurrent = args.max_concurrent.map_or_else(
        || std::thread::available_parallelism().map_or(2, usize::from),
        usize::from,
    );
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
    let runner = LocalRunner::new(Duration::from_secs(args.kill_grace), environment.clone())
        .masking(credentials.masker());
    let runner = runtime.block_on(with_docker(runner, &environment, args.kill_grace));
    let approver_name = environment
        .get("USER")
        .cloned()
        .unwrap_or_else(|| "local user".to_owned());
    let options = Options {
        max_concurrent,
        runner,
        approver: super::prompt::terminal_approver(approver_name),
    };
    let executor = match Executor::new(workspace, &args.task, raw_input, options, printer) {
        Ok(executor) => executor,
        Err(error) => {
            eprintln!("error: task '{}': {error}", args.task);
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(executor.run());
    report(&outcome, args.output, &printer);
    if outcome.interrupted {
        ExitCode::from(130)
    } else if outcome.job.status == JobStatus::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Docker steps run on the local engine, found as the Docker CLI finds it (`DOCKER_HOST`, then
/// the default socket), pulling only images that are not present; without one they fail
/// saying why.
#[cfg(feature = "docker")]
async fn with_docker(
    runner: LocalRunner,
    environment: &BTreeMap<String, String>,
    kill_grace: u64,
) -> LocalRunner {
    use crate::runner::docker::{self, DockerRunner, DockerSettings};
    let settings = DockerSettings {
        host: docker::host(None, environment),
        pull_policy: crate::config::PullPolicy::IfNotPresent,
        runner_image: crate::config::DEFAULT_RUNNER_IMAGE.to_owned(),
        worker: "stroem run".to_owned(),
        kill_grace: Duration::from_secs(kill_grace),
        instance: None,
    };
    match DockerRunner::connect(settings).await {
        Ok(connected) => runner.with_docker(std::sync::Arc::new(connected)),
        Err(error) => runner.without_docker(error),
    }
}

#[cfg(not(feature = "docker"))]
async fn with_docker(
    runner: LocalRunner,
    _environment: &BTreeMap<String, String>,
    _kill_grace: u64,
) -> LocalRunner {
    runner
}

/// Loads and validates the workspace and resolves its secrets; any problem aborts the run.
fn prepare(args: &Args, environment: &BTreeMap<String, String>) -> Result<LocalWorkspace, String> {
    let root = workspace_root(&args.path);
    let files = folder::scan(&root).map_err(|error| {
        let lines: Vec<String> = error
            .diagnostics()
            .iter()
            .map(|d| format!("{}: {}", d.file, d.message))
            .collect();
        lines.join("\n")
    })?;
    let loaded = workflow::load(&files);
    if loaded.has_errors() {
        return Err(validation_failure(&loaded, &root));
    }
    if !loaded.def.tasks.contains_key(&args.task) {
        let hint = suggest(&args.task, loaded.def.tasks.keys().map(String::as_str))
            .map(|name| format!(" — did you mean '{name}'?"))
            .unwrap_or_else(|| {
                let names: Vec<&str> = loaded.def.tasks.keys().map(String::as_str).collect();
                format!(" (tasks: {})", names.join(", "))
            });
        return Err(format!(
            "unknown task '{}' in {}{hint}",
            args.task,
            root.display()
        ));
    }
    // API §9.2: pod steps need a Kubernetes worker; refuse before anything runs.
    let pods = workflow::reach::pod_steps(&loaded.def, &args.task);
    if !pods.is_empty() {
        return Err(format!(
            "task '{}' runs steps in Kubernetes pods, which `stroem run` cannot run: {}. \
             Trigger it on a server whose workers have the 'kubernetes' capability.",
            args.task,
            pods.join(", ")
        ));
    }
    let dirs: Vec<PathBuf> = SECRET_FILE_DIRS.iter().map(PathBuf::from).collect();
    let resolved = secrets::resolve_available(&loaded.def.secrets, environment, &dirs, &[])
        .map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            format!(
                "cannot resolve the workspace's secrets:\n{}",
                lines.join("\n")
            )
        })?;
    // WF §16.1: a missing variable or file fails only a task that uses the secret.
    let missing = secrets::missing_for_task(
        &loaded.def,
        &args.task,
        &resolved.missing,
        &crate::workflow::template::Templates::new(),
    );
    if !missing.is_empty() {
        return Err(secrets::refusal(&missing));
    }
    let secrets = resolved.value;
    let revision = folder::revision(&root, &files).map_err(|error| error.to_string())?;
    Ok(LocalWorkspace {
        root,
        mask: revision_mask(&loaded.def, &secrets),
        def: loaded.def,
        revision,
        secrets,
    })
}

/// `--path` may name the workspace root or its `.workflows/` directory.
fn workspace_root(path: &Path) -> PathBuf {
    if path
        .file_name()
        .is_some_and(|name| name == folder::WORKFLOWS_DIR)
        && let Some(parent) = path.parent()
    {
        return if parent.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            parent.to_path_buf()
        };
    }
    path.to_path_buf()
}

fn validation_failure(loaded: &Loaded, root: &Path) -> String {
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            format!(
                "  {}:{}:{}: {} [{}]",
                d.file, d.line, d.column, d.message, d.code
            )
        })
        .collect();
    format!(
        "the workspace at {} has {} error(s); nothing was run:\n{}\n(run `stroem validate {}` for details)",
        root.display(),
        errors.len(),
        errors.join("\n"),
        root.display()
    )
}

fn report(outcome: &RunOutcome, format: OutputFormat, printer: &Printer) {
    let job = &outcome.job;
    match format {
        OutputFormat::Json => {
            let mut detail = serde_json::to_value(job).unwrap_or(Value::Null);
            if let Value::Object(object) = &mut detail {
                object.insert("job_id".to_owned(), serde_json::json!(job.id));
                object.insert("task_name".to_owned(), serde_json::json!(job.task));
                object.insert("input".to_owned(), outcome.view.input(&job.input));
                object.insert("raw_input".to_owned(), outcome.view.input(&job.raw_input));
            }
            let masked = outcome.view.value(&detail);
            match serde_json::to_string_pretty(&masked) {
                Ok(text) => super::out::line(text),
                Err(error) => eprintln!("error: cannot encode the job: {error}"),
            }
        }
        OutputFormat::Text => super::out::print(summary(outcome, printer)),
    }
}

/// The closing summary: the job's status and duration, a table of steps, the job's output or
/// error.
fn summary(outcome: &RunOutcome, printer: &Printer) -> String {
    let job = &outcome.job;
    let mut text = String::new();
    let status = printer.paint(status_colour(job.status), job.status.as_str());
    text.push_str(&format!(
        "\n{} {} {status}{}\n",
        printer.bold("job"),
        job.task,
        duration_of(job.started_at, job.completed_at)
            .map(|d| format!(" in {d}"))
            .unwrap_or_default()
    ));
    let rows: Vec<[String; 5]> = job
        .steps
        .iter()
        .map(|step| {
            [
                step.step_name.clone(),
                step.status.as_str().to_owned(),
                attempts(step),
                duration_of(step.started_at, step.completed_at).unwrap_or_default(),
                step.error_message
                    .as_deref()
                    .map(|e| e.lines().next().unwrap_or_default().to_owned())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["STEP", "STATUS", "ATTEMPTS", "DURATION", "ERROR"].map(str::to_owned);
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[String; 5]| {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("  {}\n", cells.join("  ").trim_end())
    };
    text.push_str(&printer.dim(line(&header).trim_end()));
    text.push('\n');
    for row in &rows {
        text.push_str(&line(row));
    }
    for hook in outcome.children.iter().filter(|j| j.source_type == "hook") {
        let event = hook
            .source_id
            .as_deref()
            .and_then(|id| id.rsplit('/').next())
            .unwrap_or("hook");
        let status = printer.paint(status_colour(hook.status), hook.status.as_str());
        text.push_str(&format!(
            "  {} {event} → {} {status}\n",
            printer.dim("hook"),
            hook.task
        ));
    }
    if let Some(error) = &job.error {
        text.push_str(&format!("{} {error}\n", printer.bold("error:")));
    }
    if !job.output.is_null() {
        let output = outcome.view.value(&job.output);
        text.push_str(&format!("{} {output}\n", printer.bold("output:")));
    }
    text
}

fn attempts(step: &StepState) -> String {
    if step.attempt == 0 {
        String::new()
    } else {
        format!("{}/{}", step.attempt, step.max_attempts)
    }
}

fn status_colour(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Completed => "\x1b[32m",
        JobStatus::Failed => "\x1b[31m",
        _ => "\x1b[33m",
    }
}

fn duration_of(
    start: Option<chrono::DateTime<chrono::Utc>>,
    end: Option<chrono::DateTime<chrono::Utc>>,
) -> Option<String> {
    let millis = (end? - start?).num_milliseconds().max(0);
    Some(if millis < 1_000 {
        format!("{millis}ms")
    } else if millis < 60_000 {
        format!("{:.1}s", millis as f64 / 1000.0)
    } else {
        format!("{}m{}s", millis / 60_000, (millis % 60_000) / 1000)
    })
}
