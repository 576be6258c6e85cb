//! The OAuth state cookie: `verify_state_cookie` and `cookie_from_header` on arbitrary input
//! must never panic. Oracles: a freshly minted cookie, carried in a `Cookie` header among
//! arbitrary others, is found and verifies with its state and binding; the same cookie with one
//! character changed does not.
//!
//! This file is the target's body, shared by the fuzz target (`fuzz/fuzz_targets/`) and the
//! corpus replay in the main workspace's tests (`tests/fuzz_replay`): `run` is what libFuzzer
//! calls with each input; a panic (a failed assertion) is a finding.

// A failed oracle is how a fuzz target reports a finding: it panics on purpose.
#![allow(clippy::expect_used, clippy::panic)]

use arbitrary::Arbitrary;
use hsbridge_verify::{
    MintError, OAuthState, STATE_COOKIE_MAX_LEN, STATE_COOKIE_NAME, Secret, SecretSet,
    cookie_from_header, mint_state_cookie, verify_state_cookie,
};
use http::{HeaderMap, HeaderValue, header::COOKIE};

#[derive(Arbitrary, Debug)]
pub struct Input<'a> {
    current: &'a str,
    previous: Option<&'a str>,
    cookie_headers: Vec<&'a [u8]>,
    name: &'a str,
    cookie_value: Option<&'a str>,
    state_from_url: Option<&'a str>,
    now_ms: u64,
    random: [u8; 32],
    binding: Option<&'a str>,
    age_ms: u16,
    change_at: usize,
}

pub fn run(input: Input<'_>) {
    let mut headers = HeaderMap::new();
    for value in &input.cookie_headers {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(COOKIE, value);
        }
    }
    let _ = cookie_from_header(&headers, input.name);
    let from_header = cookie_from_header(&headers, STATE_COOKIE_NAME);

    let Ok(mut secrets) = SecretSet::new(Secret::new(input.current)) else {
        return;
    };
    if let Some(previous) = input.previous
        && let Ok(with) = secrets.clone().with_previous(Secret::new(previous))
    {
        secrets = with;
    }
    let _ = verify_state_cookie(
        &secrets,
        input.cookie_value,
        input.state_from_url,
        input.now_ms,
    );
    let _ = verify_state_cookie(
        &secrets,
        from_header.as_deref(),
        input.state_from_url,
        input.now_ms,
    );

    // Oracle: mint, carry in a header next to the fuzzed ones (which must not hold a cookie of
    // the same name, or the lookup rightly gives up), find, verify.
    let state = OAuthState::from_random_bytes(input.random);
    let issued = input
        .now_ms
        .saturating_sub(u64::from(input.age_ms % 60_000));
    let cookie = match mint_state_cookie(&secrets, &state, input.binding, issued) {
        Ok(cookie) => cookie,
        Err(MintError::TooLong) => {
            // Only a long binding makes a cookie too long to verify; it is refused, not minted.
            assert!(
                input.binding.is_some(),
                "a cookie without binding was too long"
            );
            return;
        }
    };
    assert!(
        cookie.len() <= STATE_COOKIE_MAX_LEN,
        "a minted cookie is over the limit"
    );
    if from_header.is_none()
        && !input.cookie_headers.iter().any(|h| {
            h.windows(STATE_COOKIE_NAME.len())
                .any(|w| w == STATE_COOKIE_NAME.as_bytes())
        })
    {
        let mut carried = headers.clone();
        let header = format!("{STATE_COOKIE_NAME}={cookie}");
        carried.append(
            COOKIE,
            HeaderValue::from_str(&header).expect("a cookie is a header value"),
        );
        assert_eq!(
            cookie_from_header(&carried, STATE_COOKIE_NAME).as_deref(),
            Some(cookie.as_str()),
            "a minted cookie was not found in the Cookie header"
        );
    }
    let verified = verify_state_cookie(&secrets, Some(&cookie), Some(state.as_str()), input.now_ms);
    let payload = verified.expect("a freshly minted cookie must verify");
    assert_eq!(payload.state, state.as_str());
    assert_eq!(payload.binding.as_deref(), input.binding);
    assert_eq!(payload.issued_at_ms, issued);

    // One character changed (to another base64url character, or the dot moved) must be refused.
    let mut bytes = cookie.into_bytes();
    let i = input.change_at % bytes.len();
    bytes[i] = match bytes[i] {
        b'A' => b'B',
        b'.' => b'A',
        _ => b'A',
    };
    let tampered = String::from_utf8(bytes).expect("ASCII");
    assert!(
        verify_state_cookie(
            &secrets,
            Some(&tampered),
            Some(state.as_str()),
            input.now_ms
        )
        .is_err(),
        "a cookie with a changed character verified"
    );
}
