//! Tests of the span-aware YAML tree.

use serde_json::json;

use super::*;

fn root(text: &str) -> Node {
    let doc = parse("f.yaml", text);
    assert!(doc.diagnostics.is_empty(), "{:?}", doc.diagnostics);
    doc.root.expect("a root node")
}

fn codes(text: &str) -> Vec<(String, u32, u32)> {
    parse("f.yaml", text)
        .diagnostics
        .into_iter()
        .map(|d| (d.code, d.line, d.column))
        .collect()
}

#[test]
fn records_one_based_positions() {
    let node = root("a:\n  b: [1, x]\n");
    let (key, value) = &node.as_map().expect("map")[0];
    assert_eq!(key.mark, Mark { line: 1, column: 1 });
    let (inner_key, list) = &value.as_map().expect("map")[0];
    assert_eq!(inner_key.mark, Mark { line: 2, column: 3 });
    let items = list.as_seq().expect("seq");
    assert_eq!(
        items[1].mark,
        Mark {
            line: 2,
            column: 10
        }
    );
}

#[test]
fn types_scalars_by_style() {
    let node = root("a: 1\nb: '1'\nc: |\n  1\nd: yes\ne: ~\n");
    assert_eq!(
        node.to_json(),
        json!({"a": 1, "b": "1", "c": "1\n", "d": "yes", "e": null})
    );
    let kinds: Vec<Kind> = node
        .as_map()
        .expect("map")
        .iter()
        .map(|(_, v)| v.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            Kind::Integer,
            Kind::String,
            Kind::String,
            Kind::String,
            Kind::Null
        ]
    );
}

#[test]
fn explicit_str_tag_keeps_text() {
    assert_eq!(root("a: !!str 12\n").to_json(), json!({"a": "12"}));
}

#[test]
fn expands_aliases_and_merge_keys() {
    let node = root(
        "base: &b { x: 1, y: 2 }\nother: &o { z: 3 }\nuse:\n  <<: [*b, *o]\n  y: 9\ncopy: *b\n",
    );
    assert_eq!(
        node.to_json(),
        json!({
            "base": {"x": 1, "y": 2},
            "other": {"z": 3},
            "use": {"y": 9, "x": 1, "z": 3},
            "copy": {"x": 1, "y": 2},
        })
    );
}

#[test]
fn reports_duplicate_keys_with_both_places() {
    let doc = parse("f.yaml", "a: 1\nb: 2\na: 3\n");
    assert_eq!(doc.diagnostics.len(), 1);
    let d = &doc.diagnostics[0];
    assert_eq!((d.code.as_str(), d.line, d.column), ("duplicate-key", 3, 1));
    assert_eq!((d.related[0].line, d.related[0].column), (1, 1));
    // The first value is kept.
    assert_eq!(doc.root.expect("root").to_json(), json!({"a": 1, "b": 2}));
}

#[test]
fn reports_syntax_errors_with_position() {
    assert_eq!(codes("a: [1, 2\n"), [("yaml-syntax".to_owned(), 2, 1)]);
    assert_eq!(codes("a: b: c\n")[0].0, "yaml-syntax");
    assert_eq!(codes("a: *nope\n")[0].0, "yaml-syntax");
}

#[test]
fn rejects_a_second_document() {
    assert_eq!(codes("a: 1\n---\nb: 2\n")[0].0, "yaml-syntax");
}

#[test]
fn bad_merge_values_are_errors() {
    assert_eq!(codes("a:\n  <<: 3\n  b: 1\n")[0].0, "yaml-merge");
}

#[test]
fn empty_files_have_no_root() {
    for text in ["", "# only a comment\n", "\n\n"] {
        let doc = parse("f.yaml", text);
        assert!(doc.root.is_none() && doc.diagnostics.is_empty());
    }
}

#[test]
fn caps_alias_bombs() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    let doc = parse("f.yaml", &text);
    assert!(doc.root.is_none());
    assert_eq!(doc.diagnostics[0].code, "yaml-limit");
}

#[test]
fn caps_nesting_depth() {
    let text = format!("a: {}{}\n", "[".repeat(5000), "]".repeat(5000));
    let doc = parse("f.yaml", &text);
    assert!(doc.root.is_none());
    assert!(!doc.diagnostics.is_empty());
}

#[test]
fn duplicate_keys_carry_their_field_path() {
    let doc = parse("f.yaml", "a:\n  - x: 1\n  - y: 1\n    y: 2\n");
    assert_eq!(doc.diagnostics[0].path, "a[1].y");
}
