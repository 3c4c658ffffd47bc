//! The step supervisor: a small re-exec of the `stroem` binary (`stroem __supervise`) between
//! a worker and each step's process, so that steps die with the worker that runs them, however
//! it dies — `kill -9` included (issue #16 item 18).
//!
//! The worker starts the supervisor as the leader of a new process group, with a *lifeline* on
//! its standard input: one end of a socket pair whose other end only the worker holds. The
//! supervisor starts the step in the same group and waits. When the worker process ends, the
//! kernel closes its end, the supervisor reads end-of-file, and stops the group as a timeout
//! would: SIGTERM, up to the kill grace, then SIGKILL — itself included. A pipe rather than
//! `PR_SET_PDEATHSIG`: the parent-death signal fires when the *thread* that forked the child
//! ends, and the worker's spawning threads (tokio's blocking pool) come and go; a file
//! descriptor belongs to the process, and needs no `unsafe` to set up.
//!
//! While the worker lives, the supervisor changes nothing it can see: the step gets the same
//! arguments, environment, directory and output pipes, and the supervisor ends the way the step
//! did — with its exit code, or by the same signal. Once the step runs it blocks the signals a
//! step or the worker sends to the whole group (`kill 0`, a timeout's SIGTERM), so that it outlives the
//! step to report how it ended; SIGKILL still takes it with the group.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, killpg, raise};
use nix::unistd::{Pid, getpgrp, getpid, setpgid};

use super::leftover;

/// The hidden subcommand.
pub const SUBCOMMAND: &str = "__supervise";
/// What the supervisor says on the lifeline once the step runs.
pub(super) const STARTED: &str = "started";
/// What it says when the step cannot start, followed by the errno (0 when none) and the reason.
pub(super) const FAILED: &str = "error ";

/// The supervisor program, once installed; see [`install`].
static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Makes every [`LocalRunner`](super::LocalRunner) made afterwards start its steps through
/// `program __supervise`. The `stroem` binary installs itself at start; the library alone (tests
/// that run a server in-process) has no such binary unless a test installs one.
pub fn install(program: PathBuf) {
    let _ = PROGRAM.set(program);
}

/// The installed supervisor program.
pub(super) fn installed() -> Option<PathBuf> {
    PROGRAM.get().cloned()
}

/// The command line that runs `argv` under the supervisor `program`.
pub(super) fn command_line(program: &Path, grace: Duration, argv: &[OsString]) -> Vec<OsString> {
    let mut line = vec![
        program.as_os_str().to_owned(),
        SUBCOMMAND.into(),
        grace.as_millis().to_string().into(),
    ];
    line.extend(argv.iter().cloned());
    line
}

/// Signals a step or the worker sends to the whole group that would otherwise end the
/// supervisor before it can report how the step ended.
fn group_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
    ] {
        set.add(signal);
    }
    set
}

/// The supervisor's whole life; `args` are what follows [`SUBCOMMAND`]: the kill grace in
/// milliseconds, the program and its arguments.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let parsed = args.split_first().and_then(|(grace, argv)| {
        let millis: u64 = grace.to_str()?.parse().ok()?;
        (!argv.is_empty()).then(|| (Duration::from_millis(millis), argv))
    });
    let Some((grace, argv)) = parsed else {
        eprintln!("usage: stroem {SUBCOMMAND} <grace-ms> <program> [args…] (used by workers)");
        return ExitCode::from(2);
    };
    let lifeline = match io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => UnixStream::from(fd),
        Err(error) => {
            eprintln!("stroem {SUBCOMMAND}: no lifeline on standard input: {error}");
            return ExitCode::from(2);
        }
    };
    // Workers start the supervisor as a group leader already; started any other way, it must
    // not stop the group of whoever started it.
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let mut child = match spawn(argv) {
        Ok(child) => child,
        Err(error) => {
            // The errno goes first so the worker rebuilds the same error kind (`NotFound` gets
            // a hint about the missing interpreter).
            let errno = error.raw_os_error().unwrap_or(0);
            let _ = (&lifeline).write_all(format!("{FAILED}{errno} {error}\n").as_bytes());
            return ExitCode::from(127);
        }
    };
    // Blocked only now: a child inherits its parent's signal mask through `exec`, and the step
    // must start with the mask this process got. The spawn returns once the step has `exec`ed,
    // so only a group signal sent in the microseconds between the two can still end this
    // process early (the worker then stops the group anyway). Blocked before the watcher
    // thread exists, so it inherits the mask too.
    let _ = group_signals().thread_block();
    let _ = (&lifeline).write_all(format!("{STARTED}\n").as_bytes());
    let lost = Arc::new(AtomicBool::new(false));
    let watcher_lost = Arc::clone(&lost);
    std::thread::spawn(move || watch(&lifeline, grace, &watcher_lost));
    let status = child.wait();
    if lost.load(Ordering::SeqCst) {
        // The watcher is stopping the group, this process included; it must not end first and
        // leave the rest of the group running.
        loop {
            std::thread::park();
        }
    }
    match status {
        Ok(status) => end_like(status),
        Err(error) => {
            eprintln!("stroem {SUBCOMMAND}: cannot wait for the step: {error}");
            ExitCode::from(1)
        }
    }
}

fn spawn(argv: &[OsString]) -> io::Result<Child> {
    let Some((program, args)) = argv.split_first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null());
    // ETXTBSY: see `process::spawn`; a script made executable just now may still be open for
    // writing in a process the worker is forking.
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(error) if error.raw_os_error() == Some(Errno::ETXTBSY as i32) && tries < 5 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20 * tries));
            }
            result => return result,
        }
    }
}

/// Waits for the worker's end of the lifeline to close, then stops the group: SIGTERM, up to
/// `grace` for the other members to go, SIGKILL.
fn watch(lifeline: &UnixStream, grace: Duration, lost: &AtomicBool) {
    let mut buffer = [0u8; 64];
    loop {
        match (&*lifeline).read(&mut buffer) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    lost.store(true, Ordering::SeqCst);
    let group = getpgrp();
    let me = getpid().as_raw();
    let since = leftover::stat(me).map_or(0, |stat| stat.start);
    // This process has SIGTERM blocked; the step and what it started get it.
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline
        && !leftover::members(group.as_raw(), since, Some(me)).is_empty()
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(group, Signal::SIGKILL);
    std::process::exit(137);
}

/// Ends this process the way the step ended: the same exit code, or the same signal.
fn end_like(status: ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let number = status.signal().unwrap_or(0);
    if let Ok(signal) = Signal::try_from(number) {
        let mut set = SigSet::empty();
        set.add(signal);
        let _ = set.thread_unblock();
        // Twice: the Rust runtime's own SIGSEGV/SIGBUS handler returns the first time after
        // restoring the default action.
        let _ = raise(signal);
        let _ = raise(signal);
    }
    // Signals this process ignores (SIGPIPE, which the Rust runtime ignores) end up here.
    ExitCode::from(u8::try_from(128 + number).unwrap_or(1))
}
