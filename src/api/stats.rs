//! `GET /api/config` and `GET /api/stats` (API §3.5, §3.6): the UI's bootstrap document and
//! the job counts by status.

use serde::{Deserialize, Serialize};

use crate::engine::JobStatus;

/// `GET /api/config`, always public: what the UI needs before anyone logs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConfigReply {
    /// The server's version (`CARGO_PKG_VERSION`).
    pub version: String,
    pub auth_required: bool,
    pub has_internal_auth: bool,
    pub oidc_providers: Vec<OidcProvider>,
}

/// [P2] one configured OpenID Connect provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OidcProvider {
    pub id: String,
    pub display_name: String,
}

/// `GET /api/stats`: how many jobs are in each status. Every status is present, 0 when none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatsReply {
    pub pending: u64,
    pub running: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub skipped: u64,
}

impl StatsReply {
    /// Sums `(status, count)` rows as a `GROUP BY status` query returns them.
    pub fn from_counts(counts: impl IntoIterator<Item = (JobStatus, u64)>) -> Self {
        let mut stats = StatsReply::default();
        for (status, count) in counts {
            let slot = match status {
                JobStatus::Pending => &mut stats.pending,
                JobStatus::Running => &mut stats.running,
                JobStatus::Completed => &mut stats.completed,
                JobStatus::Failed => &mut stats.failed,
                JobStatus::Cancelled => &mut stats.cancelled,
                JobStatus::Skipped => &mut stats.skipped,
            };
            *slot += count;
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stats_list_every_status() {
        let stats = StatsReply::from_counts([
            (JobStatus::Completed, 40),
            (JobStatus::Running, 2),
            (JobStatus::Completed, 1),
        ]);
        assert_eq!(
            serde_json::to_value(stats).expect("serialises"),
            json!({"pending": 0, "running": 2, "completed": 41, "failed": 0, "cancelled": 0,
                   "skipped": 0})
        );
    }
}
