//! Paginated list responses (API §1.5): the body is a bare JSON array — what existing clients
//! parse with `jq '.[]'` — and the number of all matches travels in `X-Total-Count`.

use axum::Json;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub static X_TOTAL_COUNT: HeaderName = HeaderName::from_static("x-total-count");

/// One page of a list and the total number of matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paginated<T> {
    pub items: Vec<T>,
    pub total: u64,
}

impl<T> Paginated<T> {
    pub fn new(items: Vec<T>, total: u64) -> Self {
        Paginated { items, total }
    }
}

impl<T: Serialize> IntoResponse for Paginated<T> {
    fn into_response(self) -> Response {
        let mut response = Json(self.items).into_response();
        response
            .headers_mut()
            .insert(X_TOTAL_COUNT.clone(), HeaderValue::from(self.total));
        response
    }
}
