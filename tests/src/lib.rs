//! The shared test stand of hsbridge's suites (`integration/`, `resilience/`, `adversarial/`,
//! the CLI's operator tests and the perf harness): one copy of what each of them needs, so the
//! suites do not each keep their own.
//!
//! - `aws`: SDK clients pointed at moto (which `scripts/test` starts and points
//!   `AWS_ENDPOINT_URL` at), resource builders and readers.
//! - `cli`: the operator CLI's suites' log keeping and output reading.
//! - `hubspot`: the HTTP HubSpot simulator (OAuth token, introspect, revoke, uninstall, CRM).
//! - `signed`: requests and Lambda events signed as HubSpot signs them, independently of the
//!   verification crate under test.
//!
//! `docs/testing-stand.md` lists what is still copied per suite and the plan to move it here.
// Test support: a failed set-up call is a failed test, so these helpers panic with its error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod aws;
pub mod cli;
pub mod hubspot;
pub mod lambda;
pub mod moto;
pub mod process;
pub mod proxy;
pub mod runtime_api;
pub mod signed;
pub mod stack;
pub mod template;
