//! The embedded web UI (DESIGN §7, API §1.1): every path outside `/api`, `/hooks`, `/worker`
//! and `/healthz` belongs to the browser.
//!
//! `build.rs` packs `web/dist` into `$OUT_DIR/ui` ([`pack`]: text assets stored gzipped) and
//! [`UiBundle::embedded`] reads that folder out of the binary. [`serve_ui`] then answers:
//! - a packed file: with its Content-Type, a strong ETag (304 on `If-None-Match`), gzip when
//!   the client accepts it (`Vary: Accept-Encoding`), and `Cache-Control: public,
//!   max-age=31536000, immutable` for Vite's content-hashed `/assets/*`, `no-cache` otherwise;
//! - an unknown `/assets/*` file: 404, so a stale page asking for an old chunk fails loudly
//!   instead of receiving HTML as JavaScript;
//! - any other path: `index.html` with `no-cache` (SPA fallback; the client router decides);
//! - when the bundle was not built: a short page saying how to build it. The API works either
//!   way.
//!
//! The bundle is a value in the router state, so tests serve a fixture instead of the real
//! bundle and never need npm.

#[cfg(test)]
mod pack;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRef, OriginalUri, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use flate2::read::GzDecoder;
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

use super::AppState;
use crate::api::ConfigReply;

/// The packed bundle made by `build.rs`; empty when `web/dist` was not built.
static EMBEDDED: Dir<'static> = include_dir!("$OUT_DIR/ui");

/// Suffix of a packed gzip file (see `pack.rs`).
const GZIP_SUFFIX: &str = ".gz";
const INDEX: &str = "index.html";
/// Vite puts content-hashed files here; their names change whenever their content does.
const HASHED_PREFIX: &str = "assets/";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";

/// The files of the web UI, by path relative to the bundle root (`assets/index-1a2b.js`).
/// Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct UiBundle {
    files: Arc<HashMap<String, Asset>>,
}

#[derive(Debug)]
struct Asset {
    /// What is stored: gzip-compressed when `gzipped`.
    bytes: Bytes,
    gzipped: bool,
    content_type: &'static str,
    /// Hex digest of `bytes`; the ETags of both encodings derive from it.
    digest: String,
}

impl UiBundle {
    /// The bundle compiled into this binary.
    pub fn embedded() -> Self {
        let mut files = Vec::new();
        collect(&EMBEDDED, &mut files);
        Self::from_packed(files)
    }

    /// A bundle from packed files: `(path, bytes)` where a path ending in `.gz` holds the
    /// gzip-compressed content of the path without it.
    pub fn from_packed(files: impl IntoIterator<Item = (String, Bytes)>) -> Self {
        let files = files
            .into_iter()
            .map(|(path, bytes)| {
                let (path, gzipped) = match path.strip_suffix(GZIP_SUFFIX) {
                    Some(original) => (original.to_owned(), true),
                    None => (path, false),
                };
                let digest = hex::encode(&Sha256::digest(&bytes)[..12]);
                let asset = Asset {
                    content_type: content_type(&path),
                    bytes,
                    gzipped,
                    digest,
                };
                (path, asset)
            })
            .collect();
        UiBundle {
            files: Arc::new(files),
        }
    }

    /// Whether a UI was built into this bundle (it has an `index.html`).
    pub fn is_built(&self) -> bool {
        self.files.contains_key(INDEX)
    }

    /// The total stored size in bytes (gzip for text assets).
    pub fn stored_bytes(&self) -> usize {
        self.files.values().map(|asset| asset.bytes.len()).sum()
    }
}

fn collect(dir: &Dir<'static>, files: &mut Vec<(String, Bytes)>) {
    for file in dir.files() {
        // include_dir paths are relative to the embedded root; the UI paths use `/`.
        let path = file.path().to_string_lossy().replace('\\', "/");
        files.push((path, Bytes::from_static(file.contents())));
    }
    for sub in dir.dirs() {
        collect(sub, files);
    }
}

impl FromRef<AppState> for UiBundle {
    fn from_ref(state: &AppState) -> Self {
        state.ui.clone()
    }
}

/// `GET /api/config` (API §3.6), always public: what the UI reads before anything else —
/// whether sign-in is required and which methods exist (never a secret).
pub async fn get_config(State(state): State<super::AppState>) -> axum::Json<ConfigReply> {
    let auth = state.security.auth.as_ref();
    axum::Json(ConfigReply {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        auth_required: auth.is_some(),
        has_internal_auth: auth.is_some_and(crate::auth::Auth::has_internal_login),
        oidc_providers: auth
            .map(|auth| {
                auth.providers()
                    .iter()
                    .map(|provider| crate::api::OidcProvider {
                        id: provider.id().to_owned(),
                        display_name: provider.display_name().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The browser surface: every request that no other route took.
pub async fn serve_ui(
    state: State<UiBundle>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    super::edge::with_ui_headers(serve_page(state, method, uri, headers))
}

fn serve_page(
    State(bundle): State<UiBundle>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { INDEX } else { path };
    let mut response = match bundle.files.get(path) {
        Some(asset) => {
            let cache = if path.starts_with(HASHED_PREFIX) {
                IMMUTABLE
            } else {
                NO_CACHE
            };
            asset_response(asset, cache, &headers)
        }
        None if path.starts_with(HASHED_PREFIX) => plain(
            StatusCode::NOT_FOUND,
            "no such UI asset; reload the page to get the current ones\n",
        ),
        None => match bundle.files.get(INDEX) {
            Some(index) => asset_response(index, NO_CACHE, &headers),
            None => not_built(),
        },
    };
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if method == Method::HEAD {
        // Same headers as GET, including the length of the body it would have sent.
        if let Some(length) = response.body().size_hint().exact() {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        *response.body_mut() = Body::empty();
    }
    response
}

/// One asset in the encoding the client accepts, or 304 when it already has it.
fn asset_response(asset: &Asset, cache_control: &'static str, request: &HeaderMap) -> Response {
    let send_gzip = asset.gzipped && accepts_gzip(request);
    let etag = if send_gzip {
        format!("\"{}-gz\"", asset.digest)
    } else {
        format!("\"{}\"", asset.digest)
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if asset.gzipped {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if none_match(request, &etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    let body = if send_gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        asset.bytes.clone()
    } else if asset.gzipped {
        // A client without gzip (curl without --compressed, some bots) is rare; decompressing
        // for it keeps only one copy of each text asset in the binary.
        let mut plain = Vec::new();
        if let Err(error) = GzDecoder::new(asset.bytes.as_ref()).read_to_end(&mut plain) {
            tracing::error!(%error, "an embedded UI asset is not valid gzip");
            return plain_error();
        }
        Bytes::from(plain)
    } else {
        asset.bytes.clone()
    };
    (StatusCode::OK, headers, body).into_response()
}

fn plain_error() -> Response {
    plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
}

/// Whether `Accept-Encoding` allows gzip (`gzip`, `x-gzip` or `*`, with a non-zero q).
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let allowed = parts.all(|param| {
                let param = param.trim();
                match param.strip_prefix("q=") {
                    Some(q) => q.trim().parse::<f32>().is_ok_and(|q| q > 0.0),
                    None => true,
                }
            });
            allowed
                && (coding.eq_ignore_ascii_case("gzip")
                    || coding.eq_ignore_ascii_case("x-gzip")
                    || coding == "*")
        })
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 §13.1.2 asks) or is `*`.
fn none_match(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == etag)
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// What `/` (and every UI path) shows when the binary was built without the UI.
fn not_built() -> Response {
    const PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
        <title>Strøm: web UI not built</title></head><body>\
        <h1>The Strøm web UI is not built into this binary</h1>\
        <p>The HTTP API works: try <a href=\"/api/workspaces\">/api/workspaces</a>.</p>\
        <p>To get the UI, build it and then the binary, from the repository root:</p>\
        <pre>cargo xtask ui\ncargo run -- serve</pre>\
        <p>(<code>cargo xtask serve</code> does both.) Building the UI needs Node.js 20 \
        and npm.</p></body></html>\n";
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, NO_CACHE),
        ],
        PAGE,
    )
        .into_response()
}

/// The Content-Type for a file name, by extension.
fn content_type(path: &str) -> &'static str {
    let extension = path
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}
