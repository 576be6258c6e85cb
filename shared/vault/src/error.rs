//! The vault's errors. None of them carries a token, a key or a client secret.

use crate::crypto::KeyError;
use crate::hubspot::OAuthError;
use crate::store::StoreError;
use hsbridge_platform::secrets::SecretError;

/// Why the vault could not give or keep a token.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No account with this hub id was ever installed.
    #[error("account {hub_id} is not installed")]
    NotInstalled { hub_id: u64 },
    /// HubSpot refused the stored refresh token: the customer must install the app again.
    #[error("account {hub_id} needs to reinstall the app")]
    NeedsReinstall { hub_id: u64 },
    /// The app was uninstalled or disconnected.
    #[error("account {hub_id} is disconnected")]
    Disconnected { hub_id: u64 },
    /// The sealed tokens do not open for this account (wrong account, wrong version, tampered).
    #[error("the stored tokens of account {hub_id} could not be decrypted")]
    Decryption { hub_id: u64 },
    /// Another instance holds the refresh lease and did not finish within the wait budget.
    #[error("account {hub_id}: a refresh by another instance did not finish in time")]
    RefreshBusy { hub_id: u64 },
    /// Another writer changed the account between our read and our write.
    #[error("account {hub_id} was changed concurrently")]
    Conflict { hub_id: u64 },
    /// HubSpot's token endpoint failed (network, 5xx, unexpected answer).
    #[error("the HubSpot token endpoint failed")]
    HubSpot(#[source] OAuthError),
    /// The accounts table could not be read or written.
    #[error("the accounts table failed")]
    Store(#[source] StoreError),
    /// KMS could not generate or unwrap a data key.
    #[error("the key service failed")]
    Keys(#[source] KeyError),
    /// The app's client credentials could not be had.
    #[error("the HubSpot app credentials could not be read")]
    Secrets(#[source] SecretError),
}

impl VaultError {
    /// Whether this is a failed token refresh (HubSpot refused or failed it, or it could not be
    /// completed in time), as opposed to the account's state (not installed, disconnected) or a
    /// failure to read what is stored. What the `RefreshFailures` metric and alarm count.
    pub fn is_refresh_failure(&self) -> bool {
        matches!(
            self,
            Self::NeedsReinstall { .. }
                | Self::RefreshBusy { .. }
                | Self::Conflict { .. }
                | Self::HubSpot(_)
        )
    }
}

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<SecretError> for VaultError {
    fn from(e: SecretError) -> Self {
        Self::Secrets(e)
    }
}
