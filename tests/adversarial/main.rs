//! Adversarial HTTP suite: every public route against hostile input, each case a row of a table
//! (name, request, expected status) so the tables double as documentation
//! (`docs/adversarial-cases.md` lists them).
//!
//! For every row: the documented status, no panic, and nothing written — no claim or queue
//! message (intake), no stored account and no call to HubSpot's token endpoint (OAuth), nothing
//! reaching the SigV4-verifying stand-in for the protected API (relay) — except the control rows,
//! which show the same route does hand a legitimate request on. `lambda` sends hostile requests
//! as API Gateway events through the code path the deployed functions run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod intake;
mod intake_versions;
mod lambda;
mod oauth;
mod oauth_restart;
mod relay;
mod relay_context;
mod relay_paths;
mod relay_replay;
mod secrets;
