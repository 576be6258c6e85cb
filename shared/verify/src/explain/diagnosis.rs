//! What a diagnosis says: the first failed check, the mangling found and how to fix it, what
//! was checked or skipped, and the whole explanation as text.

use super::*;

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

    pub(super) fn from_error(e: &VerifyError, window_ms: u64) -> Self {
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
            ManglingKind::ContextParamsAppended => format!(
                "HubSpot signed the URL before appending the caller's context to its query: the \
                 signature matches it without {d}."
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
            ManglingKind::ContextParamsAppended => "This is a hubspot.fetch request whose \
                 context parameters were not signed. hsbridge's relay verifies the URL exactly as \
                 received and refuses it; keep the capture and report it, since HubSpot does not \
                 document whether (or in which order) it appends them before or after signing."
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

pub(super) fn prefix_of(signature: &str) -> String {
    signature.chars().take(PREFIX_LEN).collect()
}

pub(super) fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}

pub(super) fn human_ms(ms: u64) -> String {
    match ms {
        ms if ms < 1_000 => format!("{ms} ms"),
        ms if ms < 120_000 => format!("{} s ({ms} ms)", ms / 1_000),
        ms if ms < 7_200_000 => format!("{} min ({ms} ms)", ms / 60_000),
        ms if ms < 172_800_000 => format!("{} h ({ms} ms)", ms / 3_600_000),
        ms => format!("{} days ({ms} ms)", ms / 86_400_000),
    }
}
