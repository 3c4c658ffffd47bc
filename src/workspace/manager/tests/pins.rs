//! Jobs pin revisions: a pinned snapshot outlives edits of the folder and goes with its last
//! release; after a restart a pin re-adopts the snapshot left on disk.

use super::*;

#[test]
fn a_pinned_revision_keeps_its_files_through_edits_until_released() {
    let fx = Fixture::new();
    fx.write("default", ".workflows/main.yaml", GOOD);
    fx.write("default", "data.txt", "version one\n");
    let workspaces = fx.open(&["default"]);

    let pinned = workspaces.retain_active("default").expect("pinned");
    let second_job = workspaces
        .retain("default", &pinned.revision)
        .expect("pinned again");
    assert!(Arc::ptr_eq(&pinned, &second_job));

    fx.write("default", ".workflows/main.yaml", GOOD_TWO);
    fx.write("default", "data.txt", "version two\n");
    workspaces.tick(at(30));
    let newer = active(&workspaces, "default");
    assert_ne!(newer, pinned.revision);

    // The job still finds its revision, with its files as they were.
    let found = workspaces
        .revision("default", &pinned.revision)
        .expect("retained");
    assert_eq!(read(&found.root.join("data.txt")), "version one\n");
    assert_eq!(read(&found.root.join(".workflows/main.yaml")), GOOD);
    assert_eq!(found.def.tasks.len(), 1);
    let mut expected = vec![pinned.revision.clone(), newer.clone()];
    expected.sort();
    assert_eq!(fx.snapshots("default"), expected);

    // More edits do not touch it either.
    fx.write("default", "data.txt", "version three\n");
    workspaces.tick(at(60));
    assert_eq!(read(&pinned.root.join("data.txt")), "version one\n");

    assert!(workspaces.release("default", &pinned.revision));
    assert!(pinned.root.is_dir(), "one pin is left");
    assert!(workspaces.release("default", &pinned.revision));
    assert!(
        !pinned.root.exists(),
        "the last release deletes the snapshot"
    );
    assert!(workspaces.revision("default", &pinned.revision).is_none());
    assert!(!workspaces.release("default", &pinned.revision));
    assert_eq!(
        fx.snapshots("default"),
        vec![active(&workspaces, "default")]
    );
}

#[test]
fn releasing_the_active_revision_keeps_its_snapshot() {
    let fx = Fixture::new();
    fx.write("default", ".workflows/main.yaml", GOOD);
    let workspaces = fx.open(&["default"]);
    let rev = workspaces.retain_active("default").expect("pinned");
    assert!(workspaces.release("default", &rev.revision));
    assert!(rev.root.is_dir());
    assert!(workspaces.revision("default", &rev.revision).is_some());
}

#[test]
fn after_a_restart_a_pin_re_adopts_the_snapshot_on_disk_and_prune_drops_the_rest() {
    let fx = Fixture::new();
    fx.write("default", ".workflows/main.yaml", GOOD);
    let (pinned, orphan) = {
        let workspaces = fx.open(&["default"]);
        let pinned = workspaces.retain_active("default").expect("pinned");
        fx.write("default", ".workflows/main.yaml", GOOD_TWO);
        workspaces.tick(at(30));
        let orphan = workspaces.retain_active("default").expect("pinned");
        fx.write("default", "extra.txt", "x\n");
        workspaces.tick(at(60));
        // The registry goes away without releasing: a server restart.
        (pinned.revision.clone(), orphan.revision.clone())
    };
    let workspaces = fx.open(&["default"]);
    let current = active(&workspaces, "default");
    assert_eq!(fx.snapshots("default").len(), 3);
    assert!(
        workspaces.revision("default", &pinned).is_none(),
        "not retained yet"
    );

    let adopted = workspaces.retain("default", &pinned).expect("adopted");
    assert_eq!(adopted.revision, pinned);
    assert_eq!(adopted.def.tasks.len(), 1);
    assert_eq!(read(&adopted.root.join(".workflows/main.yaml")), GOOD);

    workspaces.prune();
    let mut expected = vec![pinned.clone(), current];
    expected.sort();
    assert_eq!(fx.snapshots("default"), expected, "{orphan} is pruned");
    assert!(workspaces.retain("default", &orphan).is_none());

    assert!(workspaces.release("default", &pinned));
    assert!(!adopted.root.exists());
}

#[test]
fn retain_refuses_revisions_that_are_not_plain_hex() {
    let fx = Fixture::new();
    fx.write("default", ".workflows/main.yaml", GOOD);
    let workspaces = fx.open(&["default"]);
    for revision in ["", "../default", "ABCDEF", "00ff/.."] {
        assert!(
            workspaces.retain("default", revision).is_none(),
            "{revision}"
        );
    }
    assert!(
        workspaces
            .retain("unknown", &active(&workspaces, "default"))
            .is_none()
    );
}
