//! The signed OAuth `state` cookie that ties HubSpot's redirect back to the browser that started
//! the install (CSRF protection for the OAuth callback).
//!
//! The install handler makes a random [`OAuthState`], puts it in the authorize URL, and sets a
//! cookie holding `base64url(payload JSON) "." base64url(MAC)`. The callback accepts the code only
//! if the cookie's MAC verifies, its state equals the `state` in the URL, and it is under
//! [`STATE_COOKIE_MAX_AGE_SECS`] old.
//!
//! The MAC key is derived from the client secret under a label of its own, so a cookie MAC can
//! never be replayed as a webhook signature or the other way round. Every secret of the
//! [`SecretSet`] is tried, so a rotation in the middle of an install does not break it.
//!
//! What this module must never do: read the payload before its MAC has verified, compare a MAC or
//! a state in variable time, or produce randomness itself (the caller supplies it, which keeps
//! the crate pure and testable).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::secret::{Secret, SecretSet};

/// The cookie's name where it cannot carry the `__Host-` prefix: the loopback development
/// cookie, which has no `Secure` (see [`CookieAttributes`]).
pub const STATE_COOKIE_NAME: &str = "hubspot_oauth_state";
/// The cookie's name on a deployed callback: `Secure`, `Path=/`, no `Domain`, so that only the
/// callback's own host can set it.
pub const HOST_STATE_COOKIE_NAME: &str = "__Host-hubspot_oauth_state";
/// How long an install may take between the redirect to HubSpot and the callback.
pub const STATE_COOKIE_MAX_AGE_SECS: u64 = 600;

const MAX_AGE_MS: u64 = STATE_COOKIE_MAX_AGE_SECS * 1000;
/// Tolerated clock skew for a cookie that claims to be issued in the future.
const MAX_FUTURE_SKEW_MS: u64 = 60_000;
/// Domain separation between the cookie MAC and HubSpot's webhook MACs.
const KEY_LABEL: &[u8] = b"hsbridge/oauth-state-cookie/v1";
/// The longest cookie value minted or accepted. A real cookie is about 150 bytes; anything near
/// a browser's limit (4096 bytes for name, value and attributes) is not ours.
pub const STATE_COOKIE_MAX_LEN: usize = 4096;
const MAC_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// A 256-bit random OAuth `state`, as 43 characters of base64url without padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthState(String);

impl OAuthState {
    /// Encodes 32 random bytes. The caller draws them from a CSPRNG (`getrandom`, `OsRng`).
    pub fn from_random_bytes(bytes: [u8; 32]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The state as it goes into the authorize URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the cookie carries, readable once its MAC has verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateCookiePayload {
    /// The OAuth state sent to HubSpot.
    pub state: String,
    /// When the install started, epoch milliseconds.
    pub issued_at_ms: u64,
    /// Optional caller data tied to the install (e.g. a return path or a session id); the
    /// caller checks it after [`verify_state_cookie`] succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
}

/// Why a state cookie was refused. The text carries nothing from the cookie.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    /// No cookie (or an empty one).
    #[error("the OAuth state cookie is missing")]
    Missing,
    /// Not `payload.mac` in base64url, or a payload that is not the expected JSON.
    #[error("the OAuth state cookie is malformed")]
    Malformed,
    /// No secret in the set produced the cookie's MAC.
    #[error("the OAuth state cookie's signature does not match")]
    BadSignature,
    /// The URL has no `state`, or a different one.
    #[error("the OAuth state in the URL does not match the cookie")]
    StateMismatch,
    /// Older than [`STATE_COOKIE_MAX_AGE_SECS`], or issued more than a minute in the future.
    #[error("the OAuth state cookie has expired")]
    Expired,
}

/// Why no state cookie was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// The binding makes the cookie longer than [`STATE_COOKIE_MAX_LEN`]: such a cookie could
    /// never verify (and a browser might not keep it).
    #[error("the binding makes the OAuth state cookie longer than {STATE_COOKIE_MAX_LEN} bytes")]
    TooLong,
}

/// Makes the cookie value for a new install, signed with the current secret.
///
/// Refuses a `binding` long enough to push the cookie past [`STATE_COOKIE_MAX_LEN`], which
/// [`verify_state_cookie`] would refuse: every cookie minted here verifies.
pub fn mint_state_cookie(
    secrets: &SecretSet,
    state: &OAuthState,
    binding: Option<&str>,
    now_ms: u64,
) -> Result<String, MintError> {
    // Base64 makes the payload at least 4/3 of the binding: refuse hopeless sizes before
    // serialising them.
    if binding.is_some_and(|b| b.len() / 3 * 4 > STATE_COOKIE_MAX_LEN) {
        return Err(MintError::TooLong);
    }
    let payload = StateCookiePayload {
        state: state.as_str().to_owned(),
        issued_at_ms: now_ms,
        binding: binding.map(str::to_owned),
    };
    // Serialising strings and an integer cannot fail; if it somehow did, the empty payload would
    // fail verification as Malformed rather than panic here.
    let json = serde_json::to_vec(&payload).unwrap_or_default();
    let payload_b64 = URL_SAFE_NO_PAD.encode(json);
    let mac = cookie_mac(secrets.current(), payload_b64.as_bytes()).unwrap_or_default();
    let mut value = payload_b64;
    value.push('.');
    value.push_str(&URL_SAFE_NO_PAD.encode(mac));
    if value.len() > STATE_COOKIE_MAX_LEN {
        return Err(MintError::TooLong);
    }
    Ok(value)
}

/// Checks the cookie against every secret in the set, then the state from the callback URL,
/// then its age. Returns the payload so the caller can check `binding`.
pub fn verify_state_cookie(
    secrets: &SecretSet,
    cookie_value: Option<&str>,
    state_from_url: Option<&str>,
    now_ms: u64,
) -> Result<StateCookiePayload, CookieError> {
    let value = match cookie_value {
        None | Some("") => return Err(CookieError::Missing),
        Some(value) => value,
    };
    if value.len() > STATE_COOKIE_MAX_LEN {
        return Err(CookieError::Malformed);
    }
    let (payload_b64, mac_b64) = value.split_once('.').ok_or(CookieError::Malformed)?;
    let mut mac = [0u8; MAC_LEN + 3];
    let mac_len = URL_SAFE_NO_PAD
        .decode_slice(mac_b64, &mut mac)
        .map_err(|_| CookieError::Malformed)?;
    let mac = mac.get(..mac_len).ok_or(CookieError::Malformed)?;
    if mac.len() != MAC_LEN {
        return Err(CookieError::Malformed);
    }
    let payload_json = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| CookieError::Malformed)?;

    // The MAC covers the base64 text exactly as sent, and is checked before any JSON is parsed.
    let authentic = secrets.iter().any(|(_, secret)| {
        cookie_mac(secret, payload_b64.as_bytes())
            .is_some_and(|expected| bool::from(expected.as_slice().ct_eq(mac)))
    });
    if !authentic {
        return Err(CookieError::BadSignature);
    }

    let payload: StateCookiePayload =
        serde_json::from_slice(&payload_json).map_err(|_| CookieError::Malformed)?;

    let url_state = state_from_url.ok_or(CookieError::StateMismatch)?;
    if !bool::from(payload.state.as_bytes().ct_eq(url_state.as_bytes())) {
        return Err(CookieError::StateMismatch);
    }

    if now_ms >= payload.issued_at_ms {
        if now_ms - payload.issued_at_ms > MAX_AGE_MS {
            return Err(CookieError::Expired);
        }
    } else if payload.issued_at_ms - now_ms > MAX_FUTURE_SKEW_MS {
        // A cookie from the future means a skewed clock or a forged time: refuse it the same way.
        return Err(CookieError::Expired);
    }
    Ok(payload)
}

/// `HMAC-SHA256(HMAC-SHA256(secret, KEY_LABEL), message)`.
fn cookie_mac(secret: &Secret, message: &[u8]) -> Option<[u8; MAC_LEN]> {
    let mut derive = <HmacSha256 as Mac>::new_from_slice(secret.expose().as_bytes()).ok()?;
    derive.update(KEY_LABEL);
    let key = Zeroizing::new(<[u8; MAC_LEN]>::from(derive.finalize().into_bytes()));
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key.as_slice()).ok()?;
    mac.update(message);
    Some(mac.finalize().into_bytes().into())
}

/// The attributes of the state cookie's `Set-Cookie` header, and so its name.
///
/// `HttpOnly` always (no script needs the cookie), `SameSite=Lax` (HubSpot's redirect back is a
/// top-level GET navigation from another site: `Strict` would drop the cookie there).
///
/// A deployed callback ([`CookieAttributes::host`]) names the cookie
/// [`HOST_STATE_COOKIE_NAME`] with `Secure; Path=/` and no `Domain`: browsers accept a
/// `__Host-` cookie only from a secure origin and only for exactly that host, so a sibling
/// subdomain cannot plant its own state cookie for the callback (cookie tossing, a login-CSRF
/// vector here), and `Path=/` reaches the callback under any API base path (a narrower path
/// would have to follow the deployment's base path, and is not allowed with the prefix).
/// The loopback development cookie ([`CookieAttributes::insecure_loopback`]) has no `Secure`,
/// which the prefix requires, so it keeps the plain [`STATE_COOKIE_NAME`] and a path derived
/// from the callback URL. Each callback reads only the name it mints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieAttributes {
    secure: bool,
    path: String,
}

impl CookieAttributes {
    /// A deployed callback's cookie: `__Host-hubspot_oauth_state; Path=/; Secure`.
    pub fn host() -> Self {
        Self {
            secure: true,
            path: "/".to_owned(),
        }
    }

    /// Without `Secure` (and so without the `__Host-` prefix): only for plain `http://` on a
    /// loopback address during local development, where browsers would otherwise drop the
    /// cookie. Never use it for a deployed function. The path is the callback's directory
    /// (RFC 6265 §5.1.4 default-path of `callback_url`, e.g. `/v1/oauth` for
    /// `http://127.0.0.1:3002/v1/oauth/callback`), which path-matches the callback wherever it
    /// is mounted.
    pub fn insecure_loopback(callback_url: &str) -> Self {
        Self {
            secure: false,
            path: sanitize_path(&default_path(callback_url)),
        }
    }

    /// Whether `Secure` is set.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The cookie's `Path`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The cookie's name: [`HOST_STATE_COOKIE_NAME`] when `Secure`, else [`STATE_COOKIE_NAME`].
    pub fn name(&self) -> &'static str {
        if self.secure {
            HOST_STATE_COOKIE_NAME
        } else {
            STATE_COOKIE_NAME
        }
    }

    /// The `Set-Cookie` header value carrying `value` (a value from [`mint_state_cookie`]).
    pub fn set_cookie(&self, value: &str) -> String {
        self.header(value, STATE_COOKIE_MAX_AGE_SECS)
    }

    /// The `Set-Cookie` header value that deletes the cookie (after the callback used it).
    pub fn clear_cookie(&self) -> String {
        self.header("", 0)
    }

    fn header(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={value}; Path={}; Max-Age={max_age}; HttpOnly{secure}; SameSite=Lax",
            self.name(),
            self.path
        )
    }
}

/// RFC 6265 §5.1.4's default-path of a URL: its path up to, not including, the right-most `/`
/// (`/` when that leaves nothing). Query and fragment are not part of the path.
fn default_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme
        .find('/')
        .map_or("", |start| after_scheme.get(start..).unwrap_or_default());
    let path = path.split(['?', '#']).next().unwrap_or_default();
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(last) => path.get(..last).unwrap_or("/").to_owned(),
    }
}

/// RFC 6265 §5.1.4: whether a browser sends a cookie of `cookie_path` with a request for
/// `request_path`.
pub fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

fn sanitize_path(path: &str) -> String {
    let kept: String = path
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != ';')
        .collect();
    if kept.starts_with('/') {
        kept
    } else {
        format!("/{kept}")
    }
}

/// The value of the cookie `name` from the request's `Cookie` header(s).
///
/// Every `Cookie` header is read (HTTP/2 may split them; lambda_http joins payload 2.0's `cookies`
/// into one). If the name occurs more than once, the answer is `None`: which one the browser meant
/// is ambiguous (a sibling subdomain can plant a second cookie of the same name), so the caller
/// treats it as missing and the install restarts.
pub fn cookie_from_header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    let mut found: Option<&[u8]> = None;
    for header in headers.get_all(http::header::COOKIE) {
        for pair in header.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (key, value) = pair.split_at(eq);
            if key.trim_ascii() != name.as_bytes() {
                continue;
            }
            if found.is_some() {
                return None;
            }
            found = Some(value.get(1..).unwrap_or_default().trim_ascii());
        }
    }
    found.and_then(|value| std::str::from_utf8(value).ok().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn secrets() -> SecretSet {
        SecretSet::new(Secret::new("cookie-unit-secret")).unwrap()
    }

    fn state() -> OAuthState {
        OAuthState::from_random_bytes([7; 32])
    }

    #[test]
    fn a_binding_too_long_to_ever_verify_is_refused_at_minting() {
        assert_eq!(
            mint_state_cookie(&secrets(), &state(), Some(&"x".repeat(4096)), NOW),
            Err(MintError::TooLong)
        );
        // JSON escaping makes each control character six bytes before base64.
        assert_eq!(
            mint_state_cookie(&secrets(), &state(), Some(&"\u{1}".repeat(600)), NOW),
            Err(MintError::TooLong)
        );
        assert_eq!(
            mint_state_cookie(&secrets(), &state(), Some(&"x".repeat(1 << 20)), NOW),
            Err(MintError::TooLong)
        );
    }

    #[test]
    fn every_cookie_that_is_minted_verifies_right_up_to_the_limit() {
        let mut longest = 0;
        for len in 2_800..3_200 {
            let binding = "b".repeat(len);
            match mint_state_cookie(&secrets(), &state(), Some(&binding), NOW) {
                Ok(cookie) => {
                    assert!(cookie.len() <= STATE_COOKIE_MAX_LEN);
                    let payload =
                        verify_state_cookie(&secrets(), Some(&cookie), Some(state().as_str()), NOW)
                            .unwrap();
                    assert_eq!(payload.binding.as_deref(), Some(binding.as_str()));
                    longest = len;
                }
                Err(MintError::TooLong) => assert!(len > longest),
            }
        }
        // The limit falls inside the range tried: both outcomes were seen.
        assert!((2_800..3_199).contains(&longest), "{longest}");
    }
}
