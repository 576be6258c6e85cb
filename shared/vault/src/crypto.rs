//! Envelope encryption of an account's tokens.
//!
//! A 256-bit data key comes from a [`KeyWrapper`] (KMS `GenerateDataKey` with the encryption
//! context `{"hub_id": "<id>"}`, or a local wrapping key for the embedded stack). The tokens are
//! sealed with AES-256-GCM under it, a fresh random 96-bit nonce per seal, and the associated
//! data `hsbridge/vault/v1 | hub id | version`. The wrapped key is stored beside the ciphertext.
//! An item copied onto another account fails twice over: KMS refuses the wrapped key under the
//! other account's context, and the GCM tag fails on the other hub id.
//!
//! Plaintext data keys live only in memory ([`KeyCache`], a short TTL to bound KMS calls), in
//! `Zeroizing` buffers. This module must never write, log or `Debug`-print one.

use crate::store::SealedTokens;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use hsbridge_verify::Secret;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

/// The encryption-context key naming the account.
pub const CONTEXT_HUB_ID: &str = "hub_id";
const AAD_LABEL: &[u8] = b"hsbridge/vault/v1";
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

/// A plaintext data key and its wrapped form.
pub struct DataKey {
    pub plaintext: Zeroizing<[u8; KEY_LEN]>,
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("wrapped_len", &self.wrapped.len())
            .finish_non_exhaustive()
    }
}

/// Why a data key could not be made or unwrapped. Carries no key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The wrapped key does not unwrap under this account's context (copied, tampered).
    #[error("the wrapped data key was refused")]
    Rejected,
    /// The key service could not be reached or failed.
    #[error("the key service is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Port: makes and unwraps data keys bound to one account.
#[async_trait]
pub trait KeyWrapper: Send + Sync + std::fmt::Debug {
    async fn generate(&self, hub_id: u64) -> Result<DataKey, KeyError>;
    async fn unwrap_key(
        &self,
        hub_id: u64,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyError>;
}

/// AWS adapter: KMS `GenerateDataKey` / `Decrypt` with the account as encryption context.
#[derive(Debug, Clone)]
pub struct KmsKeyWrapper {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsKeyWrapper {
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }
}

fn to_key(bytes: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if bytes.len() != KEY_LEN {
        return Err(KeyError::Unavailable(
            "data key of unexpected length".into(),
        ));
    }
    key.copy_from_slice(bytes);
    Ok(key)
}

#[async_trait]
impl KeyWrapper for KmsKeyWrapper {
    async fn generate(&self, hub_id: u64) -> Result<DataKey, KeyError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context(CONTEXT_HUB_ID, hub_id.to_string())
            .send()
            .await
            .map_err(|e| KeyError::Unavailable(e.to_string().into()))?;
        let plaintext = out
            .plaintext()
            .ok_or_else(|| KeyError::Unavailable("GenerateDataKey returned no plaintext".into()))?;
        let wrapped = out.ciphertext_blob().ok_or_else(|| {
            KeyError::Unavailable("GenerateDataKey returned no ciphertext".into())
        })?;
        Ok(DataKey {
            plaintext: to_key(plaintext.as_ref())?,
            wrapped: wrapped.as_ref().to_vec(),
        })
    }

    async fn unwrap_key(
        &self,
        hub_id: u64,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyError> {
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .encryption_context(CONTEXT_HUB_ID, hub_id.to_string())
            .send()
            .await
            .map_err(|e| {
                let rejected = e.as_service_error().is_some_and(|s| {
                    s.is_invalid_ciphertext_exception() || s.is_incorrect_key_exception()
                });
                if rejected {
                    KeyError::Rejected
                } else {
                    KeyError::Unavailable(Box::new(e))
                }
            })?;
        let plaintext = out
            .plaintext()
            .ok_or_else(|| KeyError::Unavailable("Decrypt returned no plaintext".into()))?;
        to_key(plaintext.as_ref())
    }
}

/// Embedded adapter: data keys wrapped with AES-256-GCM under a local 32-byte key, the hub id
/// as associated data (the local stand-in for KMS's encryption context).
pub struct LocalKeyWrapper {
    wrapping_key: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for LocalKeyWrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalKeyWrapper([REDACTED])")
    }
}

impl LocalKeyWrapper {
    pub fn new(wrapping_key: [u8; KEY_LEN]) -> Self {
        Self {
            wrapping_key: Zeroizing::new(wrapping_key),
        }
    }

    /// A wrapper with a random key (tests, a throwaway local stack).
    pub fn random() -> Result<Self, KeyError> {
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key).map_err(|e| KeyError::Unavailable(e.to_string().into()))?;
        Ok(Self::new(key))
    }
}

fn context_aad(hub_id: u64) -> Vec<u8> {
    format!("{CONTEXT_HUB_ID}={hub_id}").into_bytes()
}

#[async_trait]
impl KeyWrapper for LocalKeyWrapper {
    async fn generate(&self, hub_id: u64) -> Result<DataKey, KeyError> {
        let mut plaintext = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(plaintext.as_mut_slice())
            .map_err(|e| KeyError::Unavailable(e.to_string().into()))?;
        let wrapped = aead_seal(
            &self.wrapping_key,
            plaintext.as_slice(),
            &context_aad(hub_id),
        )
        .map_err(|()| KeyError::Unavailable("local wrap failed".into()))?;
        Ok(DataKey { plaintext, wrapped })
    }

    async fn unwrap_key(
        &self,
        hub_id: u64,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyError> {
        let plain = aead_open(&self.wrapping_key, wrapped, &context_aad(hub_id))
            .map_err(|()| KeyError::Rejected)?;
        to_key(&plain).map_err(|_| KeyError::Rejected)
    }
}

/// `nonce || AES-256-GCM(key, plaintext, aad)`.
fn aead_seal(key: &[u8; KEY_LEN], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, ()> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| ())?;
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| ())?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn aead_open(key: &[u8; KEY_LEN], sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, ()> {
    if sealed.len() < NONCE_LEN {
        return Err(());
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| ())
}

/// The tokens of one account, in the clear (only ever in memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub access: Secret,
    pub refresh: Secret,
}

fn token_aad(hub_id: u64, version: u64) -> Vec<u8> {
    let mut aad = AAD_LABEL.to_vec();
    aad.push(0);
    aad.extend_from_slice(hub_id.to_string().as_bytes());
    aad.push(0);
    aad.extend_from_slice(version.to_string().as_bytes());
    aad
}

/// Why sealed tokens did not open. Says nothing about their contents.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the data key was refused or the ciphertext does not authenticate")]
    Rejected,
    #[error(transparent)]
    Keys(KeyError),
}

/// An unwrapped data key and when it was unwrapped (ms).
type CachedKey = (u64, Zeroizing<[u8; KEY_LEN]>);

/// Plaintext data keys for a short TTL: per account for sealing (one `GenerateDataKey` per
/// account per TTL), per wrapped key for opening (one `Decrypt` per key per TTL). The lock is
/// held across the KMS call so a cold cache costs one call, not one per concurrent request.
pub struct KeyCache {
    wrapper: Arc<dyn KeyWrapper>,
    ttl_ms: u64,
    sealing: Mutex<HashMap<u64, (u64, DataKey)>>,
    opening: Mutex<HashMap<(u64, Vec<u8>), CachedKey>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("wrapper", &self.wrapper)
            .field("ttl_ms", &self.ttl_ms)
            .finish_non_exhaustive()
    }
}

impl KeyCache {
    pub fn new(wrapper: Arc<dyn KeyWrapper>, ttl: Duration) -> Self {
        Self {
            wrapper,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            sealing: Mutex::default(),
            opening: Mutex::default(),
        }
    }

    /// Makes sure a sealing data key for `hub_id` is at hand (fresh at `now_ms`), generating one
    /// if needed. The vault calls it before asking HubSpot for new tokens, so that a key
    /// service outage fails the refresh *before* HubSpot issues (and perhaps rotates) tokens
    /// that could then not be stored; sealing with the same `now_ms` reuses this key.
    pub async fn prepare(&self, hub_id: u64, now_ms: u64) -> Result<(), SealError> {
        let mut sealing = self.sealing.lock().await;
        self.fresh_sealing_key(&mut sealing, hub_id, now_ms).await?;
        Ok(())
    }

    /// The cached sealing key for `hub_id` if it is fresh at `now_ms`, else a new one from the
    /// wrapper (stale keys of every account are dropped on the way).
    async fn fresh_sealing_key<'a>(
        &self,
        sealing: &'a mut HashMap<u64, (u64, DataKey)>,
        hub_id: u64,
        now_ms: u64,
    ) -> Result<&'a DataKey, SealError> {
        sealing.retain(|_, (at, _)| now_ms.saturating_sub(*at) < self.ttl_ms);
        let slot = match sealing.entry(hub_id) {
            std::collections::hash_map::Entry::Occupied(slot) => slot.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let key = self
                    .wrapper
                    .generate(hub_id)
                    .await
                    .map_err(SealError::Keys)?;
                slot.insert((now_ms, key))
            }
        };
        Ok(&slot.1)
    }

    /// Seals the tokens for `hub_id` at `version`.
    pub async fn seal(
        &self,
        hub_id: u64,
        version: u64,
        tokens: &TokenPair,
        now_ms: u64,
    ) -> Result<SealedTokens, SealError> {
        let mut sealing = self.sealing.lock().await;
        let key = self.fresh_sealing_key(&mut sealing, hub_id, now_ms).await?;
        let plaintext = encode_pair(tokens);
        let ciphertext = aead_seal(&key.plaintext, &plaintext, &token_aad(hub_id, version))
            .map_err(|()| SealError::Rejected)?;
        Ok(SealedTokens {
            wrapped_key: key.wrapped.clone(),
            ciphertext,
        })
    }

    /// Opens tokens sealed for `hub_id` at `version`.
    pub async fn open(
        &self,
        hub_id: u64,
        version: u64,
        sealed: &SealedTokens,
        now_ms: u64,
    ) -> Result<TokenPair, SealError> {
        let cache_key = (hub_id, sealed.wrapped_key.clone());
        let key = {
            let mut opening = self.opening.lock().await;
            opening.retain(|_, (at, _)| now_ms.saturating_sub(*at) < self.ttl_ms);
            match opening.get(&cache_key) {
                Some((_, key)) => key.clone(),
                None => {
                    let key = match self.wrapper.unwrap_key(hub_id, &sealed.wrapped_key).await {
                        Ok(key) => key,
                        Err(KeyError::Rejected) => return Err(SealError::Rejected),
                        Err(e) => return Err(SealError::Keys(e)),
                    };
                    opening.insert(cache_key, (now_ms, key.clone()));
                    key
                }
            }
        };
        let plaintext = aead_open(&key, &sealed.ciphertext, &token_aad(hub_id, version))
            .map_err(|()| SealError::Rejected)?;
        decode_pair(&plaintext).ok_or(SealError::Rejected)
    }
}

/// `u32 BE length of access || access || refresh`.
fn encode_pair(tokens: &TokenPair) -> Zeroizing<Vec<u8>> {
    let access = tokens.access.expose().as_bytes();
    let refresh = tokens.refresh.expose().as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(4 + access.len() + refresh.len()));
    let len = u32::try_from(access.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(access);
    out.extend_from_slice(refresh);
    out
}

fn decode_pair(plaintext: &[u8]) -> Option<TokenPair> {
    let (len, rest) = plaintext.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    if rest.len() < len {
        return None;
    }
    let (access, refresh) = rest.split_at(len);
    Some(TokenPair {
        access: Secret::new(std::str::from_utf8(access).ok()?),
        refresh: Secret::new(std::str::from_utf8(refresh).ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> TokenPair {
        TokenPair {
            access: Secret::new("access-token-1"),
            refresh: Secret::new("refresh-token-1"),
        }
    }

    fn cache() -> KeyCache {
        KeyCache::new(
            Arc::new(LocalKeyWrapper::random().unwrap()),
            Duration::from_secs(60),
        )
    }

    #[tokio::test]
    async fn sealed_tokens_open_for_the_same_account_and_version() {
        let keys = cache();
        let sealed = keys.seal(7, 3, &pair(), 0).await.unwrap();
        assert_eq!(keys.open(7, 3, &sealed, 0).await.unwrap(), pair());
        assert!(
            !sealed
                .ciphertext
                .windows(14)
                .any(|w| w == b"access-token-1")
        );
    }

    #[tokio::test]
    async fn sealed_tokens_do_not_open_for_another_account_or_version() {
        let keys = cache();
        let sealed = keys.seal(7, 3, &pair(), 0).await.unwrap();
        assert!(matches!(
            keys.open(8, 3, &sealed, 0).await,
            Err(SealError::Rejected)
        ));
        assert!(matches!(
            keys.open(7, 4, &sealed, 0).await,
            Err(SealError::Rejected)
        ));
    }

    #[tokio::test]
    async fn a_tampered_ciphertext_does_not_open() {
        let keys = cache();
        let mut sealed = keys.seal(7, 1, &pair(), 0).await.unwrap();
        if let Some(b) = sealed.ciphertext.last_mut() {
            *b ^= 1;
        }
        assert!(matches!(
            keys.open(7, 1, &sealed, 0).await,
            Err(SealError::Rejected)
        ));
    }

    #[test]
    fn data_keys_never_print() {
        let key = DataKey {
            plaintext: Zeroizing::new([7u8; 32]),
            wrapped: vec![1, 2],
        };
        assert!(!format!("{key:?}").contains('7'));
    }
}
