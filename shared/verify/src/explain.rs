//! Saying exactly why a HubSpot signature did not match.
//!
//! [`explain`] first runs [`crate::signature::verify`], so its verdict never differs from the
//! verifier's. When the request is refused it names the first check that failed and, when a MAC
//! could be compared, recomputes it under each known way a request gets altered between HubSpot
//! and the verifier ("manglings": a `+` read as a space, a re-encoded URL, a stage prefix, a
//! re-serialised JSON body, ...). The first candidate whose MAC matches the received signature is
//! the diagnosis; a MAC cannot match by chance, so a diagnosis is never a guess.
//!
//! Bounds and guarantees:
//! - at most [`MAX_EXTRA_MACS`] MACs beyond the normal check, across all manglings and secrets;
//!   manglings left untried because of the cap are listed as skipped, never silently dropped;
//! - pure: no I/O, no clock (`now_ms` is an argument), no randomness;
//! - no output (field, `Debug` or `Display`) holds a secret, a body or a full MAC: only the first
//!   [`PREFIX_LEN`] characters of the received and the computed signatures, for comparison.

use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::secret::{Secret, SecretSet, SecretSlot};
use crate::signature::{
    HEADER_SIGNATURE, HEADER_SIGNATURE_V3, HEADER_SIGNATURE_VERSION, HEADER_TIMESTAMP, Policy,
    SignatureVersion, SignedRequest, VerifyError, selectively_decode_uri, verify,
};

/// The most MACs computed beyond the normal check, whatever the request and the secrets.
pub const MAX_EXTRA_MACS: usize = 64;
/// How many leading characters of a signature may be shown.
pub const PREFIX_LEN: usize = 8;

/// Stage names tried when no public URL says which stage a path prefix is.
const STAGE_GUESSES: [&str; 4] = ["Prod", "prod", "Stage", "dev"];
/// Path segments read as an API stage rather than a custom-domain mapping key.
const STAGE_NAMES: [&str; 9] = [
    "prod",
    "production",
    "stage",
    "staging",
    "dev",
    "development",
    "test",
    "beta",
    "live",
];
/// HubSpot's 12 escapes that URI' decodes, with the character each stands for.
const TWELVE: [(&str, char); 12] = [
    ("%3A", ':'),
    ("%2F", '/'),
    ("%3F", '?'),
    ("%40", '@'),
    ("%21", '!'),
    ("%24", '$'),
    ("%27", '\''),
    ("%28", '('),
    ("%29", ')'),
    ("%2A", '*'),
    ("%2C", ','),
    ("%3B", ';'),
];

type HmacSha256 = Hmac<Sha256>;

/// What the caller knows beyond the request: where HubSpot was told to send it, and secrets
/// the verifier does not accept but which might have signed it.
#[derive(Debug, Clone, Default)]
pub struct Hints<'a> {
    /// The URL HubSpot was configured with: the full target URL
    /// (`https://hooks.example.com/v1/webhooks/hubspot`) or its base (`https://hooks.example.com/v1`).
    pub public_url: Option<&'a str>,
    /// The URL rebuilt from the `Host` header, when the request's URI was built another way
    /// (e.g. from a configured public base).
    pub host_url: Option<&'a str>,
    /// The API Gateway stage the request came through, when known (not `$default`).
    pub stage: Option<&'a str>,
    /// Secrets the verifier does not accept, each with the slot it holds in the secret store:
    /// a previous secret past its grace window, or a current one the verifier has not loaded.
    pub other_secrets: Vec<(SecretSlot, &'a Secret)>,
}

/// Which way a timestamp is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skew {
    /// The timestamp is older than the window.
    Past,
    /// The timestamp is ahead of now by more than the window.
    Future,
}

/// The first check a refused request failed, in the verifier's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A required header is absent (its lower-case name).
    MissingHeader(&'static str),
    /// A signature or timestamp header appears more than once.
    DuplicateHeader(&'static str),
    /// The timestamp is not a whole number of milliseconds.
    MalformedTimestamp,
    /// The timestamp is further from now than the window allows.
    TimestampSkew {
        /// |now − timestamp| in milliseconds.
        by_ms: u64,
        /// Whether the timestamp is in the past or the future.
        direction: Skew,
        /// The accepted window.
        window_ms: u64,
    },
    /// The route does not accept this signature version.
    VersionNotAllowed(SignatureVersion),
    /// `x-hubspot-signature-version` is neither `v1` nor `v2`.
    UnknownVersion,
    /// The signature is not base64 (v3) or hex (v1, v2) of 32 bytes.
    MalformedSignature,
    /// The signature is well formed but no accepted secret produced it.
    Mismatch,
}

impl Check {
    /// A stable token: `missing-header`, `duplicate-header`, `malformed-timestamp`,
    /// `timestamp-skew`, `version-not-allowed`, `unknown-version`, `malformed-signature`,
    /// `mismatch`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing-header",
            Self::DuplicateHeader(_) => "duplicate-header",
            Self::MalformedTimestamp => "malformed-timestamp",
            Self::TimestampSkew { .. } => "timestamp-skew",
            Self::VersionNotAllowed(_) => "version-not-allowed",
            Self::UnknownVersion => "unknown-version",
            Self::MalformedSignature => "malformed-signature",
            Self::Mismatch => "mismatch",
        }
    }

    fn from_error(e: &VerifyError, window_ms: u64) -> Self {
        match *e {
            VerifyError::MissingHeader(h) => Self::MissingHeader(h),
            VerifyError::DuplicateHeader(h) => Self::DuplicateHeader(h),
            VerifyError::MalformedTimestamp => Self::MalformedTimestamp,
            VerifyError::TimestampTooOld { age_ms } => Self::TimestampSkew {
                by_ms: age_ms,
                direction: Skew::Past,
                window_ms,
            },
            VerifyError::TimestampInFuture { ahead_ms } => Self::TimestampSkew {
                by_ms: ahead_ms,
                direction: Skew::Future,
                window_ms,
            },
            VerifyError::BadEncoding => Self::MalformedSignature,
            VerifyError::Mismatch => Self::Mismatch,
            VerifyError::VersionNotAllowed(v) => Self::VersionNotAllowed(v),
            VerifyError::UnknownVersion => Self::UnknownVersion,
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader(h) => write!(f, "the request has no {h} header"),
            Self::DuplicateHeader(h) => {
                write!(
                    f,
                    "the {h} header appears more than once, so which one counts is ambiguous"
                )
            }
            Self::MalformedTimestamp => f.write_str(
                "the x-hubspot-request-timestamp header is not a whole number of milliseconds written canonically (digits only, no leading zero)",
            ),
            Self::TimestampSkew {
                by_ms,
                direction,
                window_ms,
            } => {
                let way = match direction {
                    Skew::Past => "older than now",
                    Skew::Future => "ahead of now",
                };
                write!(
                    f,
                    "the request timestamp is {} {way}, outside the accepted window of {} \
                     (for a captured request, give the time it was received as now)",
                    human_ms(*by_ms),
                    human_ms(*window_ms)
                )
            }
            Self::VersionNotAllowed(v) => {
                write!(
                    f,
                    "the request is signed with {v}, which this route does not accept"
                )
            }
            Self::UnknownVersion => {
                f.write_str("the x-hubspot-signature-version header is neither v1 nor v2")
            }
            Self::MalformedSignature => f.write_str(
                "the signature header is not a 32-byte MAC in base64 (v3) or hex (v1, v2)",
            ),
            Self::Mismatch => f.write_str("the signature does not match any accepted secret"),
        }
    }
}

/// A known way a request is altered between HubSpot and the verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManglingKind {
    /// `+` in the v3 signature header turned into spaces (a leading one then trimmed away).
    PlusAsSpace,
    /// Signed with a secret the verifier does not accept (the previous or the current one).
    WrongSecret,
    /// The JSON body was re-serialised (whitespace, key order, `\u` escapes).
    JsonReserialised,
    /// The received body is the base64 of the signed body.
    BodyBase64Encoded,
    /// The signed body was the base64 of the received body.
    BodyBase64Decoded,
    /// An API stage segment (e.g. `/Prod`) is in the verifier's path but not in HubSpot's URL.
    StagePrefixAdded,
    /// HubSpot's URL has an API stage segment the verifier's path lacks.
    StagePrefixMissing,
    /// HubSpot's URL has a custom-domain mapping key the verifier's path lacks.
    MappingKeyMissing,
    /// The verifier's path has a leading segment HubSpot's URL does not.
    MappingKeyAdded,
    /// HubSpot's URL has another host than the one the verifier used.
    HostDiffers,
    /// `http` and `https` swapped.
    SchemeChanged,
    /// The verifier's path ends with a `/` HubSpot's URL does not have.
    TrailingSlashAdded,
    /// HubSpot's URL ends with a `/` the verifier's path lacks.
    TrailingSlashRemoved,
    /// The query parameters are in another order than HubSpot signed.
    QueryReordered,
    /// The URL was percent-decoded before it was hashed.
    UriDecoded,
    /// The URL was re-encoded (double encoding, normalised escapes, `+`/`%20`).
    UriReEncoded,
    /// One of HubSpot's 12 escapes arrived decoded (v2 hashes the URL as sent).
    ReservedEscapeDecoded,
    /// One of the 12 characters arrived escaped, or HubSpot left one of the 12 escapes encoded.
    ReservedEscapeEncoded,
    /// The timestamp header differs from the one signed (seconds vs ms, a fraction, off by 1).
    TimestampAltered,
}

impl ManglingKind {
    /// Every kind, in the order they are tried.
    pub const ALL: [ManglingKind; 19] = [
        Self::PlusAsSpace,
        Self::WrongSecret,
        Self::JsonReserialised,
        Self::BodyBase64Encoded,
        Self::BodyBase64Decoded,
        Self::StagePrefixAdded,
        Self::StagePrefixMissing,
        Self::MappingKeyMissing,
        Self::MappingKeyAdded,
        Self::HostDiffers,
        Self::SchemeChanged,
        Self::TrailingSlashAdded,
        Self::TrailingSlashRemoved,
        Self::QueryReordered,
        Self::ReservedEscapeDecoded,
        Self::ReservedEscapeEncoded,
        Self::UriDecoded,
        Self::UriReEncoded,
        Self::TimestampAltered,
    ];

    /// A stable kebab-case token, e.g. `plus-as-space`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PlusAsSpace => "plus-as-space",
            Self::WrongSecret => "wrong-secret",
            Self::JsonReserialised => "json-reserialised",
            Self::BodyBase64Encoded => "body-base64-encoded",
            Self::BodyBase64Decoded => "body-base64-decoded",
            Self::StagePrefixAdded => "stage-prefix-added",
            Self::StagePrefixMissing => "stage-prefix-missing",
            Self::MappingKeyMissing => "mapping-key-missing",
            Self::MappingKeyAdded => "mapping-key-added",
            Self::HostDiffers => "host-differs",
            Self::SchemeChanged => "scheme-changed",
            Self::TrailingSlashAdded => "trailing-slash-added",
            Self::TrailingSlashRemoved => "trailing-slash-removed",
            Self::QueryReordered => "query-reordered",
            Self::UriDecoded => "uri-decoded",
            Self::UriReEncoded => "uri-re-encoded",
            Self::ReservedEscapeDecoded => "reserved-escape-decoded",
            Self::ReservedEscapeEncoded => "reserved-escape-encoded",
            Self::TimestampAltered => "timestamp-altered",
        }
    }

    fn covers_uri(self) -> bool {
        matches!(
            self,
            Self::StagePrefixAdded
                | Self::StagePrefixMissing
                | Self::MappingKeyMissing
                | Self::MappingKeyAdded
                | Self::HostDiffers
                | Self::SchemeChanged
                | Self::TrailingSlashAdded
                | Self::TrailingSlashRemoved
                | Self::QueryReordered
                | Self::UriDecoded
                | Self::UriReEncoded
                | Self::ReservedEscapeDecoded
                | Self::ReservedEscapeEncoded
        )
    }

    /// Whether this kind can matter for a signature of `version`.
    fn applies_to(self, version: SignatureVersion) -> bool {
        match self {
            Self::PlusAsSpace | Self::TimestampAltered => version == SignatureVersion::V3,
            k if k.covers_uri() => version != SignatureVersion::V1,
            _ => true,
        }
    }
}

impl fmt::Display for ManglingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mangling whose MAC matched the received signature: what changed, and with which secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mangling {
    /// Which mangling.
    pub kind: ManglingKind,
    /// The secret whose MAC matched.
    pub slot: SecretSlot,
    /// What exactly differs, in words (URLs, timestamps and forms, never a body or a secret).
    pub detail: String,
}

impl Mangling {
    /// What happened, in one sentence.
    pub fn finding(&self) -> String {
        let d = &self.detail;
        match self.kind {
            ManglingKind::PlusAsSpace => format!(
                "The signature header arrived with `+` turned into spaces ({d}): something \
                 between HubSpot and the verifier decoded the header as form data."
            ),
            ManglingKind::WrongSecret => format!(
                "The signature matches the {} client secret, which the verifier does not accept.",
                self.slot.as_str()
            ),
            ManglingKind::JsonReserialised => format!(
                "The body was re-serialised after HubSpot signed it: the signature matches {d}."
            ),
            ManglingKind::BodyBase64Encoded => "The body arrived base64-encoded: the signature \
                 matches the decoded bytes."
                .to_owned(),
            ManglingKind::BodyBase64Decoded => "The signature matches the base64 encoding of the \
                 body received: the body was decoded on its way to the verifier."
                .to_owned(),
            ManglingKind::StagePrefixAdded => format!(
                "The path the verifier hashed starts with the stage segment {d}, which HubSpot's \
                 URL does not have."
            ),
            ManglingKind::StagePrefixMissing => format!(
                "HubSpot's URL starts with the stage segment {d}, which the path the verifier \
                 hashed lacks."
            ),
            ManglingKind::MappingKeyMissing => format!(
                "HubSpot's URL starts with the custom-domain mapping key {d}, which the raw path \
                 omits."
            ),
            ManglingKind::MappingKeyAdded => {
                format!("The verifier's URL starts with {d}, which HubSpot's URL does not have.")
            }
            ManglingKind::HostDiffers => {
                format!("HubSpot signed another host than the one the verifier used: {d}.")
            }
            ManglingKind::SchemeChanged => {
                format!("HubSpot signed the URL with another scheme: {d}.")
            }
            ManglingKind::TrailingSlashAdded => format!(
                "The path the verifier hashed ends with a `/` that HubSpot's URL does not: {d}."
            ),
            ManglingKind::TrailingSlashRemoved => format!(
                "HubSpot's URL ends with a `/` that the path the verifier hashed lacks: {d}."
            ),
            ManglingKind::QueryReordered => format!(
                "The query parameters were reordered after HubSpot signed them: the signature \
                 matches the order {d}."
            ),
            ManglingKind::UriDecoded => format!(
                "The URL was percent-decoded before it was hashed: the signature matches the \
                 encoded form {d}."
            ),
            ManglingKind::UriReEncoded => {
                format!("The URL was re-encoded on its way: the signature matches it with {d}.")
            }
            ManglingKind::ReservedEscapeDecoded => {
                format!("One of HubSpot's 12 reserved escapes arrived decoded: {d}.")
            }
            ManglingKind::ReservedEscapeEncoded => format!("{}.", capitalise(d)),
            ManglingKind::TimestampAltered => format!("The timestamp header was altered: {d}."),
        }
    }

    /// What to change so requests verify.
    pub fn fix(&self) -> String {
        match self.kind {
            ManglingKind::PlusAsSpace => "Pass the x-hubspot-signature-v3 header through \
                 unchanged (never URL-decode header values); a space is read as `+`, but a leading \
                 `+` that became a space is trimmed away and lost."
                .to_owned(),
            ManglingKind::WrongSecret => match self.slot {
                SecretSlot::Previous => "HubSpot still signs with the previous secret: keep it \
                     as AWSPREVIOUS and lengthen HSBRIDGE_SECRET_GRACE_SECONDS until HubSpot uses \
                     the new one, or check which secret the app in HubSpot shows."
                    .to_owned(),
                SecretSlot::Current => "The verifier holds an out-of-date secret: put HubSpot's \
                     current client secret in the secret's AWSCURRENT stage and let the cache \
                     refresh (or restart the function)."
                    .to_owned(),
            },
            ManglingKind::JsonReserialised => "Verify the raw body bytes exactly as received, \
                 before any JSON parsing; turn off body re-formatting in the proxy or framework."
                .to_owned(),
            ManglingKind::BodyBase64Encoded => "Decode the body when the event says \
                 isBase64Encoded (lambda_http does), and do not base64 the body in a proxy."
                .to_owned(),
            ManglingKind::BodyBase64Decoded => "Hash the body exactly as HubSpot sent it; do not \
                 decode it on the way."
                .to_owned(),
            ManglingKind::StagePrefixAdded => "Hash the raw path (raw_http_path), not the \
                 rebuilt req.uri(), or set AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH."
                .to_owned(),
            ManglingKind::StagePrefixMissing => format!(
                "Put the stage in the public base: HSBRIDGE_PUBLIC_BASE_URL=<scheme>://<host>{}.",
                self.detail
            ),
            ManglingKind::MappingKeyMissing => format!(
                "Put the mapping key in the public base: \
                 HSBRIDGE_PUBLIC_BASE_URL=<scheme>://<host>{}.",
                self.detail
            ),
            ManglingKind::MappingKeyAdded => format!(
                "Remove {} from HSBRIDGE_PUBLIC_BASE_URL, or configure HubSpot with the URL that \
                 includes it.",
                self.detail
            ),
            ManglingKind::HostDiffers => "Set HSBRIDGE_PUBLIC_BASE_URL to the scheme and host \
                 HubSpot calls, or have the proxy forward the original Host header."
                .to_owned(),
            ManglingKind::SchemeChanged => "Set HSBRIDGE_PUBLIC_BASE_URL with the scheme HubSpot \
                 calls, or have the proxy send X-Forwarded-Proto."
                .to_owned(),
            ManglingKind::TrailingSlashAdded | ManglingKind::TrailingSlashRemoved => {
                "Configure HubSpot's target URL exactly as the route is reached, and stop any \
                 proxy adding or removing the trailing slash."
                    .to_owned()
            }
            ManglingKind::QueryReordered => "Receive through an HTTP API or a function URL \
                 (rawQueryString keeps the order); a REST API rebuilds the query from a map."
                .to_owned(),
            ManglingKind::UriDecoded => "Hash the raw path and the raw query string exactly as \
                 received, never a decoded URL."
                .to_owned(),
            ManglingKind::UriReEncoded
            | ManglingKind::ReservedEscapeDecoded
            | ManglingKind::ReservedEscapeEncoded => "Hash the raw path and the raw query string \
                 exactly as received, and stop any proxy normalising or re-encoding URLs."
                .to_owned(),
            ManglingKind::TimestampAltered => "Pass the x-hubspot-request-timestamp header \
                 through unchanged (no conversion to seconds, no float formatting)."
                .to_owned(),
        }
    }
}

impl fmt::Display for Mangling {
    /// The finding, then the fix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Fix: {}", self.finding(), self.fix())
    }
}

/// Why a mangling was not tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The cap of [`MAX_EXTRA_MACS`] was reached first.
    Budget,
    /// It needs the public URL HubSpot was configured with.
    NeedsPublicUrl,
    /// It needs a secret the verifier does not accept (e.g. the previous one).
    NeedsOtherSecret,
    /// The request's URI is not an absolute `scheme://host/path` URL.
    UriNotAbsolute,
}

impl SkipReason {
    /// A stable token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Budget => "mac-budget-reached",
            Self::NeedsPublicUrl => "needs-public-url",
            Self::NeedsOtherSecret => "needs-other-secret",
            Self::UriNotAbsolute => "uri-not-absolute",
        }
    }
}

/// Leading characters of signatures, for comparison by eye.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignaturePrefixes {
    /// The received signature's first [`PREFIX_LEN`] characters (a space read as `+`).
    pub received: Option<String>,
    /// The signature each accepted secret gives for the request as received.
    pub computed: Vec<(SecretSlot, String)>,
}

/// The outcome of [`explain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Explanation {
    /// The signature verified.
    Valid {
        /// The version that verified.
        version: SignatureVersion,
        /// The secret that verified it.
        slot: SecretSlot,
        /// A mangling the verifier tolerated (a `+` read from a space), still worth fixing.
        tolerated: Option<Mangling>,
    },
    /// The signature was refused.
    Invalid {
        /// The version the request claims, when that could be told.
        version: Option<SignatureVersion>,
        /// The first check that failed.
        first_failure: Check,
        /// When an earlier check (the timestamp) failed but the MAC itself matches: which secret.
        signature_matches: Option<SecretSlot>,
        /// The mangling whose MAC matched, if any.
        diagnosis: Option<Mangling>,
        /// Manglings tried without a match.
        checked: Vec<ManglingKind>,
        /// Manglings not tried, and why.
        skipped: Vec<(ManglingKind, SkipReason)>,
        /// Signature prefixes for comparison.
        prefixes: SignaturePrefixes,
        /// MACs computed beyond the normal check.
        extra_macs: usize,
    },
}

impl Explanation {
    /// Whether the signature verified.
    pub fn is_valid(&self) -> bool {
        matches!(self, Self::Valid { .. })
    }

    /// The mangling found (tolerated or not), if any.
    pub fn mangling(&self) -> Option<&Mangling> {
        match self {
            Self::Valid { tolerated, .. } => tolerated.as_ref(),
            Self::Invalid { diagnosis, .. } => diagnosis.as_ref(),
        }
    }
}

impl fmt::Display for Explanation {
    /// Plain words: the verdict, the first failed check, the diagnosis and its fix, and what
    /// was checked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Valid {
                version,
                slot,
                tolerated,
            } => {
                write!(
                    f,
                    "Valid: the {version} signature matches the {} client secret.",
                    slot.as_str()
                )?;
                if let Some(m) = tolerated {
                    write!(f, "\nAccepted despite a mangling: {m}")?;
                }
                Ok(())
            }
            Self::Invalid {
                version,
                first_failure,
                signature_matches,
                diagnosis,
                checked,
                skipped,
                prefixes,
                extra_macs,
            } => {
                let v = version.map_or("", SignatureVersion::as_str);
                write!(f, "Invalid {v} signature: {first_failure}.")?;
                if let Some(received) = &prefixes.received {
                    write!(f, "\nSignature received starts {received}…")?;
                    for (slot, computed) in &prefixes.computed {
                        write!(f, "; the {} secret gives {computed}…", slot.as_str())?;
                    }
                    f.write_str(".")?;
                }
                if let Some(slot) = signature_matches {
                    write!(
                        f,
                        "\nThe signature itself matches the {} client secret: only the check \
                         above failed.",
                        slot.as_str()
                    )?;
                }
                match diagnosis {
                    Some(m) => write!(f, "\nDiagnosis: {m}")?,
                    None if signature_matches.is_none() && !checked.is_empty() => f.write_str(
                        "\nNo known mangling matches: the secret is probably wrong, or the \
                         request was changed in a way not checked here.",
                    )?,
                    None => {}
                }
                if !checked.is_empty() {
                    let names: Vec<&str> = checked.iter().map(|k| k.as_str()).collect();
                    write!(f, "\nChecked: {}.", names.join(", "))?;
                }
                if !skipped.is_empty() {
                    let names: Vec<String> = skipped
                        .iter()
                        .map(|(k, r)| format!("{k} ({})", r.as_str()))
                        .collect();
                    write!(f, "\nNot checked: {}.", names.join(", "))?;
                }
                if *extra_macs > 0 {
                    write!(
                        f,
                        "\n{extra_macs} extra MACs computed (at most {MAX_EXTRA_MACS})."
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Explains [`verify`]'s verdict on `request`. See the module documentation.
pub fn explain(
    request: &SignedRequest<'_>,
    secrets: &SecretSet,
    policy: &Policy,
    now_ms: u64,
    hints: &Hints<'_>,
) -> Explanation {
    let error = match verify(request, secrets, policy, now_ms) {
        Ok(verified) => {
            let tolerated = plus_as_space_tolerated(request, verified.version, verified.secret);
            return Explanation::Valid {
                version: verified.version,
                slot: verified.secret,
                tolerated,
            };
        }
        Err(e) => e,
    };
    Diagnoser::new(request, secrets, hints).run(Check::from_error(&error, policy.window_ms()))
}

fn plus_as_space_tolerated(
    request: &SignedRequest<'_>,
    version: SignatureVersion,
    slot: SecretSlot,
) -> Option<Mangling> {
    if version != SignatureVersion::V3 {
        return None;
    }
    let spaces = request
        .headers
        .get(HEADER_SIGNATURE_V3)?
        .as_bytes()
        .iter()
        .filter(|&&b| b == b' ')
        .count();
    (spaces > 0).then(|| Mangling {
        kind: ManglingKind::PlusAsSpace,
        slot,
        detail: format!("{spaces} of them; the verifier read each space as `+`"),
    })
}

/// One alternative reading of the request.
struct Candidate {
    detail: String,
    /// The URI as hashed (URI' for v3), when it differs from the received one.
    hashed_uri: Option<String>,
    body: Option<Vec<u8>>,
    timestamp: Option<String>,
}

impl Candidate {
    fn body(detail: impl Into<String>, body: Vec<u8>) -> Self {
        Self {
            detail: detail.into(),
            hashed_uri: None,
            body: Some(body),
            timestamp: None,
        }
    }

    fn timestamp(detail: impl Into<String>, timestamp: String) -> Self {
        Self {
            detail: detail.into(),
            hashed_uri: None,
            body: None,
            timestamp: Some(timestamp),
        }
    }
}

/// The signature headers of a request, as far as they could be read.
struct Claimed {
    version: SignatureVersion,
    signature: Vec<u8>,
    timestamp: Vec<u8>,
}

struct Diagnoser<'r, 'h> {
    request: &'r SignedRequest<'r>,
    secrets: &'r SecretSet,
    hints: &'r Hints<'h>,
    extra_macs: usize,
    checked: Vec<ManglingKind>,
    skipped: Vec<(ManglingKind, SkipReason)>,
    tried: HashSet<[u8; 32]>,
}

impl<'r, 'h> Diagnoser<'r, 'h> {
    fn new(request: &'r SignedRequest<'r>, secrets: &'r SecretSet, hints: &'r Hints<'h>) -> Self {
        Self {
            request,
            secrets,
            hints,
            extra_macs: 0,
            checked: Vec::new(),
            skipped: Vec::new(),
            tried: HashSet::new(),
        }
    }

    fn run(mut self, first_failure: Check) -> Explanation {
        let claimed = self.claimed();
        let diagnosable = matches!(
            first_failure,
            Check::Mismatch
                | Check::MalformedSignature
                | Check::MalformedTimestamp
                | Check::TimestampSkew { .. }
        );
        let mut prefixes = SignaturePrefixes::default();
        let mut signature_matches = None;
        let mut diagnosis = None;
        if let (true, Some(claimed)) = (diagnosable, claimed.as_ref()) {
            prefixes.received = Some(prefix_of(&normalise_signature(claimed)));
            let expected = decode_signature(claimed.version, &claimed.signature);
            // A leading `+` read as a space is trimmed by any HTTP parser: put it back.
            let repaired = match expected {
                Some(_) => None,
                None if claimed.version == SignatureVersion::V3 => {
                    let mut with_plus = b"+".to_vec();
                    with_plus.extend_from_slice(&claimed.signature);
                    decode_signature(claimed.version, &with_plus)
                }
                None => None,
            };
            if let Some(expected) = expected.or(repaired) {
                let baseline = self.baseline(claimed, &expected, &mut prefixes);
                match (baseline, repaired.is_some()) {
                    (Some(slot), true) => {
                        diagnosis = Some(Mangling {
                            kind: ManglingKind::PlusAsSpace,
                            slot,
                            detail: "a leading `+` became a space and was trimmed away".to_owned(),
                        });
                    }
                    (Some(slot), false) => signature_matches = Some(slot),
                    (None, _) => {
                        if claimed.version == SignatureVersion::V3 {
                            self.checked.push(ManglingKind::PlusAsSpace);
                        }
                        diagnosis = self.diagnose(claimed, &expected);
                    }
                }
            } else if claimed.version == SignatureVersion::V3 {
                self.checked.push(ManglingKind::PlusAsSpace);
            }
        }
        Explanation::Invalid {
            version: claimed.as_ref().map(|c| c.version),
            first_failure,
            signature_matches,
            diagnosis,
            checked: self.checked,
            skipped: self.skipped,
            prefixes,
            extra_macs: self.extra_macs,
        }
    }

    /// The headers the verifier judged the request on (v3 if either v3 header is present).
    fn claimed(&self) -> Option<Claimed> {
        let headers = self.request.headers;
        let get = |name: &str| headers.get(name).map(|v| v.as_bytes().to_vec());
        let v3_signature = get(HEADER_SIGNATURE_V3);
        let v3_timestamp = get(HEADER_TIMESTAMP);
        if v3_signature.is_some() || v3_timestamp.is_some() {
            return Some(Claimed {
                version: SignatureVersion::V3,
                signature: v3_signature?,
                timestamp: v3_timestamp?,
            });
        }
        let version = match get(HEADER_SIGNATURE_VERSION)? {
            v if v.eq_ignore_ascii_case(b"v1") => SignatureVersion::V1,
            v if v.eq_ignore_ascii_case(b"v2") => SignatureVersion::V2,
            _ => return None,
        };
        Some(Claimed {
            version,
            signature: get(HEADER_SIGNATURE)?,
            timestamp: Vec::new(),
        })
    }

    /// The request as received, under each accepted secret (the normal check, not counted).
    fn baseline(
        &mut self,
        claimed: &Claimed,
        expected: &[u8; 32],
        prefixes: &mut SignaturePrefixes,
    ) -> Option<SecretSlot> {
        let hashed = self.hashed_uri(claimed.version, self.request.uri);
        let mut matched = None;
        for (slot, secret) in self.secrets.iter() {
            let mac = compute(
                claimed.version,
                secret,
                self.request.method,
                &hashed,
                self.request.body,
                &claimed.timestamp,
            );
            prefixes
                .computed
                .push((slot, prefix_of(&encode(claimed.version, &mac))));
            if matched.is_none() && bool::from(mac.ct_eq(expected)) {
                matched = Some(slot);
            }
        }
        // The verifier also reads lower-case forms of the 12 escapes; so does the baseline.
        let any_case = uppercase_twelve(self.request.uri);
        if matched.is_none()
            && claimed.version == SignatureVersion::V3
            && any_case != self.request.uri
        {
            let hashed = selectively_decode_uri(&any_case).into_owned();
            for (slot, secret) in self.secrets.iter() {
                let mac = compute(
                    claimed.version,
                    secret,
                    self.request.method,
                    &hashed,
                    self.request.body,
                    &claimed.timestamp,
                );
                if bool::from(mac.ct_eq(expected)) {
                    matched = Some(slot);
                    break;
                }
            }
        }
        self.remember(&hashed, self.request.body, &claimed.timestamp);
        matched
    }

    fn diagnose(&mut self, claimed: &Claimed, expected: &[u8; 32]) -> Option<Mangling> {
        let version = claimed.version;
        for kind in ManglingKind::ALL {
            if kind == ManglingKind::PlusAsSpace || !kind.applies_to(version) {
                continue;
            }
            if self.extra_macs >= MAX_EXTRA_MACS {
                self.skipped.push((kind, SkipReason::Budget));
                continue;
            }
            let candidates = match self.candidates(kind, claimed) {
                Ok(c) => c,
                Err(reason) => {
                    self.skipped.push((kind, reason));
                    continue;
                }
            };
            let secrets: Vec<(SecretSlot, &Secret)> = if kind == ManglingKind::WrongSecret {
                self.hints.other_secrets.clone()
            } else {
                self.secrets.iter().collect()
            };
            let mut exhausted = false;
            for candidate in candidates {
                let hashed_uri = candidate
                    .hashed_uri
                    .clone()
                    .unwrap_or_else(|| self.hashed_uri(version, self.request.uri));
                let body = candidate.body.as_deref().unwrap_or(self.request.body);
                let timestamp = candidate
                    .timestamp
                    .as_ref()
                    .map_or(claimed.timestamp.as_slice(), |t| t.as_bytes());
                // The same bytes again cannot match now if they did not before.
                if kind != ManglingKind::WrongSecret && !self.remember(&hashed_uri, body, timestamp)
                {
                    continue;
                }
                for &(slot, secret) in &secrets {
                    if self.extra_macs >= MAX_EXTRA_MACS {
                        exhausted = true;
                        break;
                    }
                    self.extra_macs += 1;
                    let mac = compute(
                        version,
                        secret,
                        self.request.method,
                        &hashed_uri,
                        body,
                        timestamp,
                    );
                    if bool::from(mac.ct_eq(expected)) {
                        return Some(Mangling {
                            kind,
                            slot,
                            detail: candidate.detail,
                        });
                    }
                }
                if exhausted {
                    break;
                }
            }
            if exhausted {
                self.skipped.push((kind, SkipReason::Budget));
            } else {
                self.checked.push(kind);
            }
        }
        None
    }

    /// Records a reading; false when it was already tried.
    fn remember(&mut self, hashed_uri: &str, body: &[u8], timestamp: &[u8]) -> bool {
        let mut h = Sha256::new();
        for part in [hashed_uri.as_bytes(), body, timestamp] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        self.tried.insert(h.finalize().into())
    }

    fn hashed_uri(&self, version: SignatureVersion, uri: &str) -> String {
        match version {
            SignatureVersion::V3 => selectively_decode_uri(uri).into_owned(),
            _ => uri.to_owned(),
        }
    }

    fn candidates(
        &self,
        kind: ManglingKind,
        claimed: &Claimed,
    ) -> Result<Vec<Candidate>, SkipReason> {
        let body = self.request.body;
        match kind {
            ManglingKind::PlusAsSpace => Ok(Vec::new()),
            ManglingKind::WrongSecret => {
                if self.hints.other_secrets.is_empty() {
                    Err(SkipReason::NeedsOtherSecret)
                } else {
                    Ok(vec![Candidate {
                        detail: "the request as received".to_owned(),
                        hashed_uri: None,
                        body: None,
                        timestamp: None,
                    }])
                }
            }
            ManglingKind::JsonReserialised => Ok(json_forms(body)
                .into_iter()
                .map(|(form, bytes)| Candidate::body(form, bytes))
                .collect()),
            ManglingKind::BodyBase64Encoded => {
                let trimmed: Vec<u8> = body
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                Ok(match STANDARD.decode(&trimmed) {
                    Ok(decoded) if !body.is_empty() => {
                        vec![Candidate::body("the decoded body", decoded)]
                    }
                    _ => Vec::new(),
                })
            }
            ManglingKind::BodyBase64Decoded => Ok(if body.is_empty() {
                Vec::new()
            } else {
                vec![Candidate::body(
                    "the base64 of the body",
                    STANDARD.encode(body).into_bytes(),
                )]
            }),
            ManglingKind::TimestampAltered => Ok(timestamp_candidates(&claimed.timestamp)),
            uri_kind => self.uri_candidates(uri_kind, claimed.version),
        }
    }

    fn uri_candidates(
        &self,
        kind: ManglingKind,
        version: SignatureVersion,
    ) -> Result<Vec<Candidate>, SkipReason> {
        let received = Url::parse(self.request.uri).ok_or(SkipReason::UriNotAbsolute)?;
        let refs: Vec<Url<'_>> = [self.hints.public_url, self.hints.host_url]
            .into_iter()
            .flatten()
            .filter_map(Url::parse)
            .collect();
        let mut out: Vec<(String, String)> = Vec::new();
        let mut push = |detail: String, uri: String| out.push((detail, uri));
        match kind {
            ManglingKind::HostDiffers => {
                if self.hints.public_url.is_none() && self.hints.host_url.is_none() {
                    return Err(SkipReason::NeedsPublicUrl);
                }
                for r in &refs {
                    if !r.authority.eq_ignore_ascii_case(received.authority) {
                        push(
                            format!(
                                "HubSpot called {}, the verifier used {}",
                                r.authority, received.authority
                            ),
                            received.with_authority(r.authority),
                        );
                    }
                }
            }
            ManglingKind::SchemeChanged => {
                let other = if received.scheme == "https" {
                    "http"
                } else {
                    "https"
                };
                push(
                    format!(
                        "HubSpot called {other}, the verifier used {}",
                        received.scheme
                    ),
                    received.with_scheme(other),
                );
            }
            ManglingKind::StagePrefixAdded
            | ManglingKind::StagePrefixMissing
            | ManglingKind::MappingKeyMissing
            | ManglingKind::MappingKeyAdded => {
                let mapping = matches!(
                    kind,
                    ManglingKind::MappingKeyMissing | ManglingKind::MappingKeyAdded
                );
                if mapping && refs.is_empty() {
                    return Err(SkipReason::NeedsPublicUrl);
                }
                for r in &refs {
                    if let Some((found, prefix, path)) = prefix_difference(received.path, r.path)
                        && found_kind(found, &prefix, self.hints.stage) == kind
                    {
                        push(prefix, received.with_path(&path));
                    }
                }
                if !mapping {
                    self.stage_guesses(kind, &received, &mut push);
                }
            }
            ManglingKind::TrailingSlashAdded => {
                if received.path.len() > 1
                    && let Some(stripped) = received.path.strip_suffix('/')
                {
                    push(
                        format!("the verifier used {}", received.path),
                        received.with_path(stripped),
                    );
                }
            }
            ManglingKind::TrailingSlashRemoved if !received.path.ends_with('/') => {
                let slashed = format!("{}/", received.path);
                push(
                    format!("HubSpot called {slashed}"),
                    received.with_path(&slashed),
                );
            }
            ManglingKind::QueryReordered => {
                for order in query_orders(received.query, &refs) {
                    push(order.clone(), received.with_query(Some(&order)));
                }
            }
            ManglingKind::UriDecoded => {
                for (label, plus) in [("spaces as %20", false), ("spaces as +", true)] {
                    let path = encode_path(received.path);
                    let query = received.query.map(|q| encode_query(q, plus));
                    let uri = received.with_path_query(&path, query.as_deref());
                    push(format!("{uri} ({label})"), uri);
                }
            }
            ManglingKind::UriReEncoded => {
                for (label, uri) in re_encodings(self.request.uri, &received) {
                    push(label, uri);
                }
            }
            ManglingKind::ReservedEscapeDecoded => {
                for (escape, c) in TWELVE {
                    let path = if c == '/' {
                        received.path.to_owned()
                    } else {
                        received.path.replace(c, escape)
                    };
                    let query = received.query.map(|q| q.replace(c, escape));
                    let uri = received.with_path_query(&path, query.as_deref());
                    push(format!("HubSpot sent {escape}, the verifier saw {c}"), uri);
                }
            }
            ManglingKind::ReservedEscapeEncoded => {
                let mut out_v3 = Vec::new();
                for (escape, c) in TWELVE {
                    let lower = escape.to_ascii_lowercase();
                    let tail = &self.request.uri[received.head_len()..];
                    if !tail.contains(escape) && !tail.contains(&lower) {
                        continue;
                    }
                    let decoded = tail
                        .replace(escape, &c.to_string())
                        .replace(&lower, &c.to_string());
                    push(
                        format!("{c} was sent as is and arrived as {escape}"),
                        format!("{}{decoded}", &self.request.uri[..received.head_len()]),
                    );
                    if version == SignatureVersion::V3 && tail.contains(escape) {
                        out_v3.push(Candidate {
                            detail: format!(
                                "HubSpot left {escape} encoded in the string it signed (its table \
                                 says to decode it to {c})"
                            ),
                            hashed_uri: Some(decode_keeping(self.request.uri, escape)),
                            body: None,
                            timestamp: None,
                        });
                    }
                }
                let mut all = self.plain_uri_candidates(version, out);
                all.extend(out_v3);
                return Ok(all);
            }
            _ => {}
        }
        Ok(self.plain_uri_candidates(version, out))
    }

    fn stage_guesses(
        &self,
        kind: ManglingKind,
        received: &Url<'_>,
        push: &mut impl FnMut(String, String),
    ) {
        match kind {
            ManglingKind::StagePrefixAdded => {
                let rest = received.path.get(1..).unwrap_or_default();
                if let Some((first, _)) = rest.split_once('/')
                    && is_stage(first, self.hints.stage)
                {
                    let path = &received.path[first.len() + 1..];
                    push(format!("/{first}"), received.with_path(path));
                }
            }
            ManglingKind::StagePrefixMissing => {
                let guesses: Vec<&str> = match self.hints.stage {
                    Some(stage) => vec![stage],
                    None => STAGE_GUESSES.to_vec(),
                };
                for stage in guesses {
                    if !received.path.starts_with(&format!("/{stage}/")) {
                        let path = format!("/{stage}{}", received.path);
                        push(format!("/{stage}"), received.with_path(&path));
                    }
                }
            }
            _ => {}
        }
    }

    fn plain_uri_candidates(
        &self,
        version: SignatureVersion,
        uris: Vec<(String, String)>,
    ) -> Vec<Candidate> {
        uris.into_iter()
            .filter(|(_, uri)| uri != self.request.uri)
            .map(|(detail, uri)| Candidate {
                detail,
                hashed_uri: Some(self.hashed_uri(version, &uri)),
                body: None,
                timestamp: None,
            })
            .collect()
    }
}

/// An absolute URL split into its parts, without copying.
struct Url<'u> {
    scheme: &'u str,
    authority: &'u str,
    path: &'u str,
    query: Option<&'u str>,
}

impl<'u> Url<'u> {
    fn parse(s: &'u str) -> Option<Self> {
        let (scheme, rest) = s.split_once("://")?;
        if !matches!(scheme, "http" | "https") {
            return None;
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        if authority.is_empty() {
            return None;
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        Some(Self {
            scheme,
            authority,
            path: if path.is_empty() { "/" } else { path },
            query,
        })
    }

    /// Length of `scheme://authority`.
    fn head_len(&self) -> usize {
        self.scheme.len() + 3 + self.authority.len()
    }

    fn build(scheme: &str, authority: &str, path: &str, query: Option<&str>) -> String {
        match query {
            Some(q) => format!("{scheme}://{authority}{path}?{q}"),
            None => format!("{scheme}://{authority}{path}"),
        }
    }

    fn with_authority(&self, authority: &str) -> String {
        Self::build(self.scheme, authority, self.path, self.query)
    }

    fn with_scheme(&self, scheme: &str) -> String {
        Self::build(scheme, self.authority, self.path, self.query)
    }

    fn with_path(&self, path: &str) -> String {
        Self::build(self.scheme, self.authority, path, self.query)
    }

    fn with_query(&self, query: Option<&str>) -> String {
        Self::build(self.scheme, self.authority, self.path, query)
    }

    fn with_path_query(&self, path: &str, query: Option<&str>) -> String {
        Self::build(self.scheme, self.authority, path, query)
    }
}

/// How a reference path differs from the received one by a leading prefix.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PrefixFound {
    /// The reference has a prefix the received path lacks.
    Missing,
    /// The received path has a prefix the reference lacks.
    Added,
}

/// `(which, "/prefix", path HubSpot called)` when `reference` and `received` differ by a
/// leading run of whole segments. A reference that is only a base (`/v1`) counts as a prefix.
fn prefix_difference(received: &str, reference: &str) -> Option<(PrefixFound, String, String)> {
    let reference = reference.trim_end_matches('/');
    if reference.is_empty() || reference == received {
        return None;
    }
    if let Some(prefix) = reference.strip_suffix(received)
        && received.starts_with('/')
        && !prefix.is_empty()
    {
        return Some((
            PrefixFound::Missing,
            prefix.to_owned(),
            reference.to_owned(),
        ));
    }
    if let Some(prefix) = received.strip_suffix(reference)
        && reference.starts_with('/')
        && prefix.starts_with('/')
    {
        return Some((PrefixFound::Added, prefix.to_owned(), reference.to_owned()));
    }
    // A base URL: its whole path is the prefix.
    if !received.starts_with(&format!("{reference}/")) && reference.starts_with('/') {
        return Some((
            PrefixFound::Missing,
            reference.to_owned(),
            format!("{reference}{received}"),
        ));
    }
    None
}

fn found_kind(found: PrefixFound, prefix: &str, stage: Option<&str>) -> ManglingKind {
    let single = prefix.strip_prefix('/').filter(|p| !p.contains('/'));
    let staged = single.is_some_and(|s| is_stage(s, stage));
    match (found, staged) {
        (PrefixFound::Missing, true) => ManglingKind::StagePrefixMissing,
        (PrefixFound::Missing, false) => ManglingKind::MappingKeyMissing,
        (PrefixFound::Added, true) => ManglingKind::StagePrefixAdded,
        (PrefixFound::Added, false) => ManglingKind::MappingKeyAdded,
    }
}

fn is_stage(segment: &str, stage: Option<&str>) -> bool {
    stage == Some(segment)
        || STAGE_NAMES
            .iter()
            .any(|name| name.eq_ignore_ascii_case(segment))
}

/// Other orders of the query's parameters: every permutation up to 3 parameters, else the
/// sorted, reverse-sorted and reversed orders; plus the order of a reference URL's query.
fn query_orders(query: Option<&str>, refs: &[Url<'_>]) -> Vec<String> {
    let Some(query) = query else {
        return Vec::new();
    };
    let params: Vec<&str> = query.split('&').collect();
    if params.len() < 2 || params.len() > 16 {
        return Vec::new();
    }
    let mut orders: Vec<Vec<&str>> = Vec::new();
    if params.len() <= 3 {
        permutations(&params, &mut Vec::new(), &mut orders);
    } else {
        let mut sorted = params.clone();
        sorted.sort_unstable();
        let mut reversed = params.clone();
        reversed.reverse();
        let mut descending = sorted.clone();
        descending.reverse();
        orders.extend([sorted, descending, reversed]);
    }
    let mut sorted_params = params.clone();
    sorted_params.sort_unstable();
    for r in refs {
        if let Some(q) = r.query {
            let theirs: Vec<&str> = q.split('&').collect();
            let mut sorted_theirs = theirs.clone();
            sorted_theirs.sort_unstable();
            if sorted_theirs == sorted_params {
                orders.insert(0, theirs);
            }
        }
    }
    let mut seen = HashSet::new();
    orders
        .into_iter()
        .map(|o| o.join("&"))
        .filter(|o| o != query && seen.insert(o.clone()))
        .collect()
}

fn permutations<'q>(rest: &[&'q str], acc: &mut Vec<&'q str>, out: &mut Vec<Vec<&'q str>>) {
    if rest.is_empty() {
        out.push(acc.clone());
        return;
    }
    for i in 0..rest.len() {
        let mut remaining = rest.to_vec();
        let picked = remaining.remove(i);
        acc.push(picked);
        permutations(&remaining, acc, out);
        acc.pop();
    }
}

/// Percent-encodes what a raw path cannot hold (space, non-ASCII, `%`, `"<>\^`{|}`).
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            out.push(char::from(b));
        } else {
            push_escape(&mut out, b);
        }
    }
    out
}

/// Encodes each key and value as `encodeURIComponent` does (`plus`: spaces as `+`).
fn encode_query(query: &str, plus: bool) -> String {
    let component = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for &b in s.as_bytes() {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                out.push(char::from(b));
            } else if b == b' ' && plus {
                out.push('+');
            } else {
                push_escape(&mut out, b);
            }
        }
        out
    };
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => format!("{}={}", component(k), component(v)),
            None => component(pair),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

/// Readings of a URL that was re-encoded on its way, each with a label.
fn re_encodings(uri: &str, received: &Url<'_>) -> Vec<(String, String)> {
    let head = &uri[..received.head_len()];
    let tail = &uri[received.head_len()..];
    let mut out = Vec::new();
    let mut add = |label: &str, new_tail: String| {
        if new_tail != tail {
            out.push((label.to_owned(), format!("{head}{new_tail}")));
        }
    };
    add(
        "double-encoded escapes (%25XX) read once",
        map_escapes(tail, |hi, lo, _| {
            (hi == b'2' && lo == b'5').then(|| "%".to_owned())
        }),
    );
    add(
        "escapes of unreserved characters (%7E, %41, ...) decoded",
        map_escapes(tail, |_, _, byte| {
            (byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
                .then(|| char::from(byte).to_string())
        }),
    );
    add(
        "escapes in lower-case hex",
        map_escapes(tail, |hi, lo, _| {
            Some(format!(
                "%{}{}",
                char::from(hi.to_ascii_lowercase()),
                char::from(lo.to_ascii_lowercase())
            ))
        }),
    );
    add(
        "escapes in upper-case hex",
        map_escapes(tail, |hi, lo, _| {
            Some(format!(
                "%{}{}",
                char::from(hi.to_ascii_uppercase()),
                char::from(lo.to_ascii_uppercase())
            ))
        }),
    );
    if let Some(query) = received.query {
        let path_part = &tail[..tail.len() - query.len()];
        add(
            "%20 in the query as +",
            format!("{path_part}{}", query.replace("%20", "+")),
        );
        add(
            "+ in the query as %20",
            format!("{path_part}{}", query.replace('+', "%20")),
        );
    }
    add("non-ASCII escapes as raw UTF-8", decode_non_ascii(tail));
    out
}

/// Replaces each `%HL` escape for which `f(hi, lo, byte)` gives a replacement.
fn map_escapes(s: &str, f: impl Fn(u8, u8, u8) -> Option<String>) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(&hi), Some(&lo)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = (hex_value(hi), hex_value(lo))
            && let Some(replacement) = f(hi, lo, (h << 4) | l)
        {
            out.push_str(&s[copied..i]);
            out.push_str(&replacement);
            i += 3;
            copied = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    out
}

/// Decodes runs of escapes of bytes ≥ 0x80 that form valid UTF-8.
fn decode_non_ascii(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let mut run = Vec::new();
        let mut j = i;
        while bytes.get(j) == Some(&b'%')
            && let (Some(h), Some(l)) = (
                bytes.get(j + 1).copied().and_then(hex_value),
                bytes.get(j + 2).copied().and_then(hex_value),
            )
            && (h << 4 | l) >= 0x80
        {
            run.push((h << 4) | l);
            j += 3;
        }
        if let (false, Ok(text)) = (run.is_empty(), std::str::from_utf8(&run)) {
            out.push_str(&s[copied..i]);
            out.push_str(text);
            i = j;
            copied = j;
        } else {
            i = j.max(i + 1);
        }
    }
    out.push_str(&s[copied..]);
    out
}

/// The 12 escapes spelled in lower-case hex, upper-cased (the verifier's second reading).
fn uppercase_twelve(uri: &str) -> String {
    map_escapes(uri, |hi, lo, _| {
        let upper = format!(
            "%{}{}",
            char::from(hi.to_ascii_uppercase()),
            char::from(lo.to_ascii_uppercase())
        );
        TWELVE.iter().any(|(e, _)| *e == upper).then_some(upper)
    })
}

/// URI' with every `keep` escape left as it is and the other 11 decoded.
fn decode_keeping(uri: &str, keep: &str) -> String {
    uri.split(keep)
        .map(|piece| selectively_decode_uri(piece).into_owned())
        .collect::<Vec<_>>()
        .join(keep)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Timestamps the signature might have been made with, given the header's value.
fn timestamp_candidates(raw: &[u8]) -> Vec<Candidate> {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some((whole, _)) = text.split_once('.')
        && !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
    {
        out.push(Candidate::timestamp(
            format!("the signature matches {whole}, the header carried {text} (a fraction added)"),
            whole.to_owned(),
        ));
    }
    if let Ok(ts) = text.parse::<u64>() {
        if ts >= 100_000_000_000 && ts % 1000 == 0 {
            let secs = ts / 1000;
            out.push(Candidate::timestamp(
                format!(
                    "the signature matches {secs} (seconds), the header carried {ts} (milliseconds)"
                ),
                secs.to_string(),
            ));
        }
        if ts < 100_000_000_000
            && let Some(ms) = ts.checked_mul(1000)
        {
            out.push(Candidate::timestamp(
                format!(
                    "the signature matches {ms} (milliseconds), the header carried {ts} (seconds)"
                ),
                ms.to_string(),
            ));
        }
        for (delta, label) in [(1i64, "1 ms"), (-1, "1 ms"), (1000, "1 s"), (-1000, "1 s")] {
            if let Some(other) = ts.checked_add_signed(delta) {
                let way = if delta > 0 { "later" } else { "earlier" };
                out.push(Candidate::timestamp(
                    format!("the signature matches {other}, {label} {way} than the header's {ts}"),
                    other.to_string(),
                ));
            }
        }
    }
    out
}

/// Forms the signed JSON body may have had, given the re-serialised body received: with
/// whitespace removed (key order and escapes kept), with non-ASCII `\u`-escaped, with `\u`
/// escapes (and `\/`) written as UTF-8, and serde_json's compact (sorted keys) and pretty forms.
fn json_forms(body: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let minified = minify(body);
    let mut forms = vec![
        (
            "the body with its whitespace removed (compact)",
            minified.clone(),
        ),
        (
            "the body with non-ASCII characters written as \\u escapes",
            escape_non_ascii(&minified),
        ),
        (
            "the body with \\u escapes written as UTF-8",
            unescape_to_utf8(&minified),
        ),
    ];
    if let Ok(compact) = serde_json::to_vec(&value) {
        forms.push(("the body in compact form with its keys sorted", compact));
    }
    if let Ok(pretty) = serde_json::to_vec_pretty(&value) {
        forms.push(("the body pretty-printed", pretty));
    }
    forms.retain(|(_, bytes)| bytes.as_slice() != body);
    forms
}

/// Drops whitespace outside strings.
fn minify(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            out.push(b);
        }
    }
    out
}

/// Non-ASCII characters (only ever inside strings in valid JSON) as `\uXXXX`, lower-case hex.
fn escape_non_ascii(json: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(json) else {
        return json.to_vec();
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out.into_bytes()
}

/// `\uXXXX` escapes of non-ASCII characters (and of `<`, `>`, `&`), and `\/`, written out.
fn unescape_to_utf8(json: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(json) else {
        return json.to_vec();
    };
    let unit_at = |s: &str, i: usize| -> Option<u16> {
        let hex = s.get(i + 2..i + 6)?;
        if s.get(i..i + 2)? != "\\u" {
            return None;
        }
        u16::from_str_radix(hex, 16).ok()
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        if rest.starts_with("\\\\") {
            out.push_str("\\\\");
            i += 2;
            continue;
        }
        if rest.starts_with("\\/") {
            out.push('/');
            i += 2;
            continue;
        }
        if let Some(unit) = unit_at(text, i) {
            let decoded = if (0xD800..0xDC00).contains(&unit) {
                unit_at(text, i + 6)
                    .and_then(|low| char::decode_utf16([unit, low]).next()?.ok())
                    .map(|c| (c, 12))
            } else {
                char::from_u32(u32::from(unit))
                    .filter(|c| !c.is_ascii() || matches!(c, '<' | '>' | '&'))
                    .map(|c| (c, 6))
            };
            if let Some((c, len)) = decoded {
                out.push(c);
                i += len;
                continue;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        i += c.len_utf8().max(1);
    }
    out.into_bytes()
}

fn compute(
    version: SignatureVersion,
    secret: &Secret,
    method: &str,
    hashed_uri: &str,
    body: &[u8],
    timestamp: &[u8],
) -> [u8; 32] {
    match version {
        SignatureVersion::V1 => Sha256::new()
            .chain_update(secret.expose().as_bytes())
            .chain_update(body)
            .finalize()
            .into(),
        SignatureVersion::V2 => Sha256::new()
            .chain_update(secret.expose().as_bytes())
            .chain_update(method.as_bytes())
            .chain_update(hashed_uri.as_bytes())
            .chain_update(body)
            .finalize()
            .into(),
        SignatureVersion::V3 => {
            let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(secret.expose().as_bytes())
            else {
                // Unreachable: HMAC takes keys of any length.
                return [0; 32];
            };
            mac.update(method.as_bytes());
            mac.update(hashed_uri.as_bytes());
            mac.update(body);
            mac.update(timestamp);
            mac.finalize().into_bytes().into()
        }
    }
}

/// The signature as received, a space read as `+` (v3).
fn normalise_signature(claimed: &Claimed) -> String {
    let text = String::from_utf8_lossy(&claimed.signature);
    if claimed.version == SignatureVersion::V3 {
        text.replace(' ', "+")
    } else {
        text.into_owned()
    }
}

fn decode_signature(version: SignatureVersion, raw: &[u8]) -> Option<[u8; 32]> {
    match version {
        SignatureVersion::V3 => {
            if raw.len() != 44 {
                return None;
            }
            let text: Vec<u8> = raw
                .iter()
                .map(|&b| if b == b' ' { b'+' } else { b })
                .collect();
            let mut buf = [0u8; 35];
            let len = STANDARD.decode_slice(&text, &mut buf).ok()?;
            <[u8; 32]>::try_from(buf.get(..len)?).ok()
        }
        _ => {
            if raw.len() != 64 {
                return None;
            }
            let mut out = [0u8; 32];
            for (byte, pair) in out.iter_mut().zip(raw.chunks_exact(2)) {
                let [hi, lo] = pair else { return None };
                *byte = (hex_value(*hi)? << 4) | hex_value(*lo)?;
            }
            Some(out)
        }
    }
}

fn encode(version: SignatureVersion, mac: &[u8; 32]) -> String {
    match version {
        SignatureVersion::V3 => STANDARD.encode(mac),
        _ => mac.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

fn prefix_of(signature: &str) -> String {
    signature.chars().take(PREFIX_LEN).collect()
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}

fn human_ms(ms: u64) -> String {
    match ms {
        ms if ms < 1_000 => format!("{ms} ms"),
        ms if ms < 120_000 => format!("{} s ({ms} ms)", ms / 1_000),
        ms if ms < 7_200_000 => format!("{} min ({ms} ms)", ms / 60_000),
        ms if ms < 172_800_000 => format!("{} h ({ms} ms)", ms / 3_600_000),
        ms => format!("{} days ({ms} ms)", ms / 86_400_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{sign_v2, sign_v3};
    use http::{HeaderMap, HeaderValue};

    const SECRET: &str = "current-test-secret";
    const OLD_SECRET: &str = "previous-test-secret";
    const NOW: u64 = 1_700_000_000_000;
    const URL: &str = "https://hooks.example.com/webhooks/hubspot";
    const BODY: &str = r#"[{"eventId":1,"portalId":62515,"subscriptionType":"contact.creation"}]"#;

    fn secret() -> Secret {
        Secret::new(SECRET)
    }

    fn only_current() -> SecretSet {
        SecretSet::new(secret()).unwrap()
    }

    /// A request as received: the signature made over `signed_*`, the rest as given.
    struct Received {
        uri: String,
        body: Vec<u8>,
        headers: HeaderMap,
    }

    impl Received {
        fn explain_with(&self, secrets: &SecretSet, hints: &Hints<'_>) -> Explanation {
            let request = SignedRequest {
                method: "POST",
                uri: &self.uri,
                body: &self.body,
                headers: &self.headers,
            };
            let policy = Policy::accepting(&[
                SignatureVersion::V1,
                SignatureVersion::V2,
                SignatureVersion::V3,
            ]);
            explain(&request, secrets, &policy, NOW, hints)
        }

        fn explain(&self) -> Explanation {
            self.explain_with(&only_current(), &Hints::default())
        }
    }

    fn v3_headers(signature: &str, timestamp: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HEADER_SIGNATURE_V3,
            HeaderValue::from_str(signature).unwrap(),
        );
        headers.insert(HEADER_TIMESTAMP, HeaderValue::from_str(timestamp).unwrap());
        headers
    }

    /// Signed by HubSpot over `signed_uri` and `signed_body`; received as `uri` and `body`.
    fn v3(signed_uri: &str, signed_body: &[u8], uri: &str, body: &[u8]) -> Received {
        let ts = NOW.to_string();
        let signature = sign_v3(&secret(), "POST", signed_uri, signed_body, &ts);
        Received {
            uri: uri.to_owned(),
            body: body.to_vec(),
            headers: v3_headers(&signature, &ts),
        }
    }

    fn v2(signed_uri: &str, uri: &str) -> Received {
        let mut headers = HeaderMap::new();
        let signature = sign_v2(&secret(), "POST", signed_uri, BODY.as_bytes());
        headers.insert(HEADER_SIGNATURE, HeaderValue::from_str(&signature).unwrap());
        headers.insert(HEADER_SIGNATURE_VERSION, HeaderValue::from_static("v2"));
        Received {
            uri: uri.to_owned(),
            body: BODY.as_bytes().to_vec(),
            headers,
        }
    }

    fn url_mangled(signed_uri: &str, uri: &str) -> Received {
        v3(signed_uri, BODY.as_bytes(), uri, BODY.as_bytes())
    }

    fn body_mangled(signed_body: &[u8], body: &[u8]) -> Received {
        v3(URL, signed_body, URL, body)
    }

    fn diagnosis(explanation: &Explanation) -> Option<ManglingKind> {
        match explanation {
            Explanation::Invalid { diagnosis, .. } => diagnosis.as_ref().map(|m| m.kind),
            Explanation::Valid { .. } => panic!("expected an invalid request: {explanation}"),
        }
    }

    /// A timestamp whose signature satisfies `want`, searched from NOW.
    fn timestamp_where(want: impl Fn(&str) -> bool) -> (String, String) {
        (0..100_000u64)
            .map(|i| (NOW - i).to_string())
            .map(|ts| {
                let sig = sign_v3(&secret(), "POST", URL, BODY.as_bytes(), &ts);
                (ts, sig)
            })
            .find(|(_, sig)| want(sig))
            .unwrap()
    }

    #[test]
    fn a_correctly_signed_request_is_valid() {
        let e = url_mangled(URL, URL).explain();
        assert_eq!(
            e,
            Explanation::Valid {
                version: SignatureVersion::V3,
                slot: SecretSlot::Current,
                tolerated: None
            }
        );
    }

    #[test]
    fn a_wrong_secret_with_no_mangling_gets_no_diagnosis() {
        let received = url_mangled(URL, URL);
        let wrong = SecretSet::new(Secret::new("another-secret")).unwrap();
        let e = received.explain_with(&wrong, &Hints::default());
        let Explanation::Invalid {
            first_failure,
            diagnosis,
            checked,
            signature_matches,
            ..
        } = &e
        else {
            panic!("expected invalid");
        };
        assert_eq!(*first_failure, Check::Mismatch);
        assert_eq!(*diagnosis, None);
        assert_eq!(*signature_matches, None);
        assert!(checked.contains(&ManglingKind::JsonReserialised));
        assert!(checked.contains(&ManglingKind::TimestampAltered));
        assert!(e.to_string().contains("No known mangling matches"));
    }

    #[test]
    fn plus_turned_into_spaces_is_accepted_but_named() {
        let (ts, sig) = timestamp_where(|s| s[1..].contains('+'));
        let received = Received {
            uri: URL.to_owned(),
            body: BODY.as_bytes().to_vec(),
            headers: v3_headers(&sig.replace('+', " "), &ts),
        };
        let e = received.explain();
        assert!(e.is_valid());
        assert_eq!(
            e.mangling().map(|m| m.kind),
            Some(ManglingKind::PlusAsSpace)
        );
    }

    #[test]
    fn a_leading_plus_lost_as_a_trimmed_space_is_diagnosed() {
        let (ts, sig) = timestamp_where(|s| s.starts_with('+'));
        let received = Received {
            uri: URL.to_owned(),
            body: BODY.as_bytes().to_vec(),
            headers: v3_headers(&sig[1..], &ts),
        };
        let e = received.explain();
        assert!(matches!(
            e,
            Explanation::Invalid {
                first_failure: Check::MalformedSignature,
                ..
            }
        ));
        assert_eq!(diagnosis(&e), Some(ManglingKind::PlusAsSpace));
    }

    #[test]
    fn a_request_signed_with_the_previous_secret_the_verifier_dropped_is_diagnosed() {
        let ts = NOW.to_string();
        let signature = sign_v3(&Secret::new(OLD_SECRET), "POST", URL, BODY.as_bytes(), &ts);
        let received = Received {
            uri: URL.to_owned(),
            body: BODY.as_bytes().to_vec(),
            headers: v3_headers(&signature, &ts),
        };
        let old = Secret::new(OLD_SECRET);
        let hints = Hints {
            other_secrets: vec![(SecretSlot::Previous, &old)],
            ..Hints::default()
        };
        let e = received.explain_with(&only_current(), &hints);
        assert_eq!(diagnosis(&e), Some(ManglingKind::WrongSecret));
        assert_eq!(e.mangling().map(|m| m.slot), Some(SecretSlot::Previous));
    }

    #[test]
    fn a_request_signed_with_a_current_secret_the_verifier_lacks_is_diagnosed() {
        let received = url_mangled(URL, URL);
        let stale = SecretSet::new(Secret::new(OLD_SECRET)).unwrap();
        let current = secret();
        let hints = Hints {
            other_secrets: vec![(SecretSlot::Current, &current)],
            ..Hints::default()
        };
        let e = received.explain_with(&stale, &hints);
        assert_eq!(diagnosis(&e), Some(ManglingKind::WrongSecret));
        assert_eq!(e.mangling().map(|m| m.slot), Some(SecretSlot::Current));
    }

    #[test]
    fn a_pretty_printed_body_is_diagnosed_as_reserialised_json() {
        let pretty = "[\n  {\n    \"eventId\": 1,\n    \"portalId\": 62515,\n    \"subscriptionType\": \"contact.creation\"\n  }\n]";
        let e = body_mangled(BODY.as_bytes(), pretty.as_bytes()).explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::JsonReserialised));
    }

    #[test]
    fn utf8_rewritten_as_unicode_escapes_is_diagnosed_as_reserialised_json() {
        let signed = r#"[{"propertyValue":"Jürgen 😀"}]"#;
        let received = r#"[{"propertyValue":"J\u00fcrgen \ud83d\ude00"}]"#;
        let e = body_mangled(signed.as_bytes(), received.as_bytes()).explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::JsonReserialised));
    }

    #[test]
    fn unicode_escapes_written_out_as_utf8_are_diagnosed_as_reserialised_json() {
        let signed = r#"[{"propertyValue":"J\u00fcrgen"}]"#;
        let received = r#"[{"propertyValue":"Jürgen"}]"#;
        let e = body_mangled(signed.as_bytes(), received.as_bytes()).explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::JsonReserialised));
    }

    #[test]
    fn a_body_received_as_base64_is_diagnosed() {
        let encoded = STANDARD.encode(BODY);
        let e = body_mangled(BODY.as_bytes(), encoded.as_bytes()).explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::BodyBase64Encoded));
    }

    #[test]
    fn a_body_signed_as_base64_but_received_decoded_is_diagnosed() {
        let encoded = STANDARD.encode(BODY);
        let e = body_mangled(encoded.as_bytes(), BODY.as_bytes()).explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::BodyBase64Decoded));
    }

    #[test]
    fn a_stage_inserted_into_the_path_is_diagnosed() {
        let e = url_mangled(URL, "https://hooks.example.com/Prod/webhooks/hubspot").explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::StagePrefixAdded));
    }

    #[test]
    fn a_stage_missing_from_the_path_is_diagnosed_from_the_event_stage() {
        let received = url_mangled(
            "https://abc.execute-api.us-east-1.amazonaws.com/live2/webhooks/hubspot",
            "https://abc.execute-api.us-east-1.amazonaws.com/webhooks/hubspot",
        );
        let hints = Hints {
            stage: Some("live2"),
            ..Hints::default()
        };
        let e = received.explain_with(&only_current(), &hints);
        assert_eq!(diagnosis(&e), Some(ManglingKind::StagePrefixMissing));
        assert_eq!(e.mangling().unwrap().detail, "/live2");
    }

    #[test]
    fn a_conventional_stage_missing_from_the_path_is_found_without_hints() {
        let e = url_mangled("https://hooks.example.com/prod/webhooks/hubspot", URL).explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::StagePrefixMissing));
    }

    #[test]
    fn a_mapping_key_missing_from_the_raw_path_is_diagnosed_against_the_public_url() {
        let public = "https://hooks.example.com/v1/webhooks/hubspot";
        let received = url_mangled(public, URL);
        let hints = Hints {
            public_url: Some(public),
            ..Hints::default()
        };
        let e = received.explain_with(&only_current(), &hints);
        assert_eq!(diagnosis(&e), Some(ManglingKind::MappingKeyMissing));
        assert!(
            e.to_string()
                .contains("HSBRIDGE_PUBLIC_BASE_URL=<scheme>://<host>/v1")
        );
    }

    #[test]
    fn a_public_base_url_alone_is_enough_to_find_the_mapping_key() {
        let received = url_mangled("https://hooks.example.com/v1/webhooks/hubspot", URL);
        let hints = Hints {
            public_url: Some("https://hooks.example.com/v1"),
            ..Hints::default()
        };
        let e = received.explain_with(&only_current(), &hints);
        assert_eq!(diagnosis(&e), Some(ManglingKind::MappingKeyMissing));
    }

    #[test]
    fn a_path_segment_hubspot_never_called_is_diagnosed_as_an_added_mapping_key() {
        let received = url_mangled(URL, "https://hooks.example.com/v1/webhooks/hubspot");
        let hints = Hints {
            public_url: Some(URL),
            ..Hints::default()
        };
        let e = received.explain_with(&only_current(), &hints);
        assert_eq!(diagnosis(&e), Some(ManglingKind::MappingKeyAdded));
    }

    #[test]
    fn mapping_keys_and_hosts_are_skipped_without_a_public_url() {
        let e = url_mangled(URL, URL).explain_with(
            &SecretSet::new(Secret::new("x")).unwrap(),
            &Hints::default(),
        );
        let Explanation::Invalid { skipped, .. } = e else {
            panic!()
        };
        assert!(skipped.contains(&(ManglingKind::HostDiffers, SkipReason::NeedsPublicUrl)));
        assert!(skipped.contains(&(ManglingKind::MappingKeyMissing, SkipReason::NeedsPublicUrl)));
    }

    #[test]
    fn a_host_rewritten_by_a_proxy_is_diagnosed() {
        let received = url_mangled(URL, "https://internal.local:8443/webhooks/hubspot");
        let hints = Hints {
            public_url: Some(URL),
            ..Hints::default()
        };
        let e = received.explain_with(&only_current(), &hints);
        assert_eq!(diagnosis(&e), Some(ManglingKind::HostDiffers));
    }

    #[test]
    fn http_and_https_swapped_is_diagnosed() {
        let e = url_mangled(URL, "http://hooks.example.com/webhooks/hubspot").explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::SchemeChanged));
    }

    #[test]
    fn a_trailing_slash_added_is_diagnosed() {
        let e = url_mangled(URL, "https://hooks.example.com/webhooks/hubspot/").explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::TrailingSlashAdded));
    }

    #[test]
    fn a_trailing_slash_removed_is_diagnosed() {
        let e = url_mangled("https://hooks.example.com/webhooks/hubspot/", URL).explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::TrailingSlashRemoved));
    }

    #[test]
    fn reordered_query_parameters_are_diagnosed() {
        let e = url_mangled(
            "https://hooks.example.com/webhooks/hubspot?z=1&a=2&m=3",
            "https://hooks.example.com/webhooks/hubspot?a=2&m=3&z=1",
        )
        .explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::QueryReordered));
    }

    #[test]
    fn a_fully_decoded_url_is_diagnosed() {
        let e = url_mangled(
            "https://hooks.example.com/webhooks/hubspot?name=J%C3%BCrgen%20M&tag=a%2Bb",
            "https://hooks.example.com/webhooks/hubspot?name=Jürgen M&tag=a+b",
        )
        .explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::UriDecoded));
    }

    #[test]
    fn a_re_encoded_url_is_diagnosed() {
        let e = url_mangled(
            "https://hooks.example.com/webhooks/hubspot?user=~ann",
            "https://hooks.example.com/webhooks/hubspot?user=%7Eann",
        )
        .explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::UriReEncoded));
    }

    #[test]
    fn a_double_encoded_reserved_escape_is_diagnosed_as_re_encoding() {
        let e = url_mangled(
            "https://hooks.example.com/webhooks/hubspot?at=10%3A30",
            "https://hooks.example.com/webhooks/hubspot?at=10%253A30",
        )
        .explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::UriReEncoded));
    }

    #[test]
    fn a_v2_reserved_escape_decoded_on_the_way_is_diagnosed() {
        let e = v2(
            "https://hooks.example.com/webhooks/hubspot?at=10%3A30",
            "https://hooks.example.com/webhooks/hubspot?at=10:30",
        )
        .explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::ReservedEscapeDecoded));
    }

    #[test]
    fn a_v2_reserved_character_encoded_on_the_way_is_diagnosed() {
        let e = v2(
            "https://hooks.example.com/webhooks/hubspot?at=10:30",
            "https://hooks.example.com/webhooks/hubspot?at=10%3A30",
        )
        .explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::ReservedEscapeEncoded));
    }

    #[test]
    fn a_v3_escape_hubspot_left_encoded_is_diagnosed() {
        let uri = "https://hooks.example.com/webhooks/hubspot?list=a%2Cb";
        let ts = NOW.to_string();
        // What HubSpot would send if it did not decode %2C: URI' keeps it.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(b"POST");
        mac.update(uri.as_bytes());
        mac.update(BODY.as_bytes());
        mac.update(ts.as_bytes());
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        let received = Received {
            uri: uri.to_owned(),
            body: BODY.as_bytes().to_vec(),
            headers: v3_headers(&signature, &ts),
        };
        let e = received.explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::ReservedEscapeEncoded));
        assert!(e.to_string().contains("%2C"));
    }

    fn timestamp_mangled(signed_ts: &str, header_ts: &str) -> Received {
        let signature = sign_v3(&secret(), "POST", URL, BODY.as_bytes(), signed_ts);
        Received {
            uri: URL.to_owned(),
            body: BODY.as_bytes().to_vec(),
            headers: v3_headers(&signature, header_ts),
        }
    }

    #[test]
    fn a_timestamp_signed_in_seconds_but_sent_in_milliseconds_is_diagnosed() {
        let e = timestamp_mangled(&(NOW / 1000).to_string(), &NOW.to_string()).explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::TimestampAltered));
    }

    #[test]
    fn a_timestamp_rendered_as_a_float_is_diagnosed() {
        let e = timestamp_mangled(&NOW.to_string(), &format!("{NOW}.0")).explain();
        assert!(matches!(
            e,
            Explanation::Invalid {
                first_failure: Check::MalformedTimestamp,
                ..
            }
        ));
        assert_eq!(diagnosis(&e), Some(ManglingKind::TimestampAltered));
    }

    #[test]
    fn a_timestamp_off_by_one_millisecond_is_diagnosed() {
        let e = timestamp_mangled(&(NOW + 1).to_string(), &NOW.to_string()).explain();
        assert_eq!(diagnosis(&e), Some(ManglingKind::TimestampAltered));
    }

    #[test]
    fn an_old_capture_names_the_skew_and_still_checks_the_mac() {
        let received = url_mangled(URL, URL);
        let request = SignedRequest {
            method: "POST",
            uri: &received.uri,
            body: &received.body,
            headers: &received.headers,
        };
        let later = NOW + 3 * 86_400_000;
        let e = explain(
            &request,
            &only_current(),
            &Policy::v3_only(),
            later,
            &Hints::default(),
        );
        let Explanation::Invalid {
            first_failure,
            signature_matches,
            diagnosis,
            ..
        } = &e
        else {
            panic!()
        };
        assert_eq!(
            *first_failure,
            Check::TimestampSkew {
                by_ms: 3 * 86_400_000,
                direction: Skew::Past,
                window_ms: 300_000
            }
        );
        assert_eq!(*signature_matches, Some(SecretSlot::Current));
        assert_eq!(*diagnosis, None);
        assert!(e.to_string().contains("3 days"));
    }

    #[test]
    fn an_old_capture_with_a_mangling_is_still_diagnosed() {
        let received = url_mangled(URL, "https://hooks.example.com/webhooks/hubspot/");
        let request = SignedRequest {
            method: "POST",
            uri: &received.uri,
            body: &received.body,
            headers: &received.headers,
        };
        let e = explain(
            &request,
            &only_current(),
            &Policy::v3_only(),
            NOW - 600_000,
            &Hints::default(),
        );
        assert!(matches!(
            e,
            Explanation::Invalid {
                first_failure: Check::TimestampSkew {
                    direction: Skew::Future,
                    ..
                },
                ..
            }
        ));
        assert_eq!(diagnosis(&e), Some(ManglingKind::TrailingSlashAdded));
    }

    #[test]
    fn a_missing_header_is_named_without_a_diagnosis() {
        let mut received = url_mangled(URL, URL);
        received.headers.remove(HEADER_TIMESTAMP);
        let e = received.explain();
        assert_eq!(
            e,
            Explanation::Invalid {
                version: None,
                first_failure: Check::MissingHeader(HEADER_TIMESTAMP),
                signature_matches: None,
                diagnosis: None,
                checked: Vec::new(),
                skipped: Vec::new(),
                prefixes: SignaturePrefixes::default(),
                extra_macs: 0,
            }
        );
    }

    #[test]
    fn a_version_the_route_refuses_is_named() {
        let received = v2(URL, URL);
        let request = SignedRequest {
            method: "POST",
            uri: &received.uri,
            body: &received.body,
            headers: &received.headers,
        };
        let e = explain(
            &request,
            &only_current(),
            &Policy::v3_only(),
            NOW,
            &Hints::default(),
        );
        assert!(matches!(
            e,
            Explanation::Invalid {
                first_failure: Check::VersionNotAllowed(SignatureVersion::V2),
                diagnosis: None,
                ..
            }
        ));
    }

    #[test]
    fn the_extra_macs_never_exceed_the_cap() {
        let uri = "https://hooks.example.com/Prod/webhooks/hubspot/?c=%3A(%2C)&b=%7E%C3%A9&a=x+y";
        let body = "[ {\"v\": \"J\\u00fcrgen\", \"w\": \"é\"} ]";
        let received = v3(URL, BODY.as_bytes(), uri, body.as_bytes());
        let two = SecretSet::new(Secret::new("a"))
            .unwrap()
            .with_previous(Secret::new("b"))
            .unwrap();
        let spare = Secret::new("c");
        let e = received.explain_with(
            &two,
            &Hints {
                public_url: Some("https://elsewhere.example.com/v9/x"),
                host_url: Some("http://other.internal/Stage/webhooks/hubspot"),
                other_secrets: vec![
                    (SecretSlot::Previous, &spare),
                    (SecretSlot::Previous, &spare),
                ],
                ..Hints::default()
            },
        );
        let Explanation::Invalid {
            extra_macs,
            skipped,
            diagnosis,
            ..
        } = e
        else {
            panic!()
        };
        assert!(extra_macs <= MAX_EXTRA_MACS, "{extra_macs}");
        assert_eq!(diagnosis, None);
        assert_eq!(extra_macs, MAX_EXTRA_MACS, "{skipped:?}");
        assert!(skipped.iter().any(|(_, r)| *r == SkipReason::Budget));
    }

    #[test]
    fn no_output_holds_a_secret_or_a_full_signature() {
        let received = url_mangled(URL, "https://hooks.example.com/webhooks/hubspot/");
        let full = received.headers[HEADER_SIGNATURE_V3]
            .to_str()
            .unwrap()
            .to_owned();
        let old = Secret::new(OLD_SECRET);
        let hints = Hints {
            other_secrets: vec![(SecretSlot::Previous, &old)],
            ..Hints::default()
        };
        for secrets in [
            only_current(),
            SecretSet::new(Secret::new("zz-other")).unwrap(),
        ] {
            let e = received.explain_with(&secrets, &hints);
            for text in [e.to_string(), format!("{e:?}")] {
                assert!(!text.contains(SECRET));
                assert!(!text.contains(OLD_SECRET));
                assert!(!text.contains("zz-other"));
                assert!(!text.contains(&full));
                assert!(!text.contains(&full[..PREFIX_LEN + 1]));
            }
        }
    }
}
