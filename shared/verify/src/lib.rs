//! Pure verification primitives for the boundary between HubSpot and AWS.
//!
//! - [`signature`]: HubSpot request signatures v1, v2 and v3 (checking and making them).
//! - [`secret`]: redacted secrets and the current/previous client-secret set used during rotation.
//! - [`cookie`]: the signed OAuth `state` cookie for the install callback.
//! - [`public_uri`]: rebuilding the public URL HubSpot called, which signatures cover.
//!
//! This crate must stay pure: no async runtime, no AWS, no network, no clock and no randomness of
//! its own (time and random bytes are arguments). That keeps every check deterministic in tests
//! and reachable by a fuzzer through a plain function call. It never panics on request input and
//! never puts a secret, a signature or a body into an error or a `Debug` string.

#![forbid(unsafe_code)]

pub mod cookie;
pub mod explain;
pub mod public_uri;
pub mod secret;
pub mod signature;

pub use cookie::{
    CookieAttributes, CookieError, HOST_STATE_COOKIE_NAME, MintError, OAuthState,
    STATE_COOKIE_MAX_AGE_SECS, STATE_COOKIE_MAX_LEN, STATE_COOKIE_NAME, StateCookiePayload,
    cookie_from_header, mint_state_cookie, path_matches, verify_state_cookie,
};
pub use explain::{
    Check, Explanation, Hints, MAX_EXTRA_MACS, Mangling, ManglingKind, SignaturePrefixes, Skew,
    SkipReason, explain,
};
pub use public_uri::{PublicBase, UriError, rebuild_public_uri};
pub use secret::{EmptySecret, Secret, SecretSet, SecretSlot};
pub use signature::{
    HEADER_SIGNATURE, HEADER_SIGNATURE_V3, HEADER_SIGNATURE_VERSION, HEADER_TIMESTAMP,
    MAX_WINDOW_MS, Policy, PolicyError, SignatureVersion, SignedRequest, Verified, VerifyError,
    selectively_decode_uri, sign_v1, sign_v2, sign_v3, v3_signature_bytes, verify,
};
