//! The webhook intake: HubSpot's Webhooks API calls `POST /webhooks/hubspot` with a JSON array of
//! up to 100 events. This function verifies HubSpot's signature before anything else, then parses,
//! drops events of accounts without an active installation, deduplicates each event for longer
//! than HubSpot's retry horizon, and hands new events to SQS — all before HubSpot gets its 2xx,
//! and inside HubSpot's 5-second wait.
//!
//! It must never: parse a body before the signature verified, acknowledge an event that is not
//! durably queued, log a secret, a signature or a body, or panic on any input.

pub mod config;
pub mod dedupe;
pub mod events;
pub mod handler;
pub mod queue;
pub mod wiring;

pub use config::IntakeConfig;
pub use handler::{IntakeState, app};

/// Every environment variable the `webhook-intake` binary reads besides those Lambda sets: its
/// configuration's and the HTTP runner's. The deployment test holds the template against it.
pub const BINARY_VARIABLES: &[&[&str]] =
    &[IntakeConfig::VARIABLES, hsbridge_platform::serve::VARIABLES];
