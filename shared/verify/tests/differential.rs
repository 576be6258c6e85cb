//! Differential test: `verify` against an independent Python implementation of HubSpot's
//! documented signature rules (`scripts/differential.py`, standard library only).
//!
//! The script generates requests (methods, URIs with every kind of escape, Unicode and binary
//! bodies, timestamps in and out of the window) with right and plausibly wrong signatures, and
//! the decision the documented rules give; every case must get the same accept/reject here.
//!
//! `HSBRIDGE_DIFF_COUNT` (default 100 000) and `HSBRIDGE_DIFF_SEED` change the run;
//! `HSBRIDGE_DIFF_ARGS` passes further options to the script (e.g. `--hex-case strict` to see the
//! cases where the reference leaves a choice open). python3 is required: without it the test
//! fails rather than passing silently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hsbridge_verify::{Policy, Secret, SecretSet, SignatureVersion, SignedRequest, verify};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

const DEFAULT_COUNT: u64 = 100_000;
const DEFAULT_SEED: u64 = 20_260_521;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
        Err(_) => default,
    }
}

fn version(name: &str) -> SignatureVersion {
    match name {
        "v1" => SignatureVersion::V1,
        "v2" => SignatureVersion::V2,
        "v3" => SignatureVersion::V3,
        other => panic!("unknown version {other:?} in a generated case"),
    }
}

/// Runs one generated case through `verify`; returns whether it was accepted.
fn rust_decision(case: &Value) -> bool {
    let mut headers = HeaderMap::new();
    for pair in case["headers"].as_array().unwrap() {
        let name = HeaderName::from_bytes(pair[0].as_str().unwrap().as_bytes()).unwrap();
        let value = HeaderValue::from_str(pair[1].as_str().unwrap()).unwrap();
        headers.append(name, value);
    }
    let secrets: Vec<&str> = case["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let mut set = SecretSet::new(Secret::new(secrets[0])).unwrap();
    if let Some(previous) = secrets.get(1) {
        set = set.with_previous(Secret::new(*previous)).unwrap();
    }
    let accepted: Vec<SignatureVersion> = case["accept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| version(v.as_str().unwrap()))
        .collect();
    let policy = Policy::accepting(&accepted)
        .with_window_ms(case["window_ms"].as_u64().unwrap())
        .unwrap();
    let body = STANDARD.decode(case["body_b64"].as_str().unwrap()).unwrap();
    let req = SignedRequest {
        method: case["method"].as_str().unwrap(),
        uri: case["uri"].as_str().unwrap(),
        body: &body,
        headers: &headers,
    };
    verify(&req, &set, &policy, case["now_ms"].as_u64().unwrap()).is_ok()
}

#[test]
fn verify_agrees_with_an_independent_implementation_on_generated_requests() {
    let count = env_u64("HSBRIDGE_DIFF_COUNT", DEFAULT_COUNT);
    let seed = env_u64("HSBRIDGE_DIFF_SEED", DEFAULT_SEED);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("scripts/differential.py");
    assert!(script.is_file(), "{} is missing", script.display());
    let out = std::env::temp_dir().join(format!(
        "hsbridge-differential-{}-{seed}.jsonl",
        std::process::id()
    ));

    let started = Instant::now();
    let status = Command::new("python3")
        .arg(&script)
        .args(["--count", &count.to_string(), "--seed", &seed.to_string()])
        .arg("--out")
        .arg(&out)
        .args(
            std::env::var("HSBRIDGE_DIFF_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "python3 is required for the differential test and could not be run ({e}); \
                 install Python 3.11+ (standard library only)"
            )
        });
    assert!(status.success(), "{} failed: {status}", script.display());
    let generated = started.elapsed();

    let file = std::fs::File::open(&out).unwrap();
    let mut total = 0u64;
    let mut accepted = 0u64;
    let mut ambiguous: BTreeMap<String, u64> = BTreeMap::new();
    let mut disagreements: BTreeMap<String, u64> = BTreeMap::new();
    let mut examples: Vec<String> = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.unwrap();
        let case: Value = serde_json::from_str(&line).unwrap();
        let expected = case["expected"].as_bool().unwrap();
        if let Some(name) = case["ambiguity"].as_str() {
            *ambiguous.entry(name.to_owned()).or_default() += 1;
        }
        let got = rust_decision(&case);
        total += 1;
        accepted += u64::from(got);
        if got != expected {
            let class = case["class"].as_str().unwrap_or("?").to_owned();
            *disagreements.entry(class).or_default() += 1;
            if examples.len() < 10 {
                examples.push(format!(
                    "expected {} got {}: {line}",
                    if expected { "accept" } else { "reject" },
                    if got { "accept" } else { "reject" },
                ));
            }
        }
    }
    let _ = std::fs::remove_file(&out);
    eprintln!(
        "differential: {total} cases (seed {seed}), {accepted} accepted, generated in {:.1?}, \
         total {:.1?}; cases on documented ambiguities: {ambiguous:?}",
        generated,
        started.elapsed()
    );
    assert_eq!(total, count, "the script wrote {total} cases, not {count}");
    assert!(
        disagreements.is_empty(),
        "{} disagreements by class: {disagreements:?}\nfirst ones:\n{}",
        disagreements.values().sum::<u64>(),
        examples.join("\n")
    );
}
