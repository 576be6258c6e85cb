//! The URLs the local stack is reached at.

use crate::sim::SIM_PREFIX;
use std::net::SocketAddr;

/// The URLs the local stack is reached at, and where it reaches HubSpot (or the simulator).
pub(super) struct LocalUrls {
    pub(super) base_url: String,
    pub(super) redirect_url: String,
    pub(super) sim_base_url: Option<String>,
    /// Where the browser is sent to approve an install.
    pub(super) app_base: String,
    /// Where server-to-server calls to HubSpot go.
    pub(super) api_base: String,
}

impl LocalUrls {
    pub(super) fn new(local: SocketAddr, hubspot_sim: bool) -> Self {
        let base_url = format!("http://{local}");
        let redirect_url = format!("{base_url}/oauth/callback");
        // The simulator is reached under another site name than the callback (localhost
        // against 127.0.0.1), as HubSpot is: the state cookie must survive a cross-site redirect.
        let sim_host = if local.ip().is_ipv4() {
            format!("localhost:{}", local.port())
        } else {
            format!("127.0.0.1:{}", local.port())
        };
        let sim_base_url = hubspot_sim.then(|| format!("http://{sim_host}{SIM_PREFIX}"));
        let (app_base, api_base) = match &sim_base_url {
            // Server-to-server calls use the loopback address itself.
            Some(sim) => (sim.clone(), format!("{base_url}{SIM_PREFIX}")),
            None => (
                "https://app.hubspot.com".to_owned(),
                "https://api.hubapi.com".to_owned(),
            ),
        };
        Self {
            base_url,
            redirect_url,
            sim_base_url,
            app_base,
            api_base,
        }
    }
}
