//! `ANY /hubspot/relay/{path}`: size (413), then HubSpot's v3 signature (401), then the path in
//! canonical form (400) and the portal id (400); only then is anything sent to the protected
//! API (a SigV4-verifying stand-in here, which records what reaches it).

use crate::harness::*;
use http::StatusCode;

const Q: &str = "portalId=62515";

/// The relay's table. Only the controls reach the protected API.
pub fn cases() -> Vec<Case> {
    let signed_get =
        |path: &str| relayed("GET", &format!("/hubspot/relay{path}?{Q}"), b"".to_vec());
    vec![
        Case::new(
            "a signed GET is forwarded (control)",
            signed_get("/deals/42"),
            200,
        )
        .handed_on(),
        // HubSpot's requests carry no nonce, so within the window a replay is forwarded again,
        // under the original's idempotency key, by which the protected API drops it (every
        // spelling of a replay keeps the key: `relay_replay.rs`).
        Case::new(
            "a replay inside the window is forwarded again, under the original's idempotency key (no nonce to remember; control)",
            signed_get("/deals/42"),
            200,
        )
        .after(signed_get("/deals/42"), WINDOW_MS - 60_000)
        .handed_on(),
        Case::new(
            "a replay outside the window is refused",
            signed_get("/deals/42"),
            401,
        )
        .after(signed_get("/deals/42"), WINDOW_MS + 1),
        Case::new(
            "a missing X-HubSpot-Signature-v3 is refused",
            without(signed_get("/deals/42"), "x-hubspot-signature-v3"),
            401,
        ),
        Case::new(
            "a missing X-HubSpot-Request-Timestamp is refused",
            without(signed_get("/deals/42"), "x-hubspot-request-timestamp"),
            401,
        ),
        Case::new(
            "a duplicated X-HubSpot-Signature-v3 is refused",
            duplicated(signed_get("/deals/42"), "x-hubspot-signature-v3"),
            401,
        ),
        Case::new(
            "a duplicated X-HubSpot-Request-Timestamp is refused",
            duplicated(signed_get("/deals/42"), "x-hubspot-request-timestamp"),
            401,
        ),
        Case::new(
            "an oversized (64 KiB) X-HubSpot-Signature-v3 is refused",
            with(
                signed_get("/deals/42"),
                "x-hubspot-signature-v3",
                &[b'A'; 65_536],
            ),
            401,
        ),
        Case::new(
            "an oversized (64 KiB) X-HubSpot-Request-Timestamp is refused",
            with(
                signed_get("/deals/42"),
                "x-hubspot-request-timestamp",
                &[b'9'; 65_536],
            ),
            401,
        ),
        Case::new(
            "a 10 MB body declared in Content-Length is refused before it is read",
            with(
                relayed("POST", &format!("/hubspot/relay/x?{Q}"), vec![b'x'; TEN_MB]),
                "content-length",
                TEN_MB.to_string().as_bytes(),
            ),
            413,
        ),
        Case::new(
            "a 10 MB body without Content-Length is refused at the limit",
            relayed("POST", &format!("/hubspot/relay/x?{Q}"), vec![b'x'; TEN_MB]),
            413,
        ),
        Case::new(
            "deeply nested JSON, unsigned, is refused",
            without(
                relayed(
                    "POST",
                    &format!("/hubspot/relay/x?{Q}"),
                    deeply_nested(100_000),
                ),
                "x-hubspot-signature-v3",
            ),
            401,
        ),
        Case::new(
            "deeply nested JSON, signed, is checked without overflowing the stack and forwarded byte for byte (control)",
            relayed(
                "POST",
                &format!("/hubspot/relay/x?{Q}"),
                deeply_nested(100_000),
            ),
            200,
        )
        .handed_on(),
        Case::new(
            "a body that is not one JSON object or array, signed, is refused",
            relayed(
                "POST",
                &format!("/hubspot/relay/x?{Q}"),
                b"\xff\xfe\x00".to_vec(),
            ),
            400,
        ),
        Case::new(
            "a signed JSON body is forwarded byte for byte, not re-serialised (control)",
            relayed("POST", &format!("/hubspot/relay/x?{Q}"), JSON_BODY.to_vec()),
            200,
        )
        .handed_on(),
        Case::new(
            "a signed GET with a body is refused",
            relayed("GET", &format!("/hubspot/relay/x?{Q}"), b"{}".to_vec()),
            400,
        ),
        Case::new(
            "the end of a signed GET's query moved into a body under the same signature is refused",
            Shifted::of("GET", "/hubspot/relay/notes?userId=77&portalId=62515&appId=123", b"")
                .with_body("/hubspot/relay/notes?userId=77&portalId=6", b"2515&appId=123"),
            400,
        ),
        Case::new(
            "the end of a signed POST's query moved into its body under the same signature is refused",
            Shifted::of("POST", "/hubspot/relay/notes?portalId=62515", br#"{"note":"x"}"#)
                .with_body("/hubspot/relay/notes?portalId=62", br#"515{"note":"x"}"#),
            400,
        ),
        Case::new(
            "the start of a signed body moved into the query under the same signature is refused",
            Shifted::of("POST", "/hubspot/relay/notes?portalId=62515&a=", br#"{"note":"x"}"#)
                .with_body("/hubspot/relay/notes?portalId=62515&a={", br#""note":"x"}"#),
            400,
        ),
        Case::new(
            "a zero ending a signed query moved into the timestamp under the same signature is refused",
            Shifted::of("GET", "/hubspot/relay/contacts?portalId=62510", b"")
                .with_timestamp("/hubspot/relay/contacts?portalId=6251", &format!("0{NOW}")),
            401,
        ),
        Case::new(
            "an empty path segment is refused",
            signed_get("//deals"),
            400,
        ),
        Case::new(
            "a portalId with a leading zero is refused (one spelling per account)",
            relayed("GET", "/hubspot/relay/deals/42?portalId=062515", b"".to_vec()),
            400,
        ),
        Case::new(
            "a signed body sent with another body is refused",
            {
                let mut r = relayed(
                    "POST",
                    &format!("/hubspot/relay/x?{Q}"),
                    b"{\"a\":1}".to_vec(),
                );
                *r.body_mut() = axum::body::Body::from("{\"a\":2}");
                r
            },
            401,
        ),
        Case::new(
            "a Host override reaches only the configured API, with its own Host (control)",
            with(signed_get("/deals/42"), "host", b"evil.example"),
            200,
        )
        .handed_on(),
        Case::new(
            "injected hop-by-hop, credential and routing headers are dropped (control)",
            injected_headers(),
            200,
        )
        .handed_on(),
        Case::new("a .. segment is refused", signed_get("/a/../admin"), 400),
        Case::new("a . segment is refused", signed_get("/a/./admin"), 400),
        Case::new(
            "an encoded .. segment is refused",
            signed_get("/a/%2e%2e/admin"),
            400,
        ),
        Case::new(
            "a mixed-case encoded .. is refused",
            signed_get("/a/%2E%2e/admin"),
            400,
        ),
        Case::new("an encoded slash is refused", signed_get("/a%2Fb"), 400),
        Case::new(
            "a lower-case encoded slash is refused",
            signed_get("/a%2fb"),
            400,
        ),
        Case::new("an encoded backslash is refused", signed_get("/a%5cb"), 400),
        Case::new(
            "a double-encoded slash is forwarded as data, not as a slash (control)",
            signed_get("/a%252Fb"),
            200,
        )
        .handed_on(),
        Case::new("an encoded NUL is refused", signed_get("/a%00b"), 400),
        Case::new("a malformed escape is refused", signed_get("/a%zz"), 400),
        Case::new("a truncated escape is refused", signed_get("/a%2"), 400),
        Case::new(
            "an overlong UTF-8 encoding of . is refused",
            signed_get("/a/%c0%ae%c0%ae/admin"),
            400,
        ),
        Case::new(
            "a traversal without a signature is refused before the path is looked at",
            without(signed_get("/a/../admin"), "x-hubspot-signature-v3"),
            401,
        ),
        Case::new(
            "a signed encoded ? is refused as sent",
            signed_get("/notes/a%3FportalId=999&x="),
            400,
        ),
        Case::new(
            "a signed encoded ? re-split into path and query with the same signature is refused (the portal would be the sender's choice)",
            resent(
                "GET",
                &format!("/hubspot/relay/notes/a%3FportalId=999&x=?{Q}"),
                &format!("/hubspot/relay/notes/a?portalId=999&x=?{Q}"),
            ),
            400,
        ),
        Case::new(
            "a lower-case encoded ? re-split with the same signature is refused",
            resent(
                "GET",
                &format!("/hubspot/relay/notes/a%3fportalId=999&x=?{Q}"),
                &format!("/hubspot/relay/notes/a?portalId=999&x=?{Q}"),
            ),
            400,
        ),
        Case::new(
            "a query holding an encoded ? is refused",
            relayed("GET", &format!("/hubspot/relay/search?q=what%3F&{Q}"), b"".to_vec()),
            400,
        ),
        Case::new(
            "a signed encoded slash re-sent as a slash forwards the path the signature covers (control)",
            resent(
                "GET",
                &format!("/hubspot/relay/a%2Fb?{Q}"),
                &format!("/hubspot/relay/a/b?{Q}"),
            ),
            200,
        )
        .handed_on(),
        Case::new(
            "a method hubspot.fetch never sends is refused",
            relayed("OPTIONS", &format!("/hubspot/relay/deals/42?{Q}"), b"".to_vec()),
            405,
        ),
        Case::new(
            "a repeated userId is refused (which user is calling must not be ambiguous)",
            relayed(
                "GET",
                "/hubspot/relay/deals/42?portalId=62515&userId=7&userId=1",
                b"".to_vec(),
            ),
            400,
        ),
        Case::new(
            "a userEmail repeated in another spelling (userEm%61il) is refused",
            relayed(
                "GET",
                "/hubspot/relay/deals/42?portalId=62515&userEmail=ann%40example.com&userEm%61il=ceo%40victim.example",
                b"".to_vec(),
            ),
            400,
        ),
        Case::new(
            "a userEmail carrying an encoded CR LF (a header injection) is refused",
            relayed(
                "GET",
                "/hubspot/relay/deals/42?portalId=62515&userEmail=ann%0D%0Ax-hsbridge-portal-id%3A1",
                b"".to_vec(),
            ),
            400,
        ),
        Case::new(
            "a repeated portalId is refused (which account is calling must not be ambiguous)",
            relayed(
                "GET",
                "/hubspot/relay/deals/42?portalId=999&portalId=62515",
                b"".to_vec(),
            ),
            400,
        ),
        Case::new(
            "no portalId is refused",
            relayed("GET", "/hubspot/relay/deals/42", b"".to_vec()),
            400,
        ),
        Case::new(
            "a portalId that is not a number is refused",
            relayed(
                "GET",
                "/hubspot/relay/deals/42?portalId=62515%20OR%201",
                b"".to_vec(),
            ),
            400,
        ),
    ]
}

fn injected_headers() -> http::Request<axum::body::Body> {
    let mut r = relayed("GET", &format!("/hubspot/relay/deals/42?{Q}"), b"".to_vec());
    for (name, value) in [
        ("x-hsbridge-portal-id", "999"),
        ("x-hsbridge_portal-id", "999"),
        ("x-hsbridge-dedupe-key", "forged"),
        ("authorization", "Bearer stolen"),
        ("cookie", "session=stolen"),
        ("x-amz-security-token", "forged"),
        ("x-amz-date", "20200101T000000Z"),
        ("x-amzn-trace-id", "forged"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-for", "10.0.0.1"),
        ("forwarded", "for=10.0.0.1;host=evil.example"),
        ("connection", "keep-alive, x-smuggled"),
        ("x-smuggled", "1"),
        ("proxy-authorization", "Basic Zm9vOmJhcg=="),
        ("te", "trailers"),
        ("upgrade", "h2c"),
        ("via", "1.1 evil"),
        ("x-real-ip", "10.0.0.1"),
    ] {
        r.headers_mut().append(
            http::HeaderName::from_static(name),
            http::HeaderValue::from_static(value),
        );
    }
    r
}

#[tokio::test]
async fn every_hostile_relay_request_gets_its_documented_status_and_nothing_else_is_forwarded() {
    run_table(async || Relay::new().await, cases()).await;
}

#[tokio::test]
async fn injected_headers_and_a_host_override_never_reach_the_protected_api() {
    let relay = Relay::new().await;
    let (status, _, _) = send(relay.router(), injected_headers()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(
        relay.router(),
        with(
            relayed("GET", &format!("/hubspot/relay/deals/42?{Q}"), b"".to_vec()),
            "host",
            b"evil.example",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let seen = relay.upstream.standin.recorded();
    assert_eq!(seen.len(), 2);
    let upstream_host = relay.upstream.addr.to_string();
    for request in &seen {
        assert_eq!(request.caller, ROLE);
        assert_eq!(request.path, "/prod/hubspot/relay/deals/42");
        assert_eq!(request.header("host"), Some(upstream_host.as_str()));
        assert_eq!(request.header("x-hsbridge-portal-id"), Some("62515"));
        assert!(
            request
                .header("authorization")
                .unwrap()
                .starts_with("AWS4-HMAC-SHA256 ")
        );
        for (name, value) in &request.headers {
            assert!(
                !value.contains("evil") && !value.contains("stolen") && !value.contains("forged"),
                "{name}: {value}"
            );
            assert!(
                ![
                    "cookie",
                    "x-forwarded-host",
                    "x-forwarded-for",
                    "forwarded",
                    "x-smuggled",
                    "proxy-authorization",
                    "te",
                    "upgrade",
                    "via",
                    "x-real-ip",
                    "x-amzn-trace-id",
                    "x-hubspot-signature-v3",
                    "x-hubspot-request-timestamp",
                    "x-hsbridge_portal-id",
                    "x-hsbridge-dedupe-key",
                ]
                .contains(&name.as_str()),
                "{name} was forwarded"
            );
        }
        let portal_headers = request
            .headers
            .iter()
            .filter(|(n, _)| n == "x-hsbridge-portal-id")
            .count();
        assert_eq!(portal_headers, 1);
    }
}

/// A JSON body as no serialiser would write it: only a byte-for-byte copy arrives like this.
const JSON_BODY: &[u8] = b"{ \"name\" :\"Zo\\u00eb\",\n  \"n\":1.50e1 , \"s\":\"\xc3\xa9\"}";

#[tokio::test]
async fn a_signed_body_is_forwarded_byte_for_byte_without_being_re_serialised() {
    let relay = Relay::new().await;
    let request = relayed("POST", &format!("/hubspot/relay/x?{Q}"), JSON_BODY.to_vec());
    let (status, _, _) = send(relay.router(), request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(relay.upstream.standin.recorded()[0].body, JSON_BODY);
}

#[tokio::test]
async fn a_forged_event_posted_to_the_relay_reaches_only_the_relays_own_prefix() {
    let relay = Relay::new().await;
    let forged = r#"{"schema":"hsbridge.protected-event.v1","dedupeKey":"999#1#1#1","portalId":999,"subscriptionType":"contact.creation","event":{}}"#;
    for path in [
        "/hubspot/relay/events",
        "/hubspot/relay/hubspot/events",
        "/hubspot/relay/events/",
    ] {
        let request = relayed("POST", &format!("{path}?{Q}"), forged.as_bytes().to_vec());
        let (status, _, _) = send(relay.router(), request).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let seen = relay.upstream.standin.recorded();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert!(
            request.path.starts_with("/prod/hubspot/relay/"),
            "the relay reached {} outside its prefix",
            request.path
        );
        assert_eq!(request.header("x-hsbridge-portal-id"), Some("62515"));
    }
    let paths: Vec<&str> = seen.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/prod/hubspot/relay/events",
            "/prod/hubspot/relay/hubspot/events",
            "/prod/hubspot/relay/events/"
        ]
    );
}

#[tokio::test]
async fn one_signature_over_an_encoded_slash_forwards_only_the_path_it_covers() {
    let relay = Relay::new().await;
    let signed = format!("/hubspot/relay/a%2Fb?{Q}");
    let (status, _, _) = send(relay.router(), relayed("GET", &signed, b"".to_vec())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = send(
        relay.router(),
        resent("GET", &signed, &format!("/hubspot/relay/a/b?{Q}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let seen = relay.upstream.standin.recorded();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/prod/hubspot/relay/a/b");
}
