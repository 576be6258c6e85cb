//! The functions' Routers and the HubSpot simulator on one Router.

use super::ports::SharedPorts;
use super::urls::LocalUrls;
use super::{DevArgs, SCOPES, SIM_HUB_ID};
use crate::sim::{SimConfig, Simulator};
use anyhow::Result;
use hsbridge_api_caller::protected::ProtectedApi;
use hsbridge_api_caller::relay::{self, RelaySettings, RelayState};
use hsbridge_oauth_callback::{CallbackSettings, CallbackState};
use hsbridge_platform::metrics::Metrics;
use hsbridge_verify::CookieAttributes;
use hsbridge_webhook_intake::IntakeState;
use hsbridge_webhook_intake::config::IntakeSettings;
use hsbridge_webhook_intake::dedupe::InMemoryDeduper;
use hsbridge_webhook_intake::queue::InMemoryEventQueue;
use std::path::Path;
use std::sync::Arc;

/// The HubSpot simulator, with `--hubspot-sim`.
pub(super) fn simulator(
    args: &DevArgs,
    urls: &LocalUrls,
    ports: &SharedPorts,
    data_dir: &Path,
) -> Result<Option<Simulator>> {
    if !args.hubspot_sim {
        return Ok(None);
    }
    Ok(Some(Simulator::new(
        SimConfig {
            hub_id: SIM_HUB_ID,
            redirect_uri: urls.redirect_url.clone(),
            access_token_ttl_secs: args.sim_access_token_ttl,
            state_file: Some(data_dir.join("hubspot-sim.json")),
        },
        Arc::clone(&ports.secrets),
        Arc::clone(&ports.clock),
    )?))
}

/// The functions' Routers (intake, OAuth callback, relay, and the simulator's) on one Router.
pub(super) fn routers(
    ports: &SharedPorts,
    urls: &LocalUrls,
    queue: &Arc<InMemoryEventQueue>,
    api: &ProtectedApi,
    simulator: Option<&Simulator>,
) -> Result<axum::Router> {
    let intake = IntakeState {
        settings: IntakeSettings {
            public_base: Some(ports.public_base.clone()),
            ..IntakeSettings::default()
        },
        secrets: Arc::clone(&ports.secrets),
        accounts: Arc::clone(&ports.accounts),
        deduper: Arc::new(InMemoryDeduper::with_log(Arc::clone(&ports.event_log))),
        queue: queue.clone(),
        clock: Arc::clone(&ports.clock),
        metrics: Metrics::capturing("hsbridge", "webhook-intake"),
    };
    let callback = CallbackState {
        settings: CallbackSettings {
            redirect_url: urls.redirect_url.clone(),
            scopes: hsbridge_vault::config::split_scopes(SCOPES),
            optional_scopes: Vec::new(),
            app_base: urls.app_base.clone(),
            // Plain http on loopback only (checked above): the one place `Secure` is dropped.
            cookie: CookieAttributes::insecure_loopback(&urls.redirect_url),
        },
        secrets: Arc::clone(&ports.secrets),
        oauth: Arc::clone(&ports.oauth),
        vault: Arc::clone(&ports.vault),
        clock: Arc::clone(&ports.clock),
    };
    let relay = RelayState {
        settings: RelaySettings {
            public_base: Some(ports.public_base.clone()),
            max_body_bytes: 1024 * 1024,
            signature_window_ms: hsbridge_verify::MAX_WINDOW_MS,
            target_prefix: hsbridge_api_caller::config::DEFAULT_RELAY_TARGET_PREFIX.to_owned(),
        },
        secrets: Arc::clone(&ports.secrets),
        api: api.clone(),
        clock: Arc::clone(&ports.clock),
        metrics: Metrics::capturing("hsbridge", "hubspot-relay"),
    };
    let mut router = hsbridge_webhook_intake::app(intake)
        .merge(hsbridge_oauth_callback::app(callback))
        .merge(relay::app(relay))
        .merge(super::events::app(Arc::clone(&ports.event_log)));
    if let Some(sim) = simulator {
        router = router.merge(sim.router());
    }
    Ok(router)
}
