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
//!
//! The parts, one file each: [`diagnosis`] (what a diagnosis says), [`manglings`] (which
//! manglings exist), [`candidates`] (how candidates are generated), with [`readings`] (the
//! alternative readings they are built from), [`url`] (the URL type they split) and [`mac`]
//! (computing and comparing MACs).

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

mod candidates;
mod diagnosis;
mod mac;
mod manglings;
mod readings;
#[cfg(test)]
mod tests;
mod url;

use candidates::*;
pub use diagnosis::*;
use mac::*;
pub use manglings::ManglingKind;
use readings::*;
use url::*;

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
