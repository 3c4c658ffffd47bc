//! The `workspace_token` of pod-step claims (API §7.1, §7.3): it opens the tarball of its own
//! revision while its lease lives, and nothing else — not another revision, not another route,
//! not after the step's report ended the lease. Script steps get none.

use serde_json::json;
use stroem::orchestrator::JobSource;
use stroem::store::WorkerRegistration;

use super::leases::{claim, key_of, succeeded};
use crate::server_harness::{Home, serve_test};

const WORKER_TOKEN: &str = "a-worker-token-long-enough-for-no-warning";

const WORKSPACE: &str = r#"
tasks:
  pods:
    flow:
      fetch:
        type: script
        runner: pod
        script: ls
      plain:
        type: script
        script: echo plain
        depends_on: [fetch]
"#;

serve_test! {
    async fn a_workspace_token_opens_only_its_revision_while_its_lease_lives(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure(&format!(
            "workspaces:\n  default: {{ type: folder, path: \"{}\" }}\nembedded_worker: false\n\
             worker_token: {WORKER_TOKEN}",
            workspace.display()
        ));
        let server = home.start().await;
        let orchestrator = server.orchestrator();
        let worker = orchestrator
            .register_worker(&WorkerRegistration {
                name: "pods".to_owned(),
                version: "test".to_owned(),
                capabilities: vec!["script".to_owned(), "kubernetes".to_owned()],
                tags: Vec::new(),
                max_concurrent: 4,
            })
            .await
            .expect("register")
            .worker_id;
        orchestrator
            .create_job("default", "pods", json!({}), JobSource::api())
            .await
            .expect("job created");
        let claimed = claim(orchestrator, worker).await;
        assert_eq!(claimed.spec.step, "fetch");
        let token = claimed.workspace_token.clone().expect("a pod step's claim carries a token");
        assert!(!token.contains(WORKER_TOKEN));
        let revision = claimed.revision.clone();
        let bearer = format!("Bearer {token}");
        let tarball = |revision: &str| format!("/worker/workspace/default.tar.gz?revision={revision}");

        let (status, served, bytes) = download(&format!("{}{}", server.base(), tarball(&revision)), &bearer).await;
        assert_eq!((status, served.as_deref()), (200, Some(revision.as_str())));
        assert!(bytes.starts_with(&[0x1f, 0x8b]), "a gzip archive");

        // Another revision, the active one implied, another route: refused.
        let other = server.send("GET", &tarball("0123abcd"), &[("authorization", &bearer)], Vec::new()).await;
        assert_eq!(other.status, 401, "{}", other.body);
        assert!(other.body.contains("another revision"), "{}", other.body);
        let implied = server
            .send("GET", "/worker/workspace/default.tar.gz", &[("authorization", &bearer)], Vec::new())
            .await;
        assert_eq!(implied.status, 401);
        let heartbeat = server
            .call("POST", "/worker/heartbeat", &[("authorization", &bearer)], Some(&json!({"worker_id": worker}).to_string()))
            .await;
        assert_eq!(heartbeat.status, 401, "{}", heartbeat.body);
        let forged = format!("Bearer {}x", token);
        let forged = server.send("GET", &tarball(&revision), &[("authorization", &forged)], Vec::new()).await;
        assert_eq!(forged.status, 401);

        // The step's report ends the lease, and the token with it.
        orchestrator
            .complete_step(&key_of(&claimed), succeeded(json!(null)))
            .await
            .expect("completed");
        let after = server.send("GET", &tarball(&revision), &[("authorization", &bearer)], Vec::new()).await;
        assert_eq!(after.status, 401, "{}", after.body);
        assert!(after.body.contains("lease has ended"), "{}", after.body);

        // A script step's claim carries none.
        let plain = claim(orchestrator, worker).await;
        assert_eq!(plain.spec.step, "plain");
        assert_eq!(plain.workspace_token, None);
        server.stop().await;
    }
}

/// GETs a tarball with `authorization`: status, `X-Revision` and the bytes.
async fn download(url: &str, authorization: &str) -> (u16, Option<String>, Vec<u8>) {
    let url = url.to_owned();
    let authorization = authorization.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut response = ureq::get(&url)
            .header("authorization", &authorization)
            .call()
            .expect("the tarball answers");
        let revision = response
            .headers()
            .get("x-revision")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = response.body_mut().read_to_vec().expect("the archive");
        (response.status().as_u16(), revision, bytes)
    })
    .await
    .expect("the request thread")
}
