//! `POST /webhooks/hubspot` at the edges of its signature checks: the v3 timestamp window to the
//! millisecond, and v1, which HubSpot's Webhooks API batches also carry, where a deployment
//! allows it (`HSBRIDGE_ALLOW_V1`): a request with any v3 header is judged on v3 alone, so a
//! broken v3 cannot be downgraded to a replayable v1; v2 (workflow actions, cards) never passes;
//! and a v1 batch older than the dedupe horizon is refused.

use crate::harness::*;
use hsbridge_verify::{Secret, sign_v1, sign_v2};
use hsbridge_webhook_intake::config::IntakeSettings;
use http::Request;

fn with_v1() -> Intake {
    Intake::with_settings(IntakeSettings {
        signature_window_ms: WINDOW_MS,
        allow_v1: true,
        ..IntakeSettings::default()
    })
}

/// A batch as HubSpot's Webhooks API sends it with only its older signature.
fn legacy(version: &str, body: &str) -> Request<axum::body::Body> {
    let secret = Secret::new(SECRET);
    let signature = match version {
        "v2" => sign_v2(
            &secret,
            "POST",
            &format!("https://{HOOK_HOST}{WEBHOOK_PATH}"),
            body.as_bytes(),
        ),
        _ => sign_v1(&secret, body.as_bytes()),
    };
    Request::post(WEBHOOK_PATH)
        .header("host", HOOK_HOST)
        .header("content-type", "application/json")
        .header("x-hubspot-signature", signature)
        .header("x-hubspot-signature-version", version)
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap()
}

/// A v1-signed batch that also carries v3 headers.
fn legacy_with(v3: &[(&'static str, &str)]) -> Request<axum::body::Body> {
    let mut request = legacy("v1", &batch());
    for (name, value) in v3 {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    request
}

fn window_cases() -> Vec<Case> {
    vec![
        Case::new(
            "a timestamp exactly the window old is accepted (control)",
            webhook_at(batch(), NOW - WINDOW_MS),
            200,
        )
        .handed_on(),
        Case::new(
            "a timestamp one millisecond older than the window is refused",
            webhook_at(batch(), NOW - WINDOW_MS - 1),
            401,
        ),
        Case::new(
            "a timestamp exactly the window ahead is accepted (control)",
            webhook_at(batch(), NOW + WINDOW_MS),
            200,
        )
        .handed_on(),
        Case::new(
            "a timestamp one millisecond further ahead than the window is refused",
            webhook_at(batch(), NOW + WINDOW_MS + 1),
            401,
        ),
        Case::new(
            "a timestamp at the end of u64 is refused without overflowing",
            webhook_at(batch(), u64::MAX),
            401,
        ),
        Case::new(
            "a timestamp of zero is refused",
            webhook_at(batch(), 0),
            401,
        ),
        Case::new(
            "a v1 batch is refused where v1 is not allowed",
            legacy("v1", &batch()),
            401,
        ),
    ]
}

fn v1_cases() -> Vec<Case> {
    let old = format!(
        "[{}]",
        event_json(PORTAL, 1).replace(&NOW.to_string(), &(NOW - 73 * 3_600_000).to_string())
    );
    let forged_v3 = "A".repeat(43) + "=";
    vec![
        Case::new(
            "a v1 batch is accepted where v1 is allowed (control)",
            legacy("v1", &batch()),
            200,
        )
        .handed_on(),
        Case::new(
            "a valid v1 beside a broken v3 signature is refused (no downgrade)",
            legacy_with(&[
                ("x-hubspot-signature-v3", &forged_v3),
                ("x-hubspot-request-timestamp", &NOW.to_string()),
            ]),
            401,
        ),
        Case::new(
            "a valid v1 beside a v3 timestamp alone is refused (v3 decides)",
            legacy_with(&[("x-hubspot-request-timestamp", &NOW.to_string())]),
            401,
        ),
        Case::new(
            "a valid v1 beside a v3 signature alone is refused (v3 decides)",
            legacy_with(&[("x-hubspot-signature-v3", &forged_v3)]),
            401,
        ),
        Case::new(
            "a valid v1 beside a stale v3 timestamp is refused",
            legacy_with(&[
                ("x-hubspot-signature-v3", &forged_v3),
                (
                    "x-hubspot-request-timestamp",
                    &(NOW - WINDOW_MS - 1).to_string(),
                ),
            ]),
            401,
        ),
        Case::new(
            "a v2 batch is refused even where v1 is allowed",
            legacy("v2", &batch()),
            401,
        ),
        Case::new(
            "a v1 batch whose events are older than the dedupe horizon is refused (a replay nothing would recognise)",
            legacy("v1", &old),
            401,
        ),
        Case::new(
            "a duplicated v1 signature is refused",
            duplicated(legacy("v1", &batch()), "x-hubspot-signature"),
            401,
        ),
        Case::new(
            "two signature versions are refused",
            twice(legacy("v1", &batch()), "x-hubspot-signature-version", b"v2"),
            401,
        ),
        Case::new(
            "an unknown signature version is refused",
            with(legacy("v1", &batch()), "x-hubspot-signature-version", b"v0"),
            401,
        ),
        Case::new(
            "a v1 signature over another body is refused",
            {
                let mut r = legacy("v1", &batch());
                *r.body_mut() = axum::body::Body::from(format!("[{}]", event_json(PORTAL, 2)));
                r
            },
            401,
        ),
    ]
}

#[tokio::test]
async fn the_v3_window_holds_to_the_millisecond_and_v1_is_refused_by_default() {
    run_table(async || Intake::new(), window_cases()).await;
}

#[tokio::test]
async fn where_v1_is_allowed_a_v3_header_decides_v2_never_passes_and_old_v1_batches_are_refused() {
    run_table(async || with_v1(), v1_cases()).await;
}
