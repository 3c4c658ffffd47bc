//! `workspace_token` (API §7.1, §7.3 [P3]): the credential a claim for a pod step carries so the
//! pod can download its revision's tarball without ever holding the worker token.
//!
//! A token names one lease (its id, worker, job and step), one workspace and one revision, and
//! is signed with HMAC-SHA256. The server grants a tarball request with it only for that
//! workspace and revision, and only while the lease is the step's current lease and `active` or
//! `cancelling` — so it dies with the attempt, and nothing has to be stored for it.
//!
//! The key is derived from `worker_token`, so every server replica sharing the token accepts
//! the tokens of the others; a server without `worker_token` (only its embedded worker runs
//! steps) signs with a random key of its own process.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::store::{Lease, LeaseKey};

/// Every workspace token starts with this, so a route can tell it from a worker token.
pub const PREFIX: &str = "stroem-ws.";

/// Signs and checks workspace tokens.
#[derive(Clone)]
pub struct WorkspaceTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for WorkspaceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkspaceTokens { key: •••• }")
    }
}

impl Default for WorkspaceTokens {
    /// A random key, good for this process only.
    fn default() -> Self {
        WorkspaceTokens {
            key: rand::random(),
        }
    }
}

/// What a valid token grants: one revision's tarball while the lease lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    #[serde(rename = "l")]
    pub lease_id: Uuid,
    #[serde(rename = "w")]
    pub worker_id: Uuid,
    #[serde(rename = "j")]
    pub job_id: Uuid,
    #[serde(rename = "s")]
    pub step_name: String,
    #[serde(rename = "ws")]
    pub workspace: String,
    #[serde(rename = "r")]
    pub revision: String,
}

impl Grant {
    /// The lease the grant depends on, as a report would name it.
    pub fn lease_key(&self) -> LeaseKey {
        LeaseKey {
            lease_id: self.lease_id,
            worker_id: self.worker_id,
            job_id: self.job_id,
            step_name: self.step_name.clone(),
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

impl WorkspaceTokens {
    /// Keys derived from the shared `worker_token`: every server with it accepts the tokens of
    /// the others.
    pub fn from_worker_token(worker_token: &str) -> Self {
        let mut mac = HmacSha256::new_from_slice(worker_token.as_bytes())
            .unwrap_or_else(|_| unreachable_key());
        mac.update(b"stroem workspace_token v1");
        WorkspaceTokens {
            key: mac.finalize().into_bytes().into(),
        }
    }

    /// A token for `lease`'s pod to fetch `revision` of `workspace`.
    pub fn mint(&self, lease: &Lease, workspace: &str, revision: &str) -> String {
        let grant = Grant {
            lease_id: lease.lease_id,
            worker_id: lease.worker_id,
            job_id: lease.job_id,
            step_name: lease.step_name.clone(),
            workspace: workspace.to_owned(),
            revision: revision.to_owned(),
        };
        // A struct of strings and UUIDs always encodes.
        let payload = serde_json::to_vec(&grant).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let signature = URL_SAFE_NO_PAD.encode(self.sign(&payload));
        format!("{PREFIX}{payload}.{signature}")
    }

    /// The grant of a token this server (or one sharing its key) signed; `None` for anything
    /// else. The lease is not checked here.
    pub fn verify(&self, token: &str) -> Option<Grant> {
        let rest = token.strip_prefix(PREFIX)?;
        let (payload, signature) = rest.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = HmacSha256::new_from_slice(&self.key).ok()?;
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature).ok()?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        serde_json::from_slice(&payload).ok()
    }

    fn sign(&self, payload: &str) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable_key());
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// HMAC accepts keys of any length.
fn unreachable_key() -> HmacSha256 {
    HmacSha256::new_from_slice(&[0; 32]).unwrap_or_else(|_| unreachable!("HMAC takes any key"))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::store::LeaseStatus;

    fn lease() -> Lease {
        Lease {
            lease_id: Uuid::now_v7(),
            job_id: Uuid::now_v7(),
            step_name: "deploy[1]".to_owned(),
            attempt: 1,
            worker_id: Uuid::now_v7(),
            state: LeaseStatus::Active,
            claimed_at: Utc::now(),
            started_at: None,
            expires_at: Utc::now(),
            report_digest: None,
        }
    }

    #[test]
    fn a_token_verifies_only_unaltered_and_with_its_key() {
        let tokens = WorkspaceTokens::from_worker_token("a-worker-token");
        let lease = lease();
        let token = tokens.mint(&lease, "default", "abc123");
        let grant = tokens.verify(&token).expect("valid");
        assert_eq!(grant.lease_key().lease_id, lease.lease_id);
        assert_eq!(
            (grant.workspace.as_str(), grant.revision.as_str()),
            ("default", "abc123")
        );
        // The same worker token on another replica: the same key.
        assert!(
            WorkspaceTokens::from_worker_token("a-worker-token")
                .verify(&token)
                .is_some()
        );
        assert!(
            WorkspaceTokens::from_worker_token("another")
                .verify(&token)
                .is_none()
        );
        assert!(WorkspaceTokens::default().verify(&token).is_none());
        // Another revision in the payload breaks the signature.
        let (payload, signature) = token[PREFIX.len()..].split_once('.').expect("two parts");
        let mut forged: Grant =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        forged.revision = "def456".to_owned();
        let forged = format!(
            "{PREFIX}{}.{signature}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"))
        );
        assert!(tokens.verify(&forged).is_none());
        assert!(tokens.verify("a-worker-token").is_none());
        assert!(!token.contains("a-worker-token"));
    }
}
