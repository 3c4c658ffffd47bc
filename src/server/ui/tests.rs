//! The UI surface against a small fixture bundle packed the way `build.rs` packs `web/dist`,
//! so these tests need neither npm nor a built UI.

use std::io::Read;
use std::path::Path;

use axum::body::{Body, Bytes, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use flate2::read::GzDecoder;
use tower::ServiceExt;

use super::pack::{Packed, pack};
use super::{UiBundle, accepts_gzip};
use crate::server::{AppState, Health, WorkerAccess, router};

const INDEX_HTML: &str = "<!doctype html><html><head><script type=\"module\" \
    src=\"/assets/index-abc123.js\"></script></head><body><div id=\"root\"></div></body></html>";
const LOGO_PNG: &[u8] = &[0x89, b'P', b'N', b'G', 13, 10, 26, 10, 0, 0, 0, 13];

fn app_js() -> String {
    "export function hello(name) { return `hello ${name}`; }\n".repeat(200)
}

/// A `web/dist` as Vite leaves it, plus a stale `.gz` a build tool might have written.
fn fixture_dist(root: &Path) {
    let assets = root.join("assets");
    std::fs::create_dir_all(&assets).expect("fixture dir");
    std::fs::write(root.join("index.html"), INDEX_HTML).expect("index");
    std::fs::write(root.join("robots.txt"), "ok").expect("robots");
    std::fs::write(assets.join("index-abc123.js"), app_js()).expect("js");
    std::fs::write(assets.join("index-abc123.js.gz"), "stale").expect("stale gz");
    std::fs::write(assets.join("logo-def456.png"), LOGO_PNG).expect("png");
}

/// Packs `dist` and loads the result the way the binary loads its embedded copy.
fn packed_bundle(dist: &Path) -> (UiBundle, Packed) {
    let out = tempfile::tempdir().expect("tempdir");
    let packed = pack(dist, out.path()).expect("pack");
    let mut files = Vec::new();
    read_tree(out.path(), out.path(), &mut files);
    (UiBundle::from_packed(files), packed)
}

fn read_tree(root: &Path, dir: &Path, files: &mut Vec<(String, Bytes)>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            read_tree(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).expect("under root");
            let bytes = std::fs::read(&path).expect("read");
            files.push((relative.to_string_lossy().into_owned(), Bytes::from(bytes)));
        }
    }
}

fn state(ui: UiBundle) -> AppState {
    AppState {
        health: Health::new(|| async { true }),
        orchestrator: None,
        workers: WorkerAccess::default(),
        ui,
        security: crate::server::Security::default(),
        http: crate::server::HttpPolicy::default(),
        metrics: crate::server::MetricsAccess::default(),
    }
}

fn built() -> AppState {
    let dist = tempfile::tempdir().expect("tempdir");
    fixture_dist(dist.path());
    state(packed_bundle(dist.path()).0)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(state: AppState, request: Request<Body>) -> Reply {
    let response = router(state)
        .oneshot(request)
        .await
        .expect("router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body reads");
    Reply {
        status,
        headers,
        body,
    }
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

fn get_with(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::empty()).expect("request")
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("valid gzip");
    text
}

#[test]
fn packing_compresses_text_keeps_binaries_and_drops_stale_compressed_files() {
    let dist = tempfile::tempdir().expect("tempdir");
    fixture_dist(dist.path());
    let out = tempfile::tempdir().expect("tempdir");
    let packed = pack(dist.path(), out.path()).expect("pack");
    let mut names = Vec::new();
    let mut files = Vec::new();
    read_tree(out.path(), out.path(), &mut files);
    for (name, _) in &files {
        names.push(name.clone());
    }
    names.sort();
    assert_eq!(
        names,
        [
            "assets/index-abc123.js.gz",
            "assets/logo-def456.png",
            "index.html.gz",
            // Two bytes: gzip would only make it bigger.
            "robots.txt",
        ]
    );
    assert_eq!(packed.files, 4);
    assert!(packed.stored_bytes < packed.raw_bytes, "{packed:?}");
    let js = files
        .iter()
        .find(|(name, _)| name.ends_with(".js.gz"))
        .expect("packed js");
    assert_eq!(gunzip(&js.1), app_js());
}

#[test]
fn packing_a_missing_dist_gives_an_empty_bundle() {
    let missing = tempfile::tempdir().expect("tempdir");
    let (bundle, packed) = packed_bundle(&missing.path().join("dist"));
    assert_eq!(packed, Packed::default());
    assert!(!bundle.is_built());
    assert_eq!(bundle.stored_bytes(), 0);
}

#[tokio::test]
async fn the_root_and_deep_links_serve_index_html_uncached() {
    for path in [
        "/",
        "/index.html",
        "/jobs/0190d7c4",
        "/workspaces/default/tasks/x%20y",
    ] {
        let reply = send(built(), get_with(path, &[("accept-encoding", "gzip")])).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(reply.header("content-encoding"), Some("gzip"));
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(gunzip(&reply.body), INDEX_HTML, "{path}");
    }
}

#[tokio::test]
async fn hashed_assets_are_immutable_gzipped_on_request_and_typed() {
    let reply = send(
        built(),
        get_with(
            "/assets/index-abc123.js",
            &[("accept-encoding", "br, gzip;q=0.8")],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        reply.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    assert_eq!(reply.header("vary"), Some("accept-encoding"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(gunzip(&reply.body), app_js());

    let png = send(built(), get("/assets/logo-def456.png")).await;
    assert_eq!(png.status, StatusCode::OK);
    assert_eq!(png.header("content-type"), Some("image/png"));
    assert_eq!(png.header("content-encoding"), None);
    assert_eq!(png.header("vary"), None);
    assert_eq!(png.body.as_ref(), LOGO_PNG);
}

#[tokio::test]
async fn clients_without_gzip_get_the_identity_encoding_with_its_own_etag() {
    let gzip = send(
        built(),
        get_with("/assets/index-abc123.js", &[("accept-encoding", "gzip")]),
    )
    .await;
    for refused in [None, Some("identity"), Some("gzip;q=0"), Some("br")] {
        let headers: Vec<(&str, &str)> = refused
            .map(|value| ("accept-encoding", value))
            .into_iter()
            .collect();
        let plain = send(built(), get_with("/assets/index-abc123.js", &headers)).await;
        assert_eq!(plain.status, StatusCode::OK);
        assert_eq!(plain.header("content-encoding"), None, "{refused:?}");
        assert_eq!(plain.header("vary"), Some("accept-encoding"));
        assert_eq!(plain.text(), app_js());
        assert_ne!(plain.header("etag"), gzip.header("etag"));
    }
}

#[tokio::test]
async fn a_matching_if_none_match_gets_304_without_a_body() {
    let first = send(
        built(),
        get_with("/assets/index-abc123.js", &[("accept-encoding", "gzip")]),
    )
    .await;
    let etag = first.header("etag").expect("etag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let weak = format!("W/{etag}");
    let listed = format!("\"other\", {etag}");
    for candidate in [etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
        let again = send(
            built(),
            get_with(
                "/assets/index-abc123.js",
                &[("accept-encoding", "gzip"), ("if-none-match", candidate)],
            ),
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{candidate}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        assert_eq!(
            again.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
    }
    let changed = send(
        built(),
        get_with(
            "/assets/index-abc123.js",
            &[("accept-encoding", "gzip"), ("if-none-match", "\"old\"")],
        ),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK);
    // The identity encoding's ETag does not validate the gzip one.
    let identity = send(
        built(),
        get_with("/assets/index-abc123.js", &[("if-none-match", &etag)]),
    )
    .await;
    assert_eq!(identity.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_assets_are_404_not_index_html() {
    let reply = send(built(), get("/assets/index-old999.js")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert!(!reply.text().contains("<html"), "{}", reply.text());
}

#[tokio::test]
async fn machine_surfaces_never_fall_back_to_the_ui() {
    for path in ["/api/nope", "/worker/nope", "/hooks/nope/deliveries"] {
        let reply = send(built(), get(path)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn other_methods_are_refused_and_head_has_no_body() {
    let post = Request::post("/jobs").body(Body::empty()).expect("request");
    let reply = send(built(), post).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));

    let head = Request::head("/").body(Body::empty()).expect("request");
    let reply = send(built(), head).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(reply.body.is_empty());
    let get = send(built(), get("/")).await;
    assert_eq!(
        reply.header("content-length").map(str::to_owned),
        Some(get.body.len().to_string())
    );
}

#[tokio::test]
async fn without_a_built_ui_every_page_says_how_to_build_it_and_the_api_works() {
    for path in ["/", "/jobs/123"] {
        let reply = send(state(UiBundle::default()), get(path)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(reply.header("cache-control"), Some("no-cache"));
        let page = reply.text();
        assert!(page.contains("web UI is not built"), "{page}");
        assert!(page.contains("cargo xtask ui"), "{page}");
    }
    let config = send(state(UiBundle::default()), get("/api/config")).await;
    assert_eq!(config.status, StatusCode::OK);
}

#[tokio::test]
async fn api_config_is_the_public_bootstrap_document() {
    let reply = send(built(), get("/api/config")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(
        body,
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "auth_required": false,
            "has_internal_auth": false,
            "oidc_providers": [],
        })
    );
}

#[test]
fn accept_encoding_is_parsed_with_q_values() {
    let accepts = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert("accept-encoding", value.parse().expect("header value"));
        accepts_gzip(&headers)
    };
    assert!(accepts("gzip"));
    assert!(accepts("GZIP"));
    assert!(accepts("gzip, deflate, br, zstd"));
    assert!(accepts("br;q=1.0, gzip;q=0.5"));
    assert!(accepts("*"));
    assert!(accepts("x-gzip"));
    assert!(!accepts("gzip;q=0"));
    assert!(!accepts("identity"));
    assert!(!accepts("br, deflate"));
    assert!(!accepts(""));
    assert!(!accepts_gzip(&HeaderMap::new()));
}

#[test]
fn the_embedded_bundle_is_consistent() {
    let bundle = UiBundle::embedded();
    for (path, asset) in bundle.files.iter() {
        if asset.gzipped {
            let mut plain = Vec::new();
            GzDecoder::new(asset.bytes.as_ref())
                .read_to_end(&mut plain)
                .unwrap_or_else(|error| panic!("{path}: {error}"));
        }
    }
    // Either nothing was built, or a whole UI was.
    assert_eq!(bundle.is_built(), !bundle.files.is_empty());
}
