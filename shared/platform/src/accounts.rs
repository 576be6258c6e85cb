//! Whether a HubSpot account (hub id, HubSpot's `portalId`) has an active installation.
//!
//! The accounts table is owned by the token vault; this module only reads the `status`
//! attribute of the item keyed by `hub_id` (a string of the decimal hub id).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use std::collections::HashMap;
use std::sync::RwLock;

/// `BatchGetItem` takes at most 100 keys.
const BATCH_GET_KEYS: usize = 100;
/// Calls per chunk of keys: the first and up to two for keys DynamoDB left unprocessed.
const BATCH_GET_ROUNDS: usize = 3;

/// The accounts table's key attribute.
pub const ATTR_HUB_ID: &str = "hub_id";
/// The accounts table's status attribute.
pub const ATTR_STATUS: &str = "status";

/// The lifecycle of an installed account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    Active,
    NeedsReinstall,
    Disconnected,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::NeedsReinstall => "needs_reinstall",
            AccountStatus::Disconnected => "disconnected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(AccountStatus::Active),
            "needs_reinstall" => Some(AccountStatus::NeedsReinstall),
            "disconnected" => Some(AccountStatus::Disconnected),
            _ => None,
        }
    }
}

/// Why an account's status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("the accounts table could not be read")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Port: look up an account's status. `None` means never installed.
#[async_trait]
pub trait AccountDirectory: Send + Sync + std::fmt::Debug {
    async fn status(&self, hub_id: u64) -> Result<Option<AccountStatus>, AccountsError>;

    /// The statuses of several accounts; an account never installed is absent from the map.
    /// Adapters that can read many in one call do.
    async fn statuses(
        &self,
        hub_ids: &[u64],
    ) -> Result<HashMap<u64, AccountStatus>, AccountsError> {
        let mut out = HashMap::with_capacity(hub_ids.len());
        for &hub in hub_ids {
            if let Some(status) = self.status(hub).await? {
                out.insert(hub, status);
            }
        }
        Ok(out)
    }
}

fn status_of(item: &HashMap<String, AttributeValue>) -> Option<AccountStatus> {
    item.get(ATTR_STATUS)
        .and_then(|v| v.as_s().ok())
        // An unknown status is treated as not active: fail closed.
        .map(|s| AccountStatus::parse(s).unwrap_or(AccountStatus::Disconnected))
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> AccountsError {
    AccountsError::Unavailable(Box::new(e))
}

/// AWS adapter: the DynamoDB accounts table.
#[derive(Debug, Clone)]
pub struct DynamoAccountDirectory {
    client: Client,
    table: String,
}

impl DynamoAccountDirectory {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl AccountDirectory for DynamoAccountDirectory {
    async fn status(&self, hub_id: u64) -> Result<Option<AccountStatus>, AccountsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ATTR_HUB_ID, AttributeValue::S(hub_id.to_string()))
            .projection_expression("#s")
            .expression_attribute_names("#s", ATTR_STATUS)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item().and_then(status_of))
    }

    /// One `BatchGetItem` per 100 accounts (plus a retry of any keys left unprocessed).
    async fn statuses(
        &self,
        hub_ids: &[u64],
    ) -> Result<HashMap<u64, AccountStatus>, AccountsError> {
        let mut out = HashMap::with_capacity(hub_ids.len());
        for chunk in hub_ids.chunks(BATCH_GET_KEYS) {
            let keys = chunk
                .iter()
                .map(|hub| {
                    HashMap::from([(ATTR_HUB_ID.to_owned(), AttributeValue::S(hub.to_string()))])
                })
                .collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .projection_expression("#k, #s")
                    .expression_attribute_names("#k", ATTR_HUB_ID)
                    .expression_attribute_names("#s", ATTR_STATUS)
                    .build()
                    .map_err(unavailable)?,
            );
            for _ in 0..BATCH_GET_ROUNDS {
                let Some(keys) = request.take() else { break };
                let answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(unavailable)?;
                for item in answer
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    let hub = item
                        .get(ATTR_HUB_ID)
                        .and_then(|v| v.as_s().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    if let (Some(hub), Some(status)) = (hub, status_of(item)) {
                        out.insert(hub, status);
                    }
                }
                request = answer
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
            }
            if request.is_some() {
                return Err(AccountsError::Unavailable(
                    "the accounts table left keys unprocessed after retries".into(),
                ));
            }
        }
        Ok(out)
    }
}

/// Embedded adapter: statuses held in memory.
#[derive(Debug, Default)]
pub struct InMemoryAccountDirectory {
    statuses: RwLock<HashMap<u64, AccountStatus>>,
}

impl InMemoryAccountDirectory {
    pub fn set(&self, hub_id: u64, status: AccountStatus) {
        if let Ok(mut map) = self.statuses.write() {
            map.insert(hub_id, status);
        }
    }
}

#[async_trait]
impl AccountDirectory for InMemoryAccountDirectory {
    async fn status(&self, hub_id: u64) -> Result<Option<AccountStatus>, AccountsError> {
        Ok(self
            .statuses
            .read()
            .ok()
            .and_then(|map| map.get(&hub_id).copied()))
    }
}
