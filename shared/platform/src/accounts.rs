//! Whether a HubSpot account (hub id, HubSpot's `portalId`) has an active installation.
//!
//! The accounts table is owned by the token vault; this module only reads the `status`
//! attribute of the item keyed by `hub_id` (a string of the decimal hub id).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::sync::RwLock;

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
            .map_err(|e| AccountsError::Unavailable(Box::new(e)))?;
        Ok(out
            .item()
            .and_then(|item| item.get(ATTR_STATUS))
            .and_then(|v| v.as_s().ok())
            // An unknown status is treated as not active: fail closed.
            .map(|s| AccountStatus::parse(s).unwrap_or(AccountStatus::Disconnected)))
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
