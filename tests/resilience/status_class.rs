//! HubSpot does not retry a webhook answered 400, 401, 403, 404 or 405, so the class of every
//! answer is part of not losing events: each failure whose cause is on our side is a 5xx, and
//! only a request that is itself bad gets a 4xx. One walk over every failure path of the
//! intake, and the rejected-signature alarm read from `template.yaml` against the metric a
//! burst of 401s really emits.

use crate::stand::{HOST, IntakeStand, PATH, PORTAL, batch, send, signed, v3};
use crate::{SHARED, stand};
use axum::body::Body;
use hsbridge_integration_tests::aws::now_ms;
use hsbridge_integration_tests::proxy::{Fault, Service};
use hsbridge_platform::SystemClock;
use hsbridge_platform::metrics::Metrics;
use hsbridge_webhook_intake::{app, wiring};
use http::{Request, StatusCode};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// The request is bad: HubSpot drops it, rightly.
    Client,
    /// The fault is ours (or AWS's): HubSpot retries.
    Server,
}

fn class(status: StatusCode) -> Option<Class> {
    if status.is_client_error() {
        Some(Class::Client)
    } else if status.is_server_error() {
        Some(Class::Server)
    } else {
        None
    }
}

fn signed_with(path_and_query: &str, body: &str) -> Request<Body> {
    let ts = now_ms();
    Request::post(path_and_query)
        .header("host", HOST)
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/json")
        .header(
            "x-hubspot-signature-v3",
            v3(path_and_query, body.as_bytes(), ts),
        )
        .header("x-hubspot-request-timestamp", ts.to_string())
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn every_failure_on_our_side_answers_5xx_and_only_a_bad_request_gets_4xx() {
    let _shared = SHARED.read().await;
    type Break = fn(&IntakeStand);
    let body = || batch(PORTAL, 1..3, now_ms());
    let ours: [(&str, Break); 8] = [
        ("the app secret unreadable", |s| {
            s.proxy.fail(Service::SecretsManager, Fault::Unreachable);
        }),
        ("the app secret throttled", |s| {
            s.proxy.fail(Service::SecretsManager, Fault::Throttle);
        }),
        ("the account table unreachable", |s| {
            s.proxy
                .fail_operation(Service::DynamoDb, "BatchGetItem", Fault::Unreachable, 0);
        }),
        ("the account table failing", |s| {
            s.proxy
                .fail_operation(Service::DynamoDb, "BatchGetItem", Fault::ServerError, 0);
        }),
        ("the dedupe table failing", |s| {
            s.proxy.fail_operation(
                Service::DynamoDb,
                "TransactWriteItems",
                Fault::ServerError,
                0,
            );
        }),
        ("the queue failing", |s| {
            s.proxy.fail(Service::Sqs, Fault::ServerError);
        }),
        ("every AWS connection refused", |s| {
            s.proxy.refuse_connections()
        }),
        ("AWS slower than the request budget", |s| {
            s.proxy.slow_down(Service::DynamoDb, Duration::from_secs(5));
        }),
    ];
    for (case, break_it) in ours {
        let stand = IntakeStand::new().await;
        let app = stand.app();
        break_it(&stand);
        let (status, answer) = send(&app, signed(&body(), now_ms())).await;
        assert_eq!(
            class(status),
            Some(Class::Server),
            "{case}: {status} {answer}"
        );
        assert!(stand.proxy.injected() > 0 || case.contains("slower") || case.contains("refused"));
    }

    // A signed request whose query this stack was not told about: the target URL configured
    // in HubSpot and the stack disagree, which is ours to fix.
    let stand = IntakeStand::new().await;
    let app = stand.app();
    let (status, _) = send(&app, signed_with(&format!("{PATH}?x=1"), &body())).await;
    assert_eq!(
        class(status),
        Some(Class::Server),
        "unexpected query: {status}"
    );

    // Really bad requests.
    let forged = {
        let mut r = signed(&body(), now_ms());
        r.headers_mut()
            .insert("x-hubspot-signature-v3", "AAAA".parse().unwrap());
        r
    };
    let unsigned = Request::post(PATH)
        .header("host", HOST)
        .body(Body::from(body()))
        .unwrap();
    let huge = "[".to_owned() + &" ".repeat(2 * 1024 * 1024) + "]";
    let bad: [(&str, Request<Body>, StatusCode); 5] = [
        ("a forged signature", forged, StatusCode::UNAUTHORIZED),
        ("no signature", unsigned, StatusCode::UNAUTHORIZED),
        (
            "a stale timestamp",
            signed(&body(), now_ms() - 3_600_000),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a signed body that is not a batch",
            signed("{\"not\":\"a batch\"}", now_ms()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a body over the bound",
            signed(&huge, now_ms()),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (case, request, expected) in bad {
        let (status, answer) = send(&app, request).await;
        assert_eq!(status, expected, "{case}: {answer}");
        assert_eq!(class(status), Some(Class::Client), "{case}");
    }
    assert!(stand.queued().await.is_empty());
}

/// The parts of `SignatureRejectionAlarm` and its threshold's default that decide when it
/// fires, read from the template's text (the block layout is the template's own).
#[derive(Debug)]
struct RejectionAlarm {
    namespace: String,
    metric: String,
    function: String,
    statistic: String,
    period_s: u64,
    evaluation_periods: u64,
    threshold: f64,
}

fn field<'a>(block: &'a [&'a str], key: &str) -> &'a str {
    block
        .iter()
        .find_map(|l| l.trim().strip_prefix(key).map(str::trim))
        .unwrap_or_else(|| panic!("template.yaml: SignatureRejectionAlarm has no {key}"))
}

fn block<'a>(lines: &'a [&'a str], name: &str) -> &'a [&'a str] {
    let start = lines
        .iter()
        .position(|l| l.trim_end() == format!("  {name}:"))
        .unwrap_or_else(|| panic!("template.yaml has no {name}"));
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("  ") && !l.starts_with("   ") && !l.trim().is_empty())
        .map_or(lines.len(), |n| start + 1 + n);
    &lines[start..end]
}

fn rejection_alarm() -> RejectionAlarm {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let alarm = block(&lines, "SignatureRejectionAlarm");
    assert_eq!(field(alarm, "Type:"), "AWS::CloudWatch::Alarm");
    let threshold_ref = field(alarm, "Threshold:");
    let parameter = threshold_ref
        .strip_prefix("!Ref ")
        .expect("the threshold is a parameter");
    let threshold = field(block(&lines, parameter), "Default:").parse().unwrap();
    let dimensions = field(alarm, "Dimensions:");
    let function = dimensions
        .split("Value: ")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .expect("one Function dimension")
        .to_owned();
    assert!(dimensions.contains("Name: Function"), "{dimensions}");
    assert_eq!(
        field(alarm, "ComparisonOperator:"),
        "GreaterThanOrEqualToThreshold"
    );
    RejectionAlarm {
        namespace: field(alarm, "Namespace:").to_owned(),
        metric: field(alarm, "MetricName:").to_owned(),
        function,
        statistic: field(alarm, "Statistic:").to_owned(),
        period_s: field(alarm, "Period:").parse().unwrap(),
        evaluation_periods: field(alarm, "EvaluationPeriods:").parse().unwrap(),
        threshold,
    }
}

#[tokio::test]
async fn a_burst_of_401s_raises_the_rejected_signature_alarm_within_five_minutes() {
    let _shared = SHARED.read().await;
    let alarm = rejection_alarm();
    // The alarm looks at one window of at most five minutes, summing what each request emits.
    assert_eq!(alarm.statistic, "Sum");
    assert!(
        alarm.period_s * alarm.evaluation_periods <= 300,
        "{alarm:?}: it cannot fire within five minutes"
    );
    let stand = stand::IntakeStand::new().await;
    let metrics = Metrics::capturing("hsbridge", "webhook-intake");
    let intake = app(wiring::aws_state(
        &stand.config,
        &stand.proxied,
        Arc::new(SystemClock),
        metrics.clone(),
    ));
    // A burst as large as the threshold, of every kind of 401 (a wrong secret, a wrong public
    // URL, no signature, a stale timestamp), all inside one period.
    let threshold = alarm.threshold as usize;
    for n in 0..threshold {
        let body = batch(PORTAL, 1..2, now_ms());
        let request = match n % 4 {
            0 => {
                let mut r = signed(&body, now_ms());
                r.headers_mut()
                    .insert("x-hubspot-signature-v3", "AAAA".parse().unwrap());
                r
            }
            1 => {
                let mut r = signed(&body, now_ms());
                r.headers_mut()
                    .insert("host", "stale.example.com".parse().unwrap());
                r
            }
            2 => Request::post(PATH)
                .header("host", HOST)
                .body(Body::from(body))
                .unwrap(),
            _ => signed(&body, now_ms() - 3_600_000),
        };
        let (status, _) = send(&intake, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let mut sum = 0.0;
    for line in metrics.captured() {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let declared = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], alarm.namespace.as_str());
        assert_eq!(declared["Dimensions"], serde_json::json!([["Function"]]));
        assert_eq!(v["Function"], alarm.function.as_str());
        sum += v[alarm.metric.as_str()].as_f64().unwrap_or(0.0);
    }
    assert!(
        sum >= alarm.threshold,
        "{sum} {} in one burst of {threshold} 401s: the alarm ({alarm:?}) would not fire",
        alarm.metric
    );
}
