//! A full disk under the data directory, then freed (issue #16 item 17): while it is full,
//! requests fail cleanly and quickly; once there is room again, everything works without a
//! restart — no pooled database connection stays broken — the step that was running ends,
//! and nothing committed before is lost. The data directory is a small tmpfs, so the test
//! needs root (to mount); without it the test says so and passes without running.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::server_harness::{Home, eventually, serve_test};

const WORKFLOW: &str = r#"
tasks:
  quick:
    flow:
      only: { type: script, script: "echo quick" }
  slow:
    input:
      dir: { type: string, required: true }
    flow:
      s:
        type: script
        input: { dir: "{{ input.dir }}" }
        script: |
          touch "$INPUT_DIR/started"
          while [ ! -e "$INPUT_DIR/go" ]; do sleep 0.1; done
          echo finished
"#;

/// A tmpfs mounted for the life of this value.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=…`) on `at`; `None` where mounting is not
    /// allowed.
    pub fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .is_ok_and(|output| output.status.success());
        mounted.then(|| Tmpfs(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `file` until the file system is full; returns how many bytes fit.
fn fill(file: &Path) -> u64 {
    let mut out = std::fs::File::create(file).expect("filler");
    let chunk = vec![0u8; 256 * 1024];
    let mut written = 0;
    while out.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    // The last few bytes a partial write may have left room for.
    while out.write_all(&chunk[..512]).is_ok() {}
    let _ = out.sync_all();
    written
}

serve_test! {
    async fn a_full_disk_fails_cleanly_and_everything_works_once_freed(backend) {
        let home = Home::new(backend).await;
        let Some(_tmpfs) = Tmpfs::mount(&home.path().join("data"), "32m") else {
            eprintln!("did not run: cannot mount a tmpfs (needs root)");
            return;
        };
        home.configure_workspace(&home.workspace(WORKFLOW));
        let server = home.start().await;
        let before = server.execute("default", "quick", "{}").await;
        assert_eq!(server.wait_finished(before).await["status"], "completed");
        let dir = home.scratch();
        let slow = server
            .execute("default", "slow", &json!({"input": {"dir": dir}}).to_string())
            .await;
        eventually("the slow step to start", Duration::from_secs(20), || async {
            dir.join("started").exists()
        })
        .await;

        let filler = home.path().join("data/filler");
        assert!(fill(&filler) > 0);
        // While the disk is full: every request is answered, quickly, with a JSON body; a
        // refusal is a server error, not a hang.
        let mut accepted = Vec::new();
        for _ in 0..40 {
            let reply = tokio::time::timeout(
                Duration::from_secs(20),
                server.post_json("/api/workspaces/default/tasks/quick/execute", "{}"),
            )
            .await
            .expect("answered while the disk is full");
            let body = reply.json();
            if reply.status == 200 {
                accepted.push(body["job_id"].as_str().expect("id").parse().expect("uuid"));
            } else {
                assert!(reply.status >= 500, "{} {body}", reply.status);
                assert!(body["error"].is_string(), "{body}");
            }
        }
        std::fs::write(dir.join("go"), "").expect("go");
        // Let the slow step finish and its report fail for a while.
        tokio::time::sleep(Duration::from_secs(1)).await;

        std::fs::remove_file(&filler).expect("free the disk");
        // Every pooled connection serves again: more jobs than connections, one after another.
        for _ in 0..20 {
            let id = server.execute("default", "quick", "{}").await;
            let job = server.wait_finished(id).await;
            assert_eq!(job["status"], "completed", "{job:#}");
        }
        // The step that ran through it ends; so does every job accepted while full.
        let job = server.wait_finished(slow).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        for id in accepted {
            server.wait_finished(id).await;
        }
        // What was committed before is still there.
        assert_eq!(server.job(before).await["status"], "completed");
        let health = server.get("/healthz").await;
        assert_eq!(health.status, 200, "{}", health.body);
        server.stop().await;
    }
}
