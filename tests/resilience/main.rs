//! Fault injection against moto and the intake under load.
//!
//! - `intake_faults`: DynamoDB, SQS or Secrets Manager throttling, failing or unreachable
//!   (through the fault-injecting proxy in `proxy`) → the intake answers 5xx and leaves nothing
//!   behind; HubSpot's retry after recovery queues each event exactly once.
//! - `batch_calls`: a full batch of 100 events in at most 20 AWS calls (counted by the proxy),
//!   with duplicates and another request's claims; answered in time when AWS is slow.
//! - `cpu_share`: the same with the intake held to a 128 MB Lambda's CPU share (a cgroup CPU
//!   quota on its thread; root only) and DynamoDB slowed: answered in time, nothing
//!   acknowledged unqueued.
//! - `recorded_calls`: the proxy records each intake call signed as its role, per action and
//!   resource (what the IAM evaluation of `tests/iam` reads).
//! - `vault_faults`: a token refresh while KMS or DynamoDB fails leaves the stored tokens intact,
//!   and a later refresh succeeds.
//! - `status_class`: every failure path of the intake answers the class that keeps HubSpot
//!   retrying what is ours to fix (5xx), and a burst of 401s raises the rejection alarm.
//! - `load`: the intake on a loopback socket under 10 concurrent senders sharing 1 000 signed
//!   batches (`HSBRIDGE_LOAD_BATCHES`, `HSBRIDGE_LOAD_EVENTS`), no error response, no event lost
//!   or duplicated; throughput and latency go to stdout.
//!
//! Needs moto at `AWS_ENDPOINT_URL` (`scripts/test` starts it). The load test runs alone: the
//! fault tests take [`SHARED`] for reading, the load test for writing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod batch_calls;
mod cpu_share;
mod event_log_calls;
mod intake_faults;
mod load;
mod recorded_calls;
mod stand;
mod status_class;
mod vault_faults;

/// Keeps the load test's figures free of the fault tests' traffic on the same moto.
pub static SHARED: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());
