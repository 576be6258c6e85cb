//! `POST /webhooks/hubspot`: size (413), then the v3 signature over the URL rebuilt from `Host`
//! and the raw body (401), then parsing (400); only then dedupe and queue.

use crate::harness::*;
use axum::body::Body;
use http::Request;

/// The intake's table. Every row but the control is answered without a claim or a message.
pub fn cases() -> Vec<Case> {
    let huge = vec![b' '; TEN_MB];
    vec![
        Case::new(
            "a signed batch is accepted and queued (control)",
            webhook(batch()),
            200,
        )
        .handed_on(),
        Case::new(
            "a replay inside the window is acknowledged as a duplicate and not queued again",
            webhook(batch()),
            200,
        )
        .after(webhook(batch()), WINDOW_MS - 60_000),
        Case::new(
            "a replay outside the window is refused",
            webhook(batch()),
            401,
        )
        .after(webhook(batch()), WINDOW_MS + 1),
        Case::new(
            "a timestamp further in the future than the window is refused",
            webhook_at(batch(), NOW + WINDOW_MS + 1),
            401,
        ),
        Case::new(
            "a timestamp that is not integer milliseconds is refused",
            {
                let body = batch();
                let t = format!("{NOW}.0");
                let sig = signature(
                    "POST",
                    &format!("https://{HOOK_HOST}{WEBHOOK_PATH}"),
                    body.as_bytes(),
                    &t,
                );
                with(
                    with(webhook(body), "x-hubspot-request-timestamp", t.as_bytes()),
                    "x-hubspot-signature-v3",
                    sig.as_bytes(),
                )
            },
            401,
        ),
        Case::new(
            "a missing X-HubSpot-Signature-v3 is refused",
            without(webhook(batch()), "x-hubspot-signature-v3"),
            401,
        ),
        Case::new(
            "a missing X-HubSpot-Request-Timestamp is refused",
            without(webhook(batch()), "x-hubspot-request-timestamp"),
            401,
        ),
        Case::new(
            "a missing Host is refused",
            without(webhook(batch()), "host"),
            401,
        ),
        Case::new(
            "a duplicated X-HubSpot-Signature-v3 is refused even when both copies are valid",
            duplicated(webhook(batch()), "x-hubspot-signature-v3"),
            401,
        ),
        Case::new(
            "a duplicated X-HubSpot-Request-Timestamp is refused",
            duplicated(webhook(batch()), "x-hubspot-request-timestamp"),
            401,
        ),
        Case::new(
            "a duplicated Host is refused",
            duplicated(webhook(batch()), "host"),
            401,
        ),
        Case::new(
            "an oversized (64 KiB) X-HubSpot-Signature-v3 is refused",
            with(webhook(batch()), "x-hubspot-signature-v3", &[b'A'; 65_536]),
            401,
        ),
        Case::new(
            "an oversized (64 KiB) X-HubSpot-Request-Timestamp is refused",
            with(
                webhook(batch()),
                "x-hubspot-request-timestamp",
                &[b'1'; 65_536],
            ),
            401,
        ),
        Case::new(
            "an oversized (64 KiB) Host is refused",
            with(webhook(batch()), "host", &[b'h'; 65_536]),
            401,
        ),
        Case::new(
            "a Host other than the one HubSpot signed is refused",
            with(webhook(batch()), "host", b"evil.example"),
            401,
        ),
        Case::new(
            "an X-Forwarded-Proto other than the one HubSpot signed is refused",
            with(webhook(batch()), "x-forwarded-proto", b"http"),
            401,
        ),
        Case::new(
            "a v1-only signature is refused where v1 is not allowed",
            {
                let body = batch();
                let sig = hsbridge_verify::sign_v1(
                    &hsbridge_verify::Secret::new(SECRET),
                    body.as_bytes(),
                );
                let request = without(
                    without(webhook(body), "x-hubspot-signature-v3"),
                    "x-hubspot-request-timestamp",
                );
                with(
                    with(request, "x-hubspot-signature", sig.as_bytes()),
                    "x-hubspot-signature-version",
                    b"v1",
                )
            },
            401,
        ),
        Case::new(
            "a 10 MB body declared in Content-Length is refused before it is read",
            with(
                webhook(huge.clone()),
                "content-length",
                TEN_MB.to_string().as_bytes(),
            ),
            413,
        ),
        Case::new(
            "a 10 MB body without Content-Length is refused at the limit",
            webhook(huge),
            413,
        ),
        Case::new(
            "a Content-Length that understates a 10 MB body does not lift the limit",
            with(webhook(vec![b' '; TEN_MB]), "content-length", b"10"),
            413,
        ),
        Case::new(
            "deeply nested JSON (100 000 levels), signed, is refused without overflowing the stack",
            webhook(deeply_nested(100_000)),
            400,
        ),
        Case::new(
            "a body that is not UTF-8, signed, is refused",
            webhook(b"[\xff\xfe]".to_vec()),
            400,
        ),
        Case::new(
            "a lone surrogate escape in a field hsbridge does not read, signed, is refused",
            webhook(format!(
                "[{}]",
                event_json(PORTAL, 1).replace("\"CRM\"", "\"\\ud800\"")
            )),
            400,
        ),
        Case::new(
            "a JSON object instead of an array, signed, is refused",
            webhook(event_json(PORTAL, 1)),
            400,
        ),
        Case::new(
            "101 events, signed, are refused",
            webhook(format!(
                "[{}]",
                (0..101)
                    .map(|i| event_json(PORTAL, i))
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            400,
        ),
        Case::new(
            "an event of an account that is not installed is acknowledged and dropped",
            webhook(format!("[{}]", event_json(999, 1))),
            200,
        ),
        Case::new(
            "a signed batch with a query string (a card's hubspot.fetch aimed here) is refused with 5xx and nothing is queued",
            hubspot(
                "POST",
                &format!("https://{HOOK_HOST}"),
                HOOK_HOST,
                &format!("{WEBHOOK_PATH}?appId=1&portalId=999&userId=7&userEmail=a%40b.example"),
                format!("[{}]", event_json(999, 1)),
                NOW,
            ),
            500,
        ),
        Case::new(
            "an unsigned batch with a query string is refused as unsigned",
            without(
                hubspot(
                    "POST",
                    &format!("https://{HOOK_HOST}"),
                    HOOK_HOST,
                    &format!("{WEBHOOK_PATH}?portalId=999"),
                    batch(),
                    NOW,
                ),
                "x-hubspot-signature-v3",
            ),
            401,
        ),
        Case::new(
            "GET is not a webhook",
            without(
                Request::get(WEBHOOK_PATH)
                    .header("host", HOOK_HOST)
                    .body(Body::empty())
                    .unwrap(),
                "content-type",
            ),
            405,
        ),
    ]
}

#[tokio::test]
async fn every_hostile_webhook_request_gets_its_documented_status_and_nothing_is_queued() {
    let answers = run_table(async || Intake::new(), cases()).await;
    // Refusals are fixed JSON: they say which check failed and echo nothing of the input.
    for (name, status, _, body) in answers {
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains("ud800") && !text.contains("evil"),
            "{name}: {text}"
        );
        if status.is_client_error() && status != http::StatusCode::METHOD_NOT_ALLOWED {
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(json["error"].is_string(), "{name}: {text}");
        }
    }
}

#[tokio::test]
async fn a_target_url_with_a_configured_query_is_accepted_and_any_other_query_refused() {
    let signed_at = |query: &str| {
        hubspot(
            "POST",
            &format!("https://{HOOK_HOST}"),
            HOOK_HOST,
            &format!("{WEBHOOK_PATH}{query}"),
            batch(),
            NOW,
        )
    };
    let intake = Intake::expecting_query("source=hubspot");
    let (status, _, _) = send(intake.router(), signed_at("?source=hubspot")).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(intake.queue.len(), 1);
    for other in ["", "?source=hubspot&portalId=999", "?source=HubSpot"] {
        let intake = Intake::expecting_query("source=hubspot");
        let (status, _, body) = send(intake.router(), signed_at(other)).await;
        assert_eq!(status, http::StatusCode::INTERNAL_SERVER_ERROR, "{other:?}");
        assert_eq!(&body[..], br#"{"error":"unexpected_query"}"#);
        assert_eq!(intake.writes(), 0, "{other:?}");
    }
}
