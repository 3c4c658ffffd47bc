//! Tests of rendering, typed values, undefined handling, filters, conditions, analysis and
//! secret rendering.

use super::*;
use serde_json::json;

fn ctx() -> Value {
    json!({
        "input": {"name": "world", "count": 3, "tags": ["a", "b"], "opt": null, "release-tag": "v1"},
        "build": {"status": "completed", "output": {"version": "1.2", "list": [1, 2]}, "error": null},
        "failed": {"status": "failed", "output": null, "error": "boom"},
    })
}

#[test]
fn smoke() {
    let t = Templates::new();
    assert_eq!(t.render("{{ input.count }}", &ctx()).unwrap(), json!(3));
}
