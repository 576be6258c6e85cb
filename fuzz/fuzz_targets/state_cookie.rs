//! The `state_cookie` fuzz target.
//!
//! Its body (input type, calls, oracles) is `fuzz/bodies/state_cookie.rs`, shared with the
//! corpus replay in the main workspace's tests (`tests/fuzz_replay`).

#![no_main]

#[path = "../bodies/state_cookie.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|input: body::Input<'_>| body::run(input));
