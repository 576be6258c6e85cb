//! A replay of a signed relay request inside the signature window is forwarded again: HubSpot's
//! requests carry no nonce the relay could remember. What lets the protected API drop it is
//! `x-hsbridge-idempotency-key`, so every form of one signed request that the verifier accepts
//! (the same bytes again, or respelled in a way HubSpot's v3 MAC cannot tell apart) must carry
//! the original's key, and no caller can choose the key.

use crate::harness::*;
use axum::body::Body;
use http::{Request, StatusCode};

/// Signed with HubSpot's escapes in several places: `:` and `,` in the path, `%40` and `:` in
/// the query.
const SIGNED: &str =
    "/hubspot/relay/notes/a:b,c?portalId=62515&userEmail=ann%40example.com&q=x%3Ay";

/// A body whose signature at `NOW` holds a `+`, which the verifier also reads from a space (a
/// form decoder on the way may have turned it into one).
fn body_with_a_plus_in_its_signature() -> (String, String) {
    (0u32..)
        .map(|n| {
            let body = format!(r#"{{"n":{n}}}"#);
            let sig = signature(
                "POST",
                &format!("{RELAY_BASE}{SIGNED}"),
                body.as_bytes(),
                &ts(NOW),
            );
            (body, sig)
        })
        .find(|(_, sig)| sig.contains('+'))
        .unwrap()
}

fn original(body: &str) -> Request<Body> {
    relayed("POST", SIGNED, body.as_bytes().to_vec())
}

#[tokio::test]
async fn a_replay_inside_the_window_in_any_spelling_its_signature_accepts_carries_the_originals_idempotency_key()
 {
    let (body, sig) = body_with_a_plus_in_its_signature();
    let respelt = |sent: &str| Shifted::of("POST", SIGNED, body.as_bytes()).to(sent);
    let replays: Vec<(&str, Request<Body>)> = vec![
        ("the same bytes again", original(&body)),
        (
            "the MAC's decoded characters sent escaped and its escapes sent decoded",
            respelt(
                "/hubspot/relay/notes/a%3Ab%2Cc?portalId=62515&userEmail=ann@example.com&q=x:y",
            ),
        ),
        (
            "the escapes in lower case",
            respelt(
                "/hubspot/relay/notes/a%3ab%2cc?portalId=62515&userEmail=ann%40example.com&q=x%3ay",
            ),
        ),
        (
            "the signature's + sent as a space",
            with(
                original(&body),
                "x-hubspot-signature-v3",
                sig.replace('+', " ").as_bytes(),
            ),
        ),
        (
            "a key of the caller's own beside the signed request",
            with(
                original(&body),
                "x-hsbridge-idempotency-key",
                b"chosen-by-the-caller",
            ),
        ),
    ];
    let relay = Relay::new().await;
    let (status, _, _) = send(relay.router(), original(&body)).await;
    assert_eq!(status, StatusCode::OK);
    relay.clock().advance_ms(WINDOW_MS - 60_000);
    let mut names = vec!["the original"];
    for (name, request) in replays {
        let (status, _, answer) = send(relay.router(), request).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{name}: {}",
            String::from_utf8_lossy(&answer)
        );
        names.push(name);
    }
    let seen = relay.upstream.standin.recorded();
    assert_eq!(seen.len(), names.len());
    let first = &seen[0];
    let key = first.header("x-hsbridge-idempotency-key").unwrap();
    assert_eq!(key.len(), 64);
    for (name, request) in names.iter().zip(&seen) {
        // One signed request: the same forwarded request, and so the same key.
        assert_eq!(
            (&request.path, &request.query, &request.body),
            (&first.path, &first.query, &first.body),
            "{name}"
        );
        assert_eq!(
            request.header("x-hsbridge-user-email"),
            Some("ann@example.com"),
            "{name}"
        );
        assert_eq!(
            request.header("x-hsbridge-idempotency-key"),
            Some(key),
            "{name} reached the protected API under another key"
        );
    }
}

#[tokio::test]
async fn a_second_call_with_the_same_content_gets_another_idempotency_key() {
    let (body, _) = body_with_a_plus_in_its_signature();
    let relay = Relay::new().await;
    let (status, _, _) = send(relay.router(), original(&body)).await;
    assert_eq!(status, StatusCode::OK);
    // HubSpot's next call a millisecond later: another timestamp, another signature.
    let next = hubspot(
        "POST",
        RELAY_BASE,
        "bridge.example.com",
        SIGNED,
        body.as_bytes().to_vec(),
        NOW + 1,
    );
    let (status, _, _) = send(relay.router(), next).await;
    assert_eq!(status, StatusCode::OK);
    let seen = relay.upstream.standin.recorded();
    let keys: Vec<&str> = seen
        .iter()
        .map(|r| r.header("x-hsbridge-idempotency-key").unwrap())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
}
