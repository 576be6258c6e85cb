//! `hsbridge verify --explain` on captured requests: each known mangling, captured both as a raw
//! HTTP request and as a Lambda event, is diagnosed as exactly that mangling.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers: a failed unwrap is a failed test

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hsbridge_verify::{Secret, sign_v1, sign_v2, sign_v3};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

const SECRET: &str = "cli-test-current-secret";
const OLD_SECRET: &str = "cli-test-previous-secret";
const NOW: u64 = 1_700_000_000_000;
const HOST: &str = "hooks.example.com";
const PATH: &str = "/webhooks/hubspot";
const BODY: &str = r#"[{"eventId":1,"portalId":62515,"subscriptionType":"contact.creation"}]"#;

/// What HubSpot signed.
#[derive(Clone)]
struct Signed {
    version: &'static str,
    uri: String,
    body: Vec<u8>,
    timestamp: String,
    secret: &'static str,
}

/// The request as it arrived.
#[derive(Clone)]
struct Arrived {
    scheme: &'static str,
    host: String,
    path: String,
    query: Option<String>,
    body: Vec<u8>,
    timestamp: String,
    stage: Option<&'static str>,
    /// Rewrites the signature header's value.
    signature: fn(String) -> String,
}

fn signed() -> Signed {
    Signed {
        version: "v3",
        uri: format!("https://{HOST}{PATH}"),
        body: BODY.as_bytes().to_vec(),
        timestamp: NOW.to_string(),
        secret: SECRET,
    }
}

fn arrived() -> Arrived {
    Arrived {
        scheme: "https",
        host: HOST.to_owned(),
        path: PATH.to_owned(),
        query: None,
        body: BODY.as_bytes().to_vec(),
        timestamp: NOW.to_string(),
        stage: None,
        signature: |s| s,
    }
}

fn signature_of(s: &Signed) -> String {
    let secret = Secret::new(s.secret);
    match s.version {
        "v1" => sign_v1(&secret, &s.body),
        "v2" => sign_v2(&secret, "POST", &s.uri, &s.body),
        _ => sign_v3(&secret, "POST", &s.uri, &s.body, &s.timestamp),
    }
}

fn signature_headers(s: &Signed, a: &Arrived) -> Vec<(String, String)> {
    let value = (a.signature)(signature_of(s));
    match s.version {
        "v1" | "v2" => vec![
            ("X-HubSpot-Signature".into(), value),
            ("X-HubSpot-Signature-Version".into(), s.version.into()),
        ],
        _ => vec![
            ("X-HubSpot-Signature-v3".into(), value),
            ("X-HubSpot-Request-Timestamp".into(), a.timestamp.clone()),
        ],
    }
}

fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hsbridge-verify-explain-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn raw_capture(s: &Signed, a: &Arrived) -> PathBuf {
    let target = match &a.query {
        Some(q) => format!("{}?{q}", a.path),
        None => a.path.clone(),
    };
    let mut text = format!("POST {target} HTTP/1.1\r\nHost: {}\r\n", a.host);
    if a.scheme == "http" {
        text.push_str("X-Forwarded-Proto: http\r\n");
    }
    text.push_str("Content-Type: application/json\r\n");
    text.push_str(&format!("Content-Length: {}\r\n", a.body.len()));
    for (name, value) in signature_headers(s, a) {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(&a.body);
    temp_file("request.http", &bytes)
}

fn event_capture(s: &Signed, a: &Arrived) -> PathBuf {
    let mut headers = json!({
        "host": a.host,
        "content-type": "application/json",
        "content-length": a.body.len().to_string(),
    });
    if a.scheme == "http" {
        headers["x-forwarded-proto"] = json!("http");
    }
    for (name, value) in signature_headers(s, a) {
        headers[name.to_ascii_lowercase()] = json!(value);
    }
    let (body, is_base64) = match std::str::from_utf8(&a.body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (STANDARD.encode(&a.body), true),
    };
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": a.path,
        "rawQueryString": a.query.clone().unwrap_or_default(),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": a.host,
            "domainPrefix": "hooks",
            "http": {
                "method": "POST",
                "path": a.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "54.174.0.1",
                "userAgent": "HubSpot Connect 2.0 (http://dev.hubspot.com/)"
            },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": a.stage.unwrap_or("$default"),
            "time": "14/Nov/2023:22:13:20 +0000",
            "timeEpoch": NOW
        },
        "body": body,
        "isBase64Encoded": is_base64
    });
    temp_file("event.json", event.to_string().as_bytes())
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn hsbridge(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_hsbridge"))
        .args(args)
        .env_remove("HUBSPOT_CLIENT_SECRET")
        .env_remove("HUBSPOT_PREVIOUS_CLIENT_SECRET")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `verify --explain --format json` on both captures; checks no secret or full signature
/// leaks, and returns each form's exit code and JSON.
fn explain_both(s: &Signed, a: &Arrived, extra: &[&str]) -> Vec<(&'static str, i32, Value)> {
    let full_signature = (a.signature)(signature_of(s));
    let now = NOW.to_string();
    [
        ("request", raw_capture(s, a)),
        ("event", event_capture(s, a)),
    ]
    .into_iter()
    .map(|(form, path)| {
        let path = path.to_str().unwrap().to_owned();
        let mut args = vec![
            "verify",
            "--explain",
            "--format",
            "json",
            "--now",
            &now,
            "--secret",
            SECRET,
            if form == "request" {
                "--request"
            } else {
                "--event"
            },
            &path,
        ];
        args.extend_from_slice(extra);
        let run = hsbridge(&args);
        for text in [&run.stdout, &run.stderr] {
            assert!(!text.contains(SECRET), "{form}: the secret leaked");
            assert!(
                !text.contains(OLD_SECRET),
                "{form}: the previous secret leaked"
            );
            assert!(
                !text.contains(full_signature.trim()),
                "{form}: the full signature leaked"
            );
        }
        let value: Value = serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("{form}: not JSON ({e}): {} {}", run.stdout, run.stderr));
        (form, run.code, value)
    })
    .collect()
}

fn assert_diagnosis(s: Signed, a: Arrived, extra: &[&str], expected: &str) {
    for (form, code, value) in explain_both(&s, &a, extra) {
        assert_eq!(
            value["diagnosis"], expected,
            "{form} capture: {}",
            value["text"]
        );
        assert_eq!(
            code, 1,
            "{form} capture should be invalid: {}",
            value["text"]
        );
        assert_eq!(value["result"], "invalid");
    }
}

/// A timestamp (searched back from NOW) whose signature satisfies `want`.
fn timestamp_where(want: impl Fn(&str) -> bool) -> String {
    (0..100_000u64)
        .map(|i| (NOW - i).to_string())
        .find(|ts| {
            want(&signature_of(&Signed {
                timestamp: ts.clone(),
                ..signed()
            }))
        })
        .unwrap()
}

#[test]
fn a_correct_capture_is_valid_with_exit_code_zero() {
    for (form, code, value) in explain_both(&signed(), &arrived(), &[]) {
        assert_eq!(code, 0, "{form}");
        assert_eq!(value["result"], "valid", "{form}");
        assert_eq!(value["diagnosis"], Value::Null, "{form}");
    }
}

#[test]
fn a_wrong_secret_is_invalid_with_no_diagnosis() {
    let s = Signed {
        secret: "some-other-secret",
        ..signed()
    };
    for (form, code, value) in explain_both(&s, &arrived(), &[]) {
        assert_eq!(code, 1, "{form}");
        assert_eq!(value["first_failure"], "mismatch", "{form}");
        assert_eq!(value["diagnosis"], Value::Null, "{form}");
    }
}

#[test]
fn without_explain_only_valid_or_invalid_is_printed() {
    let path = raw_capture(&signed(), &arrived());
    let now = NOW.to_string();
    let run = hsbridge(&[
        "verify",
        "--request",
        path.to_str().unwrap(),
        "--secret",
        SECRET,
        "--now",
        &now,
    ]);
    assert_eq!((run.code, run.stdout.trim()), (0, "valid"));
}

#[test]
fn a_missing_file_or_secret_is_a_usage_error_with_exit_code_two() {
    let run = hsbridge(&[
        "verify",
        "--request",
        "/nonexistent/capture.http",
        "--secret",
        "x",
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("could not read"));
    let path = raw_capture(&signed(), &arrived());
    let run = hsbridge(&["verify", "--request", path.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--secret"));
}

#[test]
fn curl_verbose_prefixes_and_lf_line_ends_are_read() {
    let s = signed();
    let sig = signature_of(&s);
    let text = format!(
        "* Connected to {HOST}\n> POST {PATH} HTTP/1.1\n> Host: {HOST}\n> Content-Length: {}\n\
         > X-HubSpot-Signature-v3: {sig}\n> X-HubSpot-Request-Timestamp: {NOW}\n>\n{BODY}\n",
        BODY.len()
    );
    let path = temp_file("curl.txt", text.as_bytes());
    let now = NOW.to_string();
    let run = hsbridge(&[
        "verify",
        "--request",
        path.to_str().unwrap(),
        "--secret",
        SECRET,
        "--now",
        &now,
    ]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
}

#[test]
fn an_old_capture_names_the_skew_but_still_checks_the_signature() {
    let path = raw_capture(&signed(), &arrived());
    let later = (NOW + 86_400_000).to_string();
    let run = hsbridge(&[
        "verify",
        "--explain",
        "--format",
        "json",
        "--request",
        path.to_str().unwrap(),
        "--secret",
        SECRET,
        "--now",
        &later,
    ]);
    let value: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(run.code, 1);
    assert_eq!(value["first_failure"], "timestamp-skew");
    assert_eq!(value["signature_matches"], "current");
}

#[test]
fn plus_turned_into_spaces_is_accepted_and_named() {
    let ts = timestamp_where(|sig| sig[1..].contains('+'));
    let s = Signed {
        timestamp: ts.clone(),
        ..signed()
    };
    let a = Arrived {
        timestamp: ts,
        signature: |sig| sig.replace('+', " "),
        ..arrived()
    };
    for (form, code, value) in explain_both(&s, &a, &[]) {
        assert_eq!(code, 0, "{form}");
        assert_eq!(value["diagnosis"], "plus-as-space", "{form}");
    }
}

#[test]
fn a_leading_plus_lost_as_a_space_is_diagnosed() {
    let ts = timestamp_where(|sig| sig.starts_with('+'));
    let s = Signed {
        timestamp: ts.clone(),
        ..signed()
    };
    let a = Arrived {
        timestamp: ts,
        signature: |sig| sig[1..].to_owned(),
        ..arrived()
    };
    assert_diagnosis(s, a, &[], "plus-as-space");
}

#[test]
fn a_request_signed_with_the_previous_secret_is_diagnosed_as_the_wrong_secret() {
    let s = Signed {
        secret: OLD_SECRET,
        ..signed()
    };
    assert_diagnosis(
        s,
        arrived(),
        &["--previous-secret", OLD_SECRET, "--accept", "current"],
        "wrong-secret",
    );
}

#[test]
fn body_manglings_are_diagnosed() {
    let pretty = serde_json::to_vec_pretty(&serde_json::from_str::<Value>(BODY).unwrap()).unwrap();
    assert_diagnosis(
        signed(),
        Arrived {
            body: pretty,
            ..arrived()
        },
        &[],
        "json-reserialised",
    );
    assert_diagnosis(
        signed(),
        Arrived {
            body: STANDARD.encode(BODY).into_bytes(),
            ..arrived()
        },
        &[],
        "body-base64-encoded",
    );
    assert_diagnosis(
        Signed {
            body: STANDARD.encode(BODY).into_bytes(),
            ..signed()
        },
        arrived(),
        &[],
        "body-base64-decoded",
    );
}

fn signed_at(uri: &str) -> Signed {
    Signed {
        uri: uri.to_owned(),
        ..signed()
    }
}

#[test]
fn path_manglings_are_diagnosed() {
    assert_diagnosis(
        signed(),
        Arrived {
            path: format!("/Prod{PATH}"),
            stage: Some("Prod"),
            ..arrived()
        },
        &[],
        "stage-prefix-added",
    );
    assert_diagnosis(
        signed_at(&format!("https://{HOST}/prod{PATH}")),
        Arrived {
            stage: Some("prod"),
            ..arrived()
        },
        &[],
        "stage-prefix-missing",
    );
    let public = format!("https://{HOST}/v1{PATH}");
    assert_diagnosis(
        signed_at(&public),
        arrived(),
        &["--public-url", &public],
        "mapping-key-missing",
    );
    let public = format!("https://{HOST}{PATH}");
    assert_diagnosis(
        signed(),
        Arrived {
            path: format!("/v1{PATH}"),
            ..arrived()
        },
        &["--public-url", &public],
        "mapping-key-added",
    );
    assert_diagnosis(
        signed(),
        Arrived {
            path: format!("{PATH}/"),
            ..arrived()
        },
        &[],
        "trailing-slash-added",
    );
    assert_diagnosis(
        signed_at(&format!("https://{HOST}{PATH}/")),
        arrived(),
        &[],
        "trailing-slash-removed",
    );
}

#[test]
fn host_and_scheme_manglings_are_diagnosed() {
    let public = format!("https://{HOST}{PATH}");
    assert_diagnosis(
        signed(),
        Arrived {
            host: "internal-alb.example.net".to_owned(),
            ..arrived()
        },
        &["--public-url", &public],
        "host-differs",
    );
    assert_diagnosis(
        signed_at(&format!("http://{HOST}{PATH}")),
        arrived(),
        &[],
        "scheme-changed",
    );
}

fn with_query(q: &str) -> Arrived {
    Arrived {
        query: Some(q.to_owned()),
        ..arrived()
    }
}

#[test]
fn query_manglings_are_diagnosed() {
    let base = format!("https://{HOST}{PATH}");
    assert_diagnosis(
        signed_at(&format!("{base}?z=1&a=2")),
        with_query("a=2&z=1"),
        &[],
        "query-reordered",
    );
    assert_diagnosis(
        signed_at(&format!("{base}?tag=a%2Bb")),
        with_query("tag=a+b"),
        &[],
        "uri-decoded",
    );
    assert_diagnosis(
        signed_at(&format!("{base}?user=~ann")),
        with_query("user=%7Eann"),
        &[],
        "uri-re-encoded",
    );
}

#[test]
fn reserved_escape_manglings_of_a_v2_request_are_diagnosed() {
    // v2 is not the intake's: asked for explicitly.
    let v2 = ["--versions", "v3,v2"];
    let base = format!("https://{HOST}{PATH}");
    assert_diagnosis(
        Signed {
            version: "v2",
            ..signed_at(&format!("{base}?at=10%3A30"))
        },
        with_query("at=10:30"),
        &v2,
        "reserved-escape-decoded",
    );
    assert_diagnosis(
        Signed {
            version: "v2",
            ..signed_at(&format!("{base}?at=10:30"))
        },
        with_query("at=10%3A30"),
        &v2,
        "reserved-escape-encoded",
    );
}

/// `hsbridge verify` on a raw capture of `s`, with `extra` flags and environment.
fn verify_plain(s: &Signed, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let path = raw_capture(s, &arrived());
    let now = NOW.to_string();
    let mut args = vec![
        "verify",
        "--now",
        &now,
        "--secret",
        SECRET,
        "--request",
        path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut command = Command::new(env!("CARGO_BIN_EXE_hsbridge"));
    command
        .args(&args)
        .env_remove("HUBSPOT_CLIENT_SECRET")
        .env_remove("HUBSPOT_PREVIOUS_CLIENT_SECRET")
        .env_remove("HSBRIDGE_ALLOW_V1")
        .env_remove("HSBRIDGE_SIGNATURE_WINDOW_MS");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_v1_only_capture_is_invalid_as_the_deployed_intake_judges_it_unless_v1_is_allowed() {
    let v1 = Signed {
        version: "v1",
        ..signed()
    };
    let default = verify_plain(&v1, &[], &[]);
    assert_eq!(default.code, 1, "{} {}", default.stdout, default.stderr);
    assert_eq!(
        default.stdout.trim(),
        "invalid (run with --explain to see why)"
    );
    assert!(
        default
            .stderr
            .contains("Policy: the deployed intake's: v3 accepted"),
        "{}",
        default.stderr
    );
    // The intake's own setting, read the same way.
    for allowed in [
        verify_plain(&v1, &["--allow-v1"], &[]),
        verify_plain(&v1, &[], &[("HSBRIDGE_ALLOW_V1", "true")]),
    ] {
        assert_eq!(allowed.code, 0, "{} {}", allowed.stdout, allowed.stderr);
        assert_eq!(allowed.stdout.trim(), "valid");
        assert!(
            allowed.stderr.contains("v3, v1 accepted"),
            "{}",
            allowed.stderr
        );
    }
    // Trying another policy says so.
    let asked = verify_plain(&v1, &["--versions", "v1"], &[]);
    assert_eq!(asked.code, 0);
    assert!(
        asked.stderr.contains("as asked with --versions"),
        "{}",
        asked.stderr
    );
    // A v3 capture is valid either way.
    assert_eq!(verify_plain(&signed(), &[], &[]).code, 0);
}

#[test]
fn the_intakes_window_setting_is_the_default_window() {
    // Signed 2 minutes before --now: inside HubSpot's 5 minutes, outside a 60 s intake window.
    let old = Signed {
        timestamp: (NOW - 120_000).to_string(),
        ..signed()
    };
    let mut arrived_old = arrived();
    arrived_old.timestamp = old.timestamp.clone();
    let path = raw_capture(&old, &arrived_old);
    let now = NOW.to_string();
    let run = |env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hsbridge"));
        command
            .args([
                "verify",
                "--now",
                &now,
                "--secret",
                SECRET,
                "--request",
                path.to_str().unwrap(),
            ])
            .env_remove("HSBRIDGE_SIGNATURE_WINDOW_MS")
            .env_remove("HSBRIDGE_ALLOW_V1");
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    assert_eq!(run(&[]).status.code(), Some(0));
    let narrow = run(&[("HSBRIDGE_SIGNATURE_WINDOW_MS", "60000")]);
    assert_eq!(narrow.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&narrow.stderr).contains("60000 ms (HSBRIDGE_SIGNATURE_WINDOW_MS)"),
        "{}",
        String::from_utf8_lossy(&narrow.stderr)
    );
}

#[test]
fn a_timestamp_signed_in_seconds_but_sent_in_milliseconds_is_diagnosed() {
    assert_diagnosis(
        Signed {
            timestamp: (NOW / 1000).to_string(),
            ..signed()
        },
        arrived(),
        &[],
        "timestamp-altered",
    );
}

#[test]
fn a_fetch_whose_context_was_appended_after_signing_is_diagnosed() {
    let base = format!("https://{HOST}{PATH}");
    assert_diagnosis(
        signed_at(&format!("{base}?q=1")),
        with_query("q=1&appId=9&portalId=62515&userId=7&userEmail=ann%40example.com"),
        &[],
        "context-params-appended",
    );
}
