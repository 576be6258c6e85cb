//! One test binary for every end-to-end test. Each test makes its own uniquely named tables,
//! queues, keys and secrets on the shared moto server, so tests run in parallel without
//! seeing each other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_caller;
mod oauth_vault;
mod relay_grants;
mod spine;
mod trace_alerts;
mod webhook_intake;
