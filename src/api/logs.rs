//! Reading a job's log over REST (API §4.2). The query is [`super::query::LogQuery`]; the
//! lines themselves are JSONL text (API §4.1) produced by the log store.

use serde::{Deserialize, Serialize};

/// `{"logs": "{\"seq\":1,…}\n", "last_seq": 1, "has_more": false}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogsReply {
    /// JSONL, every line newline-terminated, in `seq` order.
    pub logs: String,
    /// `seq` of the last line returned, or the request's `after` when none: the next `after`.
    pub last_seq: u64,
    /// More lines matched than `limit` allowed.
    pub has_more: bool,
}
