//! Which manglings exist: every known way a request is altered between HubSpot and the
//! verifier, in the order they are tried, with the signature versions each can matter for.

use super::*;

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
    /// HubSpot appended the caller's context (`appId`, `portalId`, `userId`, `userEmail`) to a
    /// `hubspot.fetch` URL after signing it.
    ContextParamsAppended,
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
    pub const ALL: [ManglingKind; 20] = [
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
        Self::ContextParamsAppended,
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
            Self::ContextParamsAppended => "context-params-appended",
            Self::UriDecoded => "uri-decoded",
            Self::UriReEncoded => "uri-re-encoded",
            Self::ReservedEscapeDecoded => "reserved-escape-decoded",
            Self::ReservedEscapeEncoded => "reserved-escape-encoded",
            Self::TimestampAltered => "timestamp-altered",
        }
    }

    pub(super) fn covers_uri(self) -> bool {
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
                | Self::ContextParamsAppended
                | Self::UriDecoded
                | Self::UriReEncoded
                | Self::ReservedEscapeDecoded
                | Self::ReservedEscapeEncoded
        )
    }

    /// Whether this kind can matter for a signature of `version`.
    pub(super) fn applies_to(self, version: SignatureVersion) -> bool {
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
