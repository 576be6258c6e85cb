//! v3 `verify` against its floor: a bare HMAC-SHA256 of the same message (METHOD + URI' + body +
//! timestamp, already concatenated), keyed per call as verify must. `reject_stale` is the fixed
//! cost paid before any MAC (header lookups, timestamp parse, window check).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use hsbridge_verify::{
    HEADER_SIGNATURE_V3, HEADER_TIMESTAMP, Policy, Secret, SecretSet, SignedRequest,
    selectively_decode_uri, sign_v3, verify,
};
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;

const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
const METHOD: &str = "POST";
const URI: &str =
    "https://hooks.example.com/hubspot/webhook?portal=62515&email=a%40b.com&q=x%20y%2Bz";
const TS: &str = "1693657560000";
const NOW_MS: u64 = 1_693_657_561_000;
const STALE_NOW_MS: u64 = NOW_MS + 3_600_000;

fn body(len: usize) -> Vec<u8> {
    // JSON-ish printable bytes; content does not change SHA-256's cost.
    let pattern = br#"{"eventId":123,"x":"abc"},"#;
    (0..len).map(|i| pattern[i % pattern.len()]).collect()
}

fn bench_v3(c: &mut Criterion) {
    let secrets = SecretSet::new(Secret::new(SECRET)).unwrap();
    let policy = Policy::v3_only();
    let mut group = c.benchmark_group("v3");
    for (label, len) in [("1KiB", 1024), ("64KiB", 64 * 1024)] {
        let body = body(len);
        let signature = sign_v3(secrets.current(), METHOD, URI, &body, TS);
        let mut headers = HeaderMap::new();
        headers.insert(
            HEADER_SIGNATURE_V3,
            HeaderValue::from_str(&signature).unwrap(),
        );
        headers.insert(HEADER_TIMESTAMP, HeaderValue::from_static(TS));
        let req = SignedRequest {
            method: METHOD,
            uri: URI,
            body: &body,
            headers: &headers,
        };
        assert!(verify(&req, &secrets, &policy, NOW_MS).is_ok());

        let message = [
            METHOD.as_bytes(),
            selectively_decode_uri(URI).as_bytes(),
            &body,
            TS.as_bytes(),
        ]
        .concat();
        group.throughput(Throughput::Bytes(message.len() as u64));

        group.bench_with_input(BenchmarkId::new("verify", label), &req, |b, req| {
            b.iter(|| verify(black_box(req), &secrets, &policy, black_box(NOW_MS)))
        });
        // The fixed cost before any MAC: header lookups, timestamp parse, window check.
        group.bench_with_input(BenchmarkId::new("reject_stale", label), &req, |b, req| {
            b.iter(|| verify(black_box(req), &secrets, &policy, black_box(STALE_NOW_MS)))
        });
        group.bench_with_input(
            BenchmarkId::new("hmac_floor", label),
            &message,
            |b, message| {
                b.iter(|| {
                    let mut mac =
                        Hmac::<Sha256>::new_from_slice(black_box(SECRET.as_bytes())).unwrap();
                    mac.update(black_box(message));
                    mac.finalize().into_bytes()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_v3);
criterion_main!(benches);
