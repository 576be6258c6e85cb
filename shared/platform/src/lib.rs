//! What every hsbridge function shares beyond signature verification: typed configuration read
//! once at cold start, logging and CloudWatch metrics, the AWS SDK configuration with bounded
//! timeouts, the HubSpot app's client secrets, the status of installed accounts, and serving one
//! axum `Router` under Lambda or on a local socket.
//!
//! Each outside dependency is a small port trait with an AWS adapter and an embedded adapter;
//! which one runs is chosen at start-up by configuration, never by a Cargo feature.

pub mod accounts;
pub mod alerts;
pub mod aws;
pub mod clock;
pub mod config;
pub mod dynamo;
pub mod event_log;
pub mod http;
pub mod metrics;
pub mod request;
pub mod secrets;
pub mod serve;
pub mod telemetry;
pub mod trace;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::ConfigError;
