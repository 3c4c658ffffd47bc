//! Tests of input enforcement, output checks and `INPUT_` names.

use serde_json::json;

use super::*;
use crate::workflow::model::FieldType;

fn field(field_type: FieldType) -> InputField {
    InputField::of_type(field_type)
}

fn required(mut f: InputField) -> InputField {
    f.required = true;
    f
}

fn with_default(mut f: InputField, default: Value) -> InputField {
    f.default = Some(default);
    f
}

fn with_options(mut f: InputField, options: Value) -> InputField {
    f.options = Some(options.as_array().expect("options list").clone());
    f
}

fn schema(fields: Vec<(&str, InputField)>) -> InputSchema {
    fields
        .into_iter()
        .map(|(name, f)| (name.to_owned(), f))
        .collect()
}

fn no_render(template: &str) -> Result<Value, String> {
    Err(format!("unexpected render of {template}"))
}

fn run(schema: &InputSchema, raw: Value) -> Result<Value, Vec<String>> {
    enforce(Some(schema), &raw, EnforceOptions::default(), &no_render)
        .map(|map| Value::Object(map.into_iter().collect()))
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

/// Coerces `value` with a one-field schema of `f`.
fn coerce_one(f: InputField, value: Value) -> Result<Value, String> {
    let s = schema(vec![("x", f)]);
    run(&s, json!({ "x": value }))
        .map(|out| out["x"].clone())
        .map_err(|errors| errors.join("\n"))
}

#[test]
fn coercion_follows_the_type_table() {
    use FieldType::*;
    let ok = [
        (String, json!("a"), json!("a")),
        (String, json!(5), json!("5")),
        (String, json!(1.5), json!("1.5")),
        (Text, json!(true), json!("true")),
        (Integer, json!(42), json!(42)),
        (Integer, json!("-17"), json!(-17)),
        (Integer, json!("007"), json!(7)),
        (Integer, json!(3.0), json!(3)),
        (Number, json!(2.5), json!(2.5)),
        (Number, json!("2.5"), json!(2.5)),
        (Number, json!("-3"), json!(-3)),
        (Number, json!("1e3"), json!(1000.0)),
        (Boolean, json!(false), json!(false)),
        (Boolean, json!("TRUE"), json!(true)),
        (Boolean, json!("False"), json!(false)),
        (Date, json!("2024-02-29"), json!("2024-02-29")),
        (
            Datetime,
            json!("2024-05-01T12:00:00Z"),
            json!("2024-05-01T12:00:00Z"),
        ),
        (
            Datetime,
            json!("2024-05-01T12:00:00.5+02:00"),
            json!("2024-05-01T12:00:00.5+02:00"),
        ),
        (Array, json!([1, "a"]), json!([1, "a"])),
        (Object, json!({"a": 1}), json!({"a": 1})),
    ];
    for (field_type, given, expected) in ok {
        let label = format!("{} {given}", field_type.as_str());
        assert_eq!(
            coerce_one(field(field_type), given).expect(&label),
            expected,
            "{label}"
        );
    }
}

#[test]
fn mismatches_name_the_field_and_the_expected_type() {
    use FieldType::*;
    let bad = [
        (String, json!([1])),
        (String, json!({"a": 1})),
        (Integer, json!("1.5")),
        (Integer, json!(" 1")),
        (Integer, json!("12a")),
        (Integer, json!(1.5)),
        (Integer, json!(u64::MAX)),
        (Integer, json!("99999999999999999999")),
        (Integer, json!(true)),
        (Number, json!("abc")),
        (Number, json!("inf")),
        (Number, json!("NaN")),
        (Number, json!("")),
        (Boolean, json!("yes")),
        (Boolean, json!(1)),
        (Date, json!("2024-02-30")),
        (Date, json!("2024-2-3")),
        (Date, json!(20240101)),
        (Datetime, json!("2024-05-01 12:00:00")),
        (Datetime, json!("2024-05-01T12:00:00")),
        (Array, json!("a,b")),
        (Object, json!([])),
    ];
    let report: Vec<_> = bad
        .into_iter()
        .map(|(field_type, given)| {
            let label = format!("{} {given}", field_type.as_str());
            let error = coerce_one(field(field_type), given).expect_err(&label);
            format!("{label:<32} => {error}")
        })
        .collect();
    insta::assert_snapshot!(report.join("\n"));
}

#[test]
fn multiple_turns_values_into_a_list_of_strings() {
    let mut tags = with_options(field(FieldType::String), json!(["a", "b", "c", 1]));
    tags.multiple = true;
    assert_eq!(coerce_one(tags.clone(), json!("a")), Ok(json!(["a"])));
    assert_eq!(
        coerce_one(tags.clone(), json!(["a", "c"])),
        Ok(json!(["a", "c"]))
    );
    assert_eq!(
        coerce_one(tags.clone(), json!([1, "b"])),
        Ok(json!(["1", "b"]))
    );
    assert_eq!(coerce_one(tags.clone(), json!([])), Ok(json!([])));
    assert_eq!(
        coerce_one(tags.clone(), json!(["a", "x", "y"])),
        Err("input.x: values 'x', 'y' are not among the options: a, b, c, 1".to_owned())
    );
    assert_eq!(
        coerce_one(tags.clone(), json!([["a"], {"b": 1}])),
        Err(
            "input.x: item 0: expected string, got array; item 1: expected string, got object"
                .to_owned()
        )
    );
    tags.allow_custom = true;
    assert_eq!(coerce_one(tags.clone(), json!(["x"])), Ok(json!(["x"])));
    tags.required = true;
    assert_eq!(
        coerce_one(tags, json!([])),
        Err("input.x: required field is empty".to_owned())
    );
}

#[test]
fn required_fields_must_be_present_non_null_and_non_empty() {
    let s = schema(vec![
        ("name", required(field(FieldType::String))),
        ("count", required(field(FieldType::Integer))),
        ("note", required(field(FieldType::Text))),
        ("list", required(field(FieldType::Array))),
    ]);
    let errors = run(&s, json!({"count": null, "note": "", "list": []})).expect_err("invalid");
    assert_eq!(
        errors,
        [
            "input.name: required field is missing",
            "input.count: required field is missing",
            "input.note: required field is empty",
        ]
    );
}

#[test]
fn defaults_fill_absent_and_null_fields_and_absent_optional_fields_are_omitted() {
    let s = schema(vec![
        (
            "env",
            with_default(field(FieldType::String), json!("staging")),
        ),
        (
            "replicas",
            with_default(field(FieldType::Integer), json!("3")),
        ),
        (
            "dry_run",
            with_default(required(field(FieldType::Boolean)), json!(false)),
        ),
        ("note", field(FieldType::String)),
        ("empty", field(FieldType::String)),
    ]);
    assert_eq!(
        run(&s, json!({"env": null, "empty": null})),
        Ok(json!({"env": "staging", "replicas": 3, "dry_run": false}))
    );
    assert_eq!(
        run(&s, json!({"env": "prod", "note": 7})),
        Ok(json!({"env": "prod", "replicas": 3, "dry_run": false, "note": "7"}))
    );
}

#[test]
fn templated_defaults_are_rendered_by_the_callback() {
    let s = schema(vec![
        (
            "tag",
            with_default(field(FieldType::String), json!("v{{ job.id }}")),
        ),
        (
            "count",
            with_default(field(FieldType::Integer), json!("{{ n }}")),
        ),
        (
            "broken",
            with_default(field(FieldType::String), json!("{{ nope }}")),
        ),
    ]);
    let render = |template: &str| match template {
        "v{{ job.id }}" => Ok(json!("v42")),
        "{{ n }}" => Ok(json!("5")),
        other => Err(format!("undefined variable in {other}")),
    };
    let result = enforce(
        Some(&s),
        &json!({"broken": "given"}),
        EnforceOptions::default(),
        &render,
    )
    .expect("valid");
    assert_eq!(
        Value::Object(result.into_iter().collect()),
        json!({"tag": "v42", "count": 5, "broken": "given"})
    );
    let errors = enforce(Some(&s), &json!({}), EnforceOptions::default(), &render)
        .expect_err("default fails");
    assert_eq!(
        errors[0].to_string(),
        "input.broken: cannot render the default: undefined variable in {{ nope }}"
    );
}

#[test]
fn options_are_enforced_unless_custom_values_are_allowed() {
    let env = with_options(field(FieldType::String), json!(["staging", "production"]));
    assert_eq!(
        coerce_one(env.clone(), json!("staging")),
        Ok(json!("staging"))
    );
    assert_eq!(
        coerce_one(env.clone(), json!("prod")),
        Err("input.x: value 'prod' is not one of the options: staging, production".to_owned())
    );
    let mut custom = env;
    custom.allow_custom = true;
    assert_eq!(coerce_one(custom, json!("prod")), Ok(json!("prod")));
    let level = with_options(field(FieldType::Integer), json!([1, 2, 3]));
    assert_eq!(coerce_one(level.clone(), json!("2")), Ok(json!(2)));
    assert!(coerce_one(level, json!(4)).is_err());
    let mut secret = with_options(field(FieldType::String), json!(["a"]));
    secret.secret = true;
    assert_eq!(
        coerce_one(secret, json!("hunter2")),
        Err("input.x: value is not one of the options: a".to_owned())
    );
}

#[test]
fn undeclared_keys_are_rejected_with_a_suggestion_and_every_problem_is_reported() {
    let s = schema(vec![
        ("version", required(field(FieldType::String))),
        ("environment", field(FieldType::String)),
    ]);
    let errors = run(&s, json!({"verison": "1", "zzz": 1, "environment": []})).expect_err("bad");
    insta::assert_snapshot!(errors.join("\n"));
}

#[test]
fn webhook_jobs_always_accept_the_request_keys() {
    let s = schema(vec![("ref", field(FieldType::String))]);
    let raw =
        json!({"ref": "main", "body": {"a": 1}, "headers": {}, "method": "POST", "query": {}});
    let webhook = EnforceOptions { webhook: true };
    let input = enforce(Some(&s), &raw, webhook, &no_render).expect("accepted");
    assert_eq!(Value::Object(input.into_iter().collect()), raw);
    let errors = enforce(Some(&s), &raw, EnforceOptions::default(), &no_render).expect_err("bad");
    assert_eq!(errors.len(), 4);
}

#[test]
fn tasks_without_a_schema_accept_anything_and_input_must_be_an_object() {
    let raw = json!({"anything": [1, {"b": null}], "x": null});
    let input = enforce(None, &raw, EnforceOptions::default(), &no_render).expect("accepted");
    assert_eq!(Value::Object(input.into_iter().collect()), raw);
    assert!(
        enforce(None, &json!(null), EnforceOptions::default(), &no_render)
            .expect("null is an empty input")
            .is_empty()
    );
    let errors =
        enforce(None, &json!([1]), EnforceOptions::default(), &no_render).expect_err("bad");
    assert_eq!(
        errors[0].to_string(),
        "input: expected an object, got array"
    );
}

#[test]
fn output_is_checked_coerced_and_defaulted_keeping_extra_keys() {
    let s = schema(vec![
        ("services", required(field(FieldType::Array))),
        ("count", field(FieldType::Integer)),
        (
            "mode",
            with_default(field(FieldType::String), json!("fast")),
        ),
    ]);
    assert_eq!(
        check_output(&s, &json!({"extra": true, "services": ["a"], "count": "2"})),
        Ok(json!({"extra": true, "services": ["a"], "count": 2, "mode": "fast"}))
    );
    let errors = check_output(&s, &json!({"services": "a", "count": "x"})).expect_err("bad");
    let errors: Vec<_> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        [
            "output.services: expected array, got string",
            "output.count: expected integer, got string"
        ]
    );
    let errors = check_output(&s, &json!("text")).expect_err("not an object");
    assert_eq!(errors[0].to_string(), "output: expected object, got string");
}

#[test]
fn env_names_are_upper_case_with_underscores() {
    assert_eq!(env_name("release-tag"), "INPUT_RELEASE_TAG");
    assert_eq!(env_name("_private9"), "INPUT__PRIVATE9");
    assert_eq!(env_name("MixedCase"), "INPUT_MIXEDCASE");
}

#[test]
fn template_input_reads_absent_declared_fields_as_null() {
    let s = schema(vec![
        ("a", field(FieldType::String)),
        ("b", field(FieldType::Integer)),
    ]);
    let input: Map<Value> = [("a".to_owned(), json!("x")), ("extra".to_owned(), json!(1))]
        .into_iter()
        .collect();
    assert_eq!(
        template_input(Some(&s), &input),
        json!({"a": "x", "extra": 1, "b": null})
    );
    assert_eq!(template_input(None, &input), json!({"a": "x", "extra": 1}));
}
