//! What a step leaves running when its worker dies (issue #16 item 18), and how a worker that
//! starts again stops it before it claims anything.
//!
//! Each attempt records its process group in its I/O directory (`group`: the group id and the
//! start time of its leader, from `/proc`). A worker killed mid-attempt leaves that record in
//! its [`Scratch`](super::Scratch) instance; the next worker on the same root finds it while
//! removing dead instances and kills the group. The start time tells the group apart from an
//! unrelated one that took the same number later: the kernel keeps a group's number allocated
//! for as long as any member lives, so a leader with another start time means the recorded
//! group is long gone, and a missing leader with members left means those members are ours
//! (each started after the leader).

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The record's name inside an attempt's I/O directory.
const RECORD: &str = "group";
/// How long a starting worker waits for a killed group's members to be gone.
const GONE_WAIT: Duration = Duration::from_secs(5);

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stat {
    pub pgrp: i32,
    /// Clock ticks after boot.
    pub start: u64,
    pub zombie: bool,
}

/// Reads `/proc/<pid>/stat`; `None` for a process that does not exist.
pub(super) fn stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields restart after the
    // last `)`. Then: state (3), ppid (4), pgrp (5), … starttime (22).
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
        zombie: *fields.first()? == "Z",
    })
}

/// The live (not zombie) processes of group `pgid` that started at `since` or later, but `skip`.
pub(super) fn members(pgid: i32, since: u64, skip: Option<i32>) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| Some(*pid) != skip)
        .filter(|pid| {
            stat(*pid).is_some_and(|stat| stat.pgrp == pgid && !stat.zombie && stat.start >= since)
        })
        .collect()
}

/// Records the process group `pgid` of the attempt whose I/O directory is `io_dir`. A leader
/// that is already gone leaves nothing to record.
pub(super) fn record(io_dir: &Path, pgid: i32) -> io::Result<()> {
    let Some(leader) = stat(pgid) else {
        return Ok(());
    };
    crate::private::write(&io_dir.join(RECORD), format!("{pgid} {}\n", leader.start))
}

/// Kills the groups recorded in the attempt directories of a dead worker's `instance`
/// directory; returns how many groups still had members.
pub(super) fn stop_recorded(instance: &Path) -> usize {
    let Ok(entries) = fs::read_dir(instance) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| fs::read_to_string(entry.path().join(RECORD)).ok())
        .filter_map(|text| {
            let (pgid, start) = text.trim().split_once(' ')?;
            Some((pgid.parse().ok()?, start.parse().ok()?))
        })
        .filter(|&(pgid, start)| stop(pgid, start))
        .count()
}

/// Kills what is left of group `pgid` whose leader started at `start`, and waits (bounded) for
/// it to be gone. Returns whether anything was left.
fn stop(pgid: i32, start: u64) -> bool {
    if pgid <= 1 {
        return false;
    }
    match stat(pgid) {
        Some(leader) if leader.start == start => {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        // The number now belongs to another process, so the recorded group has ended.
        Some(_) => return false,
        None => {
            let left = members(pgid, start, None);
            if left.is_empty() {
                return false;
            }
            for pid in left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
    let deadline = Instant::now() + GONE_WAIT;
    while !members(pgid, start, None).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn a_recorded_group_is_killed_and_a_reused_number_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let io = dir.path().join("stroem-io-1");
        fs::create_dir(&io).expect("mkdir");
        // A group whose leader exits at once, leaving a member behind, as a step's supervisor
        // does when the step's main process ends before what it started in the background.
        let mut leader = Command::new("sh")
            .args(["-c", "sleep 300 >/dev/null & echo $!"])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("sh");
        let pgid = i32::try_from(leader.id()).expect("pid");
        record(&io, pgid).expect("record");
        let output = std::io::read_to_string(leader.stdout.take().expect("stdout")).expect("pid");
        let member: i32 = output.trim().parse().expect("member pid");
        leader.wait().expect("leader ends");
        assert!(stat(member).is_some_and(|s| !s.zombie));

        assert_eq!(stop_recorded(dir.path()), 1);
        assert!(stat(member).is_none_or(|s| s.zombie), "member killed");
        assert_eq!(stop_recorded(dir.path()), 0, "nothing left the second time");

        // A record whose number now names a process of another start time stops nothing.
        let mut bystander = Command::new("sleep").arg("300").spawn().expect("sleep");
        let pid = i32::try_from(bystander.id()).expect("pid");
        let start = stat(pid).expect("stat").start;
        fs::write(io.join(RECORD), format!("{pid} {}\n", start + 1)).expect("record");
        assert_eq!(stop_recorded(dir.path()), 0);
        assert!(stat(pid).is_some_and(|s| !s.zombie), "bystander untouched");
        let _ = bystander.kill();
        let _ = bystander.wait();
    }
}
