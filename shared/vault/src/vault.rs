//! The vault: install, a fresh access token on demand with a race-free refresh, disconnect.
//!
//! Refresh protocol (several Lambda instances may ask for the same account at once):
//! 1. read; a token valid for at least [`VaultSettings::min_validity`] is returned as is;
//! 2. take the account's lease with a conditional update (owner + expiry, expiry checked in the
//!    condition); losers wait (bounded) and re-read;
//! 3. re-read under the lease: another instance may have refreshed already;
//! 4. call the refresh grant, then persist the new access token and the refresh token from the
//!    response (the old one only when the response has none) with a conditional write on the
//!    version, the account being active and the lease still being ours, *before* returning the
//!    token;
//! 5. release the lease only while still its owner.
//!
//! `invalid_grant` → re-read; if the stored refresh token is unchanged, the account is marked
//! `needs_reinstall` (which bumps the version and drops the envelope) and
//! [`VaultError::NeedsReinstall`] is returned.
//!
//! The lease lasts longer than every call made under it can take together
//! ([`CallBounds::worst_case_under_lease`], from the configured timeouts), so a refresh that
//! is merely slow keeps it; one that still overruns cannot store anything once another
//! instance has taken the lease or marked the account, because the save is conditioned on both.

use crate::crypto::{KeyCache, KeyWrapper, SealError, TokenPair};
use crate::error::VaultError;
use crate::hubspot::{HubSpotOAuth, OAuthError, TokenGrant};
use crate::store::{AccountRecord, AccountStore, StoreError, TokenUpdate};
use hsbridge_platform::Clock;
use hsbridge_platform::accounts::AccountStatus;
use hsbridge_platform::secrets::SecretSource;
use hsbridge_verify::Secret;
use std::sync::Arc;
use std::time::Duration;

/// The longest each outbound call of a refresh can take, as configured where the clients are
/// built: the refresh lease is sized from these, so it cannot drift from the timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBounds {
    /// One AWS SDK operation, every attempt included (DynamoDB, KMS, Secrets Manager): the
    /// SDK configuration's operation timeout.
    pub aws_operation: Duration,
    /// One HubSpot token request, as given to [`crate::ReqwestHubSpotOAuth::new`].
    pub hubspot: Duration,
}

/// The AWS operations a refresh makes while it holds the lease, at most: taking it (DynamoDB;
/// the expiry is set before the call), re-read (DynamoDB), open the tokens (KMS Decrypt), the
/// app credentials (Secrets Manager: `AWSCURRENT` and `AWSPREVIOUS`), the data key for the new
/// tokens (KMS GenerateDataKey); then the longest ending: on `invalid_grant` a re-read, KMS
/// Decrypt and the status change, or on a lost save the save, a re-read and KMS Decrypt.
pub const AWS_OPERATIONS_UNDER_LEASE: u32 = 9;
/// HubSpot requests under the lease: the refresh grant.
pub const HUBSPOT_CALLS_UNDER_LEASE: u32 = 1;
/// Kept on top of the worst case: scheduling, and clock skew between instances (each compares
/// the lease expiry with its own clock).
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// HubSpot's token-request timeout where no other is configured (the api-caller's default).
pub const DEFAULT_HUBSPOT_TIMEOUT: Duration = Duration::from_secs(5);

/// What one HubSpot call of a disconnect did. The reason of a failure names no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubSpotStep {
    Done,
    /// Not asked for (`--keep-install`).
    Skipped,
    Failed(String),
}

impl HubSpotStep {
    pub fn as_str(&self) -> &'static str {
        match self {
            HubSpotStep::Done => "done",
            HubSpotStep::Skipped => "skipped",
            HubSpotStep::Failed(_) => "failed",
        }
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, HubSpotStep::Failed(_))
    }
}

/// What a disconnect did at HubSpot; the account's tokens are erased here either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisconnectReport {
    /// `DELETE /appinstalls/<version>/external-install`.
    pub uninstall: HubSpotStep,
    /// The refresh token's revocation.
    pub revoke: HubSpotStep,
}

/// Why no refresh lease can be sized: some call under it has no timeout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the AWS SDK configuration has no operation timeout, so no refresh lease is long enough; load it with hsbridge_platform::aws::load"
)]
pub struct UnboundedCalls;

impl CallBounds {
    /// The AWS SDK configuration's operation timeout (`SdkConfig::timeout_config`) and the
    /// HubSpot client's timeout. Refused when the SDK has no operation timeout: with an
    /// unbounded call no lease is long enough, and the function must not start.
    pub fn new(aws_operation: Option<Duration>, hubspot: Duration) -> Result<Self, UnboundedCalls> {
        Ok(Self {
            aws_operation: aws_operation.ok_or(UnboundedCalls)?,
            hubspot,
        })
    }

    /// The longest a refresh can spend between taking the lease and its last call.
    pub fn worst_case_under_lease(&self) -> Duration {
        self.aws_operation
            .saturating_mul(AWS_OPERATIONS_UNDER_LEASE)
            .saturating_add(self.hubspot.saturating_mul(HUBSPOT_CALLS_UNDER_LEASE))
    }
}

impl Default for CallBounds {
    /// The platform's default AWS timeouts and [`DEFAULT_HUBSPOT_TIMEOUT`].
    fn default() -> Self {
        Self {
            aws_operation: hsbridge_platform::aws::AwsTimeouts::default().operation,
            hubspot: DEFAULT_HUBSPOT_TIMEOUT,
        }
    }
}

/// Tunables of the vault.
#[derive(Debug, Clone, Copy)]
pub struct VaultSettings {
    /// A returned access token stays valid at least this long.
    pub min_validity: Duration,
    /// The bounds of the calls made under the refresh lease, which size it.
    pub calls: CallBounds,
    /// How long an instance that lost the lease race waits for the winner.
    pub wait_budget: Duration,
    /// How often it looks again while waiting.
    pub poll_interval: Duration,
    /// How long a plaintext data key stays in memory.
    pub key_cache_ttl: Duration,
}

impl Default for VaultSettings {
    fn default() -> Self {
        Self {
            min_validity: Duration::from_secs(5 * 60),
            calls: CallBounds::default(),
            wait_budget: Duration::from_secs(10),
            poll_interval: Duration::from_millis(100),
            key_cache_ttl: Duration::from_secs(5 * 60),
        }
    }
}

impl VaultSettings {
    /// The defaults, with the lease sized for `calls`.
    pub fn for_calls(calls: CallBounds) -> Self {
        Self {
            calls,
            ..Self::default()
        }
    }

    /// How long a refresh lease lasts (if its holder dies, the next refresh waits this long):
    /// the worst case of the calls under it plus [`LEASE_MARGIN`].
    pub fn lease_ttl(&self) -> Duration {
        self.calls
            .worst_case_under_lease()
            .saturating_add(LEASE_MARGIN)
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The token vault, shared by every request of an instance.
#[derive(Debug)]
pub struct Vault {
    store: Arc<dyn AccountStore>,
    keys: KeyCache,
    oauth: Arc<dyn HubSpotOAuth>,
    secrets: Arc<dyn SecretSource>,
    clock: Arc<dyn Clock>,
    settings: VaultSettings,
    /// This instance's name; each call's lease owner is this plus a sequence number, so two
    /// requests of one instance never both believe they hold the lease.
    owner: String,
    calls: std::sync::atomic::AtomicU64,
    /// Told when this vault marks an account as needing a reinstall.
    alerts: Option<Arc<dyn hsbridge_platform::alerts::Alerts>>,
}

impl Vault {
    pub fn new(
        store: Arc<dyn AccountStore>,
        keys: Arc<dyn KeyWrapper>,
        oauth: Arc<dyn HubSpotOAuth>,
        secrets: Arc<dyn SecretSource>,
        clock: Arc<dyn Clock>,
        settings: VaultSettings,
    ) -> Self {
        let mut id = [0u8; 12];
        // Without randomness the owner is still unique enough per instance: the clock and pid.
        let owner = match getrandom::fill(&mut id) {
            Ok(()) => id.iter().map(|b| format!("{b:02x}")).collect(),
            Err(_) => format!("{}-{}", std::process::id(), clock.now_ms()),
        };
        Self {
            store,
            keys: KeyCache::new(keys, settings.key_cache_ttl),
            oauth,
            secrets,
            clock,
            settings,
            owner,
            calls: std::sync::atomic::AtomicU64::new(0),
            alerts: None,
        }
    }

    /// Raises [`Alert::NeedsReinstall`](hsbridge_platform::alerts::Alert::NeedsReinstall) on
    /// `alerts` when this vault is the one that marks an account as needing a reinstall (once
    /// per account, whichever instance gets there first).
    pub fn with_alerts(mut self, alerts: Arc<dyn hsbridge_platform::alerts::Alerts>) -> Self {
        self.alerts = Some(alerts);
        self
    }

    /// Stores a fresh installation's tokens (a re-install replaces the account's tokens).
    /// The grant must carry a refresh token.
    pub async fn install(
        &self,
        hub_id: u64,
        grant: &TokenGrant,
        scopes: &[String],
    ) -> Result<(), VaultError> {
        let refresh =
            grant
                .refresh_token
                .clone()
                .ok_or(VaultError::HubSpot(OAuthError::Malformed(
                    "the token response has no refresh_token",
                )))?;
        let tokens = TokenPair {
            access: grant.access_token.clone(),
            refresh,
        };
        // A few attempts: a refresh may bump the version between our read and our write.
        for _ in 0..3 {
            let now = self.clock.now_ms();
            let existing = self.store.get(hub_id).await?;
            let expected = existing.as_ref().map(|r| r.version);
            let version = expected.map_or(1, |v| v.saturating_add(1));
            let sealed = self.seal(hub_id, version, &tokens, now).await?;
            let record = AccountRecord {
                hub_id,
                status: AccountStatus::Active,
                scopes: scopes.to_vec(),
                access_expires_at_ms: expires_at(now, grant.expires_in),
                installed_at_ms: now,
                updated_at_ms: now,
                refresh_count: existing.as_ref().map_or(0, |r| r.refresh_count),
                consecutive_failures: 0,
                version,
                sealed: Some(sealed),
                lease: None,
            };
            match self.store.put(&record, expected).await {
                Ok(()) => {
                    tracing::info!(hub_id, reinstall = expected.is_some(), "account installed");
                    return Ok(());
                }
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(VaultError::Conflict { hub_id })
    }

    /// An access token valid for at least [`VaultSettings::min_validity`], refreshing if due.
    pub async fn access_token(&self, hub_id: u64) -> Result<Secret, VaultError> {
        self.token_other_than(hub_id, None).await
    }

    /// A new access token after HubSpot refused `rejected` (a 401 before its expiry: revoked
    /// or rotated at HubSpot). Refreshes unless the stored token already differs from the
    /// rejected one, so many callers that saw the same 401 cause one refresh, not many.
    pub async fn refresh_after_rejection(
        &self,
        hub_id: u64,
        rejected: &Secret,
    ) -> Result<Secret, VaultError> {
        self.token_other_than(hub_id, Some(rejected)).await
    }

    async fn token_other_than(
        &self,
        hub_id: u64,
        rejected: Option<&Secret>,
    ) -> Result<Secret, VaultError> {
        let deadline = tokio::time::Instant::now() + self.settings.wait_budget;
        let call = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let owner = format!("{}-{call}", self.owner);
        loop {
            let record = self.read_usable(hub_id).await?;
            let now = self.clock.now_ms();
            if self.is_fresh(&record, now) {
                let tokens = self.open(&record, now).await?;
                if rejected != Some(&tokens.access) {
                    return Ok(tokens.access);
                }
            }
            // The lease runs from here: what was done before it (the open above) is not part
            // of [`CallBounds::worst_case_under_lease`].
            let lease_from = self.clock.now_ms();
            let lease_until = lease_from.saturating_add(ms(self.settings.lease_ttl()));
            if self
                .store
                .try_lease(hub_id, &owner, lease_from, lease_until)
                .await?
            {
                let result = self.refresh_under_lease(hub_id, &owner, rejected).await;
                if let Err(e) = self.store.release_lease(hub_id, &owner).await {
                    // The lease expires on its own; the token is already persisted.
                    tracing::warn!(hub_id, error = %e, "could not release the refresh lease");
                }
                return result;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(VaultError::RefreshBusy { hub_id });
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }

    /// Revokes the refresh token at HubSpot (best effort), deletes the token material, and
    /// marks the account disconnected.
    /// Disconnects the account: at HubSpot, uninstalls the app from it (unless
    /// `uninstall` is false) and revokes its refresh token; here, erases its tokens and marks it
    /// disconnected. The local erasure happens whatever HubSpot answered; the report says what
    /// each HubSpot call did.
    ///
    /// The uninstall (`DELETE /appinstalls/<version>/external-install`) goes first: it needs a
    /// live access token, and whether revoking the refresh token ends the access tokens issued
    /// with it is not documented (the simulator ends them). A revocation after the uninstall is
    /// harmless: an unknown token is not an error (RFC 7009). An access token about to expire
    /// is refreshed first, used for the uninstall only and never stored, and the refresh token
    /// that refresh returned is the one revoked.
    pub async fn disconnect(
        &self,
        hub_id: u64,
        uninstall: bool,
    ) -> Result<DisconnectReport, VaultError> {
        let mut report = DisconnectReport {
            uninstall: if uninstall {
                HubSpotStep::Failed("the account has no stored tokens".to_owned())
            } else {
                HubSpotStep::Skipped
            },
            revoke: HubSpotStep::Failed("the account has no stored tokens".to_owned()),
        };
        let mut called_hubspot = false;
        for _ in 0..3 {
            let Some(record) = self.store.get(hub_id).await? else {
                return Err(VaultError::NotInstalled { hub_id });
            };
            let now = self.clock.now_ms();
            if record.sealed.is_some() && !called_hubspot {
                called_hubspot = true;
                match self.open(&record, now).await {
                    Ok(tokens) => {
                        report = self
                            .hubspot_disconnect(hub_id, &record, tokens, uninstall, now)
                            .await;
                    }
                    Err(e) => {
                        tracing::warn!(hub_id, error = %e, "tokens unreadable; not revoked");
                        let why = format!("the stored tokens could not be opened: {e}");
                        report.revoke = HubSpotStep::Failed(why.clone());
                        if uninstall {
                            report.uninstall = HubSpotStep::Failed(why);
                        }
                    }
                }
            }
            match self
                .store
                .set_status(hub_id, record.version, AccountStatus::Disconnected, now)
                .await
            {
                Ok(()) => {
                    tracing::info!(
                        hub_id,
                        uninstall = report.uninstall.as_str(),
                        revoke = report.revoke.as_str(),
                        "account disconnected"
                    );
                    return Ok(report);
                }
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(VaultError::Conflict { hub_id })
    }

    /// The HubSpot side of a disconnect: uninstall (when asked), then revoke.
    async fn hubspot_disconnect(
        &self,
        hub_id: u64,
        record: &AccountRecord,
        tokens: TokenPair,
        uninstall: bool,
        now: u64,
    ) -> DisconnectReport {
        let app = match self.secrets.hubspot_app().await {
            Ok(app) => app,
            Err(e) => {
                let why = format!("the app credentials could not be read: {e}");
                tracing::warn!(hub_id, error = %e, "could not revoke the refresh token at HubSpot");
                return DisconnectReport {
                    uninstall: if uninstall {
                        HubSpotStep::Failed(why.clone())
                    } else {
                        HubSpotStep::Skipped
                    },
                    revoke: HubSpotStep::Failed(why),
                };
            }
        };
        let mut refresh = tokens.refresh;
        let uninstall_step = if uninstall {
            let access = if self.is_fresh(record, now) {
                Ok(tokens.access)
            } else {
                match self.oauth.refresh(&app, &refresh).await {
                    Ok(grant) => {
                        if let Some(rotated) = grant.refresh_token {
                            refresh = rotated;
                        }
                        Ok(grant.access_token)
                    }
                    Err(e) => Err(format!("no live access token to uninstall with: {e}")),
                }
            };
            match access {
                Ok(access) => match self.oauth.uninstall(&access).await {
                    Ok(()) => HubSpotStep::Done,
                    Err(e) => {
                        tracing::warn!(hub_id, error = %e, "could not uninstall the app at HubSpot");
                        HubSpotStep::Failed(e.to_string())
                    }
                },
                Err(why) => {
                    tracing::warn!(hub_id, error = %why, "could not uninstall the app at HubSpot");
                    HubSpotStep::Failed(why)
                }
            }
        } else {
            HubSpotStep::Skipped
        };
        let revoke = match self.oauth.revoke(&app, &refresh).await {
            Ok(()) => HubSpotStep::Done,
            Err(e) => {
                tracing::warn!(hub_id, error = %e, "could not revoke the refresh token at HubSpot");
                HubSpotStep::Failed(e.to_string())
            }
        };
        DisconnectReport {
            uninstall: uninstall_step,
            revoke,
        }
    }

    /// The settings this vault runs with (the refresh lease among them).
    pub fn settings(&self) -> &VaultSettings {
        &self.settings
    }

    /// The stored record (no secrets in it: the tokens are sealed).
    pub async fn account(&self, hub_id: u64) -> Result<Option<AccountRecord>, VaultError> {
        Ok(self.store.get(hub_id).await?)
    }

    fn is_fresh(&self, record: &AccountRecord, now: u64) -> bool {
        record.access_expires_at_ms > now.saturating_add(ms(self.settings.min_validity))
    }

    /// The record, if its tokens may be used.
    async fn read_usable(&self, hub_id: u64) -> Result<AccountRecord, VaultError> {
        let record = self
            .store
            .get(hub_id)
            .await?
            .ok_or(VaultError::NotInstalled { hub_id })?;
        match record.status {
            AccountStatus::Active if record.sealed.is_some() => Ok(record),
            AccountStatus::Active | AccountStatus::Disconnected => {
                Err(VaultError::Disconnected { hub_id })
            }
            AccountStatus::NeedsReinstall => Err(VaultError::NeedsReinstall { hub_id }),
        }
    }

    async fn refresh_under_lease(
        &self,
        hub_id: u64,
        owner: &str,
        rejected: Option<&Secret>,
    ) -> Result<Secret, VaultError> {
        // Another instance may have refreshed between our read and our lease.
        let record = self.read_usable(hub_id).await?;
        let now = self.clock.now_ms();
        let tokens = self.open(&record, now).await?;
        if self.is_fresh(&record, now) && rejected != Some(&tokens.access) {
            return Ok(tokens.access);
        }
        let app = self.secrets.hubspot_app().await?;
        // The data key for the new tokens first: once HubSpot has answered, its tokens must be
        // storable without another call that could fail.
        let key_time = self.clock.now_ms();
        self.keys
            .prepare(hub_id, key_time)
            .await
            .map_err(|e| match e {
                SealError::Rejected => VaultError::Decryption { hub_id },
                SealError::Keys(k) => VaultError::Keys(k),
            })?;
        match self.oauth.refresh(&app, &tokens.refresh).await {
            Ok(grant) => {
                if grant.expires_in <= 0 {
                    let _ = self.store.record_failure(hub_id).await;
                    return Err(VaultError::HubSpot(OAuthError::Malformed(
                        "expires_in is not positive",
                    )));
                }
                let now = self.clock.now_ms();
                let new_tokens = TokenPair {
                    access: grant.access_token.clone(),
                    // HubSpot does not document whether refresh tokens rotate: keep the one
                    // it sends, and the old one only when it sends none.
                    refresh: grant.refresh_token.clone().unwrap_or(tokens.refresh),
                };
                let new_version = record.version.saturating_add(1);
                let sealed = self
                    .seal(hub_id, new_version, &new_tokens, key_time)
                    .await?;
                let update = TokenUpdate {
                    new_version,
                    sealed,
                    access_expires_at_ms: expires_at(now, grant.expires_in),
                    updated_at_ms: now,
                };
                match self
                    .store
                    .save_tokens(hub_id, record.version, owner, &update)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(hub_id, version = new_version, "access token refreshed");
                        Ok(new_tokens.access)
                    }
                    Err(StoreError::Conflict) => {
                        // A re-install, a disconnect, a needs-reinstall mark or another
                        // instance that took over an expired lease overtook us; theirs wins.
                        tracing::warn!(hub_id, "account changed during refresh; not persisted");
                        let record = self.read_usable(hub_id).await?;
                        let now = self.clock.now_ms();
                        if self.is_fresh(&record, now) {
                            return Ok(self.open(&record, now).await?.access);
                        }
                        Err(VaultError::Conflict { hub_id })
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(OAuthError::InvalidGrant) => self.on_invalid_grant(hub_id, &tokens.refresh).await,
            Err(e) => {
                if let Err(store) = self.store.record_failure(hub_id).await {
                    tracing::warn!(hub_id, error = %store, "could not count the failed refresh");
                }
                tracing::warn!(hub_id, error = %e, "token refresh failed");
                Err(VaultError::HubSpot(e))
            }
        }
    }

    async fn on_invalid_grant(&self, hub_id: u64, used: &Secret) -> Result<Secret, VaultError> {
        let record = self.read_usable(hub_id).await?;
        let now = self.clock.now_ms();
        let stored = self.open(&record, now).await?;
        if stored.refresh != *used {
            // Someone stored new tokens meanwhile (a re-install): those are good.
            if self.is_fresh(&record, now) {
                return Ok(stored.access);
            }
            return Err(VaultError::Conflict { hub_id });
        }
        match self
            .store
            .set_status(hub_id, record.version, AccountStatus::NeedsReinstall, now)
            .await
        {
            Ok(()) => {
                // This write made the change (it is conditioned on the version read): the one
                // alert for it.
                if let Some(alerts) = &self.alerts {
                    alerts
                        .raise(hsbridge_platform::alerts::Alert::NeedsReinstall {
                            portal_id: hub_id,
                        })
                        .await;
                }
            }
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::warn!(
            hub_id,
            "refresh token refused by HubSpot; account needs reinstall"
        );
        Err(VaultError::NeedsReinstall { hub_id })
    }

    async fn seal(
        &self,
        hub_id: u64,
        version: u64,
        tokens: &TokenPair,
        now: u64,
    ) -> Result<crate::store::SealedTokens, VaultError> {
        self.keys
            .seal(hub_id, version, tokens, now)
            .await
            .map_err(|e| match e {
                SealError::Rejected => VaultError::Decryption { hub_id },
                SealError::Keys(k) => VaultError::Keys(k),
            })
    }

    async fn open(&self, record: &AccountRecord, now: u64) -> Result<TokenPair, VaultError> {
        let hub_id = record.hub_id;
        let sealed = record
            .sealed
            .as_ref()
            .ok_or(VaultError::Disconnected { hub_id })?;
        self.keys
            .open(hub_id, record.version, sealed, now)
            .await
            .map_err(|e| match e {
                SealError::Rejected => VaultError::Decryption { hub_id },
                SealError::Keys(k) => VaultError::Keys(k),
            })
    }
}

fn expires_at(now: u64, expires_in_secs: i64) -> u64 {
    let secs = u64::try_from(expires_in_secs).unwrap_or(0);
    now.saturating_add(secs.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    //! The vault over its embedded adapters (in-memory store, local key wrapper, a scripted
    //! HubSpot); the same behaviour against moto is in tests/integration/oauth_vault/.
    use super::*;
    use crate::crypto::LocalKeyWrapper;
    use crate::hubspot::Introspection;
    use crate::store::InMemoryAccountStore;
    use async_trait::async_trait;
    use hsbridge_platform::ManualClock;
    use hsbridge_platform::secrets::{HubSpotApp, StaticSecretSource};
    use hsbridge_verify::SecretSet;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct ScriptedHubSpot {
        refreshes: AtomicUsize,
        revokes: AtomicUsize,
        uninstalls: AtomicUsize,
        uninstall_fails: AtomicBool,
        /// Read when a refresh arrives: it answers `invalid_grant`.
        invalid_grant: AtomicBool,
        /// The first refresh answers only once `release` is notified (a slow HubSpot).
        hold_first: AtomicBool,
        release: tokio::sync::Notify,
        /// Each refresh moves this clock by `delay`, as if HubSpot took that long.
        timed: std::sync::Mutex<Option<(ManualClock, Duration)>>,
    }

    #[async_trait]
    impl HubSpotOAuth for ScriptedHubSpot {
        async fn exchange_code(
            &self,
            _: &HubSpotApp,
            _: &str,
            _: &str,
        ) -> Result<TokenGrant, OAuthError> {
            Err(OAuthError::Malformed("not scripted"))
        }
        async fn refresh(&self, _: &HubSpotApp, _: &Secret) -> Result<TokenGrant, OAuthError> {
            let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
            let invalid = self.invalid_grant.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            if n == 1 && self.hold_first.load(Ordering::SeqCst) {
                self.release.notified().await;
            }
            if let Some((clock, delay)) = self.timed.lock().unwrap().as_ref() {
                clock.advance_ms(ms(*delay));
            }
            if invalid {
                return Err(OAuthError::InvalidGrant);
            }
            Ok(grant(
                &format!("access-{n}"),
                Some(&format!("refresh-{n}")),
                1800,
            ))
        }
        async fn introspect(
            &self,
            _: &HubSpotApp,
            _: &Secret,
        ) -> Result<Introspection, OAuthError> {
            Err(OAuthError::Malformed("not scripted"))
        }
        async fn revoke(&self, _: &HubSpotApp, _: &Secret) -> Result<(), OAuthError> {
            self.revokes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn uninstall(&self, _: &Secret) -> Result<(), OAuthError> {
            self.uninstalls.fetch_add(1, Ordering::SeqCst);
            if self.uninstall_fails.load(Ordering::SeqCst) {
                return Err(OAuthError::Rejected {
                    status: 403,
                    code: "MISSING_SCOPES".to_owned(),
                });
            }
            Ok(())
        }
    }

    fn grant(access: &str, refresh: Option<&str>, expires_in: i64) -> TokenGrant {
        TokenGrant {
            access_token: Secret::new(access),
            refresh_token: refresh.map(Secret::new),
            expires_in,
            token_type: "bearer".to_owned(),
            hub_id: None,
            scopes: None,
        }
    }

    struct Embedded {
        store: Arc<InMemoryAccountStore>,
        keys: Arc<LocalKeyWrapper>,
        hubspot: Arc<ScriptedHubSpot>,
        clock: ManualClock,
    }

    impl Embedded {
        fn new() -> Self {
            Self {
                store: Arc::default(),
                keys: Arc::new(LocalKeyWrapper::random().unwrap()),
                hubspot: Arc::default(),
                clock: ManualClock::at(1_700_000_000_000),
            }
        }

        fn vault(&self) -> Vault {
            let app = HubSpotApp {
                client_id: "id".to_owned(),
                secrets: SecretSet::new(Secret::new("secret")).unwrap(),
            };
            Vault::new(
                self.store.clone(),
                self.keys.clone(),
                self.hubspot.clone(),
                Arc::new(StaticSecretSource(app)),
                Arc::new(self.clock.clone()),
                VaultSettings::default(),
            )
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_on_three_instances_share_one_refresh() {
        let e = Embedded::new();
        e.vault()
            .install(1, &grant("old", Some("r0"), 60), &[])
            .await
            .unwrap();
        let vaults: Vec<Arc<Vault>> = (0..3).map(|_| Arc::new(e.vault())).collect();
        let tasks: Vec<_> = (0..30)
            .map(|i| {
                let v = Arc::clone(&vaults[i % 3]);
                tokio::spawn(async move { v.access_token(1).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().expose(), "access-1");
        }
        assert_eq!(e.hubspot.refreshes.load(Ordering::SeqCst), 1);
        let record = e.store.get(1).await.unwrap().unwrap();
        assert_eq!((record.version, record.refresh_count), (2, 1));
        assert!(record.lease.is_none());
    }

    #[tokio::test]
    async fn a_fresh_token_is_returned_without_refreshing() {
        let e = Embedded::new();
        let vault = e.vault();
        vault
            .install(1, &grant("a", Some("r"), 1800), &[])
            .await
            .unwrap();
        assert_eq!(vault.access_token(1).await.unwrap().expose(), "a");
        e.clock.advance_ms(25 * 60 * 1000 + 1);
        assert_eq!(vault.access_token(1).await.unwrap().expose(), "access-1");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rejected_fresh_token_is_refreshed_once_for_many_callers() {
        let e = Embedded::new();
        let vault = Arc::new(e.vault());
        vault
            .install(3, &grant("revoked", Some("r"), 1800), &[])
            .await
            .unwrap();
        let rejected = Secret::new("revoked");
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (v, r) = (Arc::clone(&vault), rejected.clone());
                tokio::spawn(async move { v.refresh_after_rejection(3, &r).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().expose(), "access-1");
        }
        assert_eq!(e.hubspot.refreshes.load(Ordering::SeqCst), 1);
        // A token other than the rejected one is returned as is.
        assert_eq!(
            vault
                .refresh_after_rejection(3, &Secret::new("older"))
                .await
                .unwrap()
                .expose(),
            "access-1"
        );
        assert_eq!(e.hubspot.refreshes.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn invalid_grant_marks_the_account_and_is_typed() {
        let e = Embedded::new();
        let vault = e.vault();
        vault
            .install(9, &grant("a", Some("r"), 10), &[])
            .await
            .unwrap();
        e.hubspot.invalid_grant.store(true, Ordering::SeqCst);
        assert!(matches!(
            vault.access_token(9).await,
            Err(VaultError::NeedsReinstall { hub_id: 9 })
        ));
        let record = e.store.get(9).await.unwrap().unwrap();
        assert_eq!(record.status, AccountStatus::NeedsReinstall);
    }

    #[tokio::test]
    async fn the_vault_that_marks_an_account_for_reinstall_raises_one_alert() {
        let e = Embedded::new();
        let alerts = Arc::new(hsbridge_platform::alerts::CapturedAlerts::default());
        let vault = e.vault().with_alerts(alerts.clone());
        vault
            .install(9, &grant("a", Some("r"), 10), &[])
            .await
            .unwrap();
        e.hubspot.invalid_grant.store(true, Ordering::SeqCst);
        for _ in 0..3 {
            assert!(vault.access_token(9).await.is_err());
        }
        assert_eq!(
            alerts.raised(),
            vec![hsbridge_platform::alerts::Alert::NeedsReinstall { portal_id: 9 }],
            "once, when the status changed; later calls find it marked"
        );
    }

    #[tokio::test]
    async fn an_install_without_a_refresh_token_is_refused() {
        let e = Embedded::new();
        assert!(
            e.vault()
                .install(1, &grant("a", None, 1800), &[])
                .await
                .is_err()
        );
        assert!(e.store.get(1).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_failed_uninstall_is_reported_and_the_tokens_are_erased_anyway() {
        let e = Embedded::new();
        let vault = e.vault();
        vault
            .install(5, &grant("a", Some("r"), 1800), &[])
            .await
            .unwrap();
        e.hubspot.uninstall_fails.store(true, Ordering::SeqCst);
        let report = vault.disconnect(5, true).await.unwrap();
        assert!(report.uninstall.is_failed(), "{report:?}");
        assert_eq!(report.revoke, HubSpotStep::Done);
        let record = e.store.get(5).await.unwrap().unwrap();
        assert_eq!(record.status, AccountStatus::Disconnected);
        assert!(record.sealed.is_none());
    }

    #[tokio::test]
    async fn keeping_the_install_skips_the_uninstall_and_still_revokes() {
        let e = Embedded::new();
        let vault = e.vault();
        vault
            .install(6, &grant("a", Some("r"), 1800), &[])
            .await
            .unwrap();
        let report = vault.disconnect(6, false).await.unwrap();
        assert_eq!(report.uninstall, HubSpotStep::Skipped);
        assert_eq!(report.revoke, HubSpotStep::Done);
        assert_eq!(e.hubspot.uninstalls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_expired_access_token_is_refreshed_for_the_uninstall_and_the_new_refresh_token_revoked()
     {
        let e = Embedded::new();
        let vault = e.vault();
        vault
            .install(7, &grant("a", Some("r"), 60), &[])
            .await
            .unwrap();
        let report = vault.disconnect(7, true).await.unwrap();
        assert_eq!(report.uninstall, HubSpotStep::Done);
        assert_eq!(e.hubspot.refreshes.load(Ordering::SeqCst), 1);
        assert_eq!(e.hubspot.revokes.load(Ordering::SeqCst), 1);
        assert!(e.store.get(7).await.unwrap().unwrap().sealed.is_none());
    }

    #[tokio::test]
    async fn disconnect_revokes_and_forgets_the_tokens() {
        let e = Embedded::new();
        let vault = e.vault();
        vault
            .install(3, &grant("a", Some("r"), 1800), &[])
            .await
            .unwrap();
        let report = vault.disconnect(3, true).await.unwrap();
        assert_eq!(report.uninstall, HubSpotStep::Done);
        assert_eq!(report.revoke, HubSpotStep::Done);
        assert_eq!(e.hubspot.revokes.load(Ordering::SeqCst), 1);
        assert_eq!(e.hubspot.uninstalls.load(Ordering::SeqCst), 1);
        let record = e.store.get(3).await.unwrap().unwrap();
        assert_eq!(record.status, AccountStatus::Disconnected);
        assert!(record.sealed.is_none());
        assert!(matches!(
            vault.access_token(3).await,
            Err(VaultError::Disconnected { hub_id: 3 })
        ));
        assert!(matches!(
            vault.access_token(4).await,
            Err(VaultError::NotInstalled { hub_id: 4 })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refresh_that_outlived_its_lease_cannot_store_tokens_on_an_account_marked_needs_reinstall()
     {
        let e = Embedded::new();
        let a = Arc::new(e.vault());
        a.install(1, &grant("old", Some("r0"), 60), &[])
            .await
            .unwrap();
        // Instance A takes the lease and waits on a slow HubSpot...
        e.hubspot.hold_first.store(true, Ordering::SeqCst);
        let slow = tokio::spawn({
            let a = Arc::clone(&a);
            async move { a.access_token(1).await }
        });
        while e.hubspot.refreshes.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // ...until its lease has run out; instance B takes the lease over, HubSpot refuses the
        // refresh token, and B marks the account.
        e.clock.advance_ms(10 * 60 * 1000);
        e.hubspot.invalid_grant.store(true, Ordering::SeqCst);
        assert!(matches!(
            e.vault().access_token(1).await,
            Err(VaultError::NeedsReinstall { hub_id: 1 })
        ));
        // A's HubSpot call now succeeds: its tokens must not be stored or returned.
        e.hubspot.release.notify_one();
        let late = slow.await.unwrap();
        assert!(
            matches!(late, Err(VaultError::NeedsReinstall { hub_id: 1 })),
            "{late:?}"
        );
        let record = e.store.get(1).await.unwrap().unwrap();
        assert_eq!(record.status, AccountStatus::NeedsReinstall);
        assert!(record.sealed.is_none(), "valid tokens left on the account");
        assert_eq!(record.refresh_count, 0);
    }

    #[test]
    fn without_an_aws_operation_timeout_no_lease_is_sized() {
        assert_eq!(
            CallBounds::new(None, Duration::from_secs(3)),
            Err(UnboundedCalls)
        );
        let calls = CallBounds::new(Some(Duration::from_millis(1_800)), Duration::from_secs(3));
        // 9 AWS operations of 1.8 s, one HubSpot call of 3 s, and the 5 s margin.
        assert_eq!(
            VaultSettings::for_calls(calls.unwrap()).lease_ttl(),
            Duration::from_millis(9 * 1_800 + 3_000 + 5_000)
        );
    }

    /// Every port call moves the clock by its configured bound, as if each took its whole
    /// timeout; the log records when the lease was taken and each store write began and ended.
    #[derive(Debug)]
    struct Timed<T> {
        inner: T,
        clock: ManualClock,
        delay: Duration,
        log: CallLog,
    }

    type CallLog = Arc<std::sync::Mutex<Vec<(&'static str, u64)>>>;

    impl<T> Timed<T> {
        fn new(inner: T, clock: &ManualClock, delay: Duration, log: &CallLog) -> Self {
            Self {
                inner,
                clock: clock.clone(),
                delay,
                log: Arc::clone(log),
            }
        }
        fn spend(&self, times: u32) {
            self.clock.advance_ms(ms(self.delay) * u64::from(times));
        }
        fn note(&self, what: &'static str) {
            self.log.lock().unwrap().push((what, self.clock.now_ms()));
        }
    }

    #[async_trait]
    impl AccountStore for Timed<Arc<InMemoryAccountStore>> {
        async fn get(&self, hub_id: u64) -> Result<Option<AccountRecord>, StoreError> {
            self.spend(1);
            self.inner.get(hub_id).await
        }
        async fn put(&self, r: &AccountRecord, v: Option<u64>) -> Result<(), StoreError> {
            self.inner.put(r, v).await
        }
        async fn try_lease(
            &self,
            h: u64,
            o: &str,
            now: u64,
            until: u64,
        ) -> Result<bool, StoreError> {
            self.note("lease");
            self.spend(1);
            self.inner.try_lease(h, o, now, until).await
        }
        async fn release_lease(&self, h: u64, o: &str) -> Result<(), StoreError> {
            self.note("release");
            self.inner.release_lease(h, o).await
        }
        async fn save_tokens(
            &self,
            h: u64,
            v: u64,
            o: &str,
            u: &TokenUpdate,
        ) -> Result<(), StoreError> {
            self.spend(1);
            self.note("write");
            self.inner.save_tokens(h, v, o, u).await
        }
        async fn set_status(
            &self,
            h: u64,
            v: u64,
            s: AccountStatus,
            now: u64,
        ) -> Result<(), StoreError> {
            self.spend(1);
            self.note("write");
            self.inner.set_status(h, v, s, now).await
        }
        async fn record_failure(&self, h: u64) -> Result<(), StoreError> {
            self.spend(1);
            self.inner.record_failure(h).await
        }
    }

    #[async_trait]
    impl KeyWrapper for Timed<Arc<LocalKeyWrapper>> {
        async fn generate(&self, hub_id: u64) -> Result<crate::DataKey, crate::KeyError> {
            self.spend(1);
            self.inner.generate(hub_id).await
        }
        async fn unwrap_key(
            &self,
            hub_id: u64,
            wrapped: &[u8],
        ) -> Result<zeroize::Zeroizing<[u8; 32]>, crate::KeyError> {
            self.spend(1);
            self.inner.unwrap_key(hub_id, wrapped).await
        }
    }

    #[async_trait]
    impl SecretSource for Timed<StaticSecretSource> {
        async fn hubspot_app(&self) -> Result<HubSpotApp, hsbridge_platform::secrets::SecretError> {
            // A cold read asks Secrets Manager for AWSCURRENT, then AWSPREVIOUS.
            self.spend(2);
            self.inner.hubspot_app().await
        }
    }

    #[tokio::test]
    async fn a_refresh_whose_every_call_takes_its_whole_timeout_still_holds_its_lease() {
        let settings = VaultSettings::default();
        let calls = settings.calls;
        for invalid_grant in [false, true] {
            let e = Embedded::new();
            e.vault()
                .install(1, &grant("old", Some("r0"), 60), &[])
                .await
                .unwrap();
            let log = Arc::new(std::sync::Mutex::new(Vec::new()));
            let clock = e.clock.clone();
            let app = HubSpotApp {
                client_id: "id".to_owned(),
                secrets: SecretSet::new(Secret::new("secret")).unwrap(),
            };
            let store = Timed::new(Arc::clone(&e.store), &clock, calls.aws_operation, &log);
            let keys = Timed::new(Arc::clone(&e.keys), &clock, calls.aws_operation, &log);
            let secrets = Timed::new(StaticSecretSource(app), &clock, calls.aws_operation, &log);
            *e.hubspot.timed.lock().unwrap() = Some((clock.clone(), calls.hubspot));
            e.hubspot
                .invalid_grant
                .store(invalid_grant, Ordering::SeqCst);
            // A fresh instance: its data-key cache is cold.
            let vault = Vault::new(
                Arc::new(store),
                Arc::new(keys),
                e.hubspot.clone(),
                Arc::new(secrets),
                Arc::new(clock.clone()),
                settings,
            );
            let result = vault.access_token(1).await;
            assert_eq!(result.is_err(), invalid_grant, "{result:?}");

            let log = log.lock().unwrap().clone();
            let at = |what| {
                log.iter()
                    .find(|(w, _)| *w == what)
                    .map(|(_, t)| *t)
                    .unwrap()
            };
            let (leased, wrote, released) = (at("lease"), at("write"), at("release"));
            // The lease was still ours when the last write under it ended...
            assert!(
                wrote < leased + ms(settings.lease_ttl()),
                "invalid_grant={invalid_grant}: the write ended {} ms into a {} ms lease",
                wrote - leased,
                ms(settings.lease_ttl())
            );
            // ...and everything under the lease fits the bound it is sized from, computed here
            // from the configured timeouts: nine AWS operations and one HubSpot request.
            let sum = 9 * ms(calls.aws_operation) + ms(calls.hubspot);
            assert!(
                released - leased <= sum,
                "invalid_grant={invalid_grant}: {} ms under the lease, more than {sum} ms",
                released - leased
            );
            assert_eq!(ms(calls.worst_case_under_lease()), sum);
            assert!(ms(settings.lease_ttl()) > sum);
        }
    }
}
