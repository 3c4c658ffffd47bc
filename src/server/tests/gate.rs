//! The gate with authentication on: every `/api` route of the router's table except the public
//! ones of API §5.1 answers 401 without credentials, for every method — also methods the route
//! does not have and paths that do not exist — while `/worker`, `/hooks`, `/healthz` and
//! `/metrics` keep their own rules.

use axum::body::Body;
use axum::http::{Method, Request};
use indexmap::IndexMap;

use super::{send, state};
use crate::auth::Auth;
use crate::config::{AclConfig, AuthConfig, Secret};
use crate::server::{AppState, Security, gate, router, routes};
use crate::workflow::model::Duration;

pub(super) async fn secured() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = crate::store::Store::connect(
        &format!("sqlite://{}", dir.path().join("db.sqlite").display()),
        2,
    )
    .await
    .expect("database");
    let config = AuthConfig {
        jwt_secret: Secret::new("0123456789abcdef0123456789abcdef"),
        refresh_secret: Secret::new("refresh"),
        base_url: None,
        access_token_ttl: Duration(900),
        refresh_token_ttl: Duration(86_400),
        providers: IndexMap::new(),
        initial_user: None,
        acl: AclConfig::default(),
    };
    let mut state = state(true);
    state.security = Security {
        auth: Some(Auth::new(&config, store).expect("auth")),
        trusted_proxies: Vec::new().into(),
    };
    (state, dir)
}

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
];

/// A concrete path for a route pattern (`{id}` → a UUID, other parameters → a word).
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|segment| match segment {
            "{id}" => "0195f0a0-0000-7000-8000-000000000000",
            s if s.starts_with('{') => "x",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_api_route_but_the_public_ones_needs_credentials_for_every_method() {
    let (state, _dir) = secured().await;
    let mut checked = 0;
    let mut public = Vec::new();
    for route in routes::all() {
        let path = concrete(route.path);
        if gate::is_public(&path) {
            public.push(route.path);
            continue;
        }
        for method in METHODS {
            for token in [
                None,
                Some("Bearer not-a-token"),
                Some("Bearer strm_00000000000000000000000000000000"),
            ] {
                let mut request = Request::builder()
                    .method(method.clone())
                    .uri(format!("/api{path}"));
                if let Some(token) = token {
                    request = request.header("authorization", token);
                }
                let request = request.body(Body::empty()).expect("request");
                let reply = send(router(state.clone()), request).await;
                assert_eq!(
                    reply.status.as_u16(),
                    401,
                    "{method} /api{path} with {token:?}"
                );
                assert_eq!(reply.body["code"], "unauthorized", "{method} /api{path}");
                assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} requests checked");
    // Exactly the public routes of API §5.1, and the OpenAPI document (docs/deviations.md).
    assert_eq!(
        public,
        [
            "/openapi.json",
            "/config",
            "/auth/login",
            "/auth/refresh",
            "/auth/logout",
            "/auth/oidc/{provider}",
            "/auth/oidc/{provider}/callback"
        ]
    );
    // Unknown paths show nothing either.
    let reply = send(router(state.clone()), super::get("/api/no/such/route")).await;
    assert_eq!(reply.status.as_u16(), 401);
}

#[tokio::test]
async fn public_routes_and_other_surfaces_keep_their_rules() {
    let (state, _dir) = secured().await;
    let config = send(router(state.clone()), super::get("/api/config")).await;
    assert_eq!(config.status.as_u16(), 200);
    assert_eq!(config.body["auth_required"], true);
    assert_eq!(config.body["has_internal_auth"], true);
    let healthz = send(router(state.clone()), super::get("/healthz")).await;
    assert_eq!(healthz.status.as_u16(), 200);
    // `/worker` still asks for the worker token, not a user's.
    let worker = send(
        router(state.clone()),
        super::post_json("/worker/register", "{}"),
    )
    .await;
    assert_eq!(worker.status.as_u16(), 401);
    assert!(
        worker.body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("worker_token"),
        "{}",
        worker.body
    );
    // `/hooks` needs no user credentials (no job engine here: unavailable, not 401).
    let hook = send(
        router(state.clone()),
        super::post_json("/hooks/anything", "{}"),
    )
    .await;
    assert_ne!(hook.status.as_u16(), 401, "{}", hook.body);
    // The UI is public: its own login page must load.
    let ui = send(router(state.clone()), super::get("/login")).await;
    assert_eq!(ui.status.as_u16(), 200);
    // `/metrics` asks for the metrics token, never a user's credentials (API §3.6).
    let mut state = state;
    state.metrics.token = Some(Secret::new("metrics-token"));
    let anonymous = send(router(state.clone()), super::get("/metrics")).await;
    assert_eq!(anonymous.status.as_u16(), 401);
    assert!(
        anonymous.body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("metrics token"),
        "{}",
        anonymous.body
    );
    let request = Request::get("/metrics")
        .header("authorization", "Bearer metrics-token")
        .body(Body::empty())
        .expect("request");
    let scraped = send(router(state), request).await;
    assert_eq!(scraped.status.as_u16(), 200);
    assert!(
        scraped
            .body
            .as_str()
            .unwrap_or_default()
            .contains("# TYPE stroem_http_requests_total counter"),
        "{}",
        scraped.body
    );
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let mut headers = axum::http::HeaderMap::new();
    for (value, expected) in [
        ("Bearer abc", Some("abc")),
        ("bearer abc", Some("abc")),
        ("BEARER  abc ", Some("abc")),
        ("Basic abc", None),
        ("Bearer ", None),
        ("Bearerabc", None),
    ] {
        headers.insert("authorization", value.parse().expect("header"));
        assert_eq!(crate::server::bearer_token(&headers), expected, "{value}");
    }
}
