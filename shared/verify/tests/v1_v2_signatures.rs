//! v1 and v2 signatures: what verifies, and each way of breaking one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod request_parts;

use hsbridge_verify::{
    HEADER_SIGNATURE, HEADER_SIGNATURE_VERSION, Policy, Secret, SecretSet, SecretSlot,
    SignatureVersion, Verified, VerifyError, sign_v1, verify,
};
use request_parts::{BODY, METHOD, RequestParts, URI, secret, secrets};

/// v1/v2 carry no timestamp: the clock must not matter.
const ANY_TIME: u64 = 42;

fn v1_v2() -> Policy {
    Policy::accepting(&[SignatureVersion::V1, SignatureVersion::V2])
}

fn check(parts: &RequestParts) -> Result<Verified, VerifyError> {
    verify(&parts.request(), &secrets(), &v1_v2(), ANY_TIME)
}

fn verified(version: SignatureVersion) -> Result<Verified, VerifyError> {
    Ok(Verified {
        version,
        secret: SecretSlot::Current,
    })
}

#[test]
fn a_correctly_signed_v1_request_verifies() {
    let parts = RequestParts::signed_v1(&secret(), METHOD, URI, BODY);
    assert_eq!(check(&parts), verified(SignatureVersion::V1));
}

#[test]
fn a_correctly_signed_v2_request_verifies() {
    let parts = RequestParts::signed_v2(&secret(), METHOD, URI, BODY);
    assert_eq!(check(&parts), verified(SignatureVersion::V2));
}

#[test]
fn a_v1_signature_over_a_body_with_one_byte_flipped_is_a_mismatch() {
    for i in 0..BODY.len() {
        let mut body = BODY.to_vec();
        body[i] ^= 0x20;
        let parts = RequestParts::signed_v1(&secret(), METHOD, URI, BODY).with_body(&body);
        assert_eq!(check(&parts), Err(VerifyError::Mismatch), "byte {i}");
    }
}

#[test]
fn a_v1_signature_does_not_cover_the_method_or_uri() {
    // Documented weakness of v1: only the body is signed.
    let parts = RequestParts::signed_v1(&secret(), METHOD, URI, BODY)
        .with_method("DELETE")
        .with_uri("https://elsewhere.example.com/");
    assert_eq!(check(&parts), verified(SignatureVersion::V1));
}

#[test]
fn a_v2_signature_over_a_body_with_one_byte_flipped_is_a_mismatch() {
    let mut body = BODY.to_vec();
    body[0] ^= 0x01;
    let parts = RequestParts::signed_v2(&secret(), METHOD, URI, BODY).with_body(&body);
    assert_eq!(check(&parts), Err(VerifyError::Mismatch));
}

#[test]
fn a_v2_signature_with_the_uri_changed_is_a_mismatch() {
    for uri in [
        URI.replacen("https", "http", 1),
        URI.replacen("hooks", "hookz", 1),
        URI.replacen("webhook", "webhooks", 1),
        URI.replacen("62515", "62516", 1),
    ] {
        let parts = RequestParts::signed_v2(&secret(), METHOD, URI, BODY).with_uri(&uri);
        assert_eq!(check(&parts), Err(VerifyError::Mismatch), "{uri}");
    }
}

#[test]
fn a_v2_uri_is_hashed_as_given_without_the_v3_selective_decode() {
    let signed = "https://hooks.example.com/h?t=1%3A2";
    let parts = RequestParts::signed_v2(&secret(), "GET", signed, b"")
        .with_uri("https://hooks.example.com/h?t=1:2");
    assert_eq!(check(&parts), Err(VerifyError::Mismatch));
}

#[test]
fn a_v2_signature_with_the_method_changed_is_a_mismatch() {
    let parts = RequestParts::signed_v2(&secret(), METHOD, URI, BODY).with_method("PUT");
    assert_eq!(check(&parts), Err(VerifyError::Mismatch));
}

#[test]
fn a_v1_signature_presented_as_v2_is_a_mismatch() {
    let parts = RequestParts::signed_v1(&secret(), METHOD, URI, BODY)
        .with_header(HEADER_SIGNATURE_VERSION, "v2");
    assert_eq!(check(&parts), Err(VerifyError::Mismatch));
}

#[test]
fn upper_case_hex_and_an_upper_case_version_are_accepted() {
    let parts = RequestParts::signed_v1(&secret(), METHOD, URI, BODY);
    let upper = parts.header(HEADER_SIGNATURE).to_uppercase();
    let parts = parts
        .with_header(HEADER_SIGNATURE, &upper)
        .with_header(HEADER_SIGNATURE_VERSION, "V1");
    assert_eq!(check(&parts), verified(SignatureVersion::V1));
}

#[test]
fn an_unknown_signature_version_is_refused() {
    for version in ["v3", "v4", "1", "", " v1", "v1 "] {
        let parts = RequestParts::signed_v1(&secret(), METHOD, URI, BODY)
            .with_header(HEADER_SIGNATURE_VERSION, version);
        assert_eq!(
            check(&parts),
            Err(VerifyError::UnknownVersion),
            "{version:?}"
        );
    }
}

#[test]
fn a_missing_signature_version_is_reported_by_name() {
    let parts = RequestParts::signed_v1(&secret(), METHOD, URI, BODY)
        .without_header(HEADER_SIGNATURE_VERSION);
    assert_eq!(
        check(&parts),
        Err(VerifyError::MissingHeader(HEADER_SIGNATURE_VERSION))
    );
}

#[test]
fn a_version_header_without_a_signature_is_a_missing_signature() {
    let parts =
        RequestParts::signed_v1(&secret(), METHOD, URI, BODY).without_header(HEADER_SIGNATURE);
    assert_eq!(
        verify(&parts.request(), &secrets(), &Policy::v3_only(), ANY_TIME),
        Err(VerifyError::MissingHeader(HEADER_SIGNATURE))
    );
}

#[test]
fn bad_hex_is_bad_encoding() {
    let good = sign_v1(&secret(), BODY);
    for bad in [
        "z".repeat(64),
        good[..63].to_owned(),
        format!("{good}00"),
        format!("{}g", &good[..63]),
        format!("0x{}", &good[..62]),
        String::new(),
    ] {
        let parts = RequestParts::signed_v1(&secret(), METHOD, URI, BODY)
            .with_header(HEADER_SIGNATURE, &bad);
        assert_eq!(check(&parts), Err(VerifyError::BadEncoding), "{bad:?}");
    }
}

#[test]
fn a_version_the_route_does_not_accept_is_refused() {
    let parts = RequestParts::signed_v1(&secret(), METHOD, URI, BODY);
    let v2_only = Policy::accepting(&[SignatureVersion::V2]);
    assert_eq!(
        verify(&parts.request(), &secrets(), &v2_only, ANY_TIME),
        Err(VerifyError::VersionNotAllowed(SignatureVersion::V1))
    );
    let parts = RequestParts::signed_v2(&secret(), METHOD, URI, BODY);
    assert_eq!(
        verify(&parts.request(), &secrets(), &Policy::v3_only(), ANY_TIME),
        Err(VerifyError::VersionNotAllowed(SignatureVersion::V2))
    );
}

#[test]
fn a_duplicated_v1_header_is_refused() {
    let parts = RequestParts::signed_v1(&secret(), METHOD, URI, BODY);
    let sig = parts.header(HEADER_SIGNATURE);
    let parts = parts.with_extra_header(HEADER_SIGNATURE, &sig);
    assert_eq!(
        check(&parts),
        Err(VerifyError::DuplicateHeader(HEADER_SIGNATURE))
    );
    let parts = RequestParts::signed_v1(&secret(), METHOD, URI, BODY)
        .with_extra_header(HEADER_SIGNATURE_VERSION, "v2");
    assert_eq!(
        check(&parts),
        Err(VerifyError::DuplicateHeader(HEADER_SIGNATURE_VERSION))
    );
}

#[test]
fn a_v1_signature_made_with_the_previous_secret_verifies_as_previous() {
    let rotating = SecretSet::new(Secret::new("new-secret"))
        .unwrap()
        .with_previous(secret())
        .unwrap();
    let parts = RequestParts::signed_v2(&secret(), METHOD, URI, BODY);
    assert_eq!(
        verify(&parts.request(), &rotating, &v1_v2(), ANY_TIME),
        Ok(Verified {
            version: SignatureVersion::V2,
            secret: SecretSlot::Previous
        })
    );
}

#[test]
fn a_v1_signature_made_with_another_secret_is_a_mismatch() {
    let parts = RequestParts::signed_v1(&Secret::new("another"), METHOD, URI, BODY);
    assert_eq!(check(&parts), Err(VerifyError::Mismatch));
}
