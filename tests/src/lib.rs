//! The shared test stand of hsbridge's end-to-end suites (`integration/`, `resilience/`): one
//! copy of what each of them needs to talk to moto, so the suites do not each keep their own.
//! The suites need moto, which `scripts/test` starts and points `AWS_ENDPOINT_URL` at.
//! `docs/testing-stand.md` lists what is still copied per suite and the plan to move it here.
// Test support: a failed set-up call is a failed test, so these helpers panic with its error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod aws;
pub mod lambda;
pub mod moto;
pub mod process;
pub mod runtime_api;
pub mod stack;
pub mod template;
