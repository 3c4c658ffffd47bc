//! The API views (API §2.1–§2.3) of a workspace that uses folders, inline actions, secret
//! inputs, schedules and webhooks, snapshotted as the JSON the server returns.

use super::*;

const MAIN: &str = r#"
secrets:
  API_TOKEN: "{{ env.API_TOKEN }}"
actions:
  greet:
    type: script
    script: echo "hello {{ input.who }}"
    input:
      who: { type: string, required: true }
tasks:
  hello:
    name: Hello
    description: Greets someone
    timeout: 10m
    input:
      who: { type: string, default: World, order: 1 }
      token: { type: string, secret: true, default: "default-token-value" }
    flow:
      greet:
        action: greet
        input: { who: "{{ input.who }}" }
      done:
        depends_on: [greet]
        type: script
        script: echo done
        timeout: 30s
"#;

const DEPLOY: &str = r#"
tasks:
  deploy:
    description: Ships it
    flow:
      ship:
        action:
          type: script
          language: python
          script: print("shipping")
triggers:
  nightly:
    type: scheduler
    task: deploy
    cron: "0 30 2 * * 1-5"
    timezone: Europe/Oslo
    concurrency: skip
  site-push:
    type: webhook
    task: deploy
    secret: "{{ secret.API_TOKEN }}"
  open-push:
    type: webhook
    task: deploy
  paused:
    type: scheduler
    task: hello
    cron: "@daily"
    enabled: false
    input: { who: "the-api-token-value" }
"#;

fn fixture() -> (Fixture, Workspaces) {
    let mut fx = Fixture::new();
    fx.env
        .insert("API_TOKEN".to_owned(), "the-api-token-value".to_owned());
    fx.write("default", ".workflows/main.yaml", MAIN);
    fx.write("default", ".workflows/ops/deploy.yaml", DEPLOY);
    fx.write("broken", ".workflows/main.yaml", BROKEN);
    let workspaces = fx.open(&["default", "broken"]);
    (fx, workspaces)
}

/// Redacts a value but keeps `null`, which is part of what the snapshot shows.
fn unless_null(replacement: &'static str) -> insta::internals::Redaction {
    insta::dynamic_redaction(move |value, _| {
        if value.is_nil() {
            value
        } else {
            replacement.into()
        }
    })
}

#[test]
fn workspace_list() {
    let (fx, workspaces) = fixture();
    fx.write(
        "default",
        ".workflows/main.yaml",
        &format!("{MAIN}\nnope: 1\n"),
    );
    workspaces.tick(at(30));
    insta::assert_json_snapshot!(workspaces.list(), {
        "[].revision" => unless_null("[revision]"),
        "[].failed_revision" => unless_null("[revision]"),
        "[].loaded_at" => unless_null("[time]"),
        "[].source.path" => "[path]",
    });
}

#[test]
fn task_lists() {
    let (_fx, workspaces) = fixture();
    insta::assert_json_snapshot!("all_tasks", workspaces.all_tasks());
    assert_eq!(workspaces.tasks("default"), Some(workspaces.all_tasks()));
}

#[test]
fn task_detail_masks_secrets() {
    let (_fx, workspaces) = fixture();
    let hello = workspaces.task("default", "hello", t0()).expect("task");
    let json = serde_json::to_string(&hello).expect("json");
    assert!(!json.contains("default-token-value") && !json.contains("the-api-token-value"));
    insta::assert_json_snapshot!("task_hello", hello);
    insta::assert_json_snapshot!(
        "task_deploy",
        workspaces.task("default", "deploy", t0()).expect("task")
    );
    assert!(workspaces.task("default", "nope", t0()).is_none());
    assert!(workspaces.task("broken", "hello", t0()).is_none());
}

#[test]
fn trigger_list() {
    let (_fx, workspaces) = fixture();
    let triggers = workspaces.triggers("default", t0()).expect("known");
    insta::assert_json_snapshot!("triggers", triggers);
    assert!(
        workspaces
            .triggers("broken", t0())
            .expect("known")
            .is_empty()
    );
    assert!(workspaces.triggers("nope", t0()).is_none());
}
