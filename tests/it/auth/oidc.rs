//! OIDC sign-in (API §5.4) against a real identity provider: the npm package `oidc-provider`
//! on Node (`tests/oidc/provider.mjs`), prepared by `cargo xtask oidc` (which `cargo xtask test`
//! and CI run). Its login and consent pages are driven by plain HTTP, as a browser would: no
//! part of the flow is faked. Tests fail — never skip — when the provider is not installed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use super::{ADMIN, As};
use crate::server_harness::{Home, Server, eventually, serve_test};

/// How long the provider may take to start answering.
const PROVIDER_START: Duration = Duration::from_secs(30);

/// The folder whose `node_modules` holds oidc-provider: `$STROEM_TEST_OIDC_DIR`, else where
/// `cargo xtask oidc` puts it (`<target dir>/oidc-provider`, found from this test binary).
fn provider_dir() -> PathBuf {
    let dir = std::env::var_os("STROEM_TEST_OIDC_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            // <target>/debug/deps/it-… → <target>
            exe.ancestors()
                .nth(3)
                .map(|target| target.join("oidc-provider"))
        })
        .unwrap_or_default();
    assert!(
        dir.join("node_modules/oidc-provider/package.json")
            .is_file(),
        "the OIDC test provider is not installed in {}: run `cargo xtask oidc` (`cargo xtask test` \
         and .ci/run do), or set STROEM_TEST_OIDC_DIR to a folder with oidc-provider@9 installed",
        dir.display()
    );
    dir
}

/// A running provider process, stopped on drop.
struct IdentityProvider {
    child: Child,
    script: PathBuf,
    issuer: String,
}

impl IdentityProvider {
    async fn start(redirects: &[String]) -> IdentityProvider {
        let dir = provider_dir();
        // The script must sit next to node_modules; each provider gets its own copy so tests
        // running at once never write the same file.
        let script = dir.join(format!("provider-{}.mjs", uuid::Uuid::new_v4().simple()));
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc/provider.mjs"),
            &script,
        )
        .expect("copy the provider script");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("node")
            .arg(&script)
            .arg(port.to_string())
            .args(redirects)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let issuer = format!("http://127.0.0.1:{port}");
        let provider = IdentityProvider {
            child,
            script,
            issuer,
        };
        let discovery = format!("{}/.well-known/openid-configuration", provider.issuer);
        eventually("the identity provider", PROVIDER_START, || {
            let discovery = discovery.clone();
            async move {
                tokio::task::spawn_blocking(move || ureq::get(&discovery).call().is_ok())
                    .await
                    .unwrap_or(false)
            }
        })
        .await;
        provider
    }
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.script);
    }
}

/// A browser in miniature: no automatic redirects, cookies kept per origin.
struct Browser {
    agent: ureq::Agent,
    cookies: BTreeMap<String, BTreeMap<String, String>>,
}

/// One answer: status, `Location`, body.
struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

fn origin(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or_default().to_owned()
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        let scheme_and_host = &base[..base.find("://").map_or(0, |i| i + 3) + origin(base).len()];
        format!("{scheme_and_host}{location}")
    }
}

impl Browser {
    fn new() -> Browser {
        Browser {
            agent: ureq::Agent::new_with_config(
                ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .max_redirects(0)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build(),
            ),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self, url: &str) -> String {
        self.cookies
            .get(&origin(url))
            .map(|jar| {
                jar.iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.cookies.get(&origin(url))?.get(name).cloned()
    }

    fn request(&mut self, method: &str, url: &str, form: Option<String>) -> Page {
        let builder = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("Cookie", self.cookie_header(url));
        let response = match form {
            Some(form) => self.agent.run(
                builder
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(form)
                    .expect("request"),
            ),
            None => self.agent.run(builder.body(()).expect("request")),
        };
        let mut response = response.unwrap_or_else(|error| panic!("{method} {url}: {error}"));
        let jar = self.cookies.entry(origin(url)).or_default();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            let Some((name, value)) = text.split(';').next().and_then(|pair| pair.split_once('='))
            else {
                continue;
            };
            let lowered = text.to_ascii_lowercase();
            if value.is_empty()
                || lowered.contains("max-age=0")
                || lowered.contains("expires=thu, 01 jan 1970")
            {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .map(|location| absolute(url, location));
        let body = response.body_mut().read_to_string().unwrap_or_default();
        Page {
            status: response.status().as_u16(),
            location,
            body,
        }
    }

    /// Starts a sign-in at Strøm and walks the provider's login and consent pages as `login`,
    /// until the provider sends the browser back to Strøm; returns Strøm's final answer.
    fn sign_in(&mut self, start: &str, login: &str) -> Page {
        let stroem = origin(start);
        let first = self.request("GET", start, None);
        assert_eq!(first.status, 302, "{}", first.body);
        let mut url = first.location.expect("redirect to the provider");
        for _ in 0..20 {
            let page = self.request("GET", &url, None);
            if let Some(location) = page.location {
                if origin(&location) == stroem {
                    return self.request("GET", &location, None);
                }
                url = location;
                continue;
            }
            assert_eq!(page.status, 200, "{url}: {}", page.body);
            // The login form has an input named `login`; otherwise it is the consent page.
            let form = if page.body.contains("name=\"login\"") {
                format!("prompt=login&login={login}&password=secret")
            } else {
                "prompt=consent".to_owned()
            };
            let posted = self.request("POST", &url, Some(form));
            let location = posted
                .location
                .unwrap_or_else(|| panic!("{url}: {} {}", posted.status, posted.body));
            if origin(&location) == stroem {
                return self.request("GET", &location, None);
            }
            url = location;
        }
        panic!("the provider never sent the browser back to Strøm");
    }
}

/// The `#key=value&…` of a redirect to `/login/callback`.
fn fragment(page: &Page) -> BTreeMap<String, String> {
    assert_eq!(page.status, 302, "{}", page.body);
    let location = page.location.clone().expect("a redirect");
    assert!(location.contains("/login/callback#"), "{location}");
    let (_, fragment) = location.split_once('#').expect("a fragment");
    fragment
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

async fn start(home: &Home) -> (Server, IdentityProvider) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let provider = IdentityProvider::start(&[
        format!("{base}/api/auth/oidc/test/callback"),
        format!("{base}/api/auth/oidc/second/callback"),
    ])
    .await;
    home.configure(&format!(
        r#"auth:
  jwt_secret: 0123456789abcdef0123456789abcdef-oidc
  refresh_secret: refresh-secret
  base_url: {base}
  initial_user: {{ email: "{}", password: "{}" }}
  providers:
    internal: {{ provider_type: internal }}
    test:
      provider_type: oidc
      display_name: Test IdP
      issuer_url: {issuer}
      client_id: stroem
      client_secret: stroem-secret
      default_groups: [sso, readers]
    second:
      provider_type: oidc
      issuer_url: {issuer}
      client_id: stroem
      client_secret: stroem-secret
"#,
        ADMIN.0,
        ADMIN.1,
        issuer = provider.issuer
    ));
    (home.start_on(listener, &[]).await, provider)
}

/// Runs a browser sign-in off the async threads.
async fn sign_in(start: String, login: &'static str) -> (Page, Browser) {
    tokio::task::spawn_blocking(move || {
        let mut browser = Browser::new();
        let page = browser.sign_in(&start, login);
        (page, browser)
    })
    .await
    .expect("browser thread")
}

serve_test! {
    async fn oidc_sign_in_creates_links_and_refuses_as_specified(backend) {
        stroem::install_crypto_provider();
        let home = Home::new(backend).await;
        let (server, _provider) = start(&home).await;
        let base = server.base().to_owned();

        let config = server.get("/api/config").await.json();
        assert_eq!(config["oidc_providers"], json!([
            {"id": "test", "display_name": "Test IdP"},
            {"id": "second", "display_name": "second"}
        ]));

        // A first sign-in creates a password-less account with the provider's default groups.
        let (page, browser) = sign_in(format!("{base}/api/auth/oidc/test?next=/jobs%3Fstatus%3Dfailed"), "alice").await;
        let result = fragment(&page);
        assert!(result.contains_key("access_token"), "{result:?}");
        assert_eq!(result.get("next").map(String::as_str), Some("%2Fjobs%3Fstatus%3Dfailed"));
        assert_eq!(result.get("token_type").map(String::as_str), Some("Bearer"));
        let alice = As::new(&server, result["access_token"].clone());
        let me = alice.get("/api/auth/me").await.json();
        assert_eq!(me["email"], "alice@example.test");
        assert_eq!(me["is_admin"], false);
        assert_eq!(me["groups"], json!(["readers", "sso"]));
        assert_eq!(me["auth_methods"], json!(["test"]));
        // The refresh cookie came with it, and the state cookie is spent.
        let refresh = browser.cookie(&base, "stroem_refresh").expect("refresh cookie");
        assert!(browser.cookie(&base, "stroem_oidc").is_none());
        let refreshed = server.post_json("/api/auth/refresh", &json!({"refresh_token": refresh}).to_string()).await;
        assert_eq!(refreshed.status, 200, "{}", refreshed.body);

        // The same person through a second provider: verified e-mail, so linked, not duplicated.
        let (page, _) = sign_in(format!("{base}/api/auth/oidc/second"), "alice").await;
        let again = As::new(&server, fragment(&page)["access_token"].clone());
        let me_again = again.get("/api/auth/me").await.json();
        assert_eq!(me_again["user_id"], me["user_id"]);
        assert_eq!(me_again["auth_methods"], json!(["second", "test"]));

        // An existing password account is linked when the e-mail is verified…
        let admin = As::login(&server, ADMIN.0, ADMIN.1).await;
        let bob = admin.create_user("bob@example.test", "bob-password-1", &["ops"]).await;
        let (page, _) = sign_in(format!("{base}/api/auth/oidc/test"), "bob").await;
        let bob_me = As::new(&server, fragment(&page)["access_token"].clone()).get("/api/auth/me").await.json();
        assert_eq!(bob_me["user_id"], bob);
        assert_eq!(bob_me["groups"], json!(["ops"]));
        assert_eq!(bob_me["auth_methods"], json!(["password", "test"]));

        // …and never when it is not.
        let carol = admin.create_user("unverified-carol@example.test", "carol-password-1", &[]).await;
        let (page, _) = sign_in(format!("{base}/api/auth/oidc/test"), "unverified-carol").await;
        assert_eq!(fragment(&page).get("error").map(String::as_str), Some("email_not_verified"));
        let carol_user = admin.get(&format!("/api/users/{carol}")).await.json();
        assert_eq!(carol_user["auth_methods"], json!(["password"]));
        // Without an account to take over, an unverified address gets a new account.
        let (page, _) = sign_in(format!("{base}/api/auth/oidc/test"), "unverified-dave").await;
        assert!(fragment(&page).contains_key("access_token"));
        let (page, _) = sign_in(format!("{base}/api/auth/oidc/test"), "noemail").await;
        assert_eq!(fragment(&page).get("error").map(String::as_str), Some("missing_email"));

        // A callback without the flow's cookie, or with another state, is refused.
        let forged = tokio::task::spawn_blocking({
            let base = base.clone();
            move || Browser::new().request("GET", &format!("{base}/api/auth/oidc/test/callback?code=abc&state=xyz"), None)
        })
        .await
        .expect("thread");
        assert_eq!(fragment(&forged).get("error").map(String::as_str), Some("invalid_state"));

        // `next` must be a same-origin path; unknown providers do not exist.
        for next in ["//evil.example", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "/%2F%2Fevil.example"] {
            let path = format!("/api/auth/oidc/test?next={}", next.replace('/', "%2F").replace('\\', "%5C").replace(':', "%3A"));
            let reply = server.get(&path).await;
            assert_eq!((reply.status, reply.json()["field"].as_str()), (400, Some("next")), "{next}");
        }
        assert_eq!(server.get("/api/auth/oidc/nope").await.status, 404);

        // Every OIDC sign-in is in the audit trail.
        let audit = admin.get("/api/audit?action=auth.oidc").await.json();
        let outcomes: Vec<&str> = audit.as_array().expect("list").iter().rev().filter_map(|entry| entry["outcome"].as_str()).collect();
        assert_eq!(outcomes, ["success", "success", "success", "email_not_verified", "success", "missing_email", "invalid_state"]);
        assert_eq!(audit[audit.as_array().map_or(0, Vec::len) - 1]["via"], "oidc:test");
    }
}
