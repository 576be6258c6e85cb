//! One trace from API Gateway to the company's API: the X-Ray trace header, read strictly, and the
//! W3C `traceparent` derived from it.
//!
//! The X-Ray header is `Root=1-{8 hex: epoch seconds}-{24 hex};Parent={16 hex};Sampled={0|1|?}`
//! (<https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader>,
//! trace ids: <https://docs.aws.amazon.com/xray/latest/devguide/xray-api-sendingdata.html#xray-api-traceids>).
//! The same 128 bits are a W3C trace id without the version and the dashes (`1-58406520-a006649127e371903a2de979`
//! is `58406520a006649127e371903a2de979`, as OpenTelemetry's X-Ray id generator and the X-Ray
//! console read them), `Parent` is the caller's span id, and `Sampled=1` is the sampled flag
//! (<https://www.w3.org/TR/trace-context/#traceparent-header>).
//!
//! A header comes from Lambda (the invocation's trace id, which lambda_http also writes into the
//! request's `x-amzn-trace-id`) or from a queued message's `AWSTraceHeader`. Whatever its source,
//! only a header that parses exactly is carried on, and only in the canonical form written here:
//! anything else is dropped, so a malformed or hostile value can neither reach the protected API
//! nor fail a delivery. A trace header is never a reason to refuse work.

use http::request::Parts;
use lambda_http::RequestExt;

/// The longest header read; X-Ray's own are under 150 bytes.
const MAX_HEADER_BYTES: usize = 256;

/// The request header carrying the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";

/// An X-Ray trace context, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XrayTrace {
    /// 32 lower-case hex digits: the root's epoch seconds and its 96-bit id, without dashes.
    trace_id: String,
    /// 16 lower-case hex digits, when the header names a parent.
    parent: Option<String>,
    /// `Some(true)` for `Sampled=1`, `Some(false)` for `0`, `None` when absent or `?`.
    sampled: Option<bool>,
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn all_zero(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

impl XrayTrace {
    /// Parses an X-Ray trace header; `None` for anything that is not exactly one.
    ///
    /// Fields other than `Root`, `Parent` and `Sampled` (`Self`, `Lineage`, ...) are allowed and
    /// not carried. A repeated field, a missing or malformed root, a malformed parent or an
    /// all-zero id (invalid in W3C) refuses the whole header.
    pub fn parse(header: &str) -> Option<Self> {
        if header.len() > MAX_HEADER_BYTES || !header.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let (mut root, mut parent, mut sampled) = (None, None, None);
        for field in header.split(';').filter(|f| !f.is_empty()) {
            let (key, value) = field.split_once('=')?;
            let slot = match key {
                "Root" => &mut root,
                "Parent" => &mut parent,
                "Sampled" => &mut sampled,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return None;
            }
        }
        let mut root_parts = root?.split('-');
        let (version, time, id) = (root_parts.next()?, root_parts.next()?, root_parts.next()?);
        if root_parts.next().is_some()
            || version != "1"
            || !is_lower_hex(time, 8)
            || !is_lower_hex(id, 24)
        {
            return None;
        }
        let trace_id = format!("{time}{id}");
        if all_zero(&trace_id) {
            return None;
        }
        let parent = match parent {
            None => None,
            Some(p) if is_lower_hex(p, 16) && !all_zero(p) => Some(p.to_owned()),
            Some(_) => return None,
        };
        let sampled = match sampled {
            None | Some("?") => None,
            Some("1") => Some(true),
            Some("0") => Some(false),
            Some(_) => return None,
        };
        Some(Self {
            trace_id,
            parent,
            sampled,
        })
    }

    /// The header in canonical form (what SQS carries as `AWSTraceHeader`).
    pub fn header(&self) -> String {
        let mut out = format!("Root=1-{}-{}", &self.trace_id[..8], &self.trace_id[8..]);
        if let Some(parent) = &self.parent {
            out.push_str(";Parent=");
            out.push_str(parent);
        }
        match self.sampled {
            Some(true) => out.push_str(";Sampled=1"),
            Some(false) => out.push_str(";Sampled=0"),
            None => {}
        }
        out
    }

    /// The W3C `traceparent` (version 00): `None` without a parent, which W3C requires.
    pub fn traceparent(&self) -> Option<String> {
        let parent = self.parent.as_deref()?;
        let flags = if self.sampled == Some(true) {
            "01"
        } else {
            "00"
        };
        Some(format!("00-{}-{parent}-{flags}", self.trace_id))
    }

    /// The 32-hex trace id (what the X-Ray console and W3C tools search for).
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }
}

/// The trace of the Lambda invocation serving this request, when there is one: Lambda's own
/// trace id from the invocation's context, never a header the client sent (locally, and for a
/// request without a Lambda context, there is none).
pub fn of_invocation(parts: &Parts) -> Option<XrayTrace> {
    let context = parts.lambda_context_ref()?;
    XrayTrace::parse(context.xray_trace_id.as_deref()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS_EXAMPLE: &str =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    #[test]
    fn an_xray_header_becomes_the_w3c_traceparent_of_the_same_trace() {
        let t = XrayTrace::parse(AWS_EXAMPLE).unwrap();
        assert_eq!(
            t.traceparent().as_deref(),
            Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01")
        );
        assert_eq!(t.header(), AWS_EXAMPLE);
        assert_eq!(t.trace_id(), "5759e988bd862e3fe1be46a994272793");
    }

    #[test]
    fn the_sampled_flag_is_set_only_for_sampled_1() {
        let flags = |h: &str| XrayTrace::parse(h).unwrap().traceparent().unwrap();
        let base = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8";
        assert!(flags(base).ends_with("-00"));
        assert!(flags(&format!("{base};Sampled=0")).ends_with("-00"));
        assert!(flags(&format!("{base};Sampled=?")).ends_with("-00"));
        assert!(flags(&format!("{base};Sampled=1")).ends_with("-01"));
    }

    #[test]
    fn other_fields_and_their_order_do_not_matter_and_are_not_carried() {
        let t = XrayTrace::parse(
            "Self=1-67891234-12456789abcdef012345678;Sampled=1;Lineage=a87bd80c:1|68fd508a:5;Parent=53995c3f42cd8ad8;Root=1-5759e988-bd862e3fe1be46a994272793",
        )
        .unwrap();
        assert_eq!(t.header(), AWS_EXAMPLE);
    }

    #[test]
    fn a_header_without_a_parent_has_no_traceparent_but_still_travels() {
        let t = XrayTrace::parse("Root=1-5759e988-bd862e3fe1be46a994272793").unwrap();
        assert_eq!(t.traceparent(), None);
        assert_eq!(t.header(), "Root=1-5759e988-bd862e3fe1be46a994272793");
    }

    #[test]
    fn a_malformed_or_hostile_header_is_dropped_whole() {
        let long = format!("{AWS_EXAMPLE};Lineage={}", "a".repeat(300));
        for bad in [
            "",
            "garbage",
            "Root=",
            "Root=2-5759e988-bd862e3fe1be46a994272793",
            "Root=1-5759E988-bd862e3fe1be46a994272793",
            "Root=1-5759e98-bd862e3fe1be46a994272793",
            "Root=1-5759e988-bd862e3fe1be46a99427279",
            "Root=1-5759e988-bd862e3fe1be46a994272793-00",
            "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8-01",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=yes",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Root=1-5759e988-bd862e3fe1be46a994272794",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8\r\nx-evil: 1",
            "Root=1-5759e988-bd862e3fe1be46a994272793; Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=é3995c3f42cd8ad",
            long.as_str(),
        ] {
            assert_eq!(XrayTrace::parse(bad), None, "{bad:?}");
        }
    }
}
