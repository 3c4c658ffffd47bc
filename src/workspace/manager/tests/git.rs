//! Git sources in the registry, on real repositories over `file://`: the commit is the
//! revision, a refused commit or a failed fetch keeps the last good one serving, a restart
//! without the remote serves the last good commit, and refresh is rate-limited.

use super::*;
use crate::workspace::git::Remote;
use crate::workspace::git::tests::{commit, git, url};

impl Fixture {
    fn origin(&self, name: &str) -> PathBuf {
        self.dir.path().join("origins").join(name)
    }

    fn git_source(&self, origin: &str) -> Source {
        Source::Git {
            remote: Remote::new(url(&self.origin(origin)), "main", None),
            poll_interval: POLL,
        }
    }

    fn open_git(&self, names: &[&str]) -> Workspaces {
        let sources = names
            .iter()
            .map(|name| (name.to_string(), self.git_source(name)));
        Workspaces::new(self.settings(), sources, t0()).expect("registry")
    }

    fn push(&self, origin: &str, text: &str) -> String {
        commit(
            &self.origin(origin),
            &[(".workflows/main.yaml", text)],
            "change",
        )
    }
}

#[test]
fn a_git_workspace_serves_its_commit_and_refuses_a_broken_one() {
    let fx = Fixture::new();
    let first = fx.push("default", GOOD);
    let workspaces = fx.open_git(&["default"]);
    assert_eq!(active(&workspaces, "default"), first);
    let view = serde_json::to_value(workspaces.view("default").expect("view")).expect("json");
    assert_eq!(view["source"]["type"], "git");
    assert_eq!(view["source"]["ref"], "main");
    assert_eq!(view["source"]["commit"], first.as_str());
    assert_eq!(view["source"]["url"], url(&fx.origin("default")).as_str());
    assert_eq!(view["status"], "ok");

    // Nothing new: a poll does nothing.
    assert_eq!(workspaces.tick(at(30)), Vec::new());

    let broken = fx.push("default", BROKEN);
    let outcomes = workspaces.tick(at(60));
    let [
        ReloadOutcome {
            result: ReloadResult::Rejected { revision, errors },
            ..
        },
    ] = outcomes.as_slice()
    else {
        panic!("a rejection expected: {outcomes:?}");
    };
    assert_eq!(revision.as_deref(), Some(broken.as_str()));
    assert_eq!(errors[0].code, "unknown-dependency");
    let view = workspaces.view("default").expect("view");
    assert_eq!(view.status, WorkspaceStatus::Stale);
    assert_eq!(view.revision.as_deref(), Some(first.as_str()));
    assert_eq!(view.failed_revision.as_deref(), Some(broken.as_str()));
    // The refused commit is not validated again at every poll.
    assert_eq!(workspaces.tick(at(90)), Vec::new());

    let fixed = fx.push("default", GOOD_TWO);
    let outcomes = workspaces.tick(at(120));
    assert_eq!(
        outcomes[0].result,
        ReloadResult::Activated {
            revision: fixed.clone(),
            previous: Some(first.clone()),
        }
    );
    let rev = workspaces.get("default").expect("active");
    assert_eq!(read(&rev.root.join(".workflows/main.yaml")), GOOD_TWO);
    assert_eq!(fx.snapshots("default"), vec![fixed]);
}

#[test]
fn a_failed_fetch_keeps_the_last_good_revision_and_recovers() {
    let fx = Fixture::new();
    let first = fx.push("default", GOOD);
    let workspaces = fx.open_git(&["default"]);
    let moved = fx.dir.path().join("moved");
    fs::rename(fx.origin("default"), &moved).expect("move the origin away");

    let outcomes = workspaces.tick(at(30));
    let ReloadResult::Rejected {
        revision: None,
        errors,
    } = &outcomes[0].result
    else {
        panic!("a fetch failure expected: {outcomes:?}");
    };
    assert_eq!(errors[0].code, "git-fetch");
    assert!(
        errors[0]
            .message
            .starts_with("cannot fetch 'main' from file://"),
        "{}",
        errors[0].message
    );
    let view = workspaces.view("default").expect("view");
    assert_eq!(view.status, WorkspaceStatus::Stale);
    assert_eq!(view.revision.as_deref(), Some(first.as_str()));
    assert_eq!(view.tasks_count, 1);

    fs::rename(&moved, fx.origin("default")).expect("move it back");
    let outcomes = workspaces.tick(at(60));
    assert_eq!(
        outcomes[0].result,
        ReloadResult::Unchanged { revision: first }
    );
    assert_eq!(
        workspaces.view("default").expect("view").status,
        WorkspaceStatus::Ok
    );
}

#[test]
fn a_restart_without_the_remote_serves_the_last_good_commit() {
    let fx = Fixture::new();
    let good = fx.push("default", GOOD);
    let workspaces = fx.open_git(&["default"]);
    fx.push("default", BROKEN);
    workspaces.tick(at(30));
    drop(workspaces);
    fs::remove_dir_all(fx.origin("default")).expect("the remote is gone");

    let workspaces = fx.open_git(&["default"]);
    let view = workspaces.view("default").expect("view");
    assert_eq!(view.status, WorkspaceStatus::Stale);
    assert_eq!(view.revision.as_deref(), Some(good.as_str()));
    assert_eq!(view.errors[0].code, "git-fetch");
}

#[test]
fn several_repositories_at_once_and_a_revision_pinned_across_restarts() {
    let fx = Fixture::new();
    let a = fx.push("a", GOOD);
    let b = fx.push("b", GOOD_TWO);
    let workspaces = fx.open_git(&["a", "b"]);
    assert_eq!(active(&workspaces, "a"), a);
    assert_eq!(active(&workspaces, "b"), b);
    assert_eq!(workspaces.get("b").expect("b").def.tasks.len(), 2);

    workspaces.retain_active("a").expect("pinned");
    let newer = fx.push("a", GOOD_TWO);
    workspaces.tick(at(30));
    assert_eq!(active(&workspaces, "a"), newer);
    drop(workspaces);

    // After a restart the job's revision is adopted from its snapshot, named by its commit.
    let workspaces = fx.open_git(&["a", "b"]);
    let pinned = workspaces.retain("a", &a).expect("adopted");
    assert_eq!(pinned.revision, a);
    assert!(pinned.def.tasks.contains_key("hello"));
}

#[test]
fn refresh_fetches_now_once_per_five_seconds() {
    let fx = Fixture::new();
    fx.push("default", GOOD);
    let workspaces = fx.open_git(&["default"]);
    let newer = fx.push("default", GOOD_TWO);
    let outcome = workspaces.refresh("default", at(1)).expect("allowed");
    assert!(
        matches!(&outcome.expect("known").result, ReloadResult::Activated { revision, .. } if *revision == newer)
    );
    assert!(matches!(
        workspaces.refresh("default", at(5)),
        Err(ManagerError::TooSoon(_))
    ));
    let again = workspaces.refresh("default", at(6)).expect("allowed again");
    assert_eq!(
        again.expect("known").result,
        ReloadResult::Unchanged { revision: newer }
    );
    assert!(matches!(workspaces.refresh("nope", at(60)), Ok(None)));
    git(&fx.origin("default"), &["status", "--short"]);
}

#[test]
fn a_push_hook_makes_the_workspace_due_even_while_it_polls() {
    let fx = Fixture::new();
    fx.push("default", GOOD);
    let workspaces = fx.open_git(&["default"]);
    let newer = fx.push("default", GOOD_TWO);
    assert_eq!(
        workspaces.tick(at(1)),
        Vec::new(),
        "not due before its interval"
    );

    assert!(workspaces.poll_soon("default"));
    assert!(!workspaces.poll_soon("nope"));
    // A poll still running: the request waits for the next round instead of being used up.
    let polling = std::collections::HashSet::from(["default".to_owned()]);
    assert_eq!(workspaces.due(at(2), &polling), Vec::<String>::new());
    let outcomes = workspaces.tick(at(3));
    assert!(
        matches!(&outcomes[..], [ReloadOutcome { result: ReloadResult::Activated { revision, .. }, .. }] if *revision == newer),
        "{outcomes:?}"
    );
}
