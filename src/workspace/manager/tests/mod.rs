//! Tests of the workspace registry on real temporary directories: a workspace folder that the
//! tests edit between ticks, and a data dir whose snapshots they inspect.

mod git;
mod lifecycle;
mod pins;
mod tarballs;
mod views;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use super::*;

/// A valid workspace: one action, one task.
const GOOD: &str = "\
actions:
  greet:
    type: script
    script: echo hello
tasks:
  hello:
    flow:
      one:
        action: greet
";

/// The same task with a dependency on a step that does not exist.
const BROKEN: &str = "\
actions:
  greet:
    type: script
    script: echo hello
tasks:
  hello:
    flow:
      one:
        action: greet
        depends_on: [missing]
";

/// A second valid revision, with one more task.
const GOOD_TWO: &str = "\
actions:
  greet:
    type: script
    script: echo hello
tasks:
  hello:
    flow:
      one:
        action: greet
  bye:
    flow:
      one:
        action: greet
";

/// Folder sources in tests poll every 30 s of the injected clock.
const POLL: Duration = Duration::from_secs(30);

/// The fixed start of every test's clock.
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-27T12:00:00Z")
        .expect("valid time")
        .with_timezone(&Utc)
}

/// `t0` plus `secs` seconds.
fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

/// A data dir and workspace folders under one temporary directory.
struct Fixture {
    dir: TempDir,
    env: BTreeMap<String, String>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: TempDir::new().expect("temp dir"),
            env: BTreeMap::new(),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The folder of workspace `ws`.
    fn folder(&self, ws: &str) -> PathBuf {
        self.dir.path().join("sources").join(ws)
    }

    /// Writes `text` to `rel` inside workspace `ws`'s folder, creating directories.
    fn write(&self, ws: &str, rel: &str, text: &str) {
        let path = self.folder(ws).join(rel);
        fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs::write(&path, text).expect("write");
    }

    fn settings(&self) -> Settings {
        Settings {
            data_dir: self.data_dir(),
            env: self.env.clone(),
            secret_file_dirs: Vec::new(),
            refused_files: Vec::new(),
        }
    }

    fn folder_source(&self, ws: &str) -> Source {
        Source::Folder {
            path: self.folder(ws),
            poll_interval: POLL,
        }
    }

    /// A registry of the folder workspaces `names`, loaded at `t0`.
    fn open(&self, names: &[&str]) -> Workspaces {
        let sources = names
            .iter()
            .map(|name| (name.to_string(), self.folder_source(name)));
        Workspaces::new(self.settings(), sources, t0()).expect("registry")
    }

    /// Revision directories on disk for `ws`, sorted (staging leftovers included).
    fn snapshots(&self, ws: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.data_dir().join("revisions").join(ws))
            .expect("revisions dir")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

fn active(workspaces: &Workspaces, ws: &str) -> String {
    workspaces
        .get(ws)
        .expect("an active revision")
        .revision
        .clone()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).expect("readable file")
}
