//! Opening an account's sealed tokens once the data key is in the cache (the warm path of every
//! `access_token` call), beside its floor: one AES-256-GCM decryption of the same ciphertext with
//! the key already expanded. Sealing with a cached key is measured too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use criterion::{Criterion, criterion_group, criterion_main};
use hsbridge_vault::LocalKeyWrapper;
use hsbridge_vault::crypto::{KeyCache, TokenPair};
use hsbridge_verify::Secret;

const HUB: u64 = 62515;
const VERSION: u64 = 7;
const NOW_MS: u64 = 1_700_000_000_000;

/// Token sizes as HubSpot issues them (an access token of several hundred bytes, a UUID-like
/// refresh token).
fn tokens() -> TokenPair {
    TokenPair {
        access: Secret::new("C".repeat(330)),
        refresh: Secret::new("na1-0000aaaa-1111-2222-3333-444455556666"),
    }
}

fn bench_open(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cache = KeyCache::new(
        Arc::new(LocalKeyWrapper::random().unwrap()),
        Duration::from_secs(300),
    );
    let pair = tokens();
    let sealed = runtime
        .block_on(cache.seal(HUB, VERSION, &pair, NOW_MS))
        .unwrap();
    // Warm the opening cache: the timed calls never unwrap the data key.
    assert_eq!(
        runtime
            .block_on(cache.open(HUB, VERSION, &sealed, NOW_MS))
            .unwrap(),
        pair
    );

    let mut group = c.benchmark_group("vault");
    group.bench_function("open_cached_key", |b| {
        b.iter(|| {
            runtime
                .block_on(cache.open(HUB, VERSION, black_box(&sealed), NOW_MS))
                .unwrap()
        })
    });
    group.bench_function("seal_cached_key", |b| {
        b.iter(|| {
            runtime
                .block_on(cache.seal(HUB, VERSION, black_box(&pair), NOW_MS))
                .unwrap()
        })
    });

    // Floor: AES-256-GCM over a message of the same length, key schedule included (as open
    // must do per call), no cache lookup, no decoding.
    let key = [7u8; 32];
    let nonce = [9u8; 12];
    let aad = b"hsbridge-vault-tokens\x0062515\x007";
    let plaintext = vec![b'x'; 4 + 330 + 40];
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key));
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &plaintext,
                aad,
            },
        )
        .unwrap();
    group.bench_function("aes256gcm_floor", |b| {
        b.iter(|| {
            Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(black_box(&key)))
                .decrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: black_box(&ct),
                        aad,
                    },
                )
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_open);
criterion_main!(benches);
