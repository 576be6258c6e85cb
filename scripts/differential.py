#!/usr/bin/env python3
"""Differential test cases for HubSpot request signatures v1, v2 and v3.

An implementation of the signature rules written from docs/ (the HubSpot reference), independent
of the Rust crate: Python standard library only. It generates N requests (seedable) with varied
methods, URIs (the 12 decoded escapes, other escapes, lower-case hex, invalid escapes, Unicode,
spaces, `+`), bodies (ASCII, Unicode, binary) and timestamps (inside, at the edge of and outside
the window), each with a presented signature that is either the right one or a plausible wrong
one, and the decision the documented rules give. One JSON object per line:

  {"id", "class", "method", "uri", "body_b64", "headers": [[name, value], ...],
   "secrets": [current, previous?], "accept": ["v1", "v2", "v3"], "window_ms", "now_ms",
   "expected": true|false, "ambiguity": null|"<name>"}

Rules (from the reference):
  v1: sha256(secret + body), lowercase hex.
  v2: sha256(secret + METHOD + URI + body), lowercase hex; URI exactly as received.
  v3: base64(HMAC-SHA256(secret, METHOD + URI' + body + timestamp)), standard base64 with
      padding. URI' decodes exactly %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B and nothing
      else. The timestamp is epoch milliseconds, hashed as carried; |now - ts| <= window.
      A space in the v3 header is read as `+`.
  Secrets: the current and, during rotation, the previous secret; either may match.
Project rules where the reference is silent:
  - if a v3 header (signature or timestamp) is present, v3 alone decides (no fallback to v1/v2);
  - a signature or timestamp header present more than once is refused;
  - the timestamp must be plain ASCII digits, with no leading zero;
  - a version not in the route's accepted set is refused.
Where the reference leaves a choice open, the case carries an "ambiguity" name and its expected
decision follows the option given on the command line:
  - "lower-case-escape": `%3a` (lower-case hex) of one of the 12. --lower-case-escapes either
    (default) accepts a signature over either reading; strict accepts only the literal table.
  - "hex-case": an upper-case hex v1/v2 signature. --hex-case insensitive (default) accepts it
    (the same digest); strict compares the lowercase strings.
  - "version-case": `X-HubSpot-Signature-Version: V1` (the reference writes `v1`, `v2`).
    --version-case insensitive (default) reads it as v1; strict refuses it.

Usage: differential.py [--count N] [--seed S] --out PATH
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import random
import re
import sys

WINDOW_MS = 300_000

# The twelve escapes v3 decodes, exactly as the reference lists them.
V3_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}
ESCAPE_RE = re.compile("|".join(re.escape(e) for e in V3_DECODED))
ESCAPE_RE_ANY_CASE = re.compile("|".join(re.escape(e) for e in V3_DECODED), re.IGNORECASE)
LOWER_CASE_ESCAPE_RE = re.compile("|".join(re.escape(e.lower()) for e in V3_DECODED
                                           if e.lower() != e))

H_SIG = "X-HubSpot-Signature"
H_VER = "X-HubSpot-Signature-Version"
H_SIG3 = "X-HubSpot-Signature-v3"
H_TS = "X-HubSpot-Request-Timestamp"
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


# --- the documented algorithms ---------------------------------------------------------------

def uri_v3(uri: str) -> str:
    """URI': the 12 escapes decoded (upper-case, as listed), nothing else."""
    return ESCAPE_RE.sub(lambda m: V3_DECODED[m.group(0)], uri)


def uri_v3_any_case(uri: str) -> str:
    """The other reading of the table: the 12 escapes decoded in either case."""
    return ESCAPE_RE_ANY_CASE.sub(lambda m: V3_DECODED[m.group(0).upper()], uri)


def sig_v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def sig_v2(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + method.encode() + uri.encode() + body).hexdigest()


def mac_v3(secret: str, method: str, hashed_uri: str, body: bytes, ts: str) -> str:
    msg = method.encode() + hashed_uri.encode() + body + ts.encode()
    return base64.b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode()


def sig_v3(secret: str, method: str, uri: str, body: bytes, ts: str) -> str:
    return mac_v3(secret, method, uri_v3(uri), body, ts)


# --- the decision ----------------------------------------------------------------------------

def decide(case: dict, body: bytes, opts) -> tuple[bool, str | None]:
    """Accept or reject under the documented rules; also names the ambiguity the case hit."""
    headers = [(n.lower(), v) for n, v in case["headers"]]
    values = lambda name: [v for n, v in headers if n == name.lower()]  # noqa: E731
    accept = case["accept"]
    sig3, ts = values(H_SIG3), values(H_TS)
    secrets = case["secrets"]
    method, uri = case["method"], case["uri"]
    if sig3 or ts:
        if "v3" not in accept or len(sig3) != 1 or len(ts) != 1:
            return False, None
        ts = ts[0]
        # Canonical digits: a leading zero would let a "0" ending the URL or the body move
        # into the timestamp under the same MAC.
        if not ts or not all("0" <= c <= "9" for c in ts) or (len(ts) > 1 and ts[0] == "0"):
            return False, None
        if abs(case["now_ms"] - int(ts)) > case["window_ms"]:
            return False, None
        presented = sig3[0].replace(" ", "+")
        literal = any(hmac.compare_digest(presented, sig_v3(s, method, uri, body, ts))
                      for s in secrets)
        if literal:
            return True, None
        if LOWER_CASE_ESCAPE_RE.search(uri):
            other = any(hmac.compare_digest(
                presented, mac_v3(s, method, uri_v3_any_case(uri), body, ts)) for s in secrets)
            if other:
                return opts.lower_case_escapes == "either", "lower-case-escape"
        return False, None
    sig, ver = values(H_SIG), values(H_VER)
    if len(sig) != 1 or len(ver) != 1:
        return False, None
    version, ambiguity = ver[0], None
    if version not in ("v1", "v2") and version.lower() in ("v1", "v2"):
        if opts.version_case == "strict":
            return False, "version-case"
        version, ambiguity = version.lower(), "version-case"
    if version not in ("v1", "v2") or version not in accept:
        return False, ambiguity
    presented = sig[0]
    wanted = [sig_v1(s, body) if version == "v1" else sig_v2(s, method, uri, body)
              for s in secrets]
    if any(hmac.compare_digest(presented, w) for w in wanted):
        return True, ambiguity
    if any(hmac.compare_digest(presented.lower(), w) for w in wanted):
        return opts.hex_case == "insensitive", "hex-case"
    return False, ambiguity


# --- generation ------------------------------------------------------------------------------

OTHER_ESCAPES = ["%20", "%2B", "%3D", "%26", "%25", "%7E", "%C3%A9", "%E2%82%AC", "%0A", "%00",
                 "%5B", "%5D", "%22", "%3C", "%2e", "%c3%a9", "%7e", "%2b", "%3d"]
INVALID_ESCAPES = ["%", "%G1", "%3", "%%3A", "%253A", "%2", "%zz", "%%", "%2F%", "%3A%3",
                   "%-1", "%3 A"]
LITERALS = ["a", "b", "x", "webhook", "hook_uri", "v1", "2026", "~", "-", ".", "_", "+", " ",
            "=", "&", "é", "日本", "😀", ":", "@", "!", "$", "'", "(", ")", "*", ",", ";",
            "contacts", "q", "email", "ü", "\u00a0", "%"]


def rand_escape(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        e = rng.choice(list(V3_DECODED))
        return e.lower() if rng.random() < 0.2 else e
    if r < 0.8:
        return rng.choice(OTHER_ESCAPES)
    return rng.choice(INVALID_ESCAPES)


def rand_component(rng: random.Random, n: int) -> str:
    return "".join(rand_escape(rng) if rng.random() < 0.35 else rng.choice(LITERALS)
                   for _ in range(n))


def rand_uri(rng: random.Random) -> str:
    host = rng.choice(["www.example.com", "hooks.example.com", "abc123.execute-api.us-east-1"
                       ".amazonaws.com", "api.example.com:8443", "xn--bcher-kva.example"])
    scheme = "https" if rng.random() < 0.9 else "http"
    segments = [rand_component(rng, rng.randint(0, 4)) for _ in range(rng.randint(0, 4))]
    path = "/" + "/".join(segments)
    uri = f"{scheme}://{host}{path}"
    r = rng.random()
    if r < 0.7:
        params = [f"{rand_component(rng, rng.randint(1, 3))}={rand_component(rng, rng.randint(0, 5))}"
                  for _ in range(rng.randint(1, 4))]
        uri += "?" + "&".join(params)
    elif r < 0.75:
        uri += "?"
    return uri


def rand_body(rng: random.Random, method: str) -> bytes:
    if method in ("GET", "DELETE", "HEAD") and rng.random() < 0.8:
        return b""
    r = rng.random()
    if r < 0.1:
        return b""
    if r < 0.45:
        events = [{"eventId": rng.randint(0, 2**40), "subscriptionId": rng.randint(1, 10**6),
                   "portalId": rng.randint(1, 10**9), "occurredAt": 1_700_000_000_000,
                   "subscriptionType": "contact.propertyChange",
                   "propertyValue": rng.choice(["x", "é", "日本語", "a\"b", "😀", "\u2028"])}
                  for _ in range(rng.randint(1, 4))]
        return json.dumps(events, ensure_ascii=rng.random() < 0.5,
                          separators=(",", ":")).encode()
    if r < 0.7:
        return "".join(rng.choice(LITERALS) for _ in range(rng.randint(1, 60))).encode()
    if r < 0.98:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
    return bytes(rng.randrange(256) for _ in range(rng.randint(1000, 4000)))


def rand_secret(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        return "-".join("".join(rng.choice("0123456789abcdef") for _ in range(k))
                        for k in (8, 4, 4, 4, 12))
    if r < 0.8:
        return "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
    if r < 0.95:
        # A blank secret (whitespace only) is refused when the set is built, before any
        # signature is checked: it is never a case here.
        while True:
            s = "".join(rng.choice(LITERALS) for _ in range(rng.randint(1, 10)))
            if s.strip():
                return s
    return "k" * rng.randint(65, 200)  # longer than the HMAC block: hashed first


def change_one_char(rng: random.Random, s: str, alphabet: str) -> str:
    i = rng.randrange(len(s))
    c = rng.choice([a for a in alphabet if a != s[i]])
    return s[:i] + c + s[i + 1:]


def mangle_uri(rng: random.Random, uri: str) -> str:
    """A URI as a proxy or framework might have rewritten it."""
    from urllib.parse import unquote  # standard library; only used to build wrong inputs
    choice = rng.randrange(7)
    if choice == 0:
        return unquote(uri)  # everything decoded
    if choice == 1:
        return uri_v3_any_case(uri)  # lower-case escapes decoded too
    if choice == 2:
        return uri_v3(uri_v3(uri.replace("%25", "%")))  # double decode
    if choice == 3:
        return uri.replace("+", " ")
    if choice == 4:
        return re.sub("%[0-9a-f]{2}", lambda m: m.group(0).upper(), uri)
    if choice == 5:
        return uri.replace("https://", "http://", 1)
    return uri.split("?", 1)[0]  # query dropped


def v3_case(rng, c, body, signer, other_secret):
    now = c["now_ms"]
    r = rng.random()
    if r < 0.55:
        ts_ms, ts_class = now + rng.randint(-c["window_ms"], c["window_ms"]), "in-window"
    elif r < 0.7:
        edge = rng.choice([-1, 1]) * c["window_ms"]
        ts_ms, ts_class = now + edge, "edge"
    elif r < 0.85:
        ts_ms = now + rng.choice([-1, 1]) * (c["window_ms"] + rng.choice([1, 2, 1000, 10**7]))
        ts_class = "outside-window"
    else:
        ts_ms, ts_class = now, "odd-form"
    ts = str(ts_ms)
    if ts_class == "odd-form":
        ts = rng.choice([ts + ".0", "0" + ts, str(ts_ms // 1000), " " + ts, ts + " ", "-" + ts,
                         "+" + ts, "99999999999999999999", "", "1e12", ts[:-1] + "x"])
    method, uri = c["method"], c["uri"]
    kind = rng.choice(["right", "right", "right", "right", "space-for-plus", "other-secret",
                       "one-char", "mangled-uri", "undecoded-uri", "body-reserialised",
                       "body-latin1", "timestamp-float", "other-method", "url-safe",
                       "unpadded", "truncated", "previous-secret", "empty",
                       "lower-case-reading"])
    sig = sig_v3(signer, method, uri, body, ts)
    if kind == "space-for-plus":
        sig = sig.replace("+", " ")
    elif kind == "other-secret":
        sig = sig_v3(other_secret, method, uri, body, ts)
    elif kind == "previous-secret":
        sig = sig_v3(c["secrets"][-1], method, uri, body, ts)
    elif kind == "one-char":
        sig = change_one_char(rng, sig[:43], B64_ALPHABET) + sig[43:]
    elif kind == "mangled-uri":
        sig = mac_v3(signer, method, uri_v3(mangle_uri(rng, uri)), body, ts)
    elif kind == "lower-case-reading":
        sig = mac_v3(signer, method, uri_v3_any_case(uri), body, ts)
    elif kind == "undecoded-uri":
        sig = mac_v3(signer, method, uri, body, ts)  # what the official SDKs hash
    elif kind == "body-reserialised":
        try:
            sig = sig_v3(signer, method, uri, json.dumps(json.loads(body)).encode(), ts)
        except ValueError:
            sig = sig_v3(signer, method, uri, body.strip() + b"\n", ts)
    elif kind == "body-latin1":
        sig = sig_v3(signer, method, uri, body.decode("latin-1").encode("utf-8"), ts)
    elif kind == "timestamp-float":
        sig = sig_v3(signer, method, uri, body, ts + ".0")
    elif kind == "other-method":
        sig = sig_v3(signer, method.lower() if method.isupper() else "POST", uri, body, ts)
    elif kind == "url-safe":
        sig = sig.replace("+", "-").replace("/", "_")
    elif kind == "unpadded":
        sig = sig.rstrip("=")
    elif kind == "truncated":
        sig = sig[: rng.randrange(len(sig))]
    elif kind == "empty":
        sig = ""
    headers = [[H_SIG3, sig], [H_TS, ts]]
    shape = rng.random()
    if shape < 0.1:  # HubSpot also sends the older header alongside
        headers += [[H_SIG, sig_v1(signer, body)], [H_VER, "v1"]]
    elif shape < 0.13:
        headers.pop(rng.randrange(2))  # one of the pair missing
    elif shape < 0.15:
        headers.append(list(rng.choice(headers)))  # duplicated
    rng.shuffle(headers)
    return headers, f"v3/{kind}/{ts_class}"


def v12_case(rng, c, body, signer, other_secret, version):
    method, uri = c["method"], c["uri"]
    make = (lambda s, m=method, u=uri, b=body: sig_v1(s, b)) if version == "v1" else \
        (lambda s, m=method, u=uri, b=body: sig_v2(s, m, u, b))
    kind = rng.choice(["right", "right", "right", "other-secret", "one-char", "upper-case",
                       "wrong-version", "mangled-uri", "prefixed", "truncated", "previous-secret",
                       "body-reserialised", "empty"])
    sig = make(signer)
    ver = version
    if kind == "other-secret":
        sig = make(other_secret)
    elif kind == "previous-secret":
        sig = make(c["secrets"][-1])
    elif kind == "one-char":
        sig = change_one_char(rng, sig, "0123456789abcdef")
    elif kind == "upper-case":
        sig = sig.upper()
    elif kind == "wrong-version":
        ver = "v2" if version == "v1" else "v1"
    elif kind == "mangled-uri":
        sig = make(signer, u=mangle_uri(rng, uri)) if version == "v2" else \
            make(signer, b=body + b" ")
    elif kind == "prefixed":
        sig = "sha256=" + sig
    elif kind == "truncated":
        sig = sig[: rng.randrange(len(sig))]
    elif kind == "body-reserialised":
        sig = make(signer, b=body.strip() + b"\n")
    elif kind == "empty":
        sig = ""
    headers = [[H_SIG, sig], [H_VER, ver]]
    shape = rng.random()
    if shape < 0.04:
        headers.pop(rng.randrange(2))
    elif shape < 0.06:
        headers.append(list(headers[0]))
    elif shape < 0.08:
        headers[1][1] = rng.choice(["v3", "V1", "", "v1 "])
    rng.shuffle(headers)
    return headers, f"{version}/{kind}"


def generate(rng: random.Random, i: int, opts) -> dict:
    method = rng.choice(["POST"] * 6 + ["GET"] * 3 + ["PUT", "PATCH", "DELETE", "post"])
    current = rand_secret(rng)
    secrets = [current]
    if rng.random() < 0.3:
        secrets.append(rand_secret(rng))
    signer = current if len(secrets) == 1 or rng.random() < 0.5 else secrets[1]
    other_secret = rand_secret(rng)
    c = {
        "id": i,
        "method": method,
        "uri": rand_uri(rng),
        "secrets": secrets,
        "window_ms": WINDOW_MS if rng.random() < 0.8 else rng.choice([1000, 60_000, 299_999]),
        "now_ms": 1_700_000_000_000 + rng.randrange(10**11),
    }
    body = rand_body(rng, method)
    version = rng.choices(["v3", "v1", "v2"], weights=[6, 2, 2])[0]
    policies = [["v3"], ["v1"], ["v2"], ["v1", "v2"], ["v1", "v3"], ["v2", "v3"],
                ["v1", "v2", "v3"]]
    if rng.random() < 0.85:  # mostly a route that takes this version
        policies = [p for p in policies if version in p]
    c["accept"] = rng.choice(policies)
    if version == "v3":
        headers, cls = v3_case(rng, c, body, signer, other_secret)
    else:
        headers, cls = v12_case(rng, c, body, signer, other_secret, version)
    c["headers"] = headers
    c["class"] = cls
    c["body_b64"] = base64.b64encode(body).decode()
    c["expected"], c["ambiguity"] = decide(c, body, opts)
    return c


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=20260521)
    p.add_argument("--out", required=True, help="where to write the JSON lines")
    p.add_argument("--lower-case-escapes", choices=["either", "strict"], default="either")
    p.add_argument("--hex-case", choices=["insensitive", "strict"], default="insensitive")
    p.add_argument("--version-case", choices=["insensitive", "strict"], default="insensitive")
    opts = p.parse_args()
    rng = random.Random(opts.seed)
    accepted = 0
    with open(opts.out, "w", encoding="utf-8") as out:
        for i in range(opts.count):
            case = generate(rng, i, opts)
            accepted += case["expected"]
            out.write(json.dumps(case, ensure_ascii=False) + "\n")
    print(f"{opts.count} cases, {accepted} expected accepted, seed {opts.seed}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
