//! Port and adapters for the accounts table: one item per installed account, keyed by
//! `hub_id` (S, decimal), written only with conditional writes.
//!
//! Attributes: `hub_id`, `status` (read by the webhook intake), `scopes` (S, space-separated),
//! `access_expires_at_ms`, `installed_at_ms`, `updated_at_ms`, `refresh_count`,
//! `consecutive_failures`, `version` (N, the optimistic-concurrency version that is also bound
//! into the ciphertext), `wrapped_key` and `tokens` (B, the envelope), and the refresh lease
//! `lease_owner` (S) / `lease_expires_at_ms` (N). Lease expiry is checked in every condition:
//! DynamoDB's TTL deletes lazily (and moto never does), so it cannot end a lease.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use hsbridge_platform::accounts::{ATTR_HUB_ID, ATTR_STATUS, AccountStatus};
use std::collections::HashMap;
use std::sync::Mutex;

pub const ATTR_SCOPES: &str = "scopes";
pub const ATTR_ACCESS_EXPIRES_AT_MS: &str = "access_expires_at_ms";
pub const ATTR_INSTALLED_AT_MS: &str = "installed_at_ms";
pub const ATTR_UPDATED_AT_MS: &str = "updated_at_ms";
pub const ATTR_REFRESH_COUNT: &str = "refresh_count";
pub const ATTR_CONSECUTIVE_FAILURES: &str = "consecutive_failures";
pub const ATTR_VERSION: &str = "version";
pub const ATTR_WRAPPED_KEY: &str = "wrapped_key";
pub const ATTR_TOKENS: &str = "tokens";
pub const ATTR_LEASE_OWNER: &str = "lease_owner";
pub const ATTR_LEASE_EXPIRES_AT_MS: &str = "lease_expires_at_ms";

/// The envelope: the KMS-wrapped data key and `nonce || AES-256-GCM ciphertext`.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedTokens {
    pub wrapped_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for SealedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedTokens")
            .field("wrapped_key_len", &self.wrapped_key.len())
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// Who holds the refresh lease, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub expires_at_ms: u64,
}

/// One account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub hub_id: u64,
    pub status: AccountStatus,
    pub scopes: Vec<String>,
    pub access_expires_at_ms: u64,
    pub installed_at_ms: u64,
    pub updated_at_ms: u64,
    pub refresh_count: u64,
    pub consecutive_failures: u64,
    pub version: u64,
    /// `None` once disconnected.
    pub sealed: Option<SealedTokens>,
    pub lease: Option<Lease>,
}

/// New token material after a refresh.
#[derive(Debug, Clone)]
pub struct TokenUpdate {
    pub new_version: u64,
    pub sealed: SealedTokens,
    pub access_expires_at_ms: u64,
    pub updated_at_ms: u64,
}

/// Why the table could not be used. Carries no item contents.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: someone else changed the item.
    #[error("the account item changed concurrently")]
    Conflict,
    #[error("the account item is malformed: {0}")]
    Corrupt(&'static str),
    #[error("the accounts table is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Port: the accounts table.
#[async_trait]
pub trait AccountStore: Send + Sync + std::fmt::Debug {
    /// A strongly consistent read.
    async fn get(&self, hub_id: u64) -> Result<Option<AccountRecord>, StoreError>;
    /// Writes the whole record (dropping any lease) if the stored version is
    /// `expected_version`, or if there is no item when it is `None`.
    async fn put(
        &self,
        record: &AccountRecord,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError>;
    /// Takes the refresh lease if it is free, expired, or already `owner`'s.
    async fn try_lease(
        &self,
        hub_id: u64,
        owner: &str,
        now_ms: u64,
        expires_at_ms: u64,
    ) -> Result<bool, StoreError>;
    /// Releases the lease only while `owner` still holds it; otherwise does nothing.
    async fn release_lease(&self, hub_id: u64, owner: &str) -> Result<(), StoreError>;
    /// Stores refreshed tokens only while all of these still hold: the version is
    /// `expected_version`, the account is active, and `lease_owner` holds the refresh lease
    /// (whatever its expiry: if no one took it over, the refresh is still the only one).
    /// Counts the refresh and clears the failure counter. Anything else is `Conflict`.
    async fn save_tokens(
        &self,
        hub_id: u64,
        expected_version: u64,
        lease_owner: &str,
        update: &TokenUpdate,
    ) -> Result<(), StoreError>;
    /// Takes the account out of service (`needs_reinstall`, `disconnected`) if the version is
    /// still `expected_version`: the envelope is deleted and the version becomes
    /// `expected_version + 1`, so no refresh that read the account before can store tokens
    /// on it afterwards (the tokens are sealed to their version, so keeping them under a new
    /// version would leave them unreadable anyway; a refused refresh token is worth nothing).
    async fn set_status(
        &self,
        hub_id: u64,
        expected_version: u64,
        status: AccountStatus,
        now_ms: u64,
    ) -> Result<(), StoreError>;
    /// Counts a failed refresh.
    async fn record_failure(&self, hub_id: u64) -> Result<(), StoreError>;
}

/// AWS adapter: DynamoDB with conditional writes.
#[derive(Debug, Clone)]
pub struct DynamoAccountStore {
    client: Client,
    table: String,
}

impl DynamoAccountStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Every account in the table (an operator's listing; paginated scan). Items the intake
    /// wrote only a status for are skipped, like any item that is not a vault record.
    pub async fn scan(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            for item in page.items() {
                if let Ok(record) = from_item(item) {
                    out.push(record);
                }
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        out.sort_by_key(|r| r.hub_id);
        Ok(out)
    }
}

fn key(hub_id: u64) -> AttributeValue {
    AttributeValue::S(hub_id.to_string())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// `Conflict` for a failed condition, `Unavailable` otherwise.
fn classify<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if err
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
    {
        StoreError::Conflict
    } else {
        StoreError::Unavailable(Box::new(err))
    }
}

fn get_n(item: &HashMap<String, AttributeValue>, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        None => Ok(0),
        Some(v) => v
            .as_n()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(StoreError::Corrupt("a numeric attribute is not a number")),
    }
}

fn get_b(item: &HashMap<String, AttributeValue>, name: &str) -> Option<Vec<u8>> {
    item.get(name)
        .and_then(|v| v.as_b().ok())
        .map(|b| b.as_ref().to_vec())
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Result<AccountRecord, StoreError> {
    let hub_id = item
        .get(ATTR_HUB_ID)
        .and_then(|v| v.as_s().ok())
        .and_then(|s| s.parse().ok())
        .ok_or(StoreError::Corrupt("hub_id is not a decimal string"))?;
    // An unknown status fails closed, as the intake reads it.
    let status = item
        .get(ATTR_STATUS)
        .and_then(|v| v.as_s().ok())
        .map_or(AccountStatus::Disconnected, |s| {
            AccountStatus::parse(s).unwrap_or(AccountStatus::Disconnected)
        });
    let sealed = match (get_b(item, ATTR_WRAPPED_KEY), get_b(item, ATTR_TOKENS)) {
        (Some(wrapped_key), Some(ciphertext)) => Some(SealedTokens {
            wrapped_key,
            ciphertext,
        }),
        _ => None,
    };
    let lease = item
        .get(ATTR_LEASE_OWNER)
        .and_then(|v| v.as_s().ok())
        .map(|owner| -> Result<Lease, StoreError> {
            Ok(Lease {
                owner: owner.clone(),
                expires_at_ms: get_n(item, ATTR_LEASE_EXPIRES_AT_MS)?,
            })
        })
        .transpose()?;
    Ok(AccountRecord {
        hub_id,
        status,
        scopes: item
            .get(ATTR_SCOPES)
            .and_then(|v| v.as_s().ok())
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        access_expires_at_ms: get_n(item, ATTR_ACCESS_EXPIRES_AT_MS)?,
        installed_at_ms: get_n(item, ATTR_INSTALLED_AT_MS)?,
        updated_at_ms: get_n(item, ATTR_UPDATED_AT_MS)?,
        refresh_count: get_n(item, ATTR_REFRESH_COUNT)?,
        consecutive_failures: get_n(item, ATTR_CONSECUTIVE_FAILURES)?,
        version: get_n(item, ATTR_VERSION)?,
        sealed,
        lease,
    })
}

fn to_item(r: &AccountRecord) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        (ATTR_HUB_ID.to_owned(), key(r.hub_id)),
        (
            ATTR_STATUS.to_owned(),
            AttributeValue::S(r.status.as_str().to_owned()),
        ),
        (
            ATTR_ACCESS_EXPIRES_AT_MS.to_owned(),
            n(r.access_expires_at_ms),
        ),
        (ATTR_INSTALLED_AT_MS.to_owned(), n(r.installed_at_ms)),
        (ATTR_UPDATED_AT_MS.to_owned(), n(r.updated_at_ms)),
        (ATTR_REFRESH_COUNT.to_owned(), n(r.refresh_count)),
        (
            ATTR_CONSECUTIVE_FAILURES.to_owned(),
            n(r.consecutive_failures),
        ),
        (ATTR_VERSION.to_owned(), n(r.version)),
    ]);
    if !r.scopes.is_empty() {
        item.insert(
            ATTR_SCOPES.to_owned(),
            AttributeValue::S(r.scopes.join(" ")),
        );
    }
    if let Some(s) = &r.sealed {
        item.insert(
            ATTR_WRAPPED_KEY.to_owned(),
            AttributeValue::B(Blob::new(s.wrapped_key.clone())),
        );
        item.insert(
            ATTR_TOKENS.to_owned(),
            AttributeValue::B(Blob::new(s.ciphertext.clone())),
        );
    }
    if let Some(l) = &r.lease {
        item.insert(
            ATTR_LEASE_OWNER.to_owned(),
            AttributeValue::S(l.owner.clone()),
        );
        item.insert(ATTR_LEASE_EXPIRES_AT_MS.to_owned(), n(l.expires_at_ms));
    }
    item
}

#[async_trait]
impl AccountStore for DynamoAccountStore {
    async fn get(&self, hub_id: u64) -> Result<Option<AccountRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ATTR_HUB_ID, key(hub_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        out.item().map(from_item).transpose()
    }

    async fn put(
        &self,
        record: &AccountRecord,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)));
        let request = match expected_version {
            None => request
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", ATTR_HUB_ID),
            Some(v) => request
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", ATTR_VERSION)
                .expression_attribute_values(":v", n(v)),
        };
        request.send().await.map_err(classify)?;
        Ok(())
    }

    async fn try_lease(
        &self,
        hub_id: u64,
        owner: &str,
        now_ms: u64,
        expires_at_ms: u64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ATTR_HUB_ID, key(hub_id))
            .update_expression("SET #o = :o, #e = :e")
            .condition_expression(
                "attribute_exists(#k) AND (attribute_not_exists(#o) OR #e < :now OR #o = :o)",
            )
            .expression_attribute_names("#k", ATTR_HUB_ID)
            .expression_attribute_names("#o", ATTR_LEASE_OWNER)
            .expression_attribute_names("#e", ATTR_LEASE_EXPIRES_AT_MS)
            .expression_attribute_values(":o", AttributeValue::S(owner.to_owned()))
            .expression_attribute_values(":e", n(expires_at_ms))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        match result.map_err(classify) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn release_lease(&self, hub_id: u64, owner: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ATTR_HUB_ID, key(hub_id))
            .update_expression("REMOVE #o, #e")
            .condition_expression("#o = :o")
            .expression_attribute_names("#o", ATTR_LEASE_OWNER)
            .expression_attribute_names("#e", ATTR_LEASE_EXPIRES_AT_MS)
            .expression_attribute_values(":o", AttributeValue::S(owner.to_owned()))
            .send()
            .await;
        match result.map_err(classify) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn save_tokens(
        &self,
        hub_id: u64,
        expected_version: u64,
        lease_owner: &str,
        update: &TokenUpdate,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(ATTR_HUB_ID, key(hub_id))
            .update_expression(
                "SET #v = :nv, #w = :w, #t = :t, #x = :x, #u = :u, #f = :zero ADD #r :one",
            )
            .condition_expression("#v = :v AND #s = :active AND #o = :o")
            .expression_attribute_names("#s", ATTR_STATUS)
            .expression_attribute_names("#o", ATTR_LEASE_OWNER)
            .expression_attribute_values(
                ":active",
                AttributeValue::S(AccountStatus::Active.as_str().to_owned()),
            )
            .expression_attribute_values(":o", AttributeValue::S(lease_owner.to_owned()))
            .expression_attribute_names("#v", ATTR_VERSION)
            .expression_attribute_names("#w", ATTR_WRAPPED_KEY)
            .expression_attribute_names("#t", ATTR_TOKENS)
            .expression_attribute_names("#x", ATTR_ACCESS_EXPIRES_AT_MS)
            .expression_attribute_names("#u", ATTR_UPDATED_AT_MS)
            .expression_attribute_names("#f", ATTR_CONSECUTIVE_FAILURES)
            .expression_attribute_names("#r", ATTR_REFRESH_COUNT)
            .expression_attribute_values(":v", n(expected_version))
            .expression_attribute_values(":nv", n(update.new_version))
            .expression_attribute_values(
                ":w",
                AttributeValue::B(Blob::new(update.sealed.wrapped_key.clone())),
            )
            .expression_attribute_values(
                ":t",
                AttributeValue::B(Blob::new(update.sealed.ciphertext.clone())),
            )
            .expression_attribute_values(":x", n(update.access_expires_at_ms))
            .expression_attribute_values(":u", n(update.updated_at_ms))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn set_status(
        &self,
        hub_id: u64,
        expected_version: u64,
        status: AccountStatus,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(ATTR_HUB_ID, key(hub_id))
            .condition_expression("#v = :v")
            .update_expression("SET #s = :s, #u = :u, #v = :nv REMOVE #w, #t")
            .expression_attribute_names("#v", ATTR_VERSION)
            .expression_attribute_names("#s", ATTR_STATUS)
            .expression_attribute_names("#u", ATTR_UPDATED_AT_MS)
            .expression_attribute_names("#w", ATTR_WRAPPED_KEY)
            .expression_attribute_names("#t", ATTR_TOKENS)
            .expression_attribute_values(":v", n(expected_version))
            .expression_attribute_values(":nv", n(expected_version.saturating_add(1)))
            .expression_attribute_values(":s", AttributeValue::S(status.as_str().to_owned()))
            .expression_attribute_values(":u", n(now_ms))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn record_failure(&self, hub_id: u64) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(ATTR_HUB_ID, key(hub_id))
            .update_expression("ADD #f :one")
            .condition_expression("attribute_exists(#k)")
            .expression_attribute_names("#k", ATTR_HUB_ID)
            .expression_attribute_names("#f", ATTR_CONSECUTIVE_FAILURES)
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

/// Embedded adapter: the same conditions over a map in memory, optionally saved to a file after
/// every change (the local stack's store, which survives restarts).
///
/// The file holds exactly what the DynamoDB item holds: the tokens stay sealed (AES-256-GCM under
/// a data key wrapped by the configured [`crate::KeyWrapper`]); nothing in it is plaintext.
#[derive(Debug, Default)]
pub struct InMemoryAccountStore {
    items: Mutex<HashMap<u64, AccountRecord>>,
    file: Option<std::path::PathBuf>,
}

impl InMemoryAccountStore {
    /// A store saved to `path` after every change, starting from the file's contents when it
    /// exists. The file is written to a temporary sibling and renamed, so a crash leaves either
    /// the old or the new contents; it is created readable by its owner only.
    pub fn persistent(path: impl Into<std::path::PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let items = match std::fs::read(&path) {
            Ok(bytes) => persisted::decode(&bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(StoreError::Unavailable(Box::new(e))),
        };
        Ok(Self {
            items: Mutex::new(items),
            file: Some(path),
        })
    }

    /// Every stored account, in hub id order.
    pub fn all(&self) -> Result<Vec<AccountRecord>, StoreError> {
        self.with(|items| {
            let mut all: Vec<AccountRecord> = items.values().cloned().collect();
            all.sort_by_key(|r| r.hub_id);
            Ok(all)
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<u64, AccountRecord>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut items = self
            .items
            .lock()
            .map_err(|_| StoreError::Corrupt("the in-memory store was poisoned"))?;
        f(&mut items)
    }

    /// Like `with`, and saves the map when `f` succeeded (under the same lock, so saves are
    /// ordered like the changes).
    fn with_mut<T>(
        &self,
        f: impl FnOnce(&mut HashMap<u64, AccountRecord>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut items = self
            .items
            .lock()
            .map_err(|_| StoreError::Corrupt("the in-memory store was poisoned"))?;
        let out = f(&mut items)?;
        if let Some(path) = &self.file {
            persisted::save(path, &items)?;
        }
        Ok(out)
    }
}

/// The embedded store's file format: JSON, one object per account, envelopes in base64.
mod persisted {
    use super::{AccountRecord, Lease, SealedTokens, StoreError};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use hsbridge_platform::accounts::AccountStatus;
    use serde::{Deserialize, Serialize};
    use std::collections::HashMap;
    use std::io::Write;
    use std::path::Path;

    const FORMAT: u32 = 1;

    #[derive(Serialize, Deserialize)]
    struct File {
        format: u32,
        accounts: Vec<Item>,
    }

    #[derive(Serialize, Deserialize)]
    struct Item {
        hub_id: u64,
        status: String,
        scopes: Vec<String>,
        access_expires_at_ms: u64,
        installed_at_ms: u64,
        updated_at_ms: u64,
        refresh_count: u64,
        consecutive_failures: u64,
        version: u64,
        wrapped_key: Option<String>,
        tokens: Option<String>,
        lease_owner: Option<String>,
        lease_expires_at_ms: Option<u64>,
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<HashMap<u64, AccountRecord>, StoreError> {
        let file: File = serde_json::from_slice(bytes)
            .map_err(|_| StoreError::Corrupt("the store file is not valid JSON"))?;
        if file.format != FORMAT {
            return Err(StoreError::Corrupt("the store file has an unknown format"));
        }
        file.accounts
            .into_iter()
            .map(|i| {
                let sealed = match (i.wrapped_key, i.tokens) {
                    (Some(k), Some(t)) => Some(SealedTokens {
                        wrapped_key: STANDARD
                            .decode(k)
                            .map_err(|_| StoreError::Corrupt("wrapped_key is not base64"))?,
                        ciphertext: STANDARD
                            .decode(t)
                            .map_err(|_| StoreError::Corrupt("tokens is not base64"))?,
                    }),
                    (None, None) => None,
                    _ => return Err(StoreError::Corrupt("half an envelope")),
                };
                let lease = match (i.lease_owner, i.lease_expires_at_ms) {
                    (Some(owner), Some(expires_at_ms)) => Some(Lease {
                        owner,
                        expires_at_ms,
                    }),
                    _ => None,
                };
                let record = AccountRecord {
                    hub_id: i.hub_id,
                    // An unknown status is treated as not active: fail closed.
                    status: AccountStatus::parse(&i.status).unwrap_or(AccountStatus::Disconnected),
                    scopes: i.scopes,
                    access_expires_at_ms: i.access_expires_at_ms,
                    installed_at_ms: i.installed_at_ms,
                    updated_at_ms: i.updated_at_ms,
                    refresh_count: i.refresh_count,
                    consecutive_failures: i.consecutive_failures,
                    version: i.version,
                    sealed,
                    lease,
                };
                Ok((record.hub_id, record))
            })
            .collect()
    }

    pub(super) fn save(path: &Path, items: &HashMap<u64, AccountRecord>) -> Result<(), StoreError> {
        let mut accounts: Vec<Item> = items
            .values()
            .map(|r| Item {
                hub_id: r.hub_id,
                status: r.status.as_str().to_owned(),
                scopes: r.scopes.clone(),
                access_expires_at_ms: r.access_expires_at_ms,
                installed_at_ms: r.installed_at_ms,
                updated_at_ms: r.updated_at_ms,
                refresh_count: r.refresh_count,
                consecutive_failures: r.consecutive_failures,
                version: r.version,
                wrapped_key: r.sealed.as_ref().map(|s| STANDARD.encode(&s.wrapped_key)),
                tokens: r.sealed.as_ref().map(|s| STANDARD.encode(&s.ciphertext)),
                lease_owner: r.lease.as_ref().map(|l| l.owner.clone()),
                lease_expires_at_ms: r.lease.as_ref().map(|l| l.expires_at_ms),
            })
            .collect();
        accounts.sort_by_key(|i| i.hub_id);
        let bytes = serde_json::to_vec_pretty(&File {
            format: FORMAT,
            accounts,
        })
        .map_err(|_| StoreError::Corrupt("the store could not be encoded"))?;
        let unavailable = |e: std::io::Error| StoreError::Unavailable(Box::new(e));
        let tmp = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(unavailable)?;
        file.write_all(&bytes).map_err(unavailable)?;
        file.sync_all().map_err(unavailable)?;
        std::fs::rename(&tmp, path).map_err(unavailable)
    }
}

#[async_trait]
impl AccountStore for InMemoryAccountStore {
    async fn get(&self, hub_id: u64) -> Result<Option<AccountRecord>, StoreError> {
        self.with(|items| Ok(items.get(&hub_id).cloned()))
    }

    async fn put(
        &self,
        record: &AccountRecord,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        self.with_mut(|items| {
            let current = items.get(&record.hub_id).map(|r| r.version);
            if current != expected_version {
                return Err(StoreError::Conflict);
            }
            let mut record = record.clone();
            record.lease = None;
            items.insert(record.hub_id, record);
            Ok(())
        })
    }

    async fn try_lease(
        &self,
        hub_id: u64,
        owner: &str,
        now_ms: u64,
        expires_at_ms: u64,
    ) -> Result<bool, StoreError> {
        self.with_mut(|items| {
            let Some(r) = items.get_mut(&hub_id) else {
                return Ok(false);
            };
            let free = r
                .lease
                .as_ref()
                .is_none_or(|l| l.expires_at_ms < now_ms || l.owner == owner);
            if free {
                r.lease = Some(Lease {
                    owner: owner.to_owned(),
                    expires_at_ms,
                });
            }
            Ok(free)
        })
    }

    async fn release_lease(&self, hub_id: u64, owner: &str) -> Result<(), StoreError> {
        self.with_mut(|items| {
            if let Some(r) = items.get_mut(&hub_id)
                && r.lease.as_ref().is_some_and(|l| l.owner == owner)
            {
                r.lease = None;
            }
            Ok(())
        })
    }

    async fn save_tokens(
        &self,
        hub_id: u64,
        expected_version: u64,
        lease_owner: &str,
        update: &TokenUpdate,
    ) -> Result<(), StoreError> {
        self.with_mut(|items| {
            let r = items
                .get_mut(&hub_id)
                .filter(|r| {
                    r.version == expected_version
                        && r.status == AccountStatus::Active
                        && r.lease.as_ref().is_some_and(|l| l.owner == lease_owner)
                })
                .ok_or(StoreError::Conflict)?;
            r.version = update.new_version;
            r.sealed = Some(update.sealed.clone());
            r.access_expires_at_ms = update.access_expires_at_ms;
            r.updated_at_ms = update.updated_at_ms;
            r.consecutive_failures = 0;
            r.refresh_count = r.refresh_count.saturating_add(1);
            Ok(())
        })
    }

    async fn set_status(
        &self,
        hub_id: u64,
        expected_version: u64,
        status: AccountStatus,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.with_mut(|items| {
            let r = items
                .get_mut(&hub_id)
                .filter(|r| r.version == expected_version)
                .ok_or(StoreError::Conflict)?;
            r.status = status;
            r.updated_at_ms = now_ms;
            r.sealed = None;
            r.version = expected_version.saturating_add(1);
            Ok(())
        })
    }

    async fn record_failure(&self, hub_id: u64) -> Result<(), StoreError> {
        self.with_mut(|items| {
            let r = items.get_mut(&hub_id).ok_or(StoreError::Conflict)?;
            r.consecutive_failures = r.consecutive_failures.saturating_add(1);
            Ok(())
        })
    }
}

/// The accounts table read as a directory of statuses: what the intake and the API caller ask
/// of it, answered from any [`AccountStore`] (the local stack uses it over the embedded store,
/// so an install through the OAuth callback is what makes an account active there too).
#[derive(Debug, Clone)]
pub struct StoreAccountDirectory(pub std::sync::Arc<dyn AccountStore>);

#[async_trait]
impl hsbridge_platform::accounts::AccountDirectory for StoreAccountDirectory {
    async fn status(
        &self,
        hub_id: u64,
    ) -> Result<Option<AccountStatus>, hsbridge_platform::accounts::AccountsError> {
        self.0
            .get(hub_id)
            .await
            .map(|r| r.map(|r| r.status))
            .map_err(|e| hsbridge_platform::accounts::AccountsError::Unavailable(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(hub_id: u64) -> AccountRecord {
        AccountRecord {
            hub_id,
            status: AccountStatus::Active,
            scopes: vec!["oauth".into()],
            access_expires_at_ms: 10,
            installed_at_ms: 1,
            updated_at_ms: 2,
            refresh_count: 3,
            consecutive_failures: 0,
            version: 1,
            sealed: Some(SealedTokens {
                wrapped_key: vec![1, 2, 3],
                ciphertext: vec![0, 255, 7],
            }),
            lease: None,
        }
    }

    fn temp_file(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "hsbridge-vault-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("accounts.json")
    }

    #[tokio::test]
    async fn a_persistent_store_reopens_with_every_change_it_accepted() {
        let path = temp_file("reopen");
        let store = InMemoryAccountStore::persistent(&path).unwrap();
        store.put(&record(7), None).await.unwrap();
        store.put(&record(8), None).await.unwrap();
        store
            .set_status(8, 1, AccountStatus::Disconnected, 99)
            .await
            .unwrap();
        // A refused write changes nothing on disk either.
        assert!(matches!(
            store.put(&record(7), None).await,
            Err(StoreError::Conflict)
        ));
        drop(store);

        let reopened = InMemoryAccountStore::persistent(&path).unwrap();
        assert_eq!(reopened.get(7).await.unwrap(), Some(record(7)));
        let gone = reopened.get(8).await.unwrap().unwrap();
        assert_eq!(
            (gone.status, gone.sealed, gone.version),
            (AccountStatus::Disconnected, None, 2)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the store");
        }
    }

    #[test]
    fn a_damaged_store_file_is_refused_rather_than_emptied() {
        let path = temp_file("damaged");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            InMemoryAccountStore::persistent(&path),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
    }
}
