//! Tests of rendering, typed values, undefined handling, filters, conditions, analysis and
//! secret rendering.

use std::collections::BTreeMap;

use super::*;
use serde_json::json;

fn ctx() -> Value {
    json!({
        "input": {
            "name": "world", "count": 3, "ratio": 0.5, "flag": true, "tags": ["a", "b"],
            "opt": null, "release-tag": "v1", "nested": {"k": [1, {"x": "y"}]},
            "evil": "{{ secret.token }}",
        },
        "secret": {"token": "s3cr3t"},
        "build": {"status": "completed", "output": {"version": "1.2", "list": [1, 2]}, "error": null},
        "failed": {"status": "failed", "output": null, "error": "boom"},
    })
}

fn render(template: &str) -> Value {
    Templates::new()
        .render(template, &ctx())
        .unwrap_or_else(|e| panic!("{template:?} failed: {e}"))
}

fn render_text(template: &str) -> String {
    Templates::new()
        .render_string(template, &ctx())
        .unwrap_or_else(|e| panic!("{template:?} failed: {e}"))
}

/// `template => message @ line:column`, the way a user would read the error.
fn errors(templates: &[&str]) -> String {
    let t = Templates::new();
    templates
        .iter()
        .map(|template| match t.render(template, &ctx()) {
            Ok(value) => format!("{template:?} => unexpectedly rendered {value}"),
            Err(e) => format!(
                "{template:?} => {} @ {}:{}",
                e.message,
                e.line.map_or("-".into(), |l| l.to_string()),
                e.column.map_or("-".into(), |c| c.to_string())
            ),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_single_expression_keeps_its_json_type() {
    assert_eq!(render("{{ input.count }}"), json!(3));
    assert_eq!(render("{{ input.ratio }}"), json!(0.5));
    assert_eq!(render("{{ input.flag }}"), json!(true));
    assert_eq!(render("{{ input.opt }}"), json!(null));
    assert_eq!(render("{{ input.tags }}"), json!(["a", "b"]));
    assert_eq!(render("{{ input.nested }}"), json!({"k": [1, {"x": "y"}]}));
    assert_eq!(
        render("{{ build.output }}"),
        json!({"version": "1.2", "list": [1, 2]})
    );
    assert_eq!(render("{{ input.name }}"), json!("world"));
    assert_eq!(render("  {{ input.count }}\n"), json!(3));
    assert_eq!(render("{{- input.count -}}"), json!(3));
    assert_eq!(render("{{ input.count * 2 }}"), json!(6));
    assert_eq!(render("{{ input.tags | length }}"), json!(2));
    assert_eq!(render("{{ {'a': input.count} }}"), json!({"a": 3}));
    assert_eq!(render("{{ input.x if false }}"), json!(null));
}

#[test]
fn anything_else_renders_to_a_string_with_json_text_for_values() {
    assert_eq!(render("n={{ input.count }}"), json!("n=3"));
    assert_eq!(render("{{ input.count }}{{ input.count }}"), json!("33"));
    assert_eq!(
        render("{% if true %}{{ input.count }}{% endif %}"),
        json!("3")
    );
    assert_eq!(render("[{{ input.opt }}]"), json!("[]"));
    assert_eq!(render("{{ input.flag }}!"), json!("true!"));
    assert_eq!(
        render("data: {{ input.nested }}"),
        json!(r#"data: {"k":[1,{"x":"y"}]}"#)
    );
    assert_eq!(render("tags={{ input.tags }}"), json!(r#"tags=["a","b"]"#));
}

#[test]
fn render_string_uses_the_text_rules_even_for_one_expression() {
    assert_eq!(render_text("{{ input.count }}"), "3");
    assert_eq!(render_text("{{ input.opt }}"), "");
    assert_eq!(render_text("{{ input.tags }}"), r#"["a","b"]"#);
    assert_eq!(render_text("{{ input.ratio }}"), "0.5");
    assert_eq!(render_text("plain text"), "plain text");
}

#[test]
fn text_is_not_escaped_and_keeps_its_trailing_newline() {
    assert_eq!(
        render_text("echo '<{{ input.name }}>' && x\n"),
        "echo '<world>' && x\n"
    );
    assert_eq!(render_text("a\n{{ input.name }}\n"), "a\nworld\n");
}

#[test]
fn substituted_values_are_never_rendered_again() {
    assert_eq!(render("{{ input.evil }}"), json!("{{ secret.token }}"));
    assert_eq!(render("x {{ input.evil }}"), json!("x {{ secret.token }}"));
    let tree = Templates::new()
        .render_tree(&json!({"a": "{{ input.evil }}"}), &ctx())
        .expect("renders");
    assert_eq!(tree, json!({"a": "{{ secret.token }}"}));
}

#[test]
fn render_tree_renders_string_leaves_at_any_depth() {
    let tree = json!({
        "count": "{{ input.count }}",
        "list": ["{{ input.name }}", 7, {"deep": "v={{ build.output.version }}"}],
        "keep": {"n": null, "b": false, "s": "no template {here}"},
        "{{ key }}": "keys are not templates",
    });
    let rendered = Templates::new()
        .render_tree(&tree, &ctx())
        .expect("renders");
    assert_eq!(
        rendered,
        json!({
            "count": 3,
            "list": ["world", 7, {"deep": "v=1.2"}],
            "keep": {"n": null, "b": false, "s": "no template {here}"},
            "{{ key }}": "keys are not templates",
        })
    );
}

#[test]
fn undefined_values_are_errors_but_default_and_defined_accept_them() {
    // Attribute access on null yields undefined, which `default` replaces.
    assert_eq!(
        render("{{ failed.output.version | default('n/a') }}"),
        json!("n/a")
    );
    assert_eq!(
        render("{{ failed.output.version is defined }}"),
        json!(false)
    );
    assert_eq!(render("{{ missing is defined }}"), json!(false));
    assert_eq!(render("{{ input.name is defined }}"), json!(true));
    assert_eq!(render("{{ missing | default('x') }}"), json!("x"));
    assert_eq!(render("{{ missing | default(value='x') }}"), json!("x"));
    assert_eq!(render("{{ missing | d('x') }}"), json!("x"));
    assert_eq!(render("{{ missing | default }}"), json!(""));
    assert_eq!(
        render("{% if input.other is defined %}a{% else %}b{% endif %}"),
        json!("b")
    );
    // Like Jinja2, `default` keeps a defined null unless asked to replace falsy values too.
    assert_eq!(render("{{ input.opt | default('x') }}"), json!(null));
    assert_eq!(render("{{ input.opt | default('x', true) }}"), json!("x"));
    assert_eq!(
        render("{{ input.opt | default(value='x', boolean=true) }}"),
        json!("x")
    );
}

#[test]
fn a_chain_under_default_is_noted_and_the_advised_form_renders() {
    let analysis = Templates::new()
        .analyze("{{ input.body.pusher.name | default('x') }} {{ input.body.ref | d('y') }}")
        .expect("parses");
    assert_eq!(
        analysis.unguarded_defaults,
        [("input.body.pusher".to_owned(), "name".to_owned())]
    );
    // What `validate` advises works when the parent is missing, and when it is there.
    let templates = Templates::new();
    let advised = "{{ (input.body.pusher | default({})).name | default('x') }}";
    let missing = json!({"input": {"body": {}}});
    assert_eq!(
        templates.render(advised, &missing).expect("renders"),
        json!("x")
    );
    let present = json!({"input": {"body": {"pusher": {"name": "ann"}}}});
    assert_eq!(
        templates.render(advised, &present).expect("renders"),
        json!("ann")
    );
    // The written form fails exactly when the parent is missing.
    let written = "{{ input.body.pusher.name | default('x') }}";
    assert!(templates.render(written, &missing).is_err());
}

#[test]
fn error_messages_name_the_problem_and_its_position() {
    insta::assert_snapshot!(errors(&[
        "{{ foo }}",
        "echo {{ foo }}",
        "{{ input.versoin }}",
        "{{ failed.output.version }}",
        "{{ failed.output.version.major }}",
        "{{ foo.bar }}",
        "{% if foo %}x{% endif %}",
        "{% for x in foo %}{{ x }}{% endfor %}",
        "{{ foo | upper }}",
        "{{ foo | tojson }}",
        "{{ foo | shell_quote }}",
        "{{ input.count + foo }}",
        "line one\nline two {{ input | tojsn }}",
        "{{ input.name is frobbed }}",
        "{{ nofunc(1) }}",
        "{{ file('/etc/passwd') }}",
        "{% if %}",
        "{{ input.name ",
        "{{ 'x' | fromjson }}",
        "{{ '@@' | b64decode }}",
        "{{ input.name | join(sep=',', bogus=1) }}",
    ]));
}

#[test]
fn tojson_and_fromjson() {
    assert_eq!(
        render("{{ input.nested | tojson }}"),
        json!(r#"{"k":[1,{"x":"y"}]}"#)
    );
    assert_eq!(
        render("{{ input.nested | json_encode() }}"),
        json!(r#"{"k":[1,{"x":"y"}]}"#)
    );
    assert_eq!(render("{{ '<&>' | tojson }}"), json!(r#""<&>""#));
    assert_eq!(render("{{ input.opt | tojson }}"), json!("null"));
    assert_eq!(
        render("{{ {'a': 1} | tojson(indent=2) }}"),
        json!("{\n  \"a\": 1\n}")
    );
    assert_eq!(
        render("{{ {'a': 1} | json_encode(pretty=true) }}"),
        json!("{\n  \"a\": 1\n}")
    );
    assert_eq!(
        render(r#"{{ '{"a": [1, 2]}' | fromjson }}"#),
        json!({"a": [1, 2]})
    );
    assert_eq!(render(r#"{{ ('{"a": 5}' | fromjson).a }}"#), json!(5));
    assert_eq!(
        render("{{ input.nested | tojson | fromjson }}"),
        ctx()["input"]["nested"]
    );
}

#[test]
fn shell_quote_and_base64() {
    assert_eq!(
        render("echo {{ input.name | shell_quote }}"),
        json!("echo world")
    );
    assert_eq!(
        render("{{ \"it's me\" | shell_quote }}"),
        json!(r"'it'\''s me'")
    );
    assert_eq!(
        render("{{ input.tags | shell_quote }}"),
        json!(r#"'["a","b"]'"#)
    );
    assert_eq!(render("{{ input.name | b64encode }}"), json!("d29ybGQ="));
    assert_eq!(render("{{ 'd29ybGQ=' | b64decode }}"), json!("world"));
    assert_eq!(
        render("{{ input.name | b64encode | b64decode }}"),
        json!("world")
    );
}

#[test]
fn join_accepts_jinja_and_tera_spellings_and_writes_json_text() {
    assert_eq!(render("{{ input.tags | join(',') }}"), json!("a,b"));
    assert_eq!(render("{{ input.tags | join(sep=', ') }}"), json!("a, b"));
    assert_eq!(render("{{ input.tags | join(d='+') }}"), json!("a+b"));
    assert_eq!(render("{{ input.tags | join }}"), json!("ab"));
    assert_eq!(
        render("{{ [1, none, true, {'a': 1}] | join(' ') }}"),
        json!(r#"1  true {"a":1}"#)
    );
    assert_eq!(
        render("{{ [{'n': 'x'}, {'n': 'y'}] | join(',', attribute='n') }}"),
        json!("x,y")
    );
}

#[test]
fn builtin_filters_tests_and_loops_work() {
    assert_eq!(render("{{ input.name | upper }}"), json!("WORLD"));
    assert_eq!(
        render("{{ input.nested | string }}"),
        json!(r#"{"k":[1,{"x":"y"}]}"#)
    );
    assert_eq!(render("{{ input.opt | string }}"), json!(""));
    assert_eq!(render("{{ input.count | string }}"), json!("3"));
    assert_eq!(
        render("{{ input.name | replace('o', '0') }}"),
        json!("w0rld")
    );
    assert_eq!(
        render("{{ input.tags | map('upper') | list }}"),
        json!(["A", "B"])
    );
    assert_eq!(render("{{ input['release-tag'] }}"), json!("v1"));
    assert_eq!(
        render("{% for t in input.tags %}{{ loop.index }}:{{ t }} {% endfor %}"),
        json!("1:a 2:b ")
    );
    assert_eq!(
        render(
            "{% for t in input.tags %}{% if t == 'a' %}{% continue %}{% endif %}{{ t }}{% endfor %}"
        ),
        json!("b")
    );
    assert_eq!(render("{{ input.count is number }}"), json!(true));
    assert_eq!(render("{{ 'b' in input.tags }}"), json!(true));
}

#[test]
fn conditions_follow_json_truthiness_or_rendered_words() {
    let t = Templates::new();
    let cases = [
        ("{{ input.flag }}", true),
        ("{{ not input.flag }}", false),
        ("{{ input.opt }}", false),
        ("{{ input.count }}", true),
        ("{{ input.count - 3 }}", false),
        ("{{ [] }}", false),
        ("{{ {} }}", false),
        ("{{ input.tags }}", true),
        ("{{ '' }}", false),
        ("{{ 'false' }}", true),
        ("{{ build.status == 'completed' }}", true),
        ("{{ failed.output.x is defined }}", false),
        ("{% if input.flag %}yes{% endif %}", true),
        ("{% if not input.flag %}yes{% endif %}", false),
        ("  {{ input.opt }} done", true),
        ("{{ input.opt }}{{ input.opt }}", false),
        ("{{ 'FALSE' }} ", true),
        ("{% if true %} FALSE {% endif %}", false),
        ("{{ 'No' }}{{ '' }}", false),
        ("{{ 'None' }}{{ '' }}", false),
        ("{{ 0 }}{{ '' }}", false),
        ("{{ 'null' }}{{ '\n' }}", false),
        ("{{ 'yes' }}{{ '' }}", true),
    ];
    for (template, expected) in cases {
        assert_eq!(
            t.condition(template, &ctx()).expect("evaluates"),
            expected,
            "{template}"
        );
    }
    assert_eq!(
        t.condition("{{ nope }}", &ctx())
            .expect_err("undefined")
            .message,
        "undefined variable 'nope'"
    );
}

fn refs(template: &str) -> Vec<String> {
    Templates::new()
        .analyze(template)
        .expect("parses")
        .references
        .into_iter()
        .map(|r| {
            std::iter::once(r.root)
                .chain(r.path)
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect()
}

#[test]
fn analysis_finds_free_variables_with_their_constant_paths() {
    assert_eq!(
        refs("{{ say_hello.output.greeting }}"),
        ["say_hello/output/greeting"]
    );
    assert_eq!(refs("{{ input['release-tag'] }}"), ["input/release-tag"]);
    assert_eq!(refs("{{ a.b['c'][0].d }}"), ["a/b/c/0/d"]);
    assert_eq!(refs("{{ a.b[i].c }}"), ["a/b", "i"]);
    assert_eq!(refs("{{ a.b[i.j] }}"), ["a/b", "i/j"]);
    assert_eq!(refs("{{ (a | default({})).b }}"), ["a"]);
    assert_eq!(refs("{{ input.tags.split(',') }}"), ["input/tags"]);
    assert_eq!(refs("{{ x }} {{ x }} {{ input.a }}"), ["input/a", "x"]);
    assert_eq!(refs("{{ items[1:n] }}"), ["items", "n"]);
    assert_eq!(
        refs("{% if secret.x %}{{ job.id ~ step.name }}{% endif %}"),
        ["job/id", "secret/x", "step/name"]
    );
    assert_eq!(refs("plain"), Vec::<String>::new());
}

#[test]
fn analysis_excludes_loop_set_with_and_macro_names() {
    assert_eq!(
        refs("{% for t in input.tags %}{{ t.name }} {{ loop.index }}{% endfor %}{{ t }}"),
        ["input/tags", "t"]
    );
    assert_eq!(
        refs("{% for k, v in m.items() %}{{ k }}={{ v }}{% endfor %}"),
        ["m"]
    );
    assert_eq!(refs("{% set x = input.a %}{{ x.b }}"), ["input/a"]);
    assert_eq!(refs("{% set x %}{{ y }}{% endset %}{{ x }}"), ["y"]);
    assert_eq!(
        refs("{% with v = input.a %}{{ v }}{% endwith %}{{ v }}"),
        ["input/a", "v"]
    );
    assert_eq!(
        refs("{% macro m(a) %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }}"),
        ["b"]
    );
    assert_eq!(refs("{{ x }}{% set x = 1 %}"), ["x"]);
}

#[test]
fn analysis_reports_unknown_filters_tests_and_functions() {
    let t = Templates::new();
    let analysis = t
        .analyze(
            "{{ a | tojsn | upper | json_encode() | shell_quote }}{{ b is frobbed }}{{ c is defined }}\
             {{ range(3) | list }}{{ nofunc() }}{{ file('/x') }}{{ dict(a=1) }}{{ x | d('y') }}",
        )
        .expect("parses");
    assert_eq!(analysis.unknown_filters, ["frobbed", "tojsn"]);
    assert_eq!(analysis.unknown_functions, ["file", "nofunc"]);
    let refs: Vec<_> = analysis
        .references
        .iter()
        .map(|r| r.root.as_str())
        .collect();
    assert_eq!(refs, ["a", "b", "c", "x"]);

    let secret = t
        .analyze_secret("{{ file('/run/secrets/x') }}{{ env.HOME }}")
        .expect("parses");
    assert!(secret.unknown_functions.is_empty());
    assert_eq!(
        secret.references,
        [Reference {
            root: "env".into(),
            path: vec!["HOME".into()]
        }]
    );
}

#[test]
fn analysis_reports_syntax_errors_with_position() {
    let err = Templates::new()
        .analyze("ok\n  {{ a. }}")
        .expect_err("bad syntax");
    assert!(err.message.starts_with("syntax error: "), "{}", err.message);
    assert_eq!((err.line, err.column), (Some(2), Some(9)));
}

fn secret_env() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("SLACK_URL".to_owned(), "https://hooks.example/x".to_owned()),
        ("DIR".to_owned(), "/run/secrets".to_owned()),
    ])
}

#[test]
fn secrets_read_env_and_files_through_the_callback() {
    let t = Templates::new();
    let reads = std::cell::RefCell::new(Vec::new());
    let read = |path: &str| {
        reads.borrow_mut().push(path.to_owned());
        match path {
            "/run/secrets/db" => Ok("hunter2".to_owned()),
            "/run/secrets/user" => Ok("admin".to_owned()),
            other => Err(format!("cannot read '{other}'")),
        }
    };
    let env = secret_env();
    assert_eq!(
        t.render_secret("{{ env.SLACK_URL }}", &env, &read)
            .expect("renders"),
        "https://hooks.example/x"
    );
    assert_eq!(
        t.render_secret(
            "{{ file(env.DIR ~ '/user') }}:{{ file('/run/secrets/db') }}",
            &env,
            &read
        )
        .expect("renders"),
        "admin:hunter2"
    );
    assert_eq!(*reads.borrow(), ["/run/secrets/user", "/run/secrets/db"]);
    assert_eq!(
        t.render_secret("literal", &env, &read).expect("verbatim"),
        "literal"
    );
    let missing = t
        .render_secret("{{ file('/nope') }}", &env, &read)
        .expect_err("fails");
    assert_eq!(missing.message, "cannot read '/nope'");
    let undefined = t
        .render_secret("{{ env.MISSING }}", &env, &read)
        .expect_err("fails");
    assert_eq!(undefined.message, "undefined value 'env.MISSING'");
    // Nothing but `env` and `file` is available while secrets resolve.
    let secret_ref = t
        .render_secret("{{ secret.x }}", &env, &read)
        .expect_err("fails");
    assert_eq!(secret_ref.message, "undefined variable 'secret'");
}

#[test]
fn file_is_only_a_function_in_secrets() {
    let err = Templates::new()
        .render("{{ file('/etc/passwd') }}", &json!({}))
        .expect_err("file() is unavailable");
    assert_eq!(err.message, "unknown function 'file'");
}

#[test]
fn is_template_looks_for_expression_and_statement_markers() {
    assert!(is_template("{{ x }}"));
    assert!(is_template("{% if x %}{% endif %}"));
    assert!(!is_template("{ x }"));
    assert!(!is_template("plain"));
}

fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        Just(json!("{{ secret.token }}")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    /// Any JSON value comes back unchanged from a single expression and through `tojson`, and
    /// as its §12.1 text inside a larger string: substituted data is never re-rendered.
    #[test]
    fn values_pass_through_templates_unchanged(value in json_value()) {
        let t = Templates::new();
        let context = json!({"v": value, "secret": {"token": "s3cr3t"}});
        proptest::prop_assert_eq!(t.render("{{ v }}", &context).expect("renders"), value.clone());
        let encoded = t.render_string("{{ v | tojson }}", &context).expect("renders");
        // serde_json parses floats to the nearest value only with `float_roundtrip`, so both
        // sides go through the same text-to-JSON parse.
        let reparsed: Value = serde_json::from_str(&value.to_string()).expect("JSON");
        proptest::prop_assert_eq!(serde_json::from_str::<Value>(&encoded).expect("JSON"), reparsed);
        let text = t.render_string("<{{ v }}>", &context).expect("renders");
        proptest::prop_assert_eq!(text, format!("<{}>", convert::json_text(&value)));
    }
}

#[test]
fn templates_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync + Clone>(_: &T) {}
    let t = Templates::new();
    shareable(&t);
    let clone = t.clone();
    let rendered = std::thread::spawn(move || clone.render("{{ input.count }}", &ctx()))
        .join()
        .expect("thread finishes");
    assert_eq!(rendered, Ok(json!(3)));
}
