//! `hsbridge dev`: the whole stack on one loopback port with the embedded adapters.
//!
//! The same Routers and state types the Lambda functions use, wired to embedded adapters of the
//! same port traits: the app's credentials from the environment (or generated), the accounts in
//! a file-backed store whose tokens are sealed under a local wrapping key, an in-memory dedupe
//! store, an in-process queue drained by the API caller's own batch handler, the SigV4-verifying
//! stand-in as the protected API, and optionally the HubSpot simulator.

use crate::sim::{Simulator, write_private};
use anyhow::{Context, Result};
use hsbridge_api_caller::consumer::ConsumerState;
use hsbridge_platform::secrets::HubSpotApp;
use hsbridge_standin::RunningStandin;
use hsbridge_vault::InMemoryAccountStore;
use hsbridge_webhook_intake::queue::InMemoryEventQueue;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod credentials;
mod drain;
pub(crate) mod events;
mod listen;
mod ports;
mod protected;
mod routers;
mod store;
#[cfg(test)]
mod tests;
mod urls;

use credentials::{LocalAwsKey, LocalCredentials, Origin};
use drain::{consumer_state, drain_queue};
use listen::{bind, listen_addrs};
use ports::SharedPorts;
use protected::{REGION, protected_api, spawn_standin, watch_protected};
use routers::{routers, simulator};
use store::{data_dir, open_store};
use urls::LocalUrls;

pub use events::EVENTS_PATH;

/// The simulated portal the HubSpot simulator installs into.
pub const SIM_HUB_ID: u64 = 62515;
/// Scopes the local app asks for: the CRM read the API caller's enrichment needs, and `oauth`.
const SCOPES: &str = "oauth crm.objects.contacts.read";

/// `hsbridge dev`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Loopback address for the functions (and the HubSpot simulator).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: String,
    /// Loopback address of the SigV4-verifying protected-API stand-in (default: the next port).
    #[arg(long)]
    pub protected_addr: Option<String>,
    /// Where the local stack keeps its state (accounts, keys, generated credentials).
    #[arg(long, default_value = ".hsbridge-dev")]
    pub data_dir: PathBuf,
    /// Also serve a HubSpot simulator, so install → webhook → signed call runs on this machine.
    #[arg(long)]
    pub hubspot_sim: bool,
    /// The simulator's access-token lifetime in seconds (short values exercise refreshes).
    #[arg(long, hide = true, default_value_t = 1800)]
    pub sim_access_token_ttl: u64,
}

/// A running local stack (for the command and for tests).
#[derive(Debug)]
pub struct DevStack {
    pub base_url: String,
    pub sim_base_url: Option<String>,
    pub protected: RunningStandin,
    pub queue: Arc<InMemoryEventQueue>,
    pub store: Arc<InMemoryAccountStore>,
    pub simulator: Option<Simulator>,
    router: axum::Router,
    listener: Option<tokio::net::TcpListener>,
    consumer: ConsumerState,
    app: HubSpotApp,
    origin: Origin,
    aws_key: LocalAwsKey,
    data_dir: PathBuf,
}

impl DevStack {
    /// Builds the stack and binds its sockets; [`DevStack::serve`] runs it. Each step is one
    /// function below: the addresses, the credentials, the stores, the stand-in, the URLs, the
    /// shared ports, the routers and the queue drain's state.
    pub async fn start(args: &DevArgs) -> Result<Self> {
        let (addr, protected_addr) = listen_addrs(args)?;
        let data_dir = data_dir(args)?;
        let credentials = LocalCredentials::load(&data_dir)?;
        let store = open_store(&data_dir)?;
        let listener = bind(addr, "--addr").await?;
        let local = listener.local_addr().context("no local address")?;
        let protected = spawn_standin(&credentials.aws_key, protected_addr).await?;
        let urls = LocalUrls::new(local, args.hubspot_sim);
        let LocalCredentials {
            app,
            origin,
            aws_key,
            wrapper,
        } = credentials;
        let ports = SharedPorts::new(&app, wrapper, &store, &urls)?;
        let queue = Arc::new(InMemoryEventQueue::default());
        let api = protected_api(&aws_key, &protected)?;
        let simulator = simulator(args, &urls, &ports, &data_dir)?;
        let router = routers(&ports, &urls, &queue, &api, simulator.as_ref())?;
        let consumer = consumer_state(args, &ports, &urls, api)?;

        Ok(Self {
            base_url: urls.base_url,
            sim_base_url: urls.sim_base_url,
            protected,
            queue,
            store,
            simulator,
            router,
            listener: Some(listener),
            consumer,
            app,
            origin,
            aws_key,
            data_dir,
        })
    }

    /// The shell file the tour sources: the generated client secret (never one taken from the
    /// environment) and the stand-in's local AWS key under `HSBRIDGE_DEV_*` names, which only
    /// `hsbridge sign` reads, and only for a loopback URL. It sets no `AWS_*` variable, so the
    /// shell's own AWS credentials, profile and region stay in force for `aws`, `sam` and the
    /// operator commands.
    fn write_env_file(&self) -> Result<PathBuf> {
        let path = self.data_dir.join("env");
        let mut text = String::from(
            "# Written by `hsbridge dev`: local-only credentials. Sets no AWS_* variable: your own\n# AWS credentials, profile and region are left as they were.\n",
        );
        if self.origin == Origin::Generated {
            text.push_str(&format!(
                "export HUBSPOT_CLIENT_SECRET='{}'\n",
                self.app.secrets.current().expose()
            ));
        }
        text.push_str(&format!(
            "export {}='{}'\nexport {}='{}'\nexport {}='{REGION}'\n",
            crate::sign::DEV_ACCESS_KEY_ID,
            self.aws_key.access_key_id,
            crate::sign::DEV_SECRET_ACCESS_KEY,
            self.aws_key.secret_access_key,
            crate::sign::DEV_REGION,
        ));
        write_private(&path, text.as_bytes())
            .with_context(|| format!("could not write {}", path.display()))?;
        Ok(path)
    }

    /// The simulator's install link, as HubSpot gives one for a project-based app: its authorize
    /// page with the app's client id, redirect URL and scopes, and no state.
    fn hubspot_install_link(&self, sim_url: &str) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        format!(
            "{sim_url}/oauth/authorize?client_id={}&redirect_uri={}&scope={}",
            enc(&self.app.client_id),
            enc(&format!("{}/oauth/callback", self.base_url)),
            enc(SCOPES)
        )
    }

    /// What a newcomer needs to see first.
    pub fn banner(&self, env_file: &Path) -> String {
        let b = &self.base_url;
        let mut out = String::new();
        out.push_str(&format!(
            "hsbridge dev: the functions on {b} with embedded adapters (no AWS); state in {}\n",
            self.data_dir.display()
        ));
        out.push_str(&format!("  install        {b}/oauth/install\n"));
        out.push_str(&format!("  webhooks       {b}/webhooks/hubspot\n"));
        out.push_str(&format!(
            "  relay          {b}/hubspot/relay/<path>?portalId=<hub id>\n"
        ));
        out.push_str(&format!(
            "  protected API  {}  (SigV4 stand-in, region {REGION})\n",
            self.protected.base_url
        ));
        match (&self.sim_base_url, &self.simulator) {
            (Some(url), Some(sim)) => {
                out.push_str(&format!(
                    "  HubSpot        simulator at {url} (portal {})\n",
                    sim.hub_id()
                ));
                out.push_str(&format!(
                    "  install link   {}  (as HubSpot's: the install starts on its side)\n",
                    self.hubspot_install_link(url)
                ));
            }
            _ => out.push_str(
                "  HubSpot        the real one (app.hubspot.com / api.hubapi.com); add --hubspot-sim to simulate it\n",
            ),
        }
        match self.store.all() {
            Ok(accounts) if !accounts.is_empty() => {
                let list: Vec<String> = accounts
                    .iter()
                    .map(|a| format!("{} ({})", a.hub_id, a.status.as_str()))
                    .collect();
                out.push_str(&format!("  accounts       {}\n", list.join(", ")));
            }
            _ => out.push_str("  accounts       none installed yet\n"),
        }
        out.push_str(&format!("  client id      {}\n", self.app.client_id));
        match self.origin {
            Origin::Generated => out.push_str(&format!(
                "  client secret  {}  (generated; set HUBSPOT_CLIENT_SECRET to use your app's)\n",
                self.app.secrets.current().expose()
            )),
            Origin::Environment => {
                out.push_str("  client secret  from HUBSPOT_CLIENT_SECRET\n");
            }
        }
        out.push_str(&format!(
            "  AWS key        {} / {}  (local only: the stand-in accepts it)\n",
            self.aws_key.access_key_id, self.aws_key.secret_access_key
        ));
        out.push('\n');
        out.push_str(&format!(
            "Next: open {b}/oauth/install in a browser and approve; then, in another terminal:\n"
        ));
        out.push_str(&format!("  source {}\n", env_file.display()));
        out.push_str(&format!(
            "  cargo run -p hsbridge -- webhook send --url {b}/webhooks/hubspot\n"
        ));
        out.push_str(&format!(
            "  cargo run -p hsbridge -- webhook send --url {b}/webhooks/hubspot --subscriptions {}   # one event per subscription of the project's webhooks file\n",
            self.data_dir
                .join("hubspot-project/connector/src/app/webhooks/webhooks-hsmeta.json")
                .display()
        ));
        out.push_str(&format!(
            "  cargo run -p hsbridge -- webhook send -X GET --url '{b}/hubspot/relay/contacts/123?appId=54321&portalId={SIM_HUB_ID}&userId=7&userEmail=dev%40example.com'   # the contact card's call, as hubspot.fetch sends it\n"
        ));
        out
    }

    /// The HubSpot projects rendered with the local stack's URLs, for inspection only (marked
    /// local: HubSpot refuses http and loopback URLs).
    fn render_hubspot_project(&self) -> Result<PathBuf> {
        let dir = self.data_dir.join("hubspot-project");
        let b = &self.base_url;
        crate::project::render_local(
            &dir,
            &crate::project::Values {
                webhook_url: format!("{b}/webhooks/hubspot"),
                redirect_url: format!("{b}/oauth/callback"),
                relay_url: format!("{b}/hubspot/relay/"),
                scopes: hsbridge_vault::config::split_scopes(SCOPES),
                optional_scopes: Vec::new(),
            },
        )?;
        Ok(dir)
    }

    /// Prints the banner and serves until the process is stopped.
    pub async fn serve(mut self) -> Result<()> {
        let env_file = self.write_env_file()?;
        let project = self.render_hubspot_project()?;
        print!("{}", self.banner(&env_file));
        println!(
            "  (the HubSpot projects, rendered with these local URLs for inspection: {})",
            project.display()
        );
        println!();
        let listener = self
            .listener
            .take()
            .context("the stack is already being served")?;
        tokio::spawn(drain_queue(Arc::clone(&self.queue), self.consumer.clone()));
        tokio::spawn(watch_protected(self.protected.standin.clone()));
        axum::serve(listener, self.router.clone())
            .await
            .context("the local server stopped")
    }
}
