//! Loading, rejecting and re-scanning: the `ok` → `stale` → `ok` cycle, `error` when nothing
//! loads, polling by interval and fingerprint, secrets and cross-workspace webhook names.

use super::*;
use crate::workflow::diagnostic::Severity;

#[test]
fn initial_load_activates_a_snapshot_of_the_folder() {
    let fx = Fixture::new();
    fx.write("default", ".workflows/main.yaml", GOOD);
    let workspaces = fx.open(&["default"]);

    let rev = workspaces.get("default").expect("active");
    assert_eq!(rev.revision.len(), 64);
    assert!(rev.revision.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(rev.loaded_at, t0());
    assert!(rev.def.tasks.contains_key("hello"));
    assert_eq!(
        rev.root,
        fx.data_dir().join("revisions/default").join(&rev.revision)
    );
    assert_eq!(read(&rev.root.join(".workflows/main.yaml")), GOOD);
    assert_eq!(fx.snapshots("default"), vec![rev.revision.clone()]);

    let view = workspaces.view("default").expect("view");
    assert_eq!(view.status, WorkspaceStatus::Ok);
    assert_eq!(view.revision.as_deref(), Some(rev.revision.as_str()));
    assert_eq!((view.tasks_count, view.actions_count), (1, 1));
    assert!(view.errors.is_empty() && view.failed_revision.is_none());
}

#[test]
fn a_broken_edit_keeps_the_last_good_revision_until_fixed() {
    let fx = Fixture::new();
    fx.write("default", ".workflows/main.yaml", GOOD);
    let workspaces = fx.open(&["default"]);
    let good = active(&workspaces, "default");

    fx.write("default", ".workflows/main.yaml", BROKEN);
    let outcomes = workspaces.tick(at(30));
    let [outcome] = outcomes.as_slice() else {
        panic!("one reload expected: {outcomes:?}");
    };
    let ReloadResult::Rejected { revision, errors } = &outcome.result else {
        panic!("rejection expected: {outcome:?}");
    };
    let failed = revision.clone().expect("a failed revision hash");
    assert_ne!(failed, good);
    assert_eq!(errors[0].code, "unknown-dependency");

    assert_eq!(active(&workspaces, "default"), good);
    let view = workspaces.view("default").expect("view");
    assert_eq!(view.status, WorkspaceStatus::Stale);
    assert_eq!(view.revision.as_deref(), Some(good.as_str()));
    assert_eq!(view.failed_revision.as_deref(), Some(failed.as_str()));
    assert_eq!(view.errors.len(), 1);
    assert_eq!(view.errors[0].file, ".workflows/main.yaml");
    assert_eq!(view.tasks_count, 1, "the last good revision keeps serving");
    // The rejected copy is not kept.
    assert_eq!(fx.snapshots("default"), vec![good.clone()]);

    fx.write("default", ".workflows/main.yaml", GOOD_TWO);
    let outcomes = workspaces.tick(at(60));
    let new = active(&workspaces, "default");
    assert_eq!(
        outcomes,
        vec![ReloadOutcome {
            workspace: "default".to_owned(),
            result: ReloadResult::Activated {
                revision: new.clone(),
                previous: Some(good.clone()),
            },
        }]
    );
    let view = workspaces.view("default").expect("view");
    assert_eq!(view.status, WorkspaceStatus::Ok);
    assert_eq!(view.failed_revision, None);
    assert!(view.errors.is_empty());
    assert_eq!(view.tasks_count, 2);
    assert_eq!(workspaces.get("default").expect("active").loaded_at, at(60));
    // Nothing pinned the old revision: its snapshot went with it.
    assert_eq!(fx.snapshots("default"), vec![new]);
    assert!(workspaces.revision("default", &good).is_none());
}

#[test]
fn reverting_a_broken_edit_clears_the_failure_without_a_new_revision() {
    let fx = Fixture::new();
    fx.write("default", ".workflows/main.yaml", GOOD);
    let workspaces = fx.open(&["default"]);
    let good = active(&workspaces, "default");
    fx.write("default", ".workflows/main.yaml", BROKEN);
    workspaces.tick(at(30));

    fx.write("default", ".workflows/main.yaml", GOOD);
    let outcomes = workspaces.tick(at(60));
    assert_eq!(
        outcomes[0].result,
        ReloadResult::Unchanged {
            revision: good.clone()
        }
    );
    assert_eq!(
        workspaces.view("default").expect("view").status,
        WorkspaceStatus::Ok
    );
    assert_eq!(fx.snapshots("default"), vec![good]);
}

#[test]
fn polls_only_after_the_interval_and_only_when_the_fingerprint_changed() {
    let fx = Fixture::new();
    fx.write("default", ".workflows/main.yaml", GOOD);
    let workspaces = fx.open(&["default"]);
    let first = active(&workspaces, "default");

    assert!(workspaces.tick(at(30)).is_empty(), "nothing changed");
    fx.write("default", ".workflows/main.yaml", GOOD_TWO);
    assert!(
        workspaces.tick(at(45)).is_empty(),
        "the interval since the last check has not elapsed"
    );
    assert_eq!(active(&workspaces, "default"), first);
    let outcomes = workspaces.tick(at(60));
    assert!(matches!(outcomes[0].result, ReloadResult::Activated { .. }));
    assert!(workspaces.tick(at(90)).is_empty());
    // A file that is not a workflow file is still part of the revision.
    fx.write("default", "scripts/run.sh", "echo hi\n");
    let outcomes = workspaces.tick(at(120));
    assert!(matches!(outcomes[0].result, ReloadResult::Activated { .. }));
}

#[test]
fn a_workspace_that_never_loaded_is_in_error_and_serves_nothing() {
    let fx = Fixture::new();
    fx.write("default", ".workflows/main.yaml", BROKEN);
    let workspaces = fx.open(&["default"]);

    assert!(workspaces.get("default").is_none());
    let view = workspaces.view("default").expect("view");
    assert_eq!(view.status, WorkspaceStatus::Error);
    assert_eq!(view.revision, None);
    assert_eq!(view.loaded_at, None);
    assert!(view.failed_revision.is_some());
    assert_eq!(view.tasks_count, 0);
    assert!(workspaces.tasks("default").expect("known").is_empty());
    assert!(workspaces.tasks("nope").is_none());
    assert!(fx.snapshots("default").is_empty());

    fx.write("default", ".workflows/main.yaml", GOOD);
    workspaces.tick(at(30));
    assert_eq!(
        workspaces.view("default").expect("view").status,
        WorkspaceStatus::Ok
    );
}

#[test]
fn a_missing_folder_is_an_error_with_a_diagnostic() {
    let fx = Fixture::new();
    let workspaces = fx.open(&["default"]);
    let view = workspaces.view("default").expect("view");
    assert_eq!(view.status, WorkspaceStatus::Error);
    assert_eq!(view.failed_revision, None);
    assert_eq!(view.errors[0].code, "unreadable-file");
}

#[test]
fn an_unset_secret_is_a_warning_at_its_definition_and_the_revision_serves() {
    let mut fx = Fixture::new();
    fx.env
        .insert("PRESENT".to_owned(), "a-long-value".to_owned());
    fx.env.insert("SHORT".to_owned(), "ab".to_owned());
    let yaml = format!(
        "{GOOD}secrets:\n  OK: \"{{{{ env.PRESENT }}}}\"\n  TINY: \"{{{{ env.SHORT }}}}\"\n  aws:\n    key_id: \"{{{{ env.AWS_KEY_ID }}}}\"\n"
    );
    fx.write("default", ".workflows/main.yaml", &yaml);
    let workspaces = fx.open(&["default"]);

    // WF §16.1 (issue #15): the workspace serves; the warning names the secret.
    let view = workspaces.view("default").expect("view");
    assert_eq!(view.status, WorkspaceStatus::Ok, "{:?}", view.errors);
    let warning = view
        .warnings
        .iter()
        .find(|warning| warning.code == "secret-unresolved")
        .unwrap_or_else(|| panic!("a secret-unresolved warning: {:?}", view.warnings));
    assert_eq!(warning.severity, Severity::Warning);
    assert_eq!(warning.path, "secrets.aws.key_id");
    assert_eq!(
        (warning.file.as_str(), warning.line),
        (".workflows/main.yaml", 14)
    );
    assert!(
        warning.message.contains("AWS_KEY_ID"),
        "{}",
        warning.message
    );
    let rev = workspaces.get("default").expect("active");
    let missing: Vec<&str> = rev
        .missing_secrets
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(missing, ["aws.key_id"]);
    assert_eq!(rev.secrets["OK"], "a-long-value");

    // Once the variable exists the revision loads, and the short value stays a warning.
    fx.env
        .insert("AWS_KEY_ID".to_owned(), "AKIAEXAMPLE".to_owned());
    let workspaces = Workspaces::new(
        fx.settings(),
        [("default".to_owned(), fx.folder_source("default"))],
        t0(),
    )
    .expect("registry");
    let rev = workspaces.get("default").expect("active");
    assert_eq!(rev.secrets["aws"]["key_id"], "AKIAEXAMPLE");
    let view = workspaces.view("default").expect("view");
    assert_eq!(view.status, WorkspaceStatus::Ok);
    let codes: Vec<(&str, &str)> = view
        .warnings
        .iter()
        .map(|w| (w.code.as_str(), w.path.as_str()))
        .collect();
    assert_eq!(codes, [("short-secret", "secrets.TINY")]);
}

#[test]
fn a_webhook_name_served_by_another_workspace_rejects_the_second() {
    let fx = Fixture::new();
    let hook = "triggers:\n  push:\n    type: webhook\n    task: hello\n    secret: s3cr3t-token\n";
    fx.write("alpha", ".workflows/main.yaml", &format!("{GOOD}{hook}"));
    fx.write("beta", ".workflows/main.yaml", &format!("{GOOD}{hook}"));
    let workspaces = fx.open(&["beta", "alpha"]);

    // Workspaces load in name order: alpha claims the name first.
    assert_eq!(
        workspaces.view("alpha").expect("view").status,
        WorkspaceStatus::Ok
    );
    let beta = workspaces.view("beta").expect("view");
    assert_eq!(beta.status, WorkspaceStatus::Error);
    assert_eq!(beta.errors[0].code, "duplicate-webhook");
    assert_eq!(beta.errors[0].path, "triggers.push");
    assert!(beta.errors[0].message.contains("'alpha'"));
}

#[test]
fn rejects_invalid_and_duplicate_names() {
    let fx = Fixture::new();
    let bad = Workspaces::new(fx.settings(), [("../x".to_owned(), Source::Example)], t0());
    assert!(matches!(bad, Err(ManagerError::InvalidName(_))));
    let twice = Workspaces::new(
        fx.settings(),
        [
            ("a".to_owned(), Source::Example),
            ("a".to_owned(), Source::Example),
        ],
        t0(),
    );
    assert!(matches!(twice, Err(ManagerError::Duplicate(_))));
    assert!(valid_name("data-team_2") && !valid_name("-x") && !valid_name(&"a".repeat(65)));
}

#[test]
fn the_example_workspace_materialises_hello_world() {
    let fx = Fixture::new();
    let workspaces = Workspaces::new(
        fx.settings(),
        [("default".to_owned(), Source::Example)],
        t0(),
    )
    .expect("registry");
    let rev = workspaces.get("default").expect("active");
    assert!(rev.def.tasks.contains_key("hello-world"));
    assert!(rev.root.join(".workflows/hello.yaml").is_file());
    assert!(
        fx.data_dir()
            .join("example/default/.workflows/hello.yaml")
            .is_file()
    );
    let view = workspaces.view("default").expect("view");
    assert_eq!(view.status, WorkspaceStatus::Ok);
    assert_eq!(
        (view.source.kind, view.source.path.as_deref()),
        ("example", None)
    );
    // Read-only: never re-scanned.
    assert!(workspaces.tick(at(3600)).is_empty());
}

#[test]
fn zero_config_uses_the_workspace_directory_when_present() {
    let dir = TempDir::new().expect("temp dir");
    assert_eq!(default_source(dir.path()), Source::Example);
    fs::write(dir.path().join("workspace"), "a file, not a directory").expect("write");
    assert_eq!(default_source(dir.path()), Source::Example);
    fs::remove_file(dir.path().join("workspace")).expect("rm");
    fs::create_dir(dir.path().join("workspace")).expect("mkdir");
    assert_eq!(
        default_source(dir.path()),
        Source::Folder {
            path: dir.path().join("workspace"),
            poll_interval: DEFAULT_FOLDER_POLL,
        }
    );
}

#[tokio::test]
async fn the_poller_picks_up_an_edit_and_stops_on_shutdown() {
    let fx = Fixture::new();
    fx.write("default", ".workflows/main.yaml", GOOD);
    let source = Source::Folder {
        path: fx.folder("default"),
        poll_interval: Duration::ZERO,
    };
    let workspaces = Arc::new(
        Workspaces::new(fx.settings(), [("default".to_owned(), source)], Utc::now())
            .expect("registry"),
    );
    let first = active(&workspaces, "default");
    let shutdown = CancellationToken::new();
    let poller = tokio::spawn(Arc::clone(&workspaces).run_poller(shutdown.clone()));

    fx.write("default", ".workflows/main.yaml", GOOD_TWO);
    let reloaded = tokio::time::timeout(Duration::from_secs(20), async {
        while active(&workspaces, "default") == first {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(reloaded.is_ok(), "the poller did not reload within 20 s");
    assert_eq!(
        workspaces.get("default").expect("active").def.tasks.len(),
        2
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), poller)
        .await
        .expect("the poller stops on shutdown")
        .expect("the poller does not panic");
}
