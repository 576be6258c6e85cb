//! Rebuilding the public URL from a configured base or from the forwarded headers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hsbridge_verify::{PublicBase, UriError, rebuild_public_uri};
use http::{HeaderMap, HeaderName, HeaderValue};

const QUERY: &str = "email=a%40b.com&q=x%20y%2Bz";

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    headers
}

#[test]
fn a_public_base_accepts_http_and_https_hosts_ports_and_prefixes() {
    for (input, expected) in [
        ("https://hooks.example.com", "https://hooks.example.com"),
        ("https://hooks.example.com/", "https://hooks.example.com"),
        ("https://api.example.com/v1", "https://api.example.com/v1"),
        ("https://api.example.com/v1//", "https://api.example.com/v1"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("http://[::1]:3000/local", "http://[::1]:3000/local"),
        ("https://[2001:db8::1]", "https://[2001:db8::1]"),
    ] {
        assert_eq!(
            PublicBase::parse(input).unwrap().as_str(),
            expected,
            "{input}"
        );
    }
}

#[test]
fn a_public_base_rejects_anything_but_scheme_host_and_path() {
    for input in [
        "",
        "hooks.example.com",
        "ftp://hooks.example.com",
        "HTTPS://hooks.example.com",
        "https://",
        "https:///path",
        "https://user@hooks.example.com",
        "https://hooks.example.com?x=1",
        "https://hooks.example.com/v1?x=1",
        "https://hooks.example.com/v1#frag",
        "https://hooks example.com",
        "https://hooks.example.com/v 1",
        "https://hooks.example.com:",
        "https://hooks.example.com:65536",
        "https://hooks.example.com:80:80",
        "https://[::1",
        "https://[zz]",
        "https://hooks.example.com\r\nX-Evil: 1",
    ] {
        assert_eq!(
            PublicBase::parse(input),
            Err(UriError::BadBase),
            "{input:?}"
        );
    }
}

#[test]
fn a_public_base_deserializes_only_when_valid() {
    let base: PublicBase = serde_json::from_str(r#""https://hooks.example.com/""#).unwrap();
    assert_eq!(base.as_str(), "https://hooks.example.com");
    assert!(serde_json::from_str::<PublicBase>(r#""hooks.example.com""#).is_err());
}

#[test]
fn with_a_base_the_uri_is_base_then_raw_path_then_query() {
    let base = PublicBase::parse("https://api.example.com/v1").unwrap();
    let hostile = headers(&[
        ("host", b"evil.example.com"),
        ("x-forwarded-proto", b"http"),
    ]);
    assert_eq!(
        rebuild_public_uri(Some(&base), &hostile, "/hubspot/webhook", Some(QUERY)).unwrap(),
        format!("https://api.example.com/v1/hubspot/webhook?{QUERY}")
    );
}

#[test]
fn without_a_base_the_uri_comes_from_forwarded_proto_and_host() {
    let h = headers(&[
        ("host", b"hooks.example.com"),
        ("x-forwarded-proto", b"https"),
    ]);
    assert_eq!(
        rebuild_public_uri(None, &h, "/hubspot/webhook", Some(QUERY)).unwrap(),
        format!("https://hooks.example.com/hubspot/webhook?{QUERY}")
    );
    let h = headers(&[("host", b"127.0.0.1:9000"), ("x-forwarded-proto", b"http")]);
    assert_eq!(
        rebuild_public_uri(None, &h, "/h", None).unwrap(),
        "http://127.0.0.1:9000/h"
    );
}

#[test]
fn the_scheme_defaults_to_https_and_only_the_first_forwarded_value_counts() {
    for proto in [None, Some(&b"https, http"[..]), Some(b"gopher"), Some(b"")] {
        let mut pairs: Vec<(&str, &[u8])> = vec![("host", b"h.example.com")];
        if let Some(proto) = proto {
            pairs.push(("x-forwarded-proto", proto));
        }
        assert_eq!(
            rebuild_public_uri(None, &headers(&pairs), "/", None).unwrap(),
            "https://h.example.com/",
            "{proto:?}"
        );
    }
    let h = headers(&[
        ("host", b"h.example.com"),
        ("x-forwarded-proto", b"http, https"),
    ]);
    assert_eq!(
        rebuild_public_uri(None, &h, "/", None).unwrap(),
        "http://h.example.com/"
    );
}

#[test]
fn a_missing_host_is_reported() {
    assert_eq!(
        rebuild_public_uri(None, &HeaderMap::new(), "/", None),
        Err(UriError::MissingHost)
    );
}

#[test]
fn a_host_header_that_is_not_a_plain_host_is_refused() {
    for host in [
        &b"evil.example.com/path"[..],
        b"user@hooks.example.com",
        b"hooks.example.com ",
        b"hooks example.com",
        b"hooks.example.com\t",
        b"",
        b":443",
        b"hooks.example.com:https",
        b"hooks.example.com?x",
        b"hooks.example.com#x",
        b"h\xc3\xa9.example.com",
        b"[::1",
    ] {
        assert_eq!(
            rebuild_public_uri(None, &headers(&[("host", host)]), "/", None),
            Err(UriError::BadHost),
            "{:?}",
            String::from_utf8_lossy(host)
        );
    }
    let twice = headers(&[("host", b"a.example.com"), ("host", b"b.example.com")]);
    assert_eq!(
        rebuild_public_uri(None, &twice, "/", None),
        Err(UriError::BadHost)
    );
}

#[test]
fn an_empty_raw_path_is_the_root_and_a_relative_one_is_refused() {
    let h = headers(&[("host", b"h.example.com")]);
    assert_eq!(
        rebuild_public_uri(None, &h, "", Some("a=1")).unwrap(),
        "https://h.example.com/?a=1"
    );
    for path in ["hubspot", "/a b", "/a?b", "/a#b", "/a\r\nb"] {
        assert_eq!(
            rebuild_public_uri(None, &h, path, None),
            Err(UriError::BadPath),
            "{path:?}"
        );
    }
}

#[test]
fn the_raw_path_and_query_are_kept_byte_for_byte() {
    let h = headers(&[("host", b"h.example.com")]);
    let path = "/a/../b/%7Bx%7D/%2F/caf%C3%A9";
    let query = "z=1&a=%3A&a=2&q=x+y%20z&empty=&flag";
    assert_eq!(
        rebuild_public_uri(None, &h, path, Some(query)).unwrap(),
        format!("https://h.example.com{path}?{query}")
    );
}

#[test]
fn an_empty_query_adds_no_question_mark() {
    let h = headers(&[("host", b"h.example.com")]);
    assert_eq!(
        rebuild_public_uri(None, &h, "/x", Some("")).unwrap(),
        "https://h.example.com/x"
    );
}
