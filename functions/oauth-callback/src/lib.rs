//! The HubSpot OAuth install flow.
//!
//! `GET /oauth/install` redirects the browser to HubSpot's authorize page with a fresh 256-bit
//! `state`, and sets the signed state cookie. `GET /oauth/callback` checks the cookie against
//! the URL's `state` (CSRF), exchanges the code, validates the grant, learns the hub id, and
//! stores the account's tokens in the vault.
//!
//! It must never: accept a code without a verified, matching, unexpired state cookie; show a
//! browser any internal detail; put a token, a code or the client secret into a response, a
//! log line or an error.

pub mod config;
pub mod handler;
pub mod wiring;

pub use config::{CallbackConfig, CallbackSettings};
pub use handler::{CallbackState, app};

/// Every environment variable the `oauth-callback` binary reads besides those Lambda sets: its
/// configuration's and the HTTP runner's. The deployment test holds the template against it.
pub const BINARY_VARIABLES: &[&[&str]] = &[
    CallbackConfig::VARIABLES,
    hsbridge_vault::VaultConfig::VARIABLES,
    hsbridge_platform::serve::VARIABLES,
];
