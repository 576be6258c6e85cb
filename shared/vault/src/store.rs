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
    /// Stores refreshed tokens if the version is still `expected_version`; counts the refresh
    /// and clears the failure counter.
    async fn save_tokens(
        &self,
        hub_id: u64,
        expected_version: u64,
        update: &TokenUpdate,
    ) -> Result<(), StoreError>;
    /// Sets the status if the version is still `expected_version`. With `remove_tokens` the
    /// envelope is deleted and the version becomes `expected_version + 1`.
    async fn set_status(
        &self,
        hub_id: u64,
        expected_version: u64,
        status: AccountStatus,
        remove_tokens: bool,
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
        update: &TokenUpdate,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(ATTR_HUB_ID, key(hub_id))
            .update_expression(
                "SET #v = :nv, #w = :w, #t = :t, #x = :x, #u = :u, #f = :zero ADD #r :one",
            )
            .condition_expression("#v = :v")
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
        remove_tokens: bool,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ATTR_HUB_ID, key(hub_id))
            .condition_expression("#v = :v")
            .expression_attribute_names("#v", ATTR_VERSION)
            .expression_attribute_names("#s", ATTR_STATUS)
            .expression_attribute_names("#u", ATTR_UPDATED_AT_MS)
            .expression_attribute_values(":v", n(expected_version))
            .expression_attribute_values(":s", AttributeValue::S(status.as_str().to_owned()))
            .expression_attribute_values(":u", n(now_ms));
        request = if remove_tokens {
            request
                .update_expression("SET #s = :s, #u = :u, #v = :nv REMOVE #w, #t")
                .expression_attribute_names("#w", ATTR_WRAPPED_KEY)
                .expression_attribute_names("#t", ATTR_TOKENS)
                .expression_attribute_values(":nv", n(expected_version.saturating_add(1)))
        } else {
            request.update_expression("SET #s = :s, #u = :u")
        };
        request.send().await.map_err(classify)?;
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

/// Embedded adapter: the same conditions over a map in memory.
#[derive(Debug, Default)]
pub struct InMemoryAccountStore {
    items: Mutex<HashMap<u64, AccountRecord>>,
}

impl InMemoryAccountStore {
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
        self.with(|items| {
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
        self.with(|items| {
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
        self.with(|items| {
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
        update: &TokenUpdate,
    ) -> Result<(), StoreError> {
        self.with(|items| {
            let r = items
                .get_mut(&hub_id)
                .filter(|r| r.version == expected_version)
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
        remove_tokens: bool,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.with(|items| {
            let r = items
                .get_mut(&hub_id)
                .filter(|r| r.version == expected_version)
                .ok_or(StoreError::Conflict)?;
            r.status = status;
            r.updated_at_ms = now_ms;
            if remove_tokens {
                r.sealed = None;
                r.version = expected_version.saturating_add(1);
            }
            Ok(())
        })
    }

    async fn record_failure(&self, hub_id: u64) -> Result<(), StoreError> {
        self.with(|items| {
            let r = items.get_mut(&hub_id).ok_or(StoreError::Conflict)?;
            r.consecutive_failures = r.consecutive_failures.saturating_add(1);
            Ok(())
        })
    }
}
