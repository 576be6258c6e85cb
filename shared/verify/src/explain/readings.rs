//! Alternative readings of the parts of a request: other query orders, re-encoded URLs,
//! timestamps and JSON forms the signed request may have had.

use super::*;

/// Other orders of the query's parameters: every permutation up to 3 parameters, else the
/// sorted, reverse-sorted and reversed orders; plus the order of a reference URL's query.
pub(super) fn query_orders(query: Option<&str>, refs: &[Url<'_>]) -> Vec<String> {
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

pub(super) fn permutations<'q>(
    rest: &[&'q str],
    acc: &mut Vec<&'q str>,
    out: &mut Vec<Vec<&'q str>>,
) {
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
pub(super) fn encode_path(path: &str) -> String {
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
pub(super) fn encode_query(query: &str, plus: bool) -> String {
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

pub(super) fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

/// Readings of a URL that was re-encoded on its way, each with a label.
pub(super) fn re_encodings(uri: &str, received: &Url<'_>) -> Vec<(String, String)> {
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
pub(super) fn map_escapes(s: &str, f: impl Fn(u8, u8, u8) -> Option<String>) -> String {
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
pub(super) fn decode_non_ascii(s: &str) -> String {
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
pub(super) fn uppercase_twelve(uri: &str) -> String {
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
pub(super) fn decode_keeping(uri: &str, keep: &str) -> String {
    uri.split(keep)
        .map(|piece| selectively_decode_uri(piece).into_owned())
        .collect::<Vec<_>>()
        .join(keep)
}

pub(super) fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Timestamps the signature might have been made with, given the header's value.
pub(super) fn timestamp_candidates(raw: &[u8]) -> Vec<Candidate> {
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
pub(super) fn json_forms(body: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
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
pub(super) fn minify(json: &[u8]) -> Vec<u8> {
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
pub(super) fn escape_non_ascii(json: &[u8]) -> Vec<u8> {
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
pub(super) fn unescape_to_utf8(json: &[u8]) -> Vec<u8> {
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

/// The context parameters HubSpot appends to a `hubspot.fetch` URL
/// (<https://developers.hubspot.com/docs/apps/developer-platform/add-features/ui-extensibility/fetching-data>).
pub(super) const CONTEXT_PARAMS: [&str; 4] = ["appId", "portalId", "userId", "userEmail"];

/// The query as it may have been signed before HubSpot appended the caller's context: with
/// every context parameter removed, and with all but `portalId` removed (a URL that already
/// named the portal). Each reading with a label naming what was removed; none when the query
/// holds no context parameter. The other parameters keep their order; HubSpot documents none
/// for the ones it appends, so where they stood does not matter.
pub(super) fn without_context(query: Option<&str>) -> Vec<(String, String)> {
    let Some(query) = query else {
        return Vec::new();
    };
    let name_of = |pair: &str| pair.split_once('=').map_or(pair, |(n, _)| n).to_owned();
    let pairs: Vec<&str> = query.split('&').collect();
    let mut out: Vec<(String, String)> = Vec::new();
    for keep_portal in [false, true] {
        let is_context = |pair: &str| {
            let name = name_of(pair);
            CONTEXT_PARAMS.contains(&name.as_str()) && !(keep_portal && name == "portalId")
        };
        let removed: Vec<String> = pairs
            .iter()
            .filter(|p| is_context(p))
            .map(|p| name_of(p))
            .collect();
        if removed.is_empty() {
            continue;
        }
        let rest = pairs
            .iter()
            .filter(|p| !is_context(p))
            .copied()
            .collect::<Vec<&str>>()
            .join("&");
        if out.iter().all(|(_, r)| *r != rest) {
            out.push((removed.join(", "), rest));
        }
    }
    out
}
