//! Generated requests against every route of the machine surfaces (issue #16 item 20): each
//! route of [`stroem::server::route_patterns`] — the `/api` table, the worker protocol and
//! the webhooks — gets generated path parameters and JSON or garbage bodies, through a real
//! `stroem serve` with its database. Whatever comes, the answer is never a 5xx, a refusal
//! carries the error body of API §1.3, and a refused request leaves the database as it was.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use super::cluster::{Cluster, TOKEN, http};
use crate::server_harness::Backend;

const WORKFLOW: &str = r#"
tasks:
  t:
    input:
      n: { type: integer, required: true }
    flow:
      s: { type: script, script: "echo {{ input.n }}" }
triggers:
  hook: { type: webhook, name: hook, task: t, input: { n: 1 } }
"#;

/// Tables a request may change, and what tells their rows apart; the audit trail is left out
/// (it records refused writes too, by design).
const FINGERPRINT: &str = "SELECT \
    (SELECT COUNT(*) FROM jobs), (SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM jobs), \
    (SELECT COUNT(*) FROM steps), (SELECT COUNT(*) FROM leases), \
    (SELECT COUNT(*) FROM workers), \
    (SELECT CAST(COALESCE(SUM(last_heartbeat), 0) AS BIGINT) FROM workers), \
    (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM api_keys), \
    (SELECT COUNT(*) FROM refresh_tokens), (SELECT COUNT(*) FROM user_groups), \
    (SELECT COUNT(*) FROM trigger_ticks)";

type Print = (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);

enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    async fn print(&self) -> Print {
        match self {
            Db::Sqlite(pool) => sqlx::query_as(FINGERPRINT).fetch_one(pool).await,
            Db::Postgres(pool) => sqlx::query_as(FINGERPRINT).fetch_one(pool).await,
        }
        .expect("fingerprint")
    }
}

/// A value for a path parameter: one that exists, or one that does not, or nonsense.
fn parameter(name: &str, job: &str) -> BoxedStrategy<String> {
    let real = match name {
        "{id}" | "{job_id}" => job.to_owned(),
        "{workspace}" => "default".to_owned(),
        "{task}" => "t".to_owned(),
        "{step}" => "s".to_owned(),
        "{name}" => "hook".to_owned(),
        _ => "x".to_owned(),
    };
    prop_oneof![
        Just(real),
        Just(uuid::Uuid::new_v4().to_string()),
        "[a-zA-Z0-9._~-]{1,40}",
        "(%[0-9A-F]{2}){1,6}",
    ]
    .boxed()
}

/// JSON near what the routes expect: known field names with values of any kind.
fn json_body() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,20}".prop_map(Value::from),
        Just(json!(uuid::Uuid::new_v4())),
        Just(json!("2026-01-01T00:00:00Z")),
    ];
    let field = prop_oneof![
        Just("input"),
        Just("n"),
        Just("worker_id"),
        Just("lease_id"),
        Just("leases"),
        Just("outcome"),
        Just("output"),
        Just("offset"),
        Just("lines"),
        Just("name"),
        Just("email"),
        Just("password"),
        Just("reason"),
        Just("started_at"),
        Just("wait"),
        Just("max_concurrent"),
        Just("capabilities"),
        Just("tags"),
        Just("role"),
        Just("x"),
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(field.clone(), inner, 0..6).prop_map(|map| {
                Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

/// A body: generated JSON, or bytes that are not JSON at all, or nothing.
fn body() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        6 => json_body().prop_map(|value| Some(value.to_string().into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Some),
        1 => Just(None),
    ]
}

fn send(method: &str, url: &str, body: Option<&[u8]>) -> Result<(u16, String), TestCaseError> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build(),
    );
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Content-Type", "application/json")
        .header("Authorization", format!("Bearer {TOKEN}"));
    let response = match body {
        Some(bytes) => agent.run(request.body(bytes.to_vec()).expect("request")),
        None => agent.run(request.body(()).expect("request")),
    };
    let mut response = response.map_err(|error| TestCaseError::fail(format!("{error}")))?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    Ok((status, text))
}

fn generated_requests_never_break_the_server(backend: Backend) {
    let mut cluster = Cluster::new(backend, false);
    std::fs::write(
        cluster.root().join("workspace/.workflows/main.yaml"),
        WORKFLOW,
    )
    .expect("write");
    cluster.start_server();
    let (status, reply) = http(
        "POST",
        &format!("{}/api/workspaces/default/tasks/t/execute", cluster.url()),
        Some(json!({"input": {"n": 1}})),
    )
    .expect("execute");
    assert_eq!(status, 200, "{reply}");
    let job = reply["job_id"].as_str().expect("id").to_owned();

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = runtime.block_on(async {
        match backend {
            Backend::Sqlite => Db::Sqlite(
                sqlx::SqlitePool::connect(&cluster.db_url)
                    .await
                    .expect("opens"),
            ),
            Backend::Postgres => {
                Db::Postgres(sqlx::PgPool::connect(&cluster.db_url).await.expect("opens"))
            }
        }
    });
    let routes = stroem::server::route_patterns();
    let request = (0..routes.len()).prop_flat_map(|index| {
        let (method, pattern) = routes[index].clone();
        let parameters: Vec<BoxedStrategy<String>> = pattern
            .split('/')
            .filter(|segment| segment.starts_with('{'))
            .map(|segment| parameter(segment, &job))
            .collect();
        (Just(method), Just(pattern), parameters, body())
    });
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let base = cluster.url();
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<(String, u16), u32>::new());
    runner
        .run(&request, |(method, pattern, parameters, body)| {
            let mut values = parameters.iter();
            let path: Vec<String> = pattern
                .split('/')
                .map(|segment| match segment.starts_with('{') {
                    true => values.next().cloned().unwrap_or_default(),
                    false => segment.to_owned(),
                })
                .collect();
            let url = format!("{base}{}", path.join("/"));
            let before = runtime.block_on(db.print());
            let body = if method == "GET" { None } else { body };
            let (status, text) = send(&method, &url, body.as_deref())?;
            *seen
                .borrow_mut()
                .entry((pattern.clone(), status))
                .or_default() += 1;
            prop_assert!(status < 500, "{method} {url}: {status} {text}");
            if status >= 400 {
                let reply: Value = serde_json::from_str(&text).map_err(|_| {
                    TestCaseError::fail(format!("{method} {url}: not JSON: {text}"))
                })?;
                prop_assert!(
                    reply["error"].is_string() && reply["code"].is_string(),
                    "{method} {url}: {status} {reply}"
                );
                let after = runtime.block_on(db.print());
                prop_assert_eq!(
                    before,
                    after,
                    "{} {}: refused ({}) but changed the database",
                    method,
                    url,
                    status
                );
            }
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}\nlogs:\n{}", cluster.logs()));
    // Not vacuous: most routes were reached, and some requests were taken.
    let seen = seen.into_inner();
    let reached: std::collections::BTreeSet<_> = seen.keys().map(|(route, _)| route).collect();
    assert!(reached.len() * 4 >= routes.len() * 3, "{seen:?}");
    assert!(seen.keys().any(|(_, status)| *status < 300), "{seen:?}");
}

#[test]
fn generated_requests_never_break_the_server_on_sqlite() {
    generated_requests_never_break_the_server(Backend::Sqlite);
}

#[test]
fn generated_requests_never_break_the_server_on_postgres() {
    generated_requests_never_break_the_server(Backend::Postgres);
}
