//! What the relay tells the protected API about a verified `hubspot.fetch` call: the caller's
//! context as headers, and an idempotency key.
//!
//! HubSpot sends no custom headers on `hubspot.fetch`; it appends the caller's context to the
//! URL's query string (`appId`, `portalId`, `userId`, `userEmail`), under the v3 signature the
//! relay checks first (<https://developers.hubspot.com/docs/apps/developer-platform/add-features/ui-extensibility/fetching-data>;
//! the parameter list is not yet spelled out on HubSpot's reference pages, and the relay already
//! depended on `portalId`). Each parameter present exactly once becomes one header, its value
//! decoded once as a query value (percent escapes, `+` as space) and carried only when it is
//! plain visible ASCII; a parameter repeated, badly encoded or not carriable refuses the request
//! (400), so the API never sees one reading in the header and another in the query. The
//! caller's own headers of these names never travel: the relay forwards an allowlist
//! ([`crate::relay::FORWARDED_HEADERS`]) and sets these itself.
//!
//! The idempotency key: HubSpot retries a call once on a connection failure or a 5xx
//! (<https://developers.hubspot.com/docs/guides/crm/public-apps/fetching-data>), so a POST the
//! API already handled can arrive twice, and a captured request can be replayed inside the
//! signature window. The key is a SHA-256 over the 32 bytes of the verified v3 signature, an
//! HMAC over everything HubSpot signed (method, URI after its decoding, body, timestamp): one
//! signed request, however often and in whichever spelling the signature accepts it is
//! delivered (`%40` or `@`, `%3a` or `%3A`, the signature's `+` as a space), has one key; two
//! calls differ in their timestamp or content and get two; and no caller can choose a key,
//! since only the secret makes signature bytes that verify. The raw URI or header text would
//! not do: a replay respelled would get a fresh key past the API's guard. If HubSpot signed its
//! retry afresh (a new timestamp), the retry would get a new key: HubSpot does not document
//! which, so an API that must never apply a POST twice also keeps its own guard.

use crate::protected::PathError;
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

/// The header carrying the verified portal id.
pub const PORTAL_HEADER: &str = "x-hsbridge-portal-id";
pub const APP_HEADER: &str = "x-hsbridge-app-id";
pub const USER_HEADER: &str = "x-hsbridge-user-id";
pub const USER_EMAIL_HEADER: &str = "x-hsbridge-user-email";
/// Same for one signed request, different for two calls.
pub const IDEMPOTENCY_HEADER: &str = "x-hsbridge-idempotency-key";

/// The context parameters HubSpot appends and the header each becomes (`portalId` is read and
/// checked on its own, see [`crate::relay::relay_target`]).
pub const CONTEXT_PARAMS: &[(&str, &str)] = &[
    ("appId", APP_HEADER),
    ("userId", USER_HEADER),
    ("userEmail", USER_EMAIL_HEADER),
];

/// Every header the relay sets itself; incoming headers of these names are never forwarded.
pub const RELAY_SET_HEADERS: &[&str] = &[
    PORTAL_HEADER,
    APP_HEADER,
    USER_HEADER,
    USER_EMAIL_HEADER,
    IDEMPOTENCY_HEADER,
];

/// Why a context parameter cannot become a header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("the {0} query parameter is repeated")]
    Repeated(&'static str),
    #[error("the {0} query parameter is not validly encoded")]
    BadEncoding(&'static str),
    #[error("the {0} query parameter is not plain visible ASCII and cannot be carried in a header")]
    NotCarriable(&'static str),
    #[error(
        "a query parameter is named {0} in another case: an API that reads names without regard to case would see two"
    )]
    Respelled(&'static str),
}

/// Every context parameter HubSpot appends, `portalId` included.
const CONTEXT_NAMES: &[&str] = &["portalId", "appId", "userId", "userEmail"];

/// Refuses a parameter named like a context parameter in another case (`userid`, `PORTALID`,
/// `userıd`): HubSpot spells them one way only, so such a name is the card's own, and a
/// framework that binds query names without regard to case (ASP.NET, whose `OrdinalIgnoreCase`
/// maps `ı` to `I`) would read it where the relay's header says HubSpot's value.
pub fn check_context_spellings(raw: Option<&str>) -> Result<(), ContextError> {
    let Some(raw) = raw else { return Ok(()) };
    for pair in raw.split('&') {
        let n = pair.split_once('=').map_or(pair, |(n, _)| n);
        let Ok(n) = decode_once(n) else { continue };
        for name in CONTEXT_NAMES {
            let blind =
                n.to_uppercase() == name.to_uppercase() || n.to_lowercase() == name.to_lowercase();
            if blind && n != *name {
                return Err(ContextError::Respelled(name));
            }
        }
    }
    Ok(())
}

/// `name`'s value in the raw query, decoded once: `None` when absent.
pub fn context_param(
    raw: Option<&str>,
    name: &'static str,
) -> Result<Option<String>, ContextError> {
    let Some(raw) = raw else { return Ok(None) };
    let mut found = None;
    for pair in raw.split('&') {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        // A name spelled with escapes (`user%45mail`) is the same parameter to the API.
        let n = decode_once(n).map_err(|_| ContextError::BadEncoding(name))?;
        if n != name {
            continue;
        }
        if found.is_some() {
            return Err(ContextError::Repeated(name));
        }
        found = Some(decode_once(v).map_err(|_| ContextError::BadEncoding(name))?);
    }
    Ok(found)
}

fn decode_once(s: &str) -> Result<String, PathError> {
    crate::protected::decode_query_part(s)
}

/// The context headers of a verified request's raw query.
pub fn context_headers(raw_query: Option<&str>) -> Result<HeaderMap, ContextError> {
    check_context_spellings(raw_query)?;
    let mut out = HeaderMap::new();
    for (param, header) in CONTEXT_PARAMS {
        // Absent or empty: no header (an empty value says nothing about the caller).
        let Some(value) = context_param(raw_query, param)?.filter(|v| !v.is_empty()) else {
            continue;
        };
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ContextError::NotCarriable(param));
        }
        let value = HeaderValue::from_str(&value).map_err(|_| ContextError::NotCarriable(param))?;
        out.insert(HeaderName::from_static(header), value);
    }
    Ok(out)
}

/// The key of one signed request: hex SHA-256 over a label and the 32 bytes of its verified v3
/// signature ([`hsbridge_verify::v3_signature_bytes`]).
pub fn idempotency_key(signature: &[u8; 32]) -> String {
    let mut hash = Sha256::new();
    hash.update(b"hsbridge.relay.idempotency.v2");
    hash.update(signature);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
        h.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn each_context_parameter_becomes_its_header_decoded_once() {
        let h = context_headers(Some(
            "portalId=62515&userId=7&userEmail=ann%40example.com&appId=999&q=x",
        ))
        .unwrap();
        assert_eq!(header(&h, USER_HEADER), Some("7"));
        assert_eq!(header(&h, USER_EMAIL_HEADER), Some("ann@example.com"));
        assert_eq!(header(&h, APP_HEADER), Some("999"));
        assert_eq!(h.len(), 3);
        // Decoded once: an escaped escape stays one level escaped.
        let h = context_headers(Some("userEmail=ann%2540example.com")).unwrap();
        assert_eq!(header(&h, USER_EMAIL_HEADER), Some("ann%40example.com"));
        // Absent or empty parameters give no header.
        assert!(context_headers(Some("portalId=1")).unwrap().is_empty());
        assert!(
            context_headers(Some("userId=&userEmail"))
                .unwrap()
                .is_empty()
        );
        assert!(context_headers(None).unwrap().is_empty());
    }

    #[test]
    fn a_context_parameter_repeated_or_respelled_is_refused() {
        for q in [
            "userId=7&userId=8",
            "userId=7&user%49d=8",
            "userEmail=a%40b.c&userEm%61il=evil%40x.y",
            "userId=7&userId=7",
        ] {
            assert!(
                matches!(context_headers(Some(q)), Err(ContextError::Repeated(_))),
                "{q}"
            );
        }
    }

    #[test]
    fn a_context_name_in_another_case_is_refused() {
        for q in [
            "portalId=1&portalid=2",
            "PORTALID=2",
            "userId=7&USERID=1",
            "user%C4%B1d=1",
            "u%C5%BFerEmail=a%40b.c",
            "APPID=1&appId=2",
        ] {
            assert!(
                matches!(context_headers(Some(q)), Err(ContextError::Respelled(_))),
                "{q}"
            );
        }
        // Values are data; other names are the card's own.
        assert!(context_headers(Some("portalId=1&q=userid&userIdentity=x")).is_ok());
    }

    #[test]
    fn a_context_value_that_cannot_be_a_plain_header_is_refused() {
        for q in [
            "userEmail=a%0D%0Ax-hsbridge-portal-id%3A%201",
            "userEmail=caf%C3%A9%40example.com",
            "userEmail=a+b%40c.d",
            "userId=%ZZ",
        ] {
            assert!(context_headers(Some(q)).is_err(), "{q}");
        }
    }

    #[test]
    fn one_signed_request_has_one_key_and_two_calls_two() {
        use hsbridge_verify::{Secret, sign_v3, v3_signature_bytes};
        let key = |m: &str, u: &str, b: &[u8], t: &str| {
            let sig = sign_v3(&Secret::new("context-unit-secret"), m, u, b, t);
            idempotency_key(&v3_signature_bytes(sig.as_bytes()).unwrap())
        };
        let uri = "https://x/hubspot/relay/a:b?portalId=1&e=ann%40example.com";
        let a = key("POST", uri, b"{}", "1700000000000");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        // The same signed request, in a spelling the MAC cannot tell apart.
        let respelt = "https://x/hubspot/relay/a%3Ab?portalId=1&e=ann@example.com";
        assert_eq!(a, key("POST", respelt, b"{}", "1700000000000"));
        for other in [
            key("POST", uri, b"{}", "1700000000001"),
            key("PUT", uri, b"{}", "1700000000000"),
            key(
                "POST",
                "https://x/hubspot/relay/b?portalId=1",
                b"{}",
                "1700000000000",
            ),
            key("POST", uri, b"[]", "1700000000000"),
        ] {
            assert_ne!(a, other);
        }
    }
}
