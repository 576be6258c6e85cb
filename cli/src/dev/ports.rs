//! The ports every function shares.

use super::urls::LocalUrls;
use anyhow::Result;
use hsbridge_platform::accounts::AccountDirectory;
use hsbridge_platform::event_log::InMemoryEventLog;
use hsbridge_platform::secrets::{HubSpotApp, SecretSource, StaticSecretSource};
use hsbridge_platform::{Clock, SystemClock};
use hsbridge_vault::{
    AccountStore, HubSpotOAuth, InMemoryAccountStore, LocalKeyWrapper, ReqwestHubSpotOAuth,
    StoreAccountDirectory, Vault, VaultSettings,
};
use hsbridge_verify::PublicBase;
use std::sync::Arc;
use std::time::Duration;

/// The ports every function shares: clock, app secret, HubSpot's OAuth client, the vault, the
/// account directory and the event log (written by the intake's deduper and the API caller).
pub(super) struct SharedPorts {
    pub(super) event_log: Arc<InMemoryEventLog>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) secrets: Arc<dyn SecretSource>,
    pub(super) oauth: Arc<dyn HubSpotOAuth>,
    pub(super) vault: Arc<Vault>,
    pub(super) accounts: Arc<dyn AccountDirectory>,
    pub(super) public_base: PublicBase,
}

/// How long a call to HubSpot (or the simulator) may take.
pub(super) const HUBSPOT_TIMEOUT: Duration = Duration::from_secs(3);

impl SharedPorts {
    pub(super) fn new(
        app: &HubSpotApp,
        wrapper: LocalKeyWrapper,
        store: &Arc<InMemoryAccountStore>,
        urls: &LocalUrls,
    ) -> Result<Self> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let secrets: Arc<dyn SecretSource> = Arc::new(StaticSecretSource(app.clone()));
        let oauth: Arc<dyn HubSpotOAuth> = Arc::new(
            ReqwestHubSpotOAuth::new(&urls.api_base, HUBSPOT_TIMEOUT)
                .map_err(|e| anyhow::anyhow!("could not build an HTTP client: {e}"))?
                .with_version(hsbridge_vault::config::api_version(
                    &hsbridge_platform::config::ProcessEnv,
                )?),
        );
        let store_port: Arc<dyn AccountStore> = store.clone();
        let vault = Arc::new(Vault::new(
            Arc::clone(&store_port),
            Arc::new(wrapper),
            Arc::clone(&oauth),
            Arc::clone(&secrets),
            Arc::clone(&clock),
            // The embedded store and key wrapper answer at once; the platform's AWS bound
            // stands in for them.
            VaultSettings::for_calls(hsbridge_vault::CallBounds {
                hubspot: HUBSPOT_TIMEOUT,
                ..hsbridge_vault::CallBounds::default()
            }),
        ));
        let accounts: Arc<dyn AccountDirectory> = Arc::new(StoreAccountDirectory(store_port));
        let public_base = PublicBase::parse(&urls.base_url).map_err(|e| {
            anyhow::anyhow!("cannot use {} as the public base URL: {e}", urls.base_url)
        })?;
        Ok(Self {
            event_log: Arc::default(),
            clock,
            secrets,
            oauth,
            vault,
            accounts,
            public_base,
        })
    }
}
