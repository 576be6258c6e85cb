//! The outbound API caller: why nobody needs an IP allowlist.
//!
//! HubSpot-originated work reaches the company's API Gateway only as requests signed with AWS
//! SigV4 by this function's IAM role, which API Gateway's `AWS_IAM` authorization checks.
//!
//! Two entry points, two binaries (each its own Lambda function with its own least-privilege
//! role):
//! - `api-caller` ([`consumer`]): SQS batches of events from the webhook intake, optionally
//!   enriched with CRM properties fetched from HubSpot ([`hubspot`], within [`limits`]), each
//!   `POST`ed to the protected API; partial batch failures reported.
//! - `hubspot-relay` ([`relay`]): `ANY /hubspot/relay/{path+}`, verified with HubSpot's v3
//!   signature, then forwarded to the protected API.
//!
//! [`protected`] signs and sends what both forward.

pub mod alerts;
pub mod config;
pub mod consumer;
pub mod context;
pub mod hubspot;
pub mod limits;
pub mod protected;
pub mod relay;
pub mod wiring;

pub use config::{CallerConfig, RelayConfig};

/// Every environment variable the `api-caller` binary reads besides those Lambda sets (it runs
/// the Lambda runtime directly, not the HTTP runner). The deployment test holds the template
/// against it.
pub const API_CALLER_VARIABLES: &[&[&str]] = &[
    CallerConfig::VARIABLES,
    hsbridge_vault::VaultConfig::VARIABLES,
];
/// Every environment variable the `hubspot-relay` binary reads besides those Lambda sets: its
/// configuration's and the HTTP runner's.
pub const HUBSPOT_RELAY_VARIABLES: &[&[&str]] =
    &[RelayConfig::VARIABLES, hsbridge_platform::serve::VARIABLES];
