//! Rebuilding the public URL HubSpot called, which v2 and v3 signatures cover.
//!
//! Behind API Gateway, a function URL or a custom domain, the function does not see the URL the
//! caller used: `lambda_http` normalises the path and may insert the stage. The URL is rebuilt
//! from parts that arrive untouched: a configured [`PublicBase`] (or `X-Forwarded-Proto` and the
//! `Host` header), the raw path (`lambda_http::RequestExt::raw_http_path`, falling back to
//! `uri().path()` when empty) and the raw query string (`uri().query()`), in that order and
//! encoding. A custom-domain API mapping key that the raw path lacks belongs in the base, e.g.
//! `https://api.example.com/v1`.
//!
//! REST API (payload 1.0) events rebuild the query from a map, so a signature over the full URI
//! can only be checked behind an HTTP API or a function URL; the template therefore uses an HTTP
//! API.
//!
//! What this module must never do: re-encode, reorder or normalise the path or the query, or let
//! a `Host` header that is not a plain host (`/`, `@`, whitespace, CR/LF, ...) shape the URL.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// Why a public URI could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// No base is configured and the request has no `Host` header.
    #[error("the request has no Host header")]
    MissingHost,
    /// The `Host` header is not a plain host (and optional port), or appears more than once.
    #[error("the Host header is not a valid host")]
    BadHost,
    /// The configured public base URL is not `http(s)://host[:port][/prefix]`.
    #[error("the public base URL is not valid")]
    BadBase,
    /// The raw path does not start with `/` or holds characters a raw path cannot hold.
    #[error("the request path is not valid")]
    BadPath,
}

/// A configured public base URL: `http(s)://host[:port][/prefix]`, no query, no fragment, no
/// trailing slash. E.g. `https://hooks.example.com` or `https://api.example.com/v1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublicBase(String);

impl PublicBase {
    /// Validates a base URL. The scheme must be lower-case `http` or `https` (HubSpot signs the
    /// URL as configured, so nothing is normalised); trailing slashes are removed.
    pub fn parse(s: &str) -> Result<Self, UriError> {
        let (scheme, rest) = if let Some(rest) = s.strip_prefix("https://") {
            ("https", rest)
        } else if let Some(rest) = s.strip_prefix("http://") {
            ("http", rest)
        } else {
            return Err(UriError::BadBase);
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        if !is_valid_authority(authority) {
            return Err(UriError::BadBase);
        }
        if !path
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
        {
            return Err(UriError::BadBase);
        }
        Ok(Self(format!(
            "{scheme}://{authority}{}",
            path.trim_end_matches('/')
        )))
    }

    /// The base URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PublicBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PublicBase {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for PublicBase {
    /// Validates while deserialising, so a bad base fails configuration loading at start-up.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The full public URI a request was sent to.
///
/// With a `base`: `base + raw_path (+ "?" + query)`. Without: scheme from the first
/// `X-Forwarded-Proto` value (`http` or `https`; absent or anything else → `https`), host from the
/// single `Host` header, then `raw_path` and the query. An empty `raw_path` is `/`; the query is
/// appended exactly as received when it is non-empty.
pub fn rebuild_public_uri(
    base: Option<&PublicBase>,
    headers: &http::HeaderMap,
    raw_path: &str,
    raw_query: Option<&str>,
) -> Result<String, UriError> {
    let path = match raw_path {
        "" => "/",
        p if p.starts_with('/') && p.bytes().all(is_raw_path_byte) => p,
        _ => return Err(UriError::BadPath),
    };
    let query = raw_query.filter(|q| !q.is_empty());

    let mut uri = match base {
        Some(base) => base.as_str().to_owned(),
        None => {
            let host = single_host(headers)?;
            format!("{}://{host}", forwarded_scheme(headers))
        }
    };
    uri.reserve(path.len() + query.map_or(0, |q| q.len() + 1));
    uri.push_str(path);
    if let Some(query) = query {
        uri.push('?');
        uri.push_str(query);
    }
    Ok(uri)
}

/// Any byte but controls, space, `?` and `#` (which would change the URL's structure). Non-ASCII
/// bytes pass: whatever string HubSpot called is what it signed.
fn is_raw_path_byte(b: u8) -> bool {
    !(b.is_ascii_control() || b == b' ' || b == b'?' || b == b'#')
}

fn forwarded_scheme(headers: &http::HeaderMap) -> &'static str {
    let first = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    match first {
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        // Absent or unrecognised: https, the only scheme HubSpot calls in production.
        _ => "https",
    }
}

fn single_host(headers: &http::HeaderMap) -> Result<&str, UriError> {
    let mut values = headers.get_all(http::header::HOST).iter();
    let host = values.next().ok_or(UriError::MissingHost)?;
    if values.next().is_some() {
        return Err(UriError::BadHost);
    }
    let host = host.to_str().map_err(|_| UriError::BadHost)?;
    if is_valid_authority(host) {
        Ok(host)
    } else {
        Err(UriError::BadHost)
    }
}

/// `host[:port]` where host is a registered name or IPv4 address (letters, digits, `-._~`) or a
/// bracketed IPv6 address, and port is 1–5 digits up to 65535. No user info, no path.
fn is_valid_authority(s: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        let ip_ok = ip.contains(':')
            && ip
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        (ip_ok, port)
    } else {
        let (host, port) = match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        (host_ok, port)
    };
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    host_ok && port_ok
}
