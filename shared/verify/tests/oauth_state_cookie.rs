//! The signed OAuth state cookie: round trip, each way of breaking it, and its headers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use hsbridge_verify::{
    CookieAttributes, CookieError, HOST_STATE_COOKIE_NAME, OAuthState, STATE_COOKIE_NAME, Secret,
    SecretSet, StateCookiePayload, cookie_from_header, mint_state_cookie, path_matches,
    verify_state_cookie,
};
use http::{HeaderMap, HeaderValue, header::COOKIE};
use sha2::Sha256;

const ISSUED_MS: u64 = 1_700_000_000_000;
const SECRET: &str = "client-secret-current";

fn secrets() -> SecretSet {
    SecretSet::new(Secret::new(SECRET)).unwrap()
}

fn state() -> OAuthState {
    OAuthState::from_random_bytes([0x5a; 32])
}

fn minted() -> String {
    mint_state_cookie(&secrets(), &state(), Some("portal-62515"), ISSUED_MS).unwrap()
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The cookie MAC as specified: HMAC(HMAC(secret, label), payload_b64).
fn spec_mac(secret: &str, payload_b64: &str) -> String {
    let key = hmac(secret.as_bytes(), b"hsbridge/oauth-state-cookie/v1");
    URL_SAFE_NO_PAD.encode(hmac(&key, payload_b64.as_bytes()))
}

#[test]
fn an_oauth_state_is_43_characters_of_base64url() {
    let state = OAuthState::from_random_bytes([0xff; 32]);
    assert_eq!(state.as_str().len(), 43);
    assert!(
        state
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_ne!(state, OAuthState::from_random_bytes([0xfe; 32]));
}

#[test]
fn a_minted_cookie_round_trips_with_its_state_and_binding() {
    let payload = verify_state_cookie(
        &secrets(),
        Some(&minted()),
        Some(state().as_str()),
        ISSUED_MS + 1,
    )
    .unwrap();
    assert_eq!(
        payload,
        StateCookiePayload {
            state: state().as_str().to_owned(),
            issued_at_ms: ISSUED_MS,
            binding: Some("portal-62515".to_owned()),
        }
    );
}

#[test]
fn a_minted_cookie_follows_the_documented_format() {
    let cookie = mint_state_cookie(&secrets(), &state(), None, ISSUED_MS).unwrap();
    let (payload_b64, mac_b64) = cookie.split_once('.').unwrap();
    let json = URL_SAFE_NO_PAD.decode(payload_b64).unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(payload["state"], state().as_str());
    assert_eq!(payload["issued_at_ms"], ISSUED_MS);
    assert_eq!(mac_b64, spec_mac(SECRET, payload_b64));
}

#[test]
fn the_cookie_mac_is_not_a_plain_hmac_of_the_client_secret() {
    // Domain separation: a webhook-style HMAC under the client secret must not verify a cookie.
    let cookie = minted();
    let (payload_b64, mac_b64) = cookie.split_once('.').unwrap();
    let plain = URL_SAFE_NO_PAD.encode(hmac(SECRET.as_bytes(), payload_b64.as_bytes()));
    assert_ne!(mac_b64, plain);
    let forged = format!("{payload_b64}.{plain}");
    assert_eq!(
        verify_state_cookie(&secrets(), Some(&forged), Some(state().as_str()), ISSUED_MS),
        Err(CookieError::BadSignature)
    );
}

#[test]
fn a_missing_cookie_is_missing() {
    for cookie in [None, Some("")] {
        assert_eq!(
            verify_state_cookie(&secrets(), cookie, Some(state().as_str()), ISSUED_MS),
            Err(CookieError::Missing)
        );
    }
}

#[test]
fn a_cookie_that_is_not_payload_dot_mac_is_malformed() {
    let cookie = minted();
    let (payload_b64, mac_b64) = cookie.split_once('.').unwrap();
    let too_long = "a".repeat(5000);
    for bad in [
        payload_b64.to_owned(),
        format!("{payload_b64}.{}", &mac_b64[..20]),
        format!("{payload_b64}!.{mac_b64}"),
        format!("{payload_b64}.{mac_b64}="),
        format!("{payload_b64}.{mac_b64}.x"),
        too_long,
    ] {
        assert_eq!(
            verify_state_cookie(&secrets(), Some(&bad), Some(state().as_str()), ISSUED_MS),
            Err(CookieError::Malformed),
            "{bad}"
        );
    }
}

#[test]
fn a_correctly_signed_payload_that_is_not_the_expected_json_is_malformed() {
    for json in [
        &b"not json"[..],
        br#"{"state":1}"#,
        br#"{"state":"s","issued_at_ms":1,"x":1}"#,
    ] {
        let payload_b64 = URL_SAFE_NO_PAD.encode(json);
        let cookie = format!("{payload_b64}.{}", spec_mac(SECRET, &payload_b64));
        assert_eq!(
            verify_state_cookie(&secrets(), Some(&cookie), Some("s"), 1),
            Err(CookieError::Malformed)
        );
    }
}

#[test]
fn a_tampered_payload_is_a_bad_signature() {
    let cookie = minted();
    let (_, mac_b64) = cookie.split_once('.').unwrap();
    // A payload claiming a fresh issue time, with the old MAC.
    let forged_json = format!(
        r#"{{"state":"{}","issued_at_ms":{},"binding":"portal-62515"}}"#,
        state().as_str(),
        ISSUED_MS + 10_000_000
    );
    let forged = format!("{}.{mac_b64}", URL_SAFE_NO_PAD.encode(forged_json));
    assert_eq!(
        verify_state_cookie(
            &secrets(),
            Some(&forged),
            Some(state().as_str()),
            ISSUED_MS + 10_000_000
        ),
        Err(CookieError::BadSignature)
    );
}

#[test]
fn a_tampered_mac_is_a_bad_signature() {
    let cookie = minted();
    let (payload_b64, mac_b64) = cookie.split_once('.').unwrap();
    let first = if mac_b64.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{payload_b64}.{first}{}", &mac_b64[1..]);
    assert_eq!(
        verify_state_cookie(
            &secrets(),
            Some(&tampered),
            Some(state().as_str()),
            ISSUED_MS
        ),
        Err(CookieError::BadSignature)
    );
}

#[test]
fn a_cookie_minted_with_an_unrelated_secret_is_a_bad_signature() {
    let other = SecretSet::new(Secret::new("someone-else")).unwrap();
    let cookie = mint_state_cookie(&other, &state(), None, ISSUED_MS).unwrap();
    assert_eq!(
        verify_state_cookie(&secrets(), Some(&cookie), Some(state().as_str()), ISSUED_MS),
        Err(CookieError::BadSignature)
    );
}

#[test]
fn a_state_in_the_url_that_differs_or_is_absent_is_a_state_mismatch() {
    let other = OAuthState::from_random_bytes([0x5b; 32]);
    for url_state in [Some(other.as_str()), Some(""), None] {
        assert_eq!(
            verify_state_cookie(&secrets(), Some(&minted()), url_state, ISSUED_MS),
            Err(CookieError::StateMismatch),
            "{url_state:?}"
        );
    }
}

#[test]
fn a_cookie_older_than_600_seconds_is_expired() {
    let check = |now| verify_state_cookie(&secrets(), Some(&minted()), Some(state().as_str()), now);
    assert!(check(ISSUED_MS + 600_000).is_ok());
    assert_eq!(check(ISSUED_MS + 600_001), Err(CookieError::Expired));
}

#[test]
fn a_cookie_issued_more_than_a_minute_in_the_future_is_expired() {
    let check = |now| verify_state_cookie(&secrets(), Some(&minted()), Some(state().as_str()), now);
    assert!(check(ISSUED_MS - 60_000).is_ok());
    assert_eq!(check(ISSUED_MS - 60_001), Err(CookieError::Expired));
}

#[test]
fn a_cookie_minted_before_a_rotation_still_verifies_with_the_previous_secret() {
    let before = SecretSet::new(Secret::new("old-secret")).unwrap();
    let cookie = mint_state_cookie(&before, &state(), None, ISSUED_MS).unwrap();
    let after = SecretSet::new(Secret::new("new-secret"))
        .unwrap()
        .with_previous(Secret::new("old-secret"))
        .unwrap();
    assert!(verify_state_cookie(&after, Some(&cookie), Some(state().as_str()), ISSUED_MS).is_ok());
    // And a new cookie is minted with the current secret.
    let fresh = mint_state_cookie(&after, &state(), None, ISSUED_MS).unwrap();
    let current_only = SecretSet::new(Secret::new("new-secret")).unwrap();
    assert!(
        verify_state_cookie(
            &current_only,
            Some(&fresh),
            Some(state().as_str()),
            ISSUED_MS
        )
        .is_ok()
    );
}

#[test]
fn the_deployed_set_cookie_header_is_host_prefixed_with_the_exact_attributes() {
    let attrs = CookieAttributes::host();
    assert_eq!(attrs.name(), HOST_STATE_COOKIE_NAME);
    assert_eq!(
        attrs.set_cookie("VALUE"),
        "__Host-hubspot_oauth_state=VALUE; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Lax"
    );
    assert_eq!(
        attrs.clear_cookie(),
        "__Host-hubspot_oauth_state=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
    );
    assert!(HeaderValue::from_str(&attrs.set_cookie(&minted())).is_ok());
}

#[test]
fn the_loopback_cookie_drops_secure_and_so_the_prefix_and_follows_the_callback_path() {
    let attrs = CookieAttributes::insecure_loopback("http://127.0.0.1:3002/oauth/callback");
    assert!(!attrs.secure());
    assert_eq!(attrs.name(), STATE_COOKIE_NAME);
    assert_eq!(
        attrs.set_cookie("VALUE"),
        "hubspot_oauth_state=VALUE; Path=/oauth; Max-Age=600; HttpOnly; SameSite=Lax"
    );
    assert_eq!(
        attrs.clear_cookie(),
        "hubspot_oauth_state=; Path=/oauth; Max-Age=0; HttpOnly; SameSite=Lax"
    );
    for (url, path) in [
        ("http://127.0.0.1:3002/v1/oauth/callback", "/v1/oauth"),
        ("http://localhost/oauth/callback?x=/a/b#/c/d", "/oauth"),
        ("http://[::1]:80/callback", "/"),
        ("http://127.0.0.1:3002", "/"),
    ] {
        assert_eq!(
            CookieAttributes::insecure_loopback(url).path(),
            path,
            "{url}"
        );
    }
}

#[test]
fn a_configured_callback_url_cannot_inject_attributes() {
    let attrs =
        CookieAttributes::insecure_loopback("http://127.0.0.1/oauth; Domain=evil.example\r\n/x");
    assert_eq!(attrs.path(), "/oauthDomain=evil.example");
    assert!(!attrs.set_cookie("v").contains("; Domain"));
}

#[test]
fn cookie_paths_match_as_rfc_6265_says() {
    assert!(path_matches("/", "/v1/oauth/callback"));
    assert!(path_matches("/v1/oauth", "/v1/oauth/callback"));
    assert!(path_matches("/v1/oauth", "/v1/oauth"));
    assert!(path_matches("/v1/oauth/", "/v1/oauth/callback"));
    // The case of the finding: a cookie scoped to /oauth never reaches a base-path callback.
    assert!(!path_matches("/oauth", "/v1/oauth/callback"));
    assert!(!path_matches("/v1/oauth", "/v1/oauthx/callback"));
    assert!(!path_matches("/v1/oauth", "/v1"));
}

fn cookie_headers(values: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(COOKIE, HeaderValue::from_str(value).unwrap());
    }
    headers
}

#[test]
fn the_state_cookie_is_found_among_other_cookies() {
    let headers = cookie_headers(&["a=1; hubspot_oauth_state=abc.def ;b=2"]);
    assert_eq!(
        cookie_from_header(&headers, STATE_COOKIE_NAME).as_deref(),
        Some("abc.def")
    );
    let headers = cookie_headers(&["a=1", "hubspot_oauth_state=abc.def"]);
    assert_eq!(
        cookie_from_header(&headers, STATE_COOKIE_NAME).as_deref(),
        Some("abc.def")
    );
}

#[test]
fn an_absent_or_similarly_named_cookie_is_not_found() {
    let headers = cookie_headers(&["xhubspot_oauth_state=1; hubspot_oauth_state_x=2; flag"]);
    assert_eq!(cookie_from_header(&headers, STATE_COOKIE_NAME), None);
    assert_eq!(
        cookie_from_header(&HeaderMap::new(), STATE_COOKIE_NAME),
        None
    );
}

#[test]
fn a_state_cookie_sent_twice_is_ambiguous_and_not_found() {
    let headers = cookie_headers(&["hubspot_oauth_state=a; hubspot_oauth_state=b"]);
    assert_eq!(cookie_from_header(&headers, STATE_COOKIE_NAME), None);
    let headers = cookie_headers(&["hubspot_oauth_state=a", "hubspot_oauth_state=a"]);
    assert_eq!(cookie_from_header(&headers, STATE_COOKIE_NAME), None);
}

#[test]
fn cookie_errors_carry_nothing_from_the_cookie() {
    let cookie = minted();
    for error in [
        CookieError::Missing,
        CookieError::Malformed,
        CookieError::BadSignature,
        CookieError::StateMismatch,
        CookieError::Expired,
    ] {
        let text = format!("{error} {error:?}");
        assert!(
            !text.contains(&cookie) && !text.contains(state().as_str()) && !text.contains(SECRET)
        );
    }
}
