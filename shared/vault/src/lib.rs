//! The token vault: the one place that holds HubSpot OAuth tokens.
//!
//! One DynamoDB item per installed account (keyed by `hub_id`, the decimal hub id as a string)
//! holds the account's status, granted scopes, access-token expiry, install and update times,
//! counters, a version for optimistic concurrency, and the tokens sealed under envelope
//! encryption: AES-256-GCM under a data key from KMS `GenerateDataKey` (encryption context
//! `{"hub_id": "<id>"}`), the wrapped key stored beside the ciphertext, the hub id and version
//! bound as associated data so that material copied onto another account does not decrypt.
//!
//! [`Vault::access_token`] returns a token valid for at least five more minutes and refreshes it
//! race-free: one instance at a time holds a per-account lease (a conditional DynamoDB update),
//! re-reads, refreshes, persists with a conditional write on the version, then releases.
//!
//! What this crate must never do: put a token or a plaintext data key into a log line, an error,
//! a `Debug` string or storage; run two refreshes of one account at once; return a token it has
//! not persisted.

pub mod config;
pub mod crypto;
pub mod error;
pub mod hubspot;
pub mod store;
pub mod vault;

pub use config::VaultConfig;
pub use crypto::{DataKey, KeyError, KeyWrapper, KmsKeyWrapper, LocalKeyWrapper};
pub use error::VaultError;
pub use hubspot::{ApiVersion, HubSpotOAuth, OAuthError, ReqwestHubSpotOAuth, TokenGrant};
pub use store::{
    AccountRecord, AccountStore, DynamoAccountStore, InMemoryAccountStore, SealedTokens,
    StoreAccountDirectory, StoreError,
};
pub use vault::{CallBounds, DisconnectReport, HubSpotStep, UnboundedCalls, Vault, VaultSettings};
