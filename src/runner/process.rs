//! One local process from spawn to result: its own process group, concurrent line capture,
//! timeout and cancellation (API §8.4), and the outcome of WF §11.4.
//!
//! Stopping means the whole group: SIGTERM, up to `kill_grace` for it to go, then SIGKILL.
//! Processes the step leaves behind in its group when its main process exits are stopped the
//! same way, so a step can never leak background work onto the worker. A process that escaped
//! the group (`setsid`) but still holds the output pipes cannot keep the attempt open either:
//! once the main process is gone and the group is stopped, the pipes get [`DRAIN`] to reach
//! their end, then reading stops.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::capture::spawn_reader;
use super::sink::Sink;
use super::spec::{Outcome, Stream};
use super::supervise;
use crate::workflow::model::Duration as StepDuration;

/// How long the output pipes may stay open after the step's process group is gone.
const DRAIN: Duration = Duration::from_secs(2);
/// How often to look whether a stopping group still has members.
const GROUP_POLL: Duration = Duration::from_millis(20);
/// Captured lines waiting for the sink; a full queue makes the readers, and so the process, wait.
const LINE_QUEUE: usize = 64;

/// A fully prepared process.
#[derive(Debug)]
pub struct Launch<'a> {
    pub argv: &'a [OsString],
    pub cwd: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    pub output_file: &'a Path,
    pub timeout_secs: Option<u64>,
    pub kill_grace: Duration,
    /// The `stroem` binary to start the step through (see [`super::supervise`]), if any.
    pub supervisor: Option<&'a Path>,
    /// Where the attempt records its process group for a later worker (see
    /// [`super::leftover`]): its I/O directory.
    pub record_in: &'a Path,
}

/// How the process ended, before the output schema is checked.
#[derive(Debug)]
pub struct Ended {
    pub outcome: Outcome,
    pub output: Value,
    pub message: Option<String>,
}

impl Ended {
    pub fn failed(outcome: Outcome, message: String) -> Self {
        Ended {
            outcome,
            output: Value::Null,
            message: Some(message),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum StopReason {
    Timeout(u64),
    Cancelled,
}

pub async fn run(launch: Launch<'_>, sink: &mut Sink<'_>, cancel: &CancellationToken) -> Ended {
    let program = launch
        .argv
        .first()
        .map(|p| p.to_string_lossy().into_owned());
    // Held until the attempt ends: dropping it (this process ending included) tells the
    // supervisor to stop the step.
    let (mut child, _lifeline) = match spawn(&launch).await {
        Ok(spawned) => spawned,
        Err(error) => {
            let program = program.unwrap_or_default();
            // The usual cause is an interpreter the worker host lacks (`node` for
            // `language: javascript`); say so rather than leave a bare errno.
            let hint = if error.kind() == io::ErrorKind::NotFound && !program.contains('/') {
                format!(
                    " — `{program}` is not installed on this worker or not on its PATH; install it or set the action's `interpreter`"
                )
            } else {
                String::new()
            };
            return Ended::failed(
                Outcome::Failed,
                format!("cannot start `{program}`: {error}{hint}"),
            );
        }
    };
    let Some(pgid) = child.id().and_then(|id| i32::try_from(id).ok()) else {
        return Ended::failed(Outcome::Failed, "the process vanished at start".to_owned());
    };
    let mut group = Group::new(Pid::from_raw(pgid), launch.kill_grace);
    // Without the record a later worker cannot stop what a kill of this one leaves running;
    // the step still runs, and the supervisor still stops it when this process dies.
    if let Err(error) = super::leftover::record(launch.record_in, pgid) {
        tracing::warn!(%error, "cannot record the step's process group");
    }
    let (lines_tx, mut lines) = mpsc::channel(LINE_QUEUE);
    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        readers.push(spawn_reader(stdout, Stream::Stdout, lines_tx.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(spawn_reader(stderr, Stream::Stderr, lines_tx.clone()));
    }
    drop(lines_tx);

    let deadline = launch
        .timeout_secs
        .map(|secs| Instant::now() + Duration::from_secs(secs));
    // Disabled `select!` branches still build their future, so they need some instant.
    let never = Instant::now() + Duration::from_secs(365 * 86_400);
    let mut exit: Option<io::Result<ExitStatus>> = None;
    let mut reason: Option<StopReason> = None;
    let mut streams_open = true;
    let mut drain_until: Option<Instant> = None;
    let mut poll = tokio::time::interval(GROUP_POLL);
    loop {
        let kill_at = group.kill_at();
        if exit.is_some() && kill_at.is_none() {
            if !streams_open {
                break;
            }
            drain_until.get_or_insert_with(|| Instant::now() + DRAIN);
        }
        tokio::select! {
            line = lines.recv(), if streams_open => match line {
                Some(line) => sink.line(line),
                None => streams_open = false,
            },
            status = child.wait(), if exit.is_none() => {
                exit = Some(status);
                // Whatever the step left running in its group goes with it. An empty group is
                // done with for good: its id may now be reused by an unrelated process group.
                if group.has_members() {
                    group.stop();
                } else {
                    group.gone();
                }
            }
            () = sleep_until(deadline.unwrap_or(never)),
                if deadline.is_some() && exit.is_none() && reason.is_none() =>
            {
                reason = launch.timeout_secs.map(StopReason::Timeout);
                group.stop();
            }
            () = cancel.cancelled(), if exit.is_none() && reason.is_none() => {
                reason = Some(StopReason::Cancelled);
                group.stop();
            }
            () = sleep_until(kill_at.unwrap_or(never)), if kill_at.is_some() => group.kill(),
            _ = poll.tick(), if kill_at.is_some() && exit.is_some() => {
                if !group.has_members() {
                    group.gone();
                }
            }
            () = sleep_until(drain_until.unwrap_or(never)), if drain_until.is_some() => break,
        }
    }
    for reader in &readers {
        reader.abort();
    }
    while let Ok(line) = lines.try_recv() {
        sink.line(line);
    }
    ended(reason, exit, sink, launch.output_file)
}

async fn spawn(launch: &Launch<'_>) -> io::Result<(Child, Option<tokio::net::UnixStream>)> {
    let Some(supervisor) = launch.supervisor else {
        return Ok((spawn_direct(launch, launch.argv).await?, None));
    };
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    let line = supervise::command_line(supervisor, launch.kill_grace, launch.argv);
    let mut command = command(launch, &line)?;
    command.stdin(Stdio::from(OwnedFd::from(theirs)));
    let mut child = command.spawn()?;
    // The command holds a copy of the supervisor's end: without closing it, the supervisor's
    // death would never reach `ours` as end-of-file.
    drop(command);
    ours.set_nonblocking(true)?;
    let mut lifeline = tokio::net::UnixStream::from_std(ours)?;
    let mut said = Vec::new();
    let mut byte = [0u8; 1];
    while said.len() < 4096 && lifeline.read(&mut byte).await? == 1 && byte[0] != b'\n' {
        said.push(byte[0]);
    }
    let said = String::from_utf8_lossy(&said);
    if let Some(reason) = said.strip_prefix(supervise::FAILED) {
        let _ = child.wait().await;
        let (errno, message) = reason.split_once(' ').unwrap_or(("0", reason));
        return Err(match errno.parse::<i32>() {
            Ok(errno) if errno > 0 => io::Error::from_raw_os_error(errno),
            _ => io::Error::other(message.to_owned()),
        });
    }
    // Anything else (`started`, or nothing from a supervisor that died at once) leaves the
    // outcome to its exit status.
    Ok((child, Some(lifeline)))
}

fn command(launch: &Launch<'_>, argv: &[OsString]) -> io::Result<Command> {
    let Some((program, args)) = argv.split_first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(launch.env)
        .current_dir(launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    Ok(command)
}

async fn spawn_direct(launch: &Launch<'_>, argv: &[OsString]) -> io::Result<Child> {
    let mut command = command(launch, argv)?;
    // ETXTBSY: a file made executable just now may still be open for writing in a process
    // another thread is forking; that descriptor closes at its exec, so trying again works.
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(error) if error.raw_os_error() == Some(Errno::ETXTBSY as i32) && tries < 5 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20 * tries)).await;
            }
            result => return result,
        }
    }
}

fn ended(
    reason: Option<StopReason>,
    exit: Option<io::Result<ExitStatus>>,
    sink: &mut Sink<'_>,
    output_file: &Path,
) -> Ended {
    let failed =
        |sink: &Sink<'_>, head: String| Ended::failed(Outcome::Failed, sink.tail.message(&head));
    match (reason, exit) {
        (Some(StopReason::Cancelled), _) => Ended::failed(Outcome::Cancelled, "cancelled".into()),
        (Some(StopReason::Timeout(secs)), _) => {
            failed(sink, format!("timed out after {}", StepDuration(secs)))
        }
        (None, Some(Ok(status))) if status.success() => {
            match std::mem::take(&mut sink.output).finish(output_file) {
                Ok(output) => Ended {
                    outcome: Outcome::Succeeded,
                    output,
                    message: None,
                },
                Err(error) => Ended::failed(Outcome::Failed, error.to_string()),
            }
        }
        (None, Some(Ok(status))) => match (status.code(), status.signal()) {
            (Some(code), _) => failed(sink, format!("exit code {code}")),
            (None, Some(signal)) => {
                failed(sink, format!("killed by signal {}", signal_name(signal)))
            }
            (None, None) => failed(sink, format!("process ended abnormally ({status})")),
        },
        (None, Some(Err(error))) => failed(sink, format!("cannot wait for the process: {error}")),
        (None, None) => failed(sink, "the process ended without a status".to_owned()),
    }
}

/// `9 (SIGKILL)`, or the bare number for a signal nix does not know.
fn signal_name(signal: i32) -> String {
    match Signal::try_from(signal) {
        Ok(known) => format!("{signal} ({})", known.as_str()),
        Err(_) => signal.to_string(),
    }
}

/// The step's process group and how far stopping it has come.
#[derive(Debug)]
struct Group {
    pgid: Pid,
    grace: Duration,
    state: GroupState,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum GroupState {
    Running,
    Terminating { kill_at: Instant },
    Stopped,
}

impl Group {
    fn new(pgid: Pid, grace: Duration) -> Self {
        Group {
            pgid,
            grace,
            state: GroupState::Running,
        }
    }

    fn kill_at(&self) -> Option<Instant> {
        match self.state {
            GroupState::Terminating { kill_at } => Some(kill_at),
            GroupState::Running | GroupState::Stopped => None,
        }
    }

    /// Whether any process is still in the group (zombies count until they are reaped).
    fn has_members(&self) -> bool {
        !matches!(killpg(self.pgid, None), Err(Errno::ESRCH))
    }

    /// SIGTERM to the group; SIGKILL follows after the grace period unless the group is gone.
    fn stop(&mut self) {
        if self.state != GroupState::Running {
            return;
        }
        if self.grace.is_zero() {
            self.kill();
            return;
        }
        // ESRCH only means the group is already gone; there is nothing else to handle.
        let _ = killpg(self.pgid, Signal::SIGTERM);
        self.state = GroupState::Terminating {
            kill_at: Instant::now() + self.grace,
        };
    }

    fn kill(&mut self) {
        let _ = killpg(self.pgid, Signal::SIGKILL);
        self.state = GroupState::Stopped;
    }

    fn gone(&mut self) {
        self.state = GroupState::Stopped;
    }
}

impl Drop for Group {
    /// An attempt abandoned mid-run (its future dropped) must not leave its processes behind.
    fn drop(&mut self) {
        if self.state != GroupState::Stopped && self.has_members() {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}
