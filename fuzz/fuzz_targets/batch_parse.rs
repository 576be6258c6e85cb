//! The `batch_parse` fuzz target.
//!
//! Its body (input type, calls, oracles) is `fuzz/bodies/batch_parse.rs`, shared with the
//! corpus replay in the main workspace's tests (`tests/fuzz_replay`).

#![no_main]

#[path = "../bodies/batch_parse.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
