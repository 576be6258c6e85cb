//! The local stack's event log, read by `hsbridge events show|list --dev`: the embedded log the
//! intake's deduper and the API caller write, served as JSON on the stack's loopback port.
//!
//! It answers what the deployed log would (identifiers, types, times, statuses), never an event
//! body; the stack listens on loopback only.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hsbridge_platform::event_log::{EventLogReader, InMemoryEventLog, ListFilter};
use hsbridge_platform::{Clock, SystemClock};
use std::sync::Arc;

/// Where the local stack serves its event log.
pub const EVENTS_PATH: &str = "/_hsbridge/events";

pub(super) fn app(log: Arc<InMemoryEventLog>) -> axum::Router {
    axum::Router::new()
        .route(EVENTS_PATH, get(list))
        .route(&format!("{EVENTS_PATH}/{{key}}"), get(show))
        .with_state(log)
}

fn failed(e: &hsbridge_platform::event_log::EventLogError) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({"error": e.to_string()})),
    )
        .into_response()
}

async fn show(State(log): State<Arc<InMemoryEventLog>>, Path(key): Path<String>) -> Response {
    match log.show(&key, SystemClock.now_ms()).await {
        Ok(found) => Json(found).into_response(),
        Err(e) => failed(&e),
    }
}

/// `?filter=` the JSON of a [`ListFilter`].
#[derive(serde::Deserialize)]
struct FilterQuery {
    filter: String,
}

async fn list(
    State(log): State<Arc<InMemoryEventLog>>,
    Query(query): Query<FilterQuery>,
) -> Response {
    let Ok(filter) = serde_json::from_str::<ListFilter>(&query.filter) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "the filter is not a ListFilter"})),
        )
            .into_response();
    };
    match log.list(&filter, SystemClock.now_ms()).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => failed(&e),
    }
}
