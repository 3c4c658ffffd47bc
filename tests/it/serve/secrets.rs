//! Secrets never shown, whatever path they take (WF §16.3, issue #16 items 1–3), over real
//! HTTP on both backends: workspace secrets and `secret: true` input values — also handed on
//! to child and hook jobs, printed to stderr by a step that did not reference them, rendered
//! into an error message, or overlapping each other — stay masked in every job, step, worker,
//! task, trigger and log view; and they stay masked after the workspace changed (the job's
//! revision is gone) and after a restart with different secret values.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::server_harness::{Backend, Home, Server, eventually, serve_test, step};

/// Bound for every wait in this file.
const WAIT: Duration = Duration::from_secs(60);

const TOKEN: &str = "tok-3f9a-workspace-secret";
const PASSWORD: &str = "pw-7c1e-secret-input";
/// Two secrets that overlap in `LEFT + RIGHT[4..]`: masking one after the other leaves a part
/// of the second readable (`CCCC` or `AAAA`).
const LEFT: &str = "ovlp-AAAA-BBBB";
const RIGHT: &str = "BBBB-CCCC-ovlp";
const TRIGGER_LITERAL: &str = "trig-literal-9d2b";
const STEP_LITERAL: &str = "step-literal-51ac";
const DEFAULT_LITERAL: &str = "default-literal-e07f";

const WORKSPACE: &str = r#"
secrets:
  TOKEN: "{{ env.SECRETS_TEST_TOKEN }}"
  LEFT: "{{ env.SECRETS_TEST_LEFT }}"
  RIGHT: "{{ env.SECRETS_TEST_RIGHT }}"
actions:
  notify:
    type: script
    input:
      note: { type: string }
    script: echo "hook saw $INPUT_NOTE"
  pick:
    type: script
    input:
      mode: { type: string, options: [fast, slow] }
    script: echo "$INPUT_MODE"
  deploy:
    type: script
    input:
      api_key: { type: string, secret: true }
    script: echo deploying
tasks:
  leak:
    input:
      password: { type: string, secret: true, default: "default-literal-e07f" }
      pin: { type: integer, secret: true, default: 1 }
    flow:
      show:
        type: script
        env:
          TOKEN: "{{ secret.TOKEN }}"
          L: "{{ secret.LEFT }}"
          R: "{{ secret.RIGHT }}"
        input: { password: "{{ input.password }}" }
        script: |
          echo "token=$TOKEN password=$INPUT_PASSWORD"
          joined="$L${R#BBBB}"
          echo "OUTPUT: {\"token\": \"$TOKEN\", \"password\": \"$INPUT_PASSWORD\", \"joined\": \"$joined\"}"
      child:
        depends_on: [show]
        type: task
        task: echo-note
        input: { note: "{{ input.password }}" }
      fail:
        depends_on: [child]
        type: script
        script: |
          echo "leaking $SECRETS_TEST_TOKEN" >&2
          exit 3
    on_error:
      - action: notify
        input: { note: "{{ hook.input.password }}" }
  echo-note:
    input:
      note: { type: string }
    flow:
      say:
        type: script
        input: { note: "{{ input.note }}" }
        script: |
          echo "OUTPUT: {\"note\": \"$INPUT_NOTE\"}"
  reject:
    flow:
      pick:
        action: pick
        input: { mode: "{{ secret.TOKEN }}" }
  literal:
    flow:
      go: { action: deploy, input: { api_key: "step-literal-51ac" } }
triggers:
  nightly:
    type: scheduler
    cron: "0 0 1 1 *"
    task: leak
    enabled: false
    input: { password: "trig-literal-9d2b", pin: 4321 }
"#;

fn environment(token: &str) -> [(&'static str, String); 3] {
    [
        ("SECRETS_TEST_TOKEN", token.to_owned()),
        ("SECRETS_TEST_LEFT", LEFT.to_owned()),
        ("SECRETS_TEST_RIGHT", RIGHT.to_owned()),
    ]
}

async fn start(home: &Home, token: &str) -> Server {
    let env = environment(token);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    home.start_with_env(&env).await
}

async fn get_json(server: &Server, path: &str) -> Value {
    let reply = server.get(path).await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
    reply.json()
}

/// Every view a user can reach, as one text: jobs (list and each detail), their logs,
/// workers (list and each detail), tasks and triggers.
async fn everything_shown(server: &Server) -> String {
    let mut shown = String::new();
    let jobs = get_json(server, "/api/jobs?limit=100").await;
    shown.push_str(&jobs.to_string());
    for job in jobs.as_array().expect("job list") {
        let id = job["job_id"].as_str().expect("job id");
        shown.push_str(
            &get_json(server, &format!("/api/jobs/{id}"))
                .await
                .to_string(),
        );
        shown.push_str(&server.get(&format!("/api/jobs/{id}/logs")).await.body);
    }
    let workers = get_json(server, "/api/workers").await;
    shown.push_str(&workers.to_string());
    for worker in workers.as_array().expect("worker list") {
        let id = worker["worker_id"].as_str().expect("worker id");
        shown.push_str(
            &get_json(server, &format!("/api/workers/{id}"))
                .await
                .to_string(),
        );
    }
    for path in [
        "/api/tasks",
        "/api/workspaces/default/triggers",
        "/api/workspaces/default/tasks/leak",
        "/api/workspaces/default/tasks/literal",
        "/api/workspaces/default/tasks/reject",
    ] {
        shown.push_str(&get_json(server, path).await.to_string());
    }
    shown
}

async fn assert_nothing_leaks(server: &Server, leak: Uuid, when: &str) {
    let shown = everything_shown(server).await;
    for secret in [
        TOKEN,
        PASSWORD,
        LEFT,
        RIGHT,
        "AAAA",
        "CCCC",
        TRIGGER_LITERAL,
        STEP_LITERAL,
        DEFAULT_LITERAL,
    ] {
        assert!(
            !shown.contains(secret),
            "{when}: '{secret}' is shown:\n{shown}"
        );
    }
    // Secret-typed input fields read `••••••` whatever their value (a number here).
    let job = get_json(server, &format!("/api/jobs/{leak}")).await;
    for field in ["input", "raw_input"] {
        assert_eq!(job[field]["pin"], "••••••", "{when}: {field}: {job:#}");
        assert_eq!(job[field]["password"], "••••••", "{when}: {field}: {job:#}");
    }
    let triggers = get_json(server, "/api/workspaces/default/triggers").await;
    assert_eq!(
        triggers[0]["input"]["pin"], "••••••",
        "{when}: {triggers:#}"
    );
    // Masking keeps everything else readable.
    assert_eq!(job["status"], "failed", "{when}: {job:#}");
    assert_eq!(
        step(&job, "show")["output"],
        json!({"token": "••••••", "password": "••••••", "joined": "••••••"}),
        "{when}"
    );
}

/// The finished jobs of the test: the `leak` job, its child, its hook job and `reject`.
async fn run_jobs(server: &Server) -> Uuid {
    let body = json!({"input": {"password": PASSWORD, "pin": 4242}}).to_string();
    let leak = server.execute("default", "leak", &body).await;
    let reject = server.execute("default", "reject", "{}").await;
    for id in [leak, reject] {
        let job = server.wait_finished(id).await;
        assert_eq!(job["status"], "failed", "{job:#}");
    }
    eventually("the hook job to finish", WAIT, || async {
        let hooks = get_json(server, "/api/jobs?source_type=hook").await;
        hooks
            .as_array()
            .is_some_and(|hooks| hooks.len() == 1 && hooks[0]["completed_at"].is_string())
    })
    .await;
    leak
}

serve_test! {
    async fn secrets_stay_masked_in_every_view_after_reloads_and_restarts(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure(&format!(
            "workspaces:\n  default: {{ type: folder, path: \"{}\", poll_interval_secs: 1 }}",
            workspace.display()
        ));
        let server = start(&home, TOKEN).await;
        let leak = run_jobs(&server).await;
        assert_nothing_leaks(&server, leak, "after the run").await;

        // Any edit makes a new revision; the jobs' revision is then gone from the server.
        let before = get_json(&server, "/api/workspaces/default").await["revision"].clone();
        let file = workspace.join(".workflows/main.yaml");
        let text = std::fs::read_to_string(&file).expect("read workflow");
        std::fs::write(&file, format!("{text}\n# edited\n")).expect("edit workflow");
        eventually("the edited revision to load", WAIT, || async {
            get_json(&server, "/api/workspaces/default").await["revision"] != before
        })
        .await;
        assert_nothing_leaks(&server, leak, "after a workspace change").await;
        server.stop().await;

        // The secret's value changed while the server was down: the old one is still hidden.
        let server = start(&home, "tok-new-value-after-restart").await;
        assert_nothing_leaks(&server, leak, "after a restart").await;
        server.stop().await;
    }
}

/// Runs `statement` on the home's database while no server is running.
async fn execute_sql(home: &Home, backend: Backend, statement: &str) {
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(home.db_url())
                .await
                .expect("sqlite");
            sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(&pool)
                .await
                .expect("statement");
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(home.db_url())
                .await
                .expect("postgres");
            sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(&pool)
                .await
                .expect("statement");
            pool.close().await;
        }
    }
}

serve_test! {
    async fn jobs_stored_before_masks_were_kept_show_nothing_once_their_revision_is_gone(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure_workspace(&workspace);
        let server = start(&home, TOKEN).await;
        let leak = run_jobs(&server).await;
        server.stop().await;

        // What migration 0006 leaves on rows of earlier versions, and a workspace that moved on.
        execute_sql(&home, backend, "UPDATE jobs SET mask = NULL").await;
        let file = workspace.join(".workflows/main.yaml");
        let text = std::fs::read_to_string(&file).expect("read workflow");
        std::fs::write(&file, format!("{text}\n# edited\n")).expect("edit workflow");

        let server = start(&home, TOKEN).await;
        assert_nothing_leaks_at_all(&server, "fail closed").await;
        let job = get_json(&server, &format!("/api/jobs/{leak}")).await;
        for field in ["input", "raw_input", "error"] {
            assert_eq!(job[field], "••••••", "{field}: {job:#}");
        }
        assert_eq!(step(&job, "show")["output"], "••••••", "{job:#}");
        assert_eq!(step(&job, "fail")["error_message"], "••••••", "{job:#}");
        // Names, statuses and times stay: only values and messages are withheld.
        assert_eq!(job["status"], "failed");
        assert_eq!(step(&job, "show")["status"], "completed");
        let jobs = get_json(&server, "/api/jobs?task_name=leak&workspace=default").await;
        assert_eq!(jobs[0]["error"], "••••••", "{jobs:#}");
        server.stop().await;
    }
}

/// [`assert_nothing_leaks`] without its checks of masked shapes, which a job shown with
/// nothing at all does not have.
async fn assert_nothing_leaks_at_all(server: &Server, when: &str) {
    let shown = everything_shown(server).await;
    for secret in [TOKEN, PASSWORD, LEFT, RIGHT, "AAAA", "CCCC"] {
        assert!(
            !shown.contains(secret),
            "{when}: '{secret}' is shown:\n{shown}"
        );
    }
}
