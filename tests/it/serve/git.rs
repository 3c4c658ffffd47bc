//! Git workspaces end to end (issue 14 item 5; API §2.1, §3.2, §10.2): a real server fetching
//! from a real smart-HTTP git server (`git/git-http.py`, `git http-backend` behind Basic auth)
//! and from `file://`. Pushes, force-pushes, a broken commit, a deleted ref, a rotated password
//! and a server that went away: each shows in the API with a clear error while the last good
//! revision keeps serving, and no credential appears in any answer. A remote worker runs a
//! step from the git revision's tarball.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use stroem::webhook::sign;

use crate::server_harness::{Home, Server, serve_test};

/// Bound for waits on the poller and on jobs.
const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "git-token-7d1c0ffee";
const HOOK_SECRET: &str = "push-hook-secret-1234";
const WORKER_TOKEN: &str = "a-worker-token-long-enough-for-no-warning";

const GOOD: &str = "\
tasks:
  hello:
    flow:
      say: { type: script, script: \"cat message.txt\" }
";

const GOOD_TWO: &str = "\
tasks:
  hello:
    flow:
      say: { type: script, script: \"cat message.txt\" }
  bye:
    flow:
      say: { type: script, script: \"echo bye\" }
";

const BROKEN: &str = "\
tasks:
  hello:
    flow:
      say: { type: script, script: \"cat message.txt\", depends_on: [missing] }
";

/// Runs git with a fixed identity in `dir`.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A bare repository under `root` and a working clone that pushes to it.
struct Origin {
    work: PathBuf,
    bare: PathBuf,
}

impl Origin {
    fn new(root: &Path, name: &str) -> Origin {
        let bare = root.join(format!("{name}.git"));
        let work = root.join(format!("{name}-work"));
        std::fs::create_dir_all(&bare).expect("mkdir");
        git(&bare, &["init", "-q", "--bare"]);
        std::fs::create_dir_all(&work).expect("mkdir");
        git(&work, &["init", "-q"]);
        git(
            &work,
            &["remote", "add", "origin", bare.to_str().expect("utf-8")],
        );
        Origin { work, bare }
    }

    /// Commits the workflow `yaml` and `message.txt` and pushes (forced) to `main`.
    fn push(&self, yaml: &str, message: &str) -> String {
        std::fs::create_dir_all(self.work.join(".workflows")).expect("mkdir");
        std::fs::write(self.work.join(".workflows/main.yaml"), yaml).expect("write");
        std::fs::write(self.work.join("message.txt"), message).expect("write");
        git(&self.work, &["add", "-A"]);
        git(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        git(
            &self.work,
            &["push", "-q", "--force", "origin", "HEAD:main"],
        );
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Replaces the history of `main` with one unrelated commit (a force-push).
    fn rewrite(&self, yaml: &str, message: &str) -> String {
        git(&self.work, &["checkout", "-q", "--orphan", "rewritten"]);
        let head = self.push(yaml, message);
        git(&self.work, &["branch", "-q", "-M", "rewritten", "main"]);
        head
    }

    fn file_url(&self) -> String {
        format!("file://{}", self.bare.display())
    }
}

/// `git-http.py` serving `root` on a free port, with Basic auth from `credentials` if given.
struct GitHttp {
    child: Child,
    port: u16,
}

impl GitHttp {
    fn start(root: &Path, credentials: Option<&Path>) -> GitHttp {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/serve/git/git-http.py");
        let mut command = Command::new("python3");
        command.arg(script).arg("0").arg(root);
        if let Some(file) = credentials {
            command.arg(file);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs git-http.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("git-http.py prints its port");
        let port = line
            .trim()
            .strip_prefix("PORT=")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("git-http.py said {line:?}"));
        GitHttp { child, port }
    }

    fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{repo}.git", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn workspace(server: &Server, ws: &str) -> Value {
    let reply = server.get(&format!("/api/workspaces/{ws}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        !reply.body.contains(TOKEN),
        "a credential in {}",
        reply.body
    );
    reply.json()
}

/// Asks for a fetch through the push webhook, signed like GitHub does.
async fn push_hook(server: &Server, ws: &str) {
    let body = br#"{"ref": "refs/heads/main"}"#.to_vec();
    let signature = format!("sha256={}", sign(HOOK_SECRET.as_bytes(), &body));
    let reply = server
        .send(
            "POST",
            &format!("/hooks/_workspaces/{ws}/refresh"),
            &[
                ("Content-Type", "application/json"),
                ("X-Hub-Signature-256", &signature),
            ],
            body,
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
}

/// Waits until `ws` satisfies `check`, returning its view.
async fn wait_for(server: &Server, ws: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = std::time::Instant::now();
    loop {
        let view = workspace(server, ws).await;
        if check(&view) {
            return view;
        }
        assert!(
            started.elapsed() < WAIT,
            "timed out waiting for {what}: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The git workspace section of `stroem.yaml` for `url` with the token in `token_file`.
fn git_config(url: &str, token_file: &Path) -> String {
    format!(
        "  default:\n    type: git\n    url: \"{url}\"\n    ref: main\n    poll_interval_secs: 3600\n    \
         webhook_secret: \"{HOOK_SECRET}\"\n    auth: {{ type: token, token_file: \"{}\" }}\n",
        token_file.display()
    )
}

serve_test! {
    async fn a_git_workspace_over_http_follows_pushes_and_keeps_the_last_good_commit(backend) {
        let home = Home::new(backend).await;
        let repos = home.path().join("repos");
        let origin = Origin::new(&repos, "flows");
        let first = origin.push(GOOD, "from git");
        let credentials = home.path().join("git-credentials");
        std::fs::write(&credentials, format!("x-access-token:{TOKEN}")).expect("write");
        let token_file = home.path().join("token");
        std::fs::write(&token_file, TOKEN).expect("write");
        let mut http = GitHttp::start(&repos, Some(&credentials));
        home.configure(&format!("workspaces:\n{}", git_config(&http.url("flows"), &token_file)));
        let server = home.start().await;

        let view = workspace(&server, "default").await;
        assert_eq!(view["status"], "ok", "{view}");
        assert_eq!(view["revision"], first.as_str());
        assert_eq!(view["source"]["type"], "git");
        assert_eq!(view["source"]["url"], http.url("flows").as_str());
        assert_eq!(view["source"]["ref"], "main");
        assert_eq!(view["source"]["commit"], first.as_str());
        let id = server.execute("default", "hello", "{}").await;
        let job = server.wait_finished(id).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["revision"], first.as_str());
        let log = server.get(&format!("/api/jobs/{id}/logs")).await;
        assert!(log.body.contains("from git"), "{}", log.body);

        // A push, fetched at once on a refresh; a second refresh within 5 s is refused.
        let second = origin.push(GOOD_TWO, "second");
        let reply = server.call("POST", "/api/workspaces/default/refresh", &[], None).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let view = reply.json();
        assert_eq!((view["status"].as_str(), view["revision"].as_str()), (Some("ok"), Some(second.as_str())));
        assert_eq!(view["tasks_count"], 2);
        let reply = server.call("POST", "/api/workspaces/default/refresh", &[], None).await;
        assert_eq!(reply.status, 429, "{}", reply.body);

        // A force-push that rewrites the history, through the push webhook.
        let rewritten = origin.rewrite(GOOD, "rewritten");
        push_hook(&server, "default").await;
        wait_for(&server, "default", "the force-pushed commit", |v| v["revision"] == rewritten.as_str()).await;

        // A commit with errors is refused; the rewritten one keeps serving.
        let broken = origin.push(BROKEN, "broken");
        push_hook(&server, "default").await;
        let view = wait_for(&server, "default", "the broken commit refused", |v| v["status"] == "stale").await;
        assert_eq!(view["revision"], rewritten.as_str());
        assert_eq!(view["failed_revision"], broken.as_str());
        assert_eq!(view["errors"][0]["code"], "unknown-dependency");

        // The ref is deleted: a clear error, the last good commit serves on.
        git(&origin.bare, &["update-ref", "-d", "refs/heads/main"]);
        push_hook(&server, "default").await;
        let view = wait_for(&server, "default", "the deleted ref reported", |v| v["errors"][0]["code"] == "git-fetch").await;
        let message = view["errors"][0]["message"].as_str().expect("a message");
        assert!(message.contains("cannot fetch 'main' from http://127.0.0.1"), "{message}");
        assert!(message.contains("no branch, tag or commit"), "{message}");
        assert_eq!(view["revision"], rewritten.as_str());

        // The server's password changes: authentication fails, without the token in the error.
        let back = origin.push(GOOD, "back");
        std::fs::write(&credentials, "x-access-token:another-token").expect("write");
        push_hook(&server, "default").await;
        let view = wait_for(&server, "default", "the auth failure reported", |v| {
            v["errors"][0]["code"] == "git-fetch" && v["errors"][0]["message"].as_str().is_some_and(|m| !m.contains("no branch"))
        }).await;
        let message = view["errors"][0]["message"].as_str().expect("a message").to_owned();
        assert!(!message.contains(TOKEN), "{message}");
        assert!(message.to_lowercase().contains("auth") || message.contains("401"), "{message}");
        assert_eq!(view["revision"], rewritten.as_str());

        // Credentials right again: the pushed commit loads and the workspace is healthy.
        std::fs::write(&credentials, format!("x-access-token:{TOKEN}")).expect("write");
        push_hook(&server, "default").await;
        wait_for(&server, "default", "the good commit", |v| v["revision"] == back.as_str() && v["status"] == "ok").await;

        // The git server goes away: a connection error, the last good commit keeps serving.
        http.stop();
        push_hook(&server, "default").await;
        let view = wait_for(&server, "default", "the unreachable server reported", |v| v["status"] == "stale").await;
        let message = view["errors"][0]["message"].as_str().expect("a message");
        assert!(message.contains("cannot fetch 'main' from http://127.0.0.1"), "{message}");
        assert_eq!(view["revision"], back.as_str());
        let id = server.execute("default", "hello", "{}").await;
        assert_eq!(server.wait_finished(id).await["status"], "completed");

        // Nothing the API says holds the token.
        for path in ["/api/workspaces", "/api/workspaces/default", &format!("/api/jobs/{id}")] {
            let reply = server.get(path).await;
            assert!(!reply.body.contains(TOKEN), "{path}: {}", reply.body);
        }
        server.stop().await;
    }
}

serve_test! {
    async fn the_push_webhook_needs_the_workspace_secret(backend) {
        let home = Home::new(backend).await;
        let repos = home.path().join("repos");
        let origin = Origin::new(&repos, "flows");
        origin.push(GOOD, "hello");
        let plain = Origin::new(&repos, "plain");
        plain.push(GOOD, "hello");
        home.configure(&format!(
            "workspaces:\n  default:\n    type: git\n    url: \"{}\"\n    webhook_secret: \"{HOOK_SECRET}\"\n  \
             plain: {{ type: git, url: \"{}\" }}\n",
            origin.file_url(),
            plain.file_url(),
        ));
        let server = home.start().await;
        let body = br#"{"ref": "refs/heads/main"}"#.to_vec();
        let path = "/hooks/_workspaces/default/refresh";
        let wrong = format!("sha256={}", sign(b"not the secret", &body));
        let reply = server
            .send("POST", path, &[("Content-Type", "application/json"), ("X-Hub-Signature-256", &wrong)], body.clone())
            .await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        let reply = server.send("POST", path, &[("Content-Type", "application/json")], body.clone()).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        let bearer = format!("Bearer {HOOK_SECRET}");
        let reply = server
            .send("POST", path, &[("Content-Type", "application/json"), ("Authorization", &bearer)], body.clone())
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        let reply = server
            .send("POST", path, &[("Content-Type", "application/json"), ("X-Gitlab-Token", HOOK_SECRET)], body.clone())
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        // No secret configured, or no such workspace: no hook.
        for ws in ["plain", "nope"] {
            let reply = server
                .send("POST", &format!("/hooks/_workspaces/{ws}/refresh"), &[("Authorization", &bearer)], body.clone())
                .await;
            assert_eq!(reply.status, 404, "{ws}: {}", reply.body);
        }
        let reply = server.call("POST", "/api/workspaces/nope/refresh", &[], None).await;
        assert_eq!(reply.status, 404, "{}", reply.body);
        server.stop().await;
    }
}

serve_test! {
    async fn several_repositories_at_once_and_userinfo_never_shows(backend) {
        let home = Home::new(backend).await;
        let repos = home.path().join("repos");
        let a = Origin::new(&repos, "a");
        let first_a = a.push(GOOD, "from a");
        let b = Origin::new(&repos, "b");
        let first_b = b.push(GOOD_TWO, "from b");
        let credentials = home.path().join("git-credentials");
        std::fs::write(&credentials, format!("x-access-token:{TOKEN}")).expect("write");
        let http = GitHttp::start(&repos, Some(&credentials));
        // The token in the URL's userinfo: accepted, never shown.
        let with_userinfo = http.url("b").replace("http://", &format!("http://x-access-token:{TOKEN}@"));
        home.configure(&format!(
            "workspaces:\n  a: {{ type: git, url: \"{}\", poll_interval_secs: 1 }}\n  \
             b: {{ type: git, url: \"{with_userinfo}\", ref: main }}\n  \
             wrong: {{ type: git, url: \"{}\", auth: {{ type: token, token: wrong-{TOKEN} }} }}\n  \
             userinfo: {{ type: git, url: \"{}\" }}\n",
            a.file_url(),
            http.url("a"),
            http.url("a").replace("http://", "http://x-access-token:wrong-userinfo-pw@"),
        ));
        let server = home.start().await;
        let view_a = workspace(&server, "a").await;
        assert_eq!(view_a["revision"], first_a.as_str());
        let view_b = workspace(&server, "b").await;
        assert_eq!(view_b["revision"], first_b.as_str());
        assert_eq!(view_b["source"]["url"], http.url("b").as_str());
        assert_eq!(view_b["tasks_count"], 2);
        let wrong = workspace(&server, "wrong").await;
        assert_eq!(wrong["status"], "error", "{wrong}");
        let message = wrong["errors"][0]["message"].as_str().expect("a message");
        assert!(message.starts_with("cannot fetch 'main' from http://127.0.0.1"), "{message}");
        assert!(message.contains("not accepted by the remote"), "{message}");
        // A wrong password in the URL: refused, and neither the URL's userinfo nor the password
        // shows in the error.
        let refused = workspace(&server, "userinfo").await;
        assert_eq!(refused["status"], "error", "{refused}");
        assert_eq!(refused["source"]["url"], http.url("a").as_str());
        let message = refused["errors"][0]["message"].as_str().expect("a message");
        assert!(message.contains("requires authentication (HTTP 401)"), "{message}");
        let list = server.get("/api/workspaces").await;
        assert!(!list.body.contains(TOKEN), "{}", list.body);
        assert!(!list.body.contains("wrong-userinfo-pw"), "{}", list.body);

        // `a` polls every second: a push shows up without any request.
        let second_a = a.push(GOOD_TWO, "again");
        wait_for(&server, "a", "the poller's fetch", |v| v["revision"] == second_a.as_str()).await;
        server.stop().await;
    }
}

serve_test! {
    async fn a_remote_worker_runs_a_step_from_the_git_revision(backend) {
        let home = Home::new(backend).await;
        let repos = home.path().join("repos");
        let origin = Origin::new(&repos, "flows");
        let commit = origin.push(GOOD, "shipped by git");
        home.configure(&format!(
            "embedded_worker: false\nworker_token: \"{WORKER_TOKEN}\"\n\
             workspaces:\n  default: {{ type: git, url: \"{}\" }}\n",
            origin.file_url()
        ));
        let server = home.start().await;
        let worker_home = home.path().join("worker");
        std::fs::create_dir_all(&worker_home).expect("mkdir");
        let mut worker = Command::new(env!("CARGO_BIN_EXE_stroem"))
            .args(["work", "-s", server.base(), "--name", "git-worker"])
            .current_dir(&worker_home)
            .env("STROEM__WORKER_TOKEN", WORKER_TOKEN)
            .env("STROEM__DATA_DIR", &worker_home)
            .env("STROEM__HEARTBEAT_INTERVAL_SECS", "1")
            .env("STROEM__POLL_INTERVAL_SECS", "1")
            .env("STROEM__SHUTDOWN_GRACE_SECS", "1")
            .env_remove("STROEM_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("stroem work starts");
        let id = server.execute("default", "hello", "{}").await;
        let job = server.wait_finished(id).await;
        let _ = worker.kill();
        let _ = worker.wait();
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["revision"], commit.as_str());
        let log = server.get(&format!("/api/jobs/{id}/logs")).await;
        assert!(log.body.contains("shipped by git"), "{}", log.body);
        // The worker cached the revision under its commit id, like a folder's hash.
        assert!(
            std::fs::read_dir(worker_home.join("workspace-cache/default"))
                .expect("the worker's revision cache")
                .filter_map(Result::ok)
                .any(|entry| entry.file_name().to_string_lossy().starts_with(&commit)),
            "no cached revision {commit}"
        );
        server.stop().await;
    }
}
