//! The OpenAPI 3.1 document of the `/api` routes (issue #17 item 13), served at
//! `GET /api/openapi.json` and rendered into `docs/api-reference.md`.
//!
//! The schemas are derived (`utoipa::ToSchema`) from the wire types of [`crate::api`] and the
//! workspace views, so a field renamed there is renamed here; the operations come from
//! [`operations`], one per route of the `/api` table — a test holds the two to each other, so
//! a route added to the table without a description fails. The integration tests check every
//! JSON body they receive from `/api` against the schema of its route and status.
//!
//! The document is public (like `/api/config`): it describes the shape of the API, the same
//! for every server of a version, and holds no workspace, task, user or secret.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::api::auth::{
    AdminFlag, ApiKeyCreatedReply, ApiKeyRequest, ApiKeyView, AuditView, CreateUserRequest, Groups,
    LoginRequest, PasswordChange, PasswordReset, RefreshRequest, TokenReply, UserView,
};
use crate::api::execute::{
    ApproveRequest, DecisionReply, ExecuteRequest, JobStatusReply, OkReply, RejectRequest,
};
use crate::api::query::{DEFAULT_LIMIT, DEFAULT_LOG_LIMIT, MAX_LIMIT, MAX_LOG_LIMIT};
use crate::api::{
    ConfigReply, ErrorBody, JobDetail, JobSummary, LogsReply, StatsReply, WorkerDetail, WorkerView,
};
use crate::workspace::manager::{TaskDetail, TaskSummary, TriggerView, WorkspaceView};

/// The document, built once.
pub static DOCUMENT: LazyLock<Value> = LazyLock::new(document);

/// What a request or response carries.
enum Body {
    /// A JSON value of this schema.
    Json(Value),
    /// Other content: its media type and what it is.
    Other(&'static str, &'static str),
    /// No body.
    Empty,
}

/// One documented operation.
pub(super) struct Operation {
    pub method: &'static str,
    /// Below `/api`, as in the route table (`/jobs/{id}`).
    pub path: &'static str,
    summary: &'static str,
    request: Option<Body>,
    /// The success responses; every operation also answers errors with [`ErrorBody`].
    responses: Vec<(u16, &'static str, Body)>,
}

/// Collects the schemas that operations refer to.
#[derive(Default)]
struct Schemas {
    schemas: Vec<(
        String,
        utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
    )>,
}

impl Schemas {
    /// A reference to `T`'s schema, which (with those it refers to) joins the components.
    fn of<T: ToSchema>(&mut self) -> Value {
        self.schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(&mut self.schemas);
        json!({ "$ref": format!("#/components/schemas/{}", T::name()) })
    }

    fn json<T: ToSchema>(&mut self) -> Body {
        Body::Json(self.of::<T>())
    }

    /// A JSON array of `T`.
    fn list<T: ToSchema>(&mut self) -> Body {
        Body::Json(json!({ "type": "array", "items": self.of::<T>() }))
    }
}

fn op(method: &'static str, path: &'static str, summary: &'static str) -> Operation {
    Operation {
        method,
        path,
        summary,
        request: None,
        responses: Vec::new(),
    }
}

impl Operation {
    fn body(mut self, body: Body) -> Self {
        self.request = Some(body);
        self
    }

    fn ok(self, body: Body) -> Self {
        self.answers(200, "OK", body)
    }

    fn answers(mut self, status: u16, description: &'static str, body: Body) -> Self {
        self.responses.push((status, description, body));
        self
    }
}

const PAGED: &str = " Paginated with `limit` and `offset`; `X-Total-Count` holds the total.";

/// Every `/api` operation, in the order of the route table.
fn operations(s: &mut Schemas) -> Vec<Operation> {
    vec![
        op("GET", "/openapi.json", "This document (public).")
            .ok(Body::Other("application/json", "The OpenAPI 3.1 document.")),
        op(
            "GET",
            "/config",
            "What the web UI needs before sign-in (public).",
        )
        .ok(s.json::<ConfigReply>()),
        op(
            "GET",
            "/stats",
            "Job counts by status; `?workspace=` narrows them.",
        )
        .ok(s.json::<StatsReply>()),
        op("GET", "/workspaces", "Every workspace (API §2.1).").ok(s.list::<WorkspaceView>()),
        op("GET", "/workspaces/{ws}", "One workspace.").ok(s.json::<WorkspaceView>()),
        op(
            "GET",
            "/tasks",
            "Every task of every workspace; `?workspace=` narrows them.",
        )
        .ok(s.list::<TaskSummary>()),
        op("GET", "/workspaces/{ws}/tasks", "The tasks of a workspace.")
            .ok(s.list::<TaskSummary>()),
        op(
            "GET",
            "/workspaces/{ws}/tasks/{name}",
            "One task with its input, flow and triggers.",
        )
        .ok(s.json::<TaskDetail>()),
        op(
            "POST",
            "/workspaces/{ws}/tasks/{name}/execute",
            "Starts a job of the task.",
        )
        .body(s.json::<ExecuteRequest>())
        .ok(s.json::<JobStatusReply>()),
        op(
            "GET",
            "/workspaces/{ws}/triggers",
            "The triggers of a workspace.",
        )
        .ok(s.list::<TriggerView>()),
        op(
            "GET",
            "/jobs",
            "Jobs, newest first, filtered by the query (API §3.4).",
        )
        .ok(s.list::<JobSummary>()),
        op(
            "GET",
            "/jobs/{id}",
            "One job with its steps; `id` may be a unique part of the id.",
        )
        .ok(s.json::<JobDetail>()),
        op("POST", "/jobs/{id}/cancel", "Cancels an unfinished job.")
            .ok(s.json::<JobStatusReply>()),
        op(
            "POST",
            "/jobs/{id}/restart",
            "Restarts a failed or cancelled job from its failed step (docs/restart.md): a new job \
             on the source's revision that reuses the outputs of the steps that completed.",
        )
        .ok(s.json::<JobStatusReply>()),
        op(
            "POST",
            "/jobs/{id}/steps/{step}/approve",
            "Approves a suspended approval step.",
        )
        .body(s.json::<ApproveRequest>())
        .ok(s.json::<DecisionReply>()),
        op(
            "POST",
            "/jobs/{id}/steps/{step}/reject",
            "Rejects a suspended approval step.",
        )
        .body(s.json::<RejectRequest>())
        .ok(s.json::<DecisionReply>()),
        op(
            "GET",
            "/jobs/{id}/logs",
            "A job's log lines after `after` (API §4.2).",
        )
        .ok(s.json::<LogsReply>()),
        op(
            "GET",
            "/jobs/{id}/logs/stream",
            "A job's log lines as they come (WebSocket, API §4.3).",
        )
        .answers(101, "Switching to the WebSocket protocol.", Body::Empty),
        op(
            "GET",
            "/jobs/{id}/steps/{step}/logs",
            "One step's log lines (API §4.2).",
        )
        .ok(s.json::<LogsReply>()),
        op("GET", "/workers", "Registered workers.").ok(s.list::<WorkerView>()),
        op("GET", "/workers/{id}", "One worker with its recent steps.")
            .ok(s.json::<WorkerDetail>()),
        op(
            "POST",
            "/auth/login",
            "Signs in with e-mail and password (public).",
        )
        .body(s.json::<LoginRequest>())
        .ok(s.json::<TokenReply>()),
        op(
            "POST",
            "/auth/refresh",
            "Rotates a refresh token for new tokens (public).",
        )
        .body(s.json::<RefreshRequest>())
        .ok(s.json::<TokenReply>()),
        op(
            "POST",
            "/auth/logout",
            "Ends the refresh token's session (public).",
        )
        .body(s.json::<RefreshRequest>())
        .ok(s.json::<OkReply>()),
        op("GET", "/auth/me", "The signed-in user.").ok(s.json::<UserView>()),
        op("POST", "/auth/password", "Changes the caller's password.")
            .body(s.json::<PasswordChange>())
            .ok(s.json::<OkReply>()),
        op("GET", "/auth/api-keys", "The caller's API keys.").ok(s.list::<ApiKeyView>()),
        op(
            "POST",
            "/auth/api-keys",
            "Creates an API key; the key is shown only here.",
        )
        .body(s.json::<ApiKeyRequest>())
        .answers(201, "Created.", s.json::<ApiKeyCreatedReply>()),
        op(
            "DELETE",
            "/auth/api-keys/{prefix}",
            "Revokes one of the caller's API keys.",
        )
        .answers(204, "Revoked.", Body::Empty),
        op(
            "GET",
            "/auth/oidc/{provider}",
            "Starts an OIDC sign-in (public; a redirect).",
        )
        .answers(303, "To the provider.", Body::Empty),
        op(
            "GET",
            "/auth/oidc/{provider}/callback",
            "Ends an OIDC sign-in (public; a redirect).",
        )
        .answers(303, "To the web UI.", Body::Empty),
        op("GET", "/users", "Every user (admin).").ok(s.list::<UserView>()),
        op("POST", "/users", "Creates a user (admin).")
            .body(s.json::<CreateUserRequest>())
            .answers(201, "Created.", s.json::<UserView>()),
        op("GET", "/users/{id}", "One user (admin).").ok(s.json::<UserView>()),
        op("DELETE", "/users/{id}", "Deletes a user (admin).").answers(
            204,
            "Deleted.",
            Body::Empty,
        ),
        op(
            "PUT",
            "/users/{id}/admin",
            "Grants or takes admin rights (admin).",
        )
        .body(s.json::<AdminFlag>())
        .ok(s.json::<UserView>()),
        op(
            "PUT",
            "/users/{id}/password",
            "Sets a user's password (admin).",
        )
        .body(s.json::<PasswordReset>())
        .ok(s.json::<OkReply>()),
        op("GET", "/users/{id}/groups", "A user's groups (admin).").ok(s.json::<Groups>()),
        op("PUT", "/users/{id}/groups", "Sets a user's groups (admin).")
            .body(s.json::<Groups>())
            .ok(s.json::<Groups>()),
        op("GET", "/groups", "Every group name in use (admin).").ok(Body::Json(
            json!({ "type": "array", "items": { "type": "string" } }),
        )),
        op("GET", "/audit", "The audit trail, newest first (admin).").ok(s.list::<AuditView>()),
        op(
            "POST",
            "/workspaces/{ws}/refresh",
            "Reloads a workspace from its source now.",
        )
        .ok(s.json::<WorkspaceView>()),
    ]
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

fn count() -> Value {
    json!({ "type": "integer", "minimum": 0, "default": 0 })
}

/// The query parameters of an operation (all optional): name, schema, description.
fn query_parameters(method: &str, path: &str) -> Vec<(&'static str, Value, &'static str)> {
    let page = || {
        vec![
            (
                "limit",
                json!({ "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT }),
                "How many items at most.",
            ),
            ("offset", count(), "How many items to skip."),
        ]
    };
    let log_limit = json!({
        "type": "integer", "minimum": 1, "maximum": MAX_LOG_LIMIT, "default": DEFAULT_LOG_LIMIT
    });
    let mut parameters = match (method, path) {
        ("GET", "/stats" | "/tasks") => vec![("workspace", string(), "Only this workspace's.")],
        ("GET", "/jobs") => vec![
            ("workspace", string(), "Only this workspace's jobs."),
            (
                "task_name",
                string(),
                "Only this task's jobs (needs `workspace`; `task` too).",
            ),
            (
                "status",
                string(),
                "Only jobs of these statuses, comma-separated.",
            ),
            (
                "source_type",
                string(),
                "Only jobs of this source type (`api`, `user`, `trigger`, …).",
            ),
            (
                "parent_job_id",
                json!({ "type": "string", "format": "uuid" }),
                "Only this job's child jobs.",
            ),
            (
                "search",
                string(),
                "A part of the task name, workspace or source id, or a job-id prefix.",
            ),
        ],
        ("GET", "/jobs/{id}/logs") => vec![
            ("after", count(), "Only lines with a greater `seq`."),
            ("limit", log_limit, "How many lines at most."),
            ("step", string(), "Only this step's lines."),
        ],
        ("GET", "/jobs/{id}/steps/{step}/logs") => vec![
            ("after", count(), "Only lines with a greater `seq`."),
            ("limit", log_limit, "How many lines at most."),
        ],
        ("GET", "/jobs/{id}/logs/stream") => vec![
            ("after", count(), "Only lines with a greater `seq`."),
            ("step", string(), "Only this step's lines."),
        ],
        ("GET", "/audit") => vec![
            (
                "actor",
                string(),
                "Only entries of this actor (an e-mail address).",
            ),
            (
                "action",
                string(),
                "Only entries of this action (`job.cancel`, …).",
            ),
            ("since", time(), "Only entries at or after this time."),
            ("until", time(), "Only entries before this time."),
        ],
        _ => Vec::new(),
    };
    if matches!(
        (method, path),
        ("GET", "/jobs" | "/workers" | "/users" | "/audit")
    ) {
        parameters.extend(page());
    }
    parameters
}

/// Lists are paginated: said in the summary, with the `X-Total-Count` header.
fn is_paged(operation: &Operation) -> bool {
    matches!(
        (operation.method, operation.path),
        ("GET", "/jobs" | "/workers" | "/users" | "/audit")
    )
}

/// Whether an operation needs no credentials (see `gate::is_public`).
fn is_public(path: &str) -> bool {
    super::gate::is_public(path)
}

/// The `(method, path)` of every documented operation, for the test that holds them to the
/// route table.
#[cfg(test)]
pub(super) fn documented() -> Vec<(String, String)> {
    operations(&mut Schemas::default())
        .into_iter()
        .map(|operation| (operation.method.to_owned(), operation.path.to_owned()))
        .collect()
}

fn content(body: &Body) -> Option<Value> {
    match body {
        Body::Json(schema) => Some(json!({ "application/json": { "schema": schema } })),
        Body::Other(media, _) => Some(json!({ *media: {} })),
        Body::Empty => None,
    }
}

fn document() -> Value {
    let mut schemas = Schemas::default();
    let operations = operations(&mut schemas);
    let error = schemas.of::<ErrorBody>();
    let mut paths = Map::new();
    for operation in &operations {
        let mut item = Map::new();
        let mut summary = operation.summary.to_owned();
        if is_paged(operation) {
            summary.push_str(PAGED);
        }
        item.insert("summary".into(), json!(summary));
        item.insert(
            "operationId".into(),
            json!(format!(
                "{}{}",
                operation.method.to_lowercase(),
                operation
                    .path
                    .replace(['{', '}'], "")
                    .replace(['/', '-', '.'], "_")
            )),
        );
        let parameters: Vec<Value> = operation
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } })
            })
            .chain(
                query_parameters(operation.method, operation.path)
                    .into_iter()
                    .map(|(name, schema, description)| {
                        json!({ "name": name, "in": "query", "description": description, "schema": schema })
                    }),
            )
            .collect();
        if !parameters.is_empty() {
            item.insert("parameters".into(), Value::Array(parameters));
        }
        if let Some(body) = &operation.request
            && let Some(content) = content(body)
        {
            item.insert(
                "requestBody".into(),
                json!({ "required": true, "content": content }),
            );
        }
        let mut responses = Map::new();
        for (status, description, body) in &operation.responses {
            let mut response = Map::new();
            let description = match body {
                Body::Other(_, what) => format!("{description} {what}"),
                _ => (*description).to_owned(),
            };
            response.insert("description".into(), json!(description));
            if let Some(content) = content(body) {
                response.insert("content".into(), content);
            }
            if is_paged(operation) {
                response.insert(
                    "headers".into(),
                    json!({ "X-Total-Count": {
                        "description": "How many items match, over all pages.",
                        "schema": { "type": "integer", "minimum": 0 }
                    }}),
                );
            }
            responses.insert(status.to_string(), Value::Object(response));
        }
        responses.insert(
            "default".into(),
            json!({
                "description": "An error (API §1.3).",
                "content": { "application/json": { "schema": error } }
            }),
        );
        item.insert("responses".into(), Value::Object(responses));
        if !is_public(operation.path) {
            item.insert("security".into(), json!([{ "bearer": [] }]));
        }
        let path = paths
            .entry(format!("/api{}", operation.path))
            .or_insert_with(|| json!({}));
        if let Value::Object(path) = path {
            path.insert(operation.method.to_lowercase(), Value::Object(item));
        }
    }
    let mut components = Map::new();
    let mut names: Vec<String> = Vec::new();
    for (name, schema) in schemas.schemas {
        if !names.contains(&name) {
            components.insert(
                name.clone(),
                serde_json::to_value(schema).unwrap_or(Value::Null),
            );
            names.push(name);
        }
    }
    components.sort_keys();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Strøm API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The HTTP API of Strøm's server below `/api` (API.md §2–§5). Times are \
                RFC 3339 in UTC with milliseconds. Unless an operation is public, requests need \
                `Authorization: Bearer <access token or API key>` when authentication is on.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
        },
    })
}

/// `GET /api/openapi.json`.
pub(super) async fn get_openapi() -> axum::Json<Value> {
    axum::Json(DOCUMENT.clone())
}

/// `docs/api-reference.md`: the document as Markdown, operations first, then schemas.
pub fn reference_markdown(document: &Value) -> String {
    let mut out = String::from(
        "# API reference\n\n\
         <!-- Generated from the OpenAPI document (`GET /api/openapi.json`) by the test \
         `server::tests::openapi::api_reference_is_current`; run it with STROEM_BLESS=1 to \
         rewrite this file. Do not edit by hand. -->\n\n\
         The server's HTTP API below `/api`, as its OpenAPI 3.1 document describes it: fetch \
         `GET /api/openapi.json` from a running server (public) for the machine-readable form. \
         API.md in the specification explains the semantics; this page lists the shapes. \
         Errors answer with [`ErrorBody`](#errorbody) (API §1.3). The worker protocol \
         (`/worker`, API §7) and webhooks (`/hooks`, API §6) are not part of the document.\n\n\
         ## Operations\n\n",
    );
    let empty = Map::new();
    let paths = document["paths"].as_object().unwrap_or(&empty);
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, operation) in item {
            out.push_str(&format!("### `{} {path}`\n\n", method.to_uppercase()));
            out.push_str(operation["summary"].as_str().unwrap_or_default());
            if operation.get("security").is_none() {
                out.push_str(" No credentials needed.");
            }
            out.push_str("\n\n");
            let query: Vec<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|parameter| parameter["in"] == "query")
                .map(|parameter| {
                    format!(
                        "- `{}` ({}): {}",
                        parameter["name"].as_str().unwrap_or_default(),
                        type_of(&parameter["schema"]),
                        parameter["description"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            if !query.is_empty() {
                out.push_str(&format!("Query parameters:\n\n{}\n\n", query.join("\n")));
            }
            if let Some(schema) = operation.pointer("/requestBody/content/application~1json/schema")
            {
                out.push_str(&format!("Request body: {}\n\n", type_of(schema)));
            }
            if let Some(responses) = operation["responses"].as_object() {
                out.push_str("Responses:\n\n");
                for (status, response) in responses {
                    if status == "default" {
                        continue;
                    }
                    let body = response
                        .pointer("/content/application~1json/schema")
                        .map(|schema| format!(": {}", type_of(schema)))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "- `{status}` {}{body}\n",
                        response["description"].as_str().unwrap_or_default()
                    ));
                }
            }
            out.push('\n');
        }
    }
    out.push_str("## Schemas\n\n");
    let schemas = document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, schema) in schemas {
        out.push_str(&format!("### {name}\n\n"));
        if let Some(description) = schema["description"].as_str() {
            out.push_str(&format!("{}\n\n", one_line(description)));
        }
        write_schema(&mut out, schema);
        out.push('\n');
    }
    out
}

/// A schema's body: a field table for objects (parts of `allOf` included), the values of an
/// enumeration, else its type.
fn write_schema(out: &mut String, schema: &Value) {
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        out.push_str(&format!("One of {}.\n", values.join(", ")));
        return;
    }
    let mut rows = Vec::new();
    collect_fields(schema, &mut rows);
    if rows.is_empty() {
        out.push_str(&format!("{}\n", type_of(schema)));
        return;
    }
    out.push_str("| Field | Type | Required | Description |\n| --- | --- | --- | --- |\n");
    for row in rows {
        out.push_str(&row);
    }
}

fn collect_fields(schema: &Value, rows: &mut Vec<String>) {
    if let Some(parts) = schema["allOf"].as_array() {
        for part in parts {
            if let Some(reference) = part["$ref"].as_str() {
                rows.push(format!("| *(all fields of {})* | | | |\n", link(reference)));
            } else {
                collect_fields(part, rows);
            }
        }
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(properties) = schema["properties"].as_object() {
        for (field, property) in properties {
            rows.push(format!(
                "| `{field}` | {} | {} | {} |\n",
                type_of(property).replace('|', "\\|"),
                if required.contains(&field.as_str()) {
                    "yes"
                } else {
                    "no"
                },
                property["description"]
                    .as_str()
                    .map(one_line)
                    .unwrap_or_default()
                    .replace('|', "\\|")
            ));
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn link(reference: &str) -> String {
    let name = reference.rsplit('/').next().unwrap_or(reference);
    format!("[{name}](#{})", name.to_lowercase())
}

/// A short human form of a schema: `string (date-time) or null`, `array of [Step](#step)`.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return link(reference);
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema[combinator].as_array() {
            let parts: Vec<String> = parts.iter().map(type_of).collect();
            return parts.join(if combinator == "allOf" {
                " and "
            } else {
                " or "
            });
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        return values.join(", ");
    }
    let base = |kind: &str| match kind {
        "array" => format!(
            "array of {}",
            schema
                .get("items")
                .map(type_of)
                .unwrap_or_else(|| "any".into())
        ),
        "object" => match schema.get("additionalProperties") {
            Some(values) if values.is_object() => format!("map of {}", type_of(values)),
            _ => "object".to_owned(),
        },
        other => match schema["format"].as_str() {
            Some(format) => format!("{other} ({format})"),
            None => other.to_owned(),
        },
    };
    match &schema["type"] {
        Value::String(kind) => base(kind),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .map(base)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_owned(),
    }
}
