//! A client secret anyone can guess never verifies a signature: an empty or blank (whitespace
//! only) secret is refused as the current and as the previous secret of the set, so no v1, v2
//! or v3 signature made with one is ever checked against it. (The template's placeholder is
//! refused where the deployed secret is read: `hsbridge_platform::secrets`, and
//! `tests/integration/webhook_intake.rs::a_request_signed_with_the_templates_placeholder_secret_is_never_accepted`.)

use crate::harness::*;
use hsbridge_verify::{
    HEADER_SIGNATURE, HEADER_SIGNATURE_V3, HEADER_SIGNATURE_VERSION, HEADER_TIMESTAMP, Policy,
    Secret, SecretSet, SignatureVersion, SignedRequest, sign_v1, sign_v2, sign_v3, verify,
};
use http::{HeaderMap, HeaderValue};

/// Secrets a caller can guess: none, or only whitespace (ASCII and Unicode).
const GUESSABLE: &[&str] = &[
    "",
    " ",
    "  ",
    "\t",
    "\n",
    " \r\n ",
    "\u{a0}",
    "\u{2003}\u{3000}",
];

const URI: &str = "https://hooks.example.com/webhooks/hubspot";
const BODY: &[u8] = br#"[{"eventId":1,"portalId":62515}]"#;

/// The request signed with `secret` in each version, as HubSpot would send it.
fn signed_with(secret: &str) -> Vec<(SignatureVersion, HeaderMap)> {
    let secret = Secret::new(secret);
    let header = |pairs: &[(&'static str, String)]| {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    };
    let ts = ts(NOW);
    vec![
        (
            SignatureVersion::V1,
            header(&[
                (HEADER_SIGNATURE, sign_v1(&secret, BODY)),
                (HEADER_SIGNATURE_VERSION, "v1".to_owned()),
            ]),
        ),
        (
            SignatureVersion::V2,
            header(&[
                (HEADER_SIGNATURE, sign_v2(&secret, "POST", URI, BODY)),
                (HEADER_SIGNATURE_VERSION, "v2".to_owned()),
            ]),
        ),
        (
            SignatureVersion::V3,
            header(&[
                (
                    HEADER_SIGNATURE_V3,
                    sign_v3(&secret, "POST", URI, BODY, &ts),
                ),
                (HEADER_TIMESTAMP, ts.clone()),
            ]),
        ),
    ]
}

#[test]
fn a_blank_client_secret_is_refused_as_the_current_and_as_the_previous_secret() {
    let good = || SecretSet::new(Secret::new(SECRET)).unwrap();
    for blank in GUESSABLE {
        assert!(
            SecretSet::new(Secret::new(*blank)).is_err(),
            "{blank:?} accepted as the current secret"
        );
        assert!(
            good().with_previous(Secret::new(*blank)).is_err(),
            "{blank:?} accepted as the previous secret"
        );
    }
}

#[test]
fn no_signature_made_with_a_guessable_secret_verifies_through_v1_v2_or_v3() {
    let policy = Policy::accepting(&[
        SignatureVersion::V1,
        SignatureVersion::V2,
        SignatureVersion::V3,
    ]);
    // Whatever set a deployment could have built: the guessable secret current or previous,
    // beside the real one.
    let sets = |blank: &str| {
        [
            SecretSet::new(Secret::new(blank)).ok(),
            SecretSet::new(Secret::new(SECRET))
                .unwrap()
                .with_previous(Secret::new(blank))
                .ok(),
        ]
    };
    for blank in GUESSABLE {
        for set in sets(blank).into_iter().flatten() {
            for (version, headers) in signed_with(blank) {
                assert!(
                    !verifies(&headers, &set, &policy),
                    "a {version} signature made with {blank:?} verified"
                );
            }
        }
    }
    // The same checks pass for a signature made with the real secret (control).
    let set = SecretSet::new(Secret::new(SECRET)).unwrap();
    for (version, headers) in signed_with(SECRET) {
        assert!(verifies(&headers, &set, &policy), "{version}");
    }
}

/// Whether the POST of `BODY` to `URI` with these signature headers verifies.
fn verifies(headers: &HeaderMap, set: &SecretSet, policy: &Policy) -> bool {
    let request = SignedRequest {
        method: "POST",
        uri: URI,
        body: BODY,
        headers,
    };
    verify(&request, set, policy, NOW).is_ok()
}
