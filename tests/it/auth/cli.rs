//! `stroem login`, `stroem logout` and credentials on the client verbs (issue #12 item 11),
//! with the real binary; and the real `stroem serve` binary's log, which must never show a
//! password, token or key.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{ADMIN, As, SEED_AUTH};
use crate::server_harness::{Backend, Home, Server};

const WORKSPACE: &str = r#"
tasks:
  hello:
    flow:
      say: { type: script, script: echo hello }
"#;

async fn start(home: &Home) -> Server {
    let workspace = home.workspace(WORKSPACE);
    home.configure(&format!(
        "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\n{SEED_AUTH}  acl:\n    default: view\n",
        workspace.display()
    ));
    home.start().await
}

/// The binary, pointed at `server`, with its own configuration directory.
fn stroem(server: &Server, config_home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stroem"));
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env("STROEM_URL", server.base())
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("STROEM_TOKEN")
        .env_remove("STROEM_API_KEY");
    command
}

async fn run(mut command: Command, stdin: Option<&str>) -> Output {
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("stroem runs");
        let mut pipe = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        drop(pipe);
        child.wait_with_output().expect("stroem finishes")
    })
    .await
    .expect("thread")
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_stores_a_key_that_the_verbs_use_until_logout() {
    let home = Home::new(Backend::Sqlite).await;
    let server = start(&home).await;
    let config_home = home.path().join("config-home");

    let refused = run(stroem(&server, &config_home, &["jobs"]), None).await;
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("stroem login") && stderr.contains("code: unauthorized (HTTP 401)"),
        "{stderr}"
    );

    let wrong = run(
        stroem(
            &server,
            &config_home,
            &["login", "--email", ADMIN.0, "--password-stdin"],
        ),
        Some("not-it\n"),
    )
    .await;
    assert_eq!(wrong.status.code(), Some(3), "{}", text(&wrong));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("invalid_credentials"));

    let login = run(
        stroem(
            &server,
            &config_home,
            &["login", "--email", ADMIN.0, "--password-stdin"],
        ),
        Some("admin\n"),
    )
    .await;
    assert_eq!(login.status.code(), Some(0), "{}", text(&login));
    assert_eq!(
        String::from_utf8_lossy(&login.stdout),
        format!("signed in to {} as {}\n", server.base(), ADMIN.0)
    );
    let file = config_home.join("stroem/credentials.json");
    let mode = std::fs::metadata(&file)
        .expect("credentials")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("JSON");
    let key = stored["servers"][server.base()]["token"]
        .as_str()
        .expect("key")
        .to_owned();
    assert!(key.starts_with("strm_"), "{stored}");

    let trigger = run(
        stroem(&server, &config_home, &["trigger", "hello", "-o", "json"]),
        None,
    )
    .await;
    assert_eq!(trigger.status.code(), Some(0), "{}", text(&trigger));
    let job: serde_json::Value = serde_json::from_slice(&trigger.stdout).expect("JSON");
    let admin = As::login(&server, ADMIN.0, ADMIN.1).await;
    let detail = admin
        .get(&format!(
            "/api/jobs/{}",
            job["job_id"].as_str().expect("id")
        ))
        .await
        .json();
    assert_eq!(detail["source_id"], format!("api-key:{}", &key[..12]));
    // The session `login` used to make the key was signed out again: only the key remains.
    assert_eq!(
        admin
            .get("/api/auth/api-keys")
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let logout = run(stroem(&server, &config_home, &["logout"]), None).await;
    assert_eq!(logout.status.code(), Some(0), "{}", text(&logout));
    assert_eq!(
        As::new(&server, key.clone()).get("/api/jobs").await.status,
        401
    );
    let again = run(stroem(&server, &config_home, &["jobs"]), None).await;
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));

    // `--token`, `STROEM_TOKEN` and `login --api-key`.
    let made = admin
        .post("/api/auth/api-keys", &json!({"name": "ci"}))
        .await
        .json();
    let key = made["key"].as_str().expect("key").to_owned();
    let by_flag = run(
        stroem(&server, &config_home, &["--token", &key, "jobs"]),
        None,
    )
    .await;
    assert_eq!(by_flag.status.code(), Some(0), "{}", text(&by_flag));
    let mut by_env = stroem(&server, &config_home, &["workspaces"]);
    by_env.env("STROEM_TOKEN", &key);
    assert_eq!(run(by_env, None).await.status.code(), Some(0));
    let bad_key = run(
        stroem(
            &server,
            &config_home,
            &[
                "login",
                "--api-key",
                "strm_00000000000000000000000000000000",
            ],
        ),
        None,
    )
    .await;
    assert_eq!(bad_key.status.code(), Some(3), "{}", text(&bad_key));
    let by_key = run(
        stroem(&server, &config_home, &["login", "--api-key", &key]),
        None,
    )
    .await;
    assert_eq!(by_key.status.code(), Some(0), "{}", text(&by_key));
    assert_eq!(
        run(stroem(&server, &config_home, &["jobs"]), None)
            .await
            .status
            .code(),
        Some(0)
    );

    // 403: a user who may only view.
    admin
        .create_user("viewer@example.test", "viewer-password", &[])
        .await;
    let viewer = admin
        .post("/api/auth/api-keys", &json!({"name": "x"}))
        .await;
    assert_eq!(viewer.status, 201);
    let viewer_session = As::login(&server, "viewer@example.test", "viewer-password").await;
    let viewer_key = viewer_session
        .post("/api/auth/api-keys", &json!({"name": "cli"}))
        .await
        .json();
    let forbidden = run(
        stroem(
            &server,
            &config_home,
            &[
                "--token",
                viewer_key["key"].as_str().expect("key"),
                "trigger",
                "hello",
            ],
        ),
        None,
    )
    .await;
    assert_eq!(forbidden.status.code(), Some(3), "{}", text(&forbidden));
    assert!(
        String::from_utf8_lossy(&forbidden.stderr).contains("permission denied"),
        "{}",
        text(&forbidden)
    );
}

/// How long the real server may take to start.
const SERVE_START: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_server_log() {
    let home = Home::new(Backend::Sqlite).await;
    let workspace = home.workspace(WORKSPACE);
    home.configure(&format!(
        "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\nlisten: 127.0.0.1:0\nlog_level: debug\n{SEED_AUTH}",
        workspace.display()
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_stroem"))
        .arg("serve")
        .current_dir(home.path())
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("stroem serve runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let started = Instant::now();
    let mut line = String::new();
    let base = loop {
        line.clear();
        stdout.read_line(&mut line).expect("read stdout");
        if let Some(url) = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
        {
            break url.to_owned();
        }
        assert!(
            started.elapsed() < SERVE_START && !line.is_empty(),
            "no address printed"
        );
    };
    let stderr = child.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
    });

    let secrets = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let post = |path: &str, body: serde_json::Value, token: Option<&str>| {
            let mut request = agent.post(&format!("{base}{path}"));
            if let Some(token) = token {
                request = request.header("Authorization", &format!("Bearer {token}"));
            }
            let mut response = request.send_json(body).expect("answer");
            response
                .body_mut()
                .read_json::<serde_json::Value>()
                .unwrap_or_default()
        };
        post(
            "/api/auth/login",
            json!({"email": ADMIN.0, "password": "wrong-password-xyz"}),
            None,
        );
        let tokens = post(
            "/api/auth/login",
            json!({"email": ADMIN.0, "password": ADMIN.1}),
            None,
        );
        let access = tokens["access_token"].as_str().expect("access").to_owned();
        let refresh = tokens["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_owned();
        let rotated = post("/api/auth/refresh", json!({"refresh_token": refresh}), None);
        post("/api/auth/refresh", json!({"refresh_token": refresh}), None);
        let key = post("/api/auth/api-keys", json!({"name": "ci"}), Some(&access));
        let key = key["key"].as_str().expect("key").to_owned();
        post(
            "/api/users",
            json!({"email": "ada@example.test", "password": "ada-secret-password"}),
            Some(&key),
        );
        post(
            "/api/users",
            json!({"email": "eve@example.test", "password": "eve-secret-password"}),
            Some(&access),
        );
        post(
            "/api/workspaces/default/tasks/hello/execute",
            json!({}),
            Some("not-a-valid-token-abc"),
        );
        // A WebSocket with its token in the query string.
        let ws = format!(
            "{}/api/jobs/00000000-0000-0000-0000-000000000000/logs/stream?token={access}",
            base.replacen("http", "ws", 1)
        );
        let _ = tungstenite::connect(ws);
        vec![
            "wrong-password-xyz".to_owned(),
            "ada-secret-password".to_owned(),
            "eve-secret-password".to_owned(),
            "not-a-valid-token-abc".to_owned(),
            access,
            refresh,
            rotated["refresh_token"]
                .as_str()
                .unwrap_or("none")
                .to_owned(),
            key,
        ]
    })
    .await
    .expect("client thread");

    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    child.wait().expect("serve exits");
    let log = log.join().expect("log thread");
    assert!(
        log.contains("request failed"),
        "the debug log shows the refusals: {log}"
    );
    for secret in secrets {
        assert!(
            !log.contains(&secret),
            "the server log holds a secret ({secret}):\n{log}"
        );
    }
}
