//! The api-caller binary's cold start, run as Lambda would start it (outside Lambda the runtime
//! then stops, which ends the process): a stack delivering to the demo API says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts the binary with a minimal configuration and returns what it logged.
fn cold_start(is_demo: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_api-caller"))
        .env_clear()
        .env(
            "HSBRIDGE_PROTECTED_API_URL",
            "https://abc123.execute-api.us-east-1.amazonaws.com/demo",
        )
        .env("HSBRIDGE_PROTECTED_API_IS_DEMO", is_demo)
        .env("HSBRIDGE_ACCOUNTS_TABLE", "accounts")
        .env("HSBRIDGE_HUBSPOT_SECRET_ID", "app")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDCOLDSTART")
        .env("AWS_SECRET_ACCESS_KEY", "cold-start-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("the api-caller did not stop outside Lambda");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_cold_start_on_the_demo_api_warns_that_events_are_discarded() {
    let log = cold_start("true");
    assert!(
        log.contains("demo API") && log.contains("discards"),
        "no warning at cold start:\n{log}"
    );
    assert!(!log.contains("cold-start-secret"));
    let log = cold_start("false");
    assert!(!log.contains("demo API"), "warned for its own API:\n{log}");
}
