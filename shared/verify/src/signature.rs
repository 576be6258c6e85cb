//! HubSpot request signatures: checking v1, v2 and v3 signatures, and making them.
//!
//! [`verify`] is a plain function of the request's bytes, the secrets, a [`Policy`] and the
//! current time, so a test or a fuzzer can reach every branch without a clock, a runtime or AWS.
//!
//! What this module must never do:
//! - panic, whatever bytes arrive in the headers, URI or body;
//! - compare a signature in variable time, or put a secret, a signature or a body into an error;
//! - fall back from a v3 signature to a v1/v2 one (a request carrying v3 headers is judged on v3
//!   alone, so an attacker cannot downgrade it by breaking v3 and supplying a replayable v1);
//! - copy the body to build the signed string (the parts are fed to the hash one after another).

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::HeaderName;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::secret::{Secret, SecretSet, SecretSlot};

/// The v1/v2 signature header.
pub const HEADER_SIGNATURE: &str = "x-hubspot-signature";
/// The v1/v2 version header (`v1` or `v2`).
pub const HEADER_SIGNATURE_VERSION: &str = "x-hubspot-signature-version";
/// The v3 signature header.
pub const HEADER_SIGNATURE_V3: &str = "x-hubspot-signature-v3";
/// The v3 timestamp header (epoch milliseconds).
pub const HEADER_TIMESTAMP: &str = "x-hubspot-request-timestamp";
/// The widest accepted distance between a v3 timestamp and now: HubSpot's 5 minutes.
pub const MAX_WINDOW_MS: u64 = 300_000;

// Parsed once: a lookup by `HeaderName` skips re-validating and lower-casing the name per call.
static NAME_SIGNATURE: HeaderName = HeaderName::from_static(HEADER_SIGNATURE);
static NAME_SIGNATURE_VERSION: HeaderName = HeaderName::from_static(HEADER_SIGNATURE_VERSION);
static NAME_SIGNATURE_V3: HeaderName = HeaderName::from_static(HEADER_SIGNATURE_V3);
static NAME_TIMESTAMP: HeaderName = HeaderName::from_static(HEADER_TIMESTAMP);

/// Length of an HMAC-SHA256 / SHA-256 output.
const MAC_LEN: usize = 32;
/// Length of 32 bytes in padded standard base64.
const MAC_BASE64_LEN: usize = 44;

type HmacSha256 = Hmac<Sha256>;

/// A HubSpot signature version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureVersion {
    /// `sha256(secret + body)`, hex. No timestamp: replayable.
    V1,
    /// `sha256(secret + METHOD + URI + body)`, hex. No timestamp: replayable.
    V2,
    /// `HMAC-SHA256(secret, METHOD + URI' + body + timestamp)`, base64, with a timestamp window.
    V3,
}

impl SignatureVersion {
    /// `"v1"`, `"v2"` or `"v3"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
            Self::V3 => "v3",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
            Self::V3 => 4,
        }
    }
}

impl fmt::Display for SignatureVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which signature versions a route accepts, and how far a v3 timestamp may be from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    accepted: u8,
    window_ms: u64,
}

impl Policy {
    /// Only v3, with HubSpot's 5-minute window: the choice for anything that can get v3.
    pub fn v3_only() -> Self {
        Self::accepting(&[SignatureVersion::V3])
    }

    /// The given versions, with the 5-minute window. v1 and v2 carry no timestamp, so a route
    /// accepting them accepts replays; only list them where HubSpot sends nothing newer.
    pub fn accepting(versions: &[SignatureVersion]) -> Self {
        Self {
            accepted: versions.iter().fold(0, |bits, v| bits | v.bit()),
            window_ms: MAX_WINDOW_MS,
        }
    }

    /// Narrows the timestamp window. It can only shrink: wider than [`MAX_WINDOW_MS`] or zero is
    /// an error, because a wider window only widens the replay window.
    pub fn with_window_ms(self, window_ms: u64) -> Result<Self, PolicyError> {
        match window_ms {
            0 => Err(PolicyError::WindowZero),
            w if w > MAX_WINDOW_MS => Err(PolicyError::WindowTooWide),
            w => Ok(Self {
                window_ms: w,
                ..self
            }),
        }
    }

    /// Whether the policy accepts this version.
    pub fn accepts(&self, version: SignatureVersion) -> bool {
        self.accepted & version.bit() != 0
    }

    /// The largest accepted |now − timestamp| for v3, in milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::v3_only()
    }
}

/// A [`Policy`] that could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The window asked for is wider than [`MAX_WINDOW_MS`].
    #[error("the timestamp window may not be wider than {MAX_WINDOW_MS} ms")]
    WindowTooWide,
    /// A zero window would reject every request.
    #[error("the timestamp window must be greater than zero")]
    WindowZero,
}

/// The parts of a received request that a signature covers.
#[derive(Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The method as received, e.g. `"POST"`.
    pub method: &'a str,
    /// The full public URI as HubSpot called it: `scheme://host/path?query`, in the original order
    /// and encoding (see [`crate::public_uri::rebuild_public_uri`]).
    pub uri: &'a str,
    /// The raw body bytes exactly as received (empty for a GET).
    pub body: &'a [u8],
    /// The request's headers.
    pub headers: &'a http::HeaderMap,
}

impl fmt::Debug for SignedRequest<'_> {
    /// Shows header names and the body's length only: signatures and bodies stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("body_len", &self.body.len())
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A request whose signature verified: which version, and which secret of the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The signature version that verified.
    pub version: SignatureVersion,
    /// The secret that produced the signature.
    pub secret: SecretSlot,
}

/// Why a request's signature was refused. The text carries no secret, signature or body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent (its lowercase name).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A signature or timestamp header appears more than once: which one counts is ambiguous.
    #[error("header {0} appears more than once")]
    DuplicateHeader(&'static str),
    /// The timestamp is not a plain base-10 non-negative integer of milliseconds in canonical
    /// form (no leading zero).
    #[error("the request timestamp is not a whole number of milliseconds written canonically")]
    MalformedTimestamp,
    /// The timestamp is further in the past than the window allows.
    #[error("the request timestamp is {age_ms} ms old, outside the accepted window")]
    TimestampTooOld {
        /// now − timestamp.
        age_ms: u64,
    },
    /// The timestamp is further in the future than the window allows.
    #[error("the request timestamp is {ahead_ms} ms in the future, outside the accepted window")]
    TimestampInFuture {
        /// timestamp − now.
        ahead_ms: u64,
    },
    /// The signature is not valid base64 (v3) or hex (v1, v2), or does not decode to 32 bytes.
    #[error("the signature is not correctly encoded")]
    BadEncoding,
    /// No secret in the set produced this signature.
    #[error("the signature does not match")]
    Mismatch,
    /// The request is signed with a version this route does not accept.
    #[error("signature version {0} is not accepted here")]
    VersionNotAllowed(SignatureVersion),
    /// `x-hubspot-signature-version` is neither `v1` nor `v2`.
    #[error("unknown signature version")]
    UnknownVersion,
}

/// Checks a HubSpot signature on `req` against every secret in `secrets`, current first.
///
/// If either v3 header is present, v3 alone decides. Otherwise `x-hubspot-signature` with its
/// version header is checked as v1 or v2. `now_ms` is the current epoch time in milliseconds.
pub fn verify(
    req: &SignedRequest<'_>,
    secrets: &SecretSet,
    policy: &Policy,
    now_ms: u64,
) -> Result<Verified, VerifyError> {
    let v3_signature = single_header(req.headers, &NAME_SIGNATURE_V3)?;
    let v3_timestamp = single_header(req.headers, &NAME_TIMESTAMP)?;
    if v3_signature.is_some() || v3_timestamp.is_some() {
        if !policy.accepts(SignatureVersion::V3) {
            return Err(VerifyError::VersionNotAllowed(SignatureVersion::V3));
        }
        let signature = v3_signature.ok_or(VerifyError::MissingHeader(HEADER_SIGNATURE_V3))?;
        let timestamp = v3_timestamp.ok_or(VerifyError::MissingHeader(HEADER_TIMESTAMP))?;
        return verify_v3(
            req,
            signature.as_bytes(),
            timestamp.as_bytes(),
            secrets,
            policy,
            now_ms,
        );
    }

    let signature = single_header(req.headers, &NAME_SIGNATURE)?;
    let version = single_header(req.headers, &NAME_SIGNATURE_VERSION)?;
    let Some(signature) = signature else {
        // With no signature header at all, name the one this route would rather have.
        let wanted = if version.is_none() && policy.accepts(SignatureVersion::V3) {
            HEADER_SIGNATURE_V3
        } else {
            HEADER_SIGNATURE
        };
        return Err(VerifyError::MissingHeader(wanted));
    };
    let version = version.ok_or(VerifyError::MissingHeader(HEADER_SIGNATURE_VERSION))?;
    let version = match version.as_bytes() {
        v if v.eq_ignore_ascii_case(b"v1") => SignatureVersion::V1,
        v if v.eq_ignore_ascii_case(b"v2") => SignatureVersion::V2,
        _ => return Err(VerifyError::UnknownVersion),
    };
    if !policy.accepts(version) {
        return Err(VerifyError::VersionNotAllowed(version));
    }
    verify_v1_v2(req, version, signature.as_bytes(), secrets)
}

/// The v3 check, in the order: timestamp syntax, window, signature encoding, MAC.
fn verify_v3(
    req: &SignedRequest<'_>,
    signature: &[u8],
    timestamp: &[u8],
    secrets: &SecretSet,
    policy: &Policy,
    now_ms: u64,
) -> Result<Verified, VerifyError> {
    let ts_ms = parse_timestamp_ms(timestamp)?;
    if now_ms >= ts_ms {
        let age_ms = now_ms - ts_ms;
        if age_ms > policy.window_ms() {
            return Err(VerifyError::TimestampTooOld { age_ms });
        }
    } else {
        let ahead_ms = ts_ms - now_ms;
        if ahead_ms > policy.window_ms() {
            return Err(VerifyError::TimestampInFuture { ahead_ms });
        }
    }
    let expected = decode_v3_signature(signature)?;

    for (slot, secret) in secrets.iter() {
        let Some(keyed) = keyed_hmac(secret) else {
            continue;
        };
        // Keying costs two compressions: the keyed state is cloned, not rebuilt, for a second
        // reading.
        let (mac, saw_lower_case) = mac_v3(
            keyed.clone(),
            req.method,
            req.uri,
            Case::Upper,
            req.body,
            timestamp,
        );
        let mut matched = bool::from(mac.ct_eq(&expected));
        // HubSpot's table is upper-case and says nothing of `%3a`; when such an escape occurs,
        // the reading that decodes it too is tried as well. Only then is a second MAC computed.
        if saw_lower_case {
            let (mac, _) = mac_v3(keyed, req.method, req.uri, Case::Any, req.body, timestamp);
            matched |= bool::from(mac.ct_eq(&expected));
        }
        if matched {
            return Ok(Verified {
                version: SignatureVersion::V3,
                secret: slot,
            });
        }
    }
    Err(VerifyError::Mismatch)
}

/// `HMAC(METHOD + URI' + body + timestamp)`, fed part by part so the body is never copied. Also
/// returns whether a lower-case spelling of one of the 12 escapes was left undecoded.
fn mac_v3(
    mut mac: HmacSha256,
    method: &str,
    uri: &str,
    case: Case,
    body: &[u8],
    timestamp: &[u8],
) -> ([u8; MAC_LEN], bool) {
    mac.update(method.as_bytes());
    let saw_lower_case = feed_decoded_uri(uri, case, |part| mac.update(part.as_bytes()));
    mac.update(body);
    mac.update(timestamp);
    (mac.finalize().into_bytes().into(), saw_lower_case)
}

/// The v1/v2 check: hex decode, then `sha256(secret + ...)` per secret.
fn verify_v1_v2(
    req: &SignedRequest<'_>,
    version: SignatureVersion,
    signature: &[u8],
    secrets: &SecretSet,
) -> Result<Verified, VerifyError> {
    let expected = decode_hex_32(signature).ok_or(VerifyError::BadEncoding)?;
    for (slot, secret) in secrets.iter() {
        let digest = if version == SignatureVersion::V2 {
            digest_v2(secret, req.method, req.uri, req.body)
        } else {
            digest_v1(secret, req.body)
        };
        if bool::from(digest.as_slice().ct_eq(expected.as_slice())) {
            return Ok(Verified {
                version,
                secret: slot,
            });
        }
    }
    Err(VerifyError::Mismatch)
}

/// The v1 signature of `body`: `sha256(secret + body)`, lowercase hex.
pub fn sign_v1(secret: &Secret, body: &[u8]) -> String {
    encode_hex(&digest_v1(secret, body))
}

/// The v2 signature: `sha256(secret + METHOD + URI + body)`, lowercase hex. The URI is hashed as
/// given (v2 has no selective decode).
pub fn sign_v2(secret: &Secret, method: &str, uri: &str, body: &[u8]) -> String {
    encode_hex(&digest_v2(secret, method, uri, body))
}

/// The v3 signature: `HMAC-SHA256(secret, METHOD + URI' + body + timestamp)`, standard padded
/// base64, where URI' is [`selectively_decode_uri`] of `uri` (applied here).
pub fn sign_v3(secret: &Secret, method: &str, uri: &str, body: &[u8], timestamp: &str) -> String {
    keyed_hmac(secret)
        .map(|keyed| {
            let (mac, _) = mac_v3(keyed, method, uri, Case::Upper, body, timestamp.as_bytes());
            STANDARD.encode(mac)
        })
        // Unreachable: HMAC takes keys of any length.
        .unwrap_or_default()
}

/// URI' for v3: decodes exactly HubSpot's 12 upper-case escapes (`%3A %2F %3F %40 %21 %24 %27
/// %28 %29 %2A %2C %3B`) and nothing else, in one left-to-right pass (`%253A` stays `%253A`).
/// Borrows when there is nothing to decode.
pub fn selectively_decode_uri(uri: &str) -> Cow<'_, str> {
    decode_escapes(uri, Case::Upper)
}

/// Which spellings of the 12 escapes a decode pass accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    /// Upper-case hex only, as HubSpot's table is written.
    Upper,
    /// Upper- or lower-case hex: the second reading tried when `%3a`-style escapes occur.
    Any,
}

/// The character an escape `%HL` stands for, if it is one of the 12.
fn escaped_char(hi: u8, lo: u8, case: Case) -> Option<&'static str> {
    let lo = match case {
        Case::Upper => lo,
        Case::Any => lo.to_ascii_uppercase(),
    };
    let c = match (hi, lo) {
        (b'3', b'A') => ":",
        (b'2', b'F') => "/",
        (b'3', b'F') => "?",
        (b'4', b'0') => "@",
        (b'2', b'1') => "!",
        (b'2', b'4') => "$",
        (b'2', b'7') => "'",
        (b'2', b'8') => "(",
        (b'2', b'9') => ")",
        (b'2', b'A') => "*",
        (b'2', b'C') => ",",
        (b'3', b'B') => ";",
        _ => return None,
    };
    Some(c)
}

/// Hands URI' to `emit` piece by piece (the text between escapes, and each decoded character),
/// so a MAC can take it without the URI being copied. One left-to-right pass: a decoded character
/// is never re-read as part of a new escape. Returns whether a lower-case spelling (`%3a`) of
/// one of the 12 was seen and left as it was.
fn feed_decoded_uri<'u>(uri: &'u str, case: Case, mut emit: impl FnMut(&'u str)) -> bool {
    let bytes = uri.as_bytes();
    let mut saw_lower_case = false;
    // `uri[copied..]` has not been emitted yet. `i` stops only at an ASCII `%` and `copied` just
    // past an ASCII escape, so both are char boundaries and `get` never returns None.
    let mut copied = 0;
    let mut i = 0;
    while let Some(offset) = bytes
        .get(i..)
        .and_then(|rest| rest.iter().position(|&b| b == b'%'))
    {
        i += offset;
        if let (Some(&hi), Some(&lo)) = (bytes.get(i + 1), bytes.get(i + 2)) {
            if let Some(c) = escaped_char(hi, lo, case) {
                emit(uri.get(copied..i).unwrap_or_default());
                emit(c);
                i += 3;
                copied = i;
                continue;
            }
            saw_lower_case |= lo.is_ascii_lowercase() && escaped_char(hi, lo, Case::Any).is_some();
        }
        i += 1;
    }
    emit(uri.get(copied..).unwrap_or_default());
    saw_lower_case
}

fn decode_escapes(uri: &str, case: Case) -> Cow<'_, str> {
    let mut pieces: Vec<&str> = Vec::new();
    feed_decoded_uri(uri, case, |piece| pieces.push(piece));
    if pieces.len() <= 1 {
        Cow::Borrowed(uri)
    } else {
        Cow::Owned(pieces.concat())
    }
}

#[cfg(test)]
fn has_non_upper_escape(uri: &str) -> bool {
    feed_decoded_uri(uri, Case::Upper, |_| {})
}

/// A header that must appear at most once.
fn single_header<'h>(
    headers: &'h http::HeaderMap,
    name: &'static HeaderName,
) -> Result<Option<&'h http::HeaderValue>, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(VerifyError::DuplicateHeader(name.as_str()));
    }
    Ok(first)
}

/// A plain base-10 non-negative integer in canonical form: digits only, no sign, no space, no
/// fraction, no overflow, and no leading zero.
///
/// Canonical because the timestamp is the last part of the string v3 hashes
/// (`METHOD + URI' + body + timestamp`, nothing between the parts): if `0` + ts parsed as ts, a
/// `0` ending the URL or the body could move into the header under the same signature
/// (`?portalId=62510` with ts T sent as `?portalId=6251` with ts `0T`).
fn parse_timestamp_ms(raw: &[u8]) -> Result<u64, VerifyError> {
    if raw.is_empty() || (raw.len() > 1 && raw.first() == Some(&b'0')) {
        return Err(VerifyError::MalformedTimestamp);
    }
    raw.iter()
        .try_fold(0u64, |acc, &b| {
            let digit = if b.is_ascii_digit() {
                b - b'0'
            } else {
                return None;
            };
            acc.checked_mul(10)?.checked_add(u64::from(digit))
        })
        .ok_or(VerifyError::MalformedTimestamp)
}

/// The 32 bytes of a v3 signature header, read exactly as [`verify`] reads them (strict padded
/// standard base64, a space taken as `+`). Every spelling of one signed request that verifies
/// (its URI's escapes decoded or not, in either case; its signature's `+` as a space) carries
/// the same bytes, two signed requests carry different ones, and without the secret nobody can
/// make bytes that verify: an identity of the signed request its sender cannot choose.
pub fn v3_signature_bytes(header_value: &[u8]) -> Result<[u8; MAC_LEN], VerifyError> {
    decode_v3_signature(header_value)
}

/// Strict padded standard base64 of exactly 32 bytes. A space is read as `+`: a form decoder
/// upstream may have turned `+` into a space, and a space is never part of base64.
fn decode_v3_signature(raw: &[u8]) -> Result<[u8; MAC_LEN], VerifyError> {
    let Ok(raw) = <&[u8; MAC_BASE64_LEN]>::try_from(raw) else {
        return Err(VerifyError::BadEncoding);
    };
    let text = raw.map(|b| if b == b' ' { b'+' } else { b });
    // 44 base64 characters can describe up to 33 bytes before padding is checked.
    let mut buf = [0u8; MAC_LEN + 3];
    let len = STANDARD
        .decode_slice(text, &mut buf)
        .map_err(|_| VerifyError::BadEncoding)?;
    buf.get(..len)
        .and_then(|bytes| <[u8; MAC_LEN]>::try_from(bytes).ok())
        .ok_or(VerifyError::BadEncoding)
}

fn keyed_hmac(secret: &Secret) -> Option<HmacSha256> {
    // HMAC accepts a key of any length, so this never returns None in practice.
    <HmacSha256 as Mac>::new_from_slice(secret.expose().as_bytes()).ok()
}

fn digest_v1(secret: &Secret, body: &[u8]) -> [u8; MAC_LEN] {
    Sha256::new()
        .chain_update(secret.expose().as_bytes())
        .chain_update(body)
        .finalize()
        .into()
}

fn digest_v2(secret: &Secret, method: &str, uri: &str, body: &[u8]) -> [u8; MAC_LEN] {
    Sha256::new()
        .chain_update(secret.expose().as_bytes())
        .chain_update(method.as_bytes())
        .chain_update(uri.as_bytes())
        .chain_update(body)
        .finalize()
        .into()
}

/// 64 hex digits of either case into 32 bytes.
fn decode_hex_32(raw: &[u8]) -> Option<[u8; MAC_LEN]> {
    if raw.len() != 2 * MAC_LEN {
        return None;
    }
    let mut out = [0u8; MAC_LEN];
    for (byte, pair) in out.iter_mut().zip(raw.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *byte = (hex_value(*hi)? << 4) | hex_value(*lo)?;
    }
    Some(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_twelve_upper_case_escapes_are_decoded() {
        let uri = "https://h/p?a=%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B&b=%20%2B%3D%26%25%3a+%C3%A9";
        assert_eq!(
            selectively_decode_uri(uri),
            "https://h/p?a=:/?@!$'()*,;&b=%20%2B%3D%26%25%3a+%C3%A9"
        );
    }

    #[test]
    fn a_uri_without_escapes_is_borrowed_not_copied() {
        assert!(matches!(
            selectively_decode_uri("https://h/p?a=%20"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn decoding_is_a_single_pass() {
        assert_eq!(selectively_decode_uri("%253A"), "%253A");
        assert_eq!(selectively_decode_uri("%%3A"), "%:");
        assert_eq!(selectively_decode_uri("%3"), "%3");
        assert_eq!(selectively_decode_uri("é%3Aé"), "é:é");
    }

    #[test]
    fn the_any_case_reading_decodes_lower_case_escapes() {
        assert!(has_non_upper_escape("a%3ab"));
        assert!(has_non_upper_escape("a%2fb"));
        assert!(!has_non_upper_escape("a%3Ab%20%2b"));
        assert_eq!(decode_escapes("a%3ab%3A%2f", Case::Any), "a:b:/");
    }

    #[test]
    fn timestamps_must_be_plain_digits() {
        assert_eq!(parse_timestamp_ms(b"1693657560000"), Ok(1_693_657_560_000));
        for bad in [
            &b""[..],
            b"-1",
            b"1.0",
            b" 1",
            b"1 ",
            b"+1",
            b"01693657560000",
            b"00",
            b"18446744073709551616",
        ] {
            assert_eq!(
                parse_timestamp_ms(bad),
                Err(VerifyError::MalformedTimestamp)
            );
        }
        assert_eq!(parse_timestamp_ms(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_timestamp_ms(b"0"), Ok(0));
    }

    #[test]
    fn hex_round_trips_in_either_case() {
        let bytes: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37)).collect();
        let hex = encode_hex(&bytes);
        assert_eq!(
            decode_hex_32(hex.as_bytes()).map(|b| b.to_vec()),
            Some(bytes.clone())
        );
        assert_eq!(
            decode_hex_32(hex.to_uppercase().as_bytes()).map(|b| b.to_vec()),
            Some(bytes)
        );
        assert_eq!(decode_hex_32(b"zz"), None);
    }
}
