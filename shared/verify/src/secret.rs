//! Secrets (client secrets, tokens) and the set of client secrets a verifier accepts.
//!
//! A [`Secret`] can only be read through [`Secret::expose`], so every place that touches the
//! value is easy to find. It must never be printed: `Debug` and `Display` are redacted, it has no
//! `Serialize`, and its memory is zeroed when it is dropped.
//!
//! A [`SecretSet`] holds the current client secret and, during a rotation's grace window, the
//! previous one. HubSpot documents no overlap period for a rotated client secret, so a verifier
//! that knew only one secret would reject every request already signed with the old one.

use std::fmt;

use serde::{Deserialize, Deserializer};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A secret string (a client secret or a token), redacted when printed and zeroed on drop.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret's value. The only way to read it: call it on the line that uses the value.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl PartialEq for Secret {
    /// Constant-time in the contents (the length may show, as it does for any comparison).
    fn eq(&self, other: &Self) -> bool {
        self.expose()
            .as_bytes()
            .ct_eq(other.expose().as_bytes())
            .into()
    }
}

impl Eq for Secret {}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl<'de> Deserialize<'de> for Secret {
    /// Reads a secret from a plain string. There is deliberately no `Serialize`: a secret must not
    /// find its way into a log line or a response through a derived serialiser.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

/// Which secret of a [`SecretSet`] verified a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretSlot {
    /// The current client secret.
    Current,
    /// The previous client secret, still accepted during a rotation's grace window.
    Previous,
}

impl SecretSlot {
    /// `"current"` or `"previous"`, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Previous => "previous",
        }
    }
}

/// An empty or blank (whitespace only) client secret was offered: HMAC and the v1/v2 hashes
/// would accept it, and anyone can guess it, so it must be refused at start-up.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[error("a client secret must not be empty or only whitespace")]
pub struct EmptySecret;

/// The client secrets a verifier accepts: the current one, and the previous one during rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSet {
    current: Secret,
    previous: Option<Secret>,
}

impl SecretSet {
    /// A set holding only the current secret. An empty or blank secret is rejected.
    pub fn new(current: Secret) -> Result<Self, EmptySecret> {
        if is_blank(&current) {
            return Err(EmptySecret);
        }
        Ok(Self {
            current,
            previous: None,
        })
    }

    /// Adds the previous secret, still accepted while a rotation settles. An empty or blank one
    /// is rejected.
    pub fn with_previous(self, previous: Secret) -> Result<Self, EmptySecret> {
        if is_blank(&previous) {
            return Err(EmptySecret);
        }
        Ok(Self {
            previous: Some(previous),
            ..self
        })
    }

    /// The current secret: the one used to sign anything new.
    pub fn current(&self) -> &Secret {
        &self.current
    }

    /// The previous secret, if a rotation is in progress.
    pub fn previous(&self) -> Option<&Secret> {
        self.previous.as_ref()
    }

    /// Every secret with its slot, current first.
    pub fn iter(&self) -> impl Iterator<Item = (SecretSlot, &Secret)> {
        std::iter::once((SecretSlot::Current, &self.current)).chain(
            self.previous
                .as_ref()
                .map(|previous| (SecretSlot::Previous, previous)),
        )
    }
}

/// Empty, or whitespace only (Unicode's, which includes ASCII's): a secret anyone can guess.
fn is_blank(secret: &Secret) -> bool {
    secret.expose().trim().is_empty()
}
