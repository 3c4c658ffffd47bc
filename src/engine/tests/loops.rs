//! `for_each` expansion and loop settlement (WF §10.3).

use serde_json::json;

use super::Harness;
use super::fixtures::{after, for_each, for_each_items, inline, single, tolerant};
use crate::workflow::model::ForEach;

#[test]
fn parallel_loop_with_an_untolerated_failure_fails_after_all_instances() {
    let def = single(vec![
        (
            "deploy",
            for_each_items(
                inline("deploy"),
                vec![json!("eu"), json!("us"), json!("ap")],
                false,
            ),
        ),
        ("notify", after(inline("notify"), &["deploy"])),
    ]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.run(1.0, "deploy[0]")
        .run(1.0, "deploy[1]")
        .run(1.0, "deploy[2]")
        .fail(2.0, "deploy[1]", "exit code 1")
        .succeed(3.0, "deploy[2]", json!("ap ok"))
        .succeed(4.0, "deploy[0]", json!("eu ok"));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn parallel_loop_with_a_tolerated_failure_completes_with_null_for_it() {
    let def = single(vec![
        (
            "deploy",
            tolerant(for_each_items(
                inline("deploy"),
                vec![json!(1), json!(2), json!(3)],
                false,
            )),
        ),
        ("notify", after(inline("notify"), &["deploy"])),
    ]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.run(1.0, "deploy[0]")
        .run(1.0, "deploy[1]")
        .run(1.0, "deploy[2]")
        .fail(2.0, "deploy[1]", "exit code 1")
        .succeed(3.0, "deploy[2]", json!(3))
        .succeed(4.0, "deploy[0]", json!(1))
        .run(5.0, "notify")
        .succeed(6.0, "notify", json!(null));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn sequential_loop_stops_after_an_untolerated_failure() {
    let def = single(vec![(
        "migrate",
        for_each_items(
            inline("migrate"),
            vec![json!("a"), json!("b"), json!("c"), json!("d")],
            true,
        ),
    )]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.run(1.0, "migrate[0]")
        .succeed(2.0, "migrate[0]", json!("a done"))
        .run(3.0, "migrate[1]")
        .fail(4.0, "migrate[1]", "exit code 3");
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn sequential_loop_continues_past_a_tolerated_failure() {
    let def = single(vec![(
        "migrate",
        tolerant(for_each_items(
            inline("migrate"),
            vec![json!("a"), json!("b"), json!("c")],
            true,
        )),
    )]);
    let mut h = Harness::new(&def, "main", json!({}));
    h.run(1.0, "migrate[0]")
        .fail(2.0, "migrate[0]", "exit code 1")
        .run(3.0, "migrate[1]")
        .succeed(4.0, "migrate[1]", json!("b done"))
        .run(5.0, "migrate[2]")
        .succeed(6.0, "migrate[2]", json!("c done"));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn empty_loop_is_skipped_and_cascades() {
    let def = single(vec![
        ("each", for_each_items(inline("x"), Vec::new(), false)),
        ("after", after(inline("after"), &["each"])),
        ("other", inline("other")),
    ]);
    let h = Harness::new(&def, "main", json!({}));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn templated_loops_take_arrays_json_text_and_fail_otherwise() {
    let def = single(vec![
        ("list", inline("list")),
        (
            "array",
            after(
                for_each(
                    inline("a"),
                    ForEach::Template("{{ list.output.hosts }}".into()),
                    false,
                ),
                &["list"],
            ),
        ),
        (
            "text",
            after(
                for_each(
                    inline("t"),
                    ForEach::Template("[{{ input.n }}, 7]".into()),
                    false,
                ),
                &["list"],
            ),
        ),
        (
            "scalar",
            after(
                for_each(
                    inline("s"),
                    ForEach::Template("{{ input.n }}".into()),
                    false,
                ),
                &["list"],
            ),
        ),
        (
            "undefined",
            after(
                for_each(
                    inline("u"),
                    ForEach::Template("{{ list.output.nope }}".into()),
                    false,
                ),
                &["list"],
            ),
        ),
    ]);
    let mut h = Harness::new(&def, "main", json!({"n": 5}));
    h.run(1.0, "list")
        .succeed(2.0, "list", json!({"hosts": ["web-1", "web-2"]}));
    insta::assert_snapshot!(h.transcript());
}

#[test]
fn loops_over_ten_thousand_items_fail() {
    let items = (0..10_001).map(|n| json!(n)).collect();
    let def = single(vec![("huge", for_each_items(inline("x"), items, false))]);
    let h = Harness::new(&def, "main", json!({}));
    insta::assert_snapshot!(h.transcript());
}
