//! `hsbridge dev`: the whole stack on one loopback port with the embedded adapters.
//!
//! The same Routers and state types the Lambda functions use, wired to embedded adapters of the
//! same port traits: the app's credentials from the environment (or generated), the accounts in
//! a file-backed store whose tokens are sealed under a local wrapping key, an in-memory dedupe
//! store, an in-process queue drained by the API caller's own batch handler, the SigV4-verifying
//! stand-in as the protected API, and optionally the HubSpot simulator.

use crate::sim::{SIM_PREFIX, SimConfig, Simulator, write_private};
use anyhow::{Context, Result, bail};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use hsbridge_api_caller::consumer::{
    ConsumerState, Enrichment, SqsEvent, SqsMessage, handle_batch,
};
use hsbridge_api_caller::hubspot::{HubSpotApi, HubSpotSettings};
use hsbridge_api_caller::limits::{InMemoryLimits, LimitSettings};
use hsbridge_api_caller::protected::{ProtectedApi, ProtectedApiConfig};
use hsbridge_api_caller::relay::{self, RelaySettings, RelayState};
use hsbridge_oauth_callback::{CallbackSettings, CallbackState};
use hsbridge_platform::accounts::AccountDirectory;
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::secrets::{HubSpotApp, SecretSource, StaticSecretSource};
use hsbridge_platform::{Clock, SystemClock};
use hsbridge_standin::{Credential, RunningStandin, Standin, StandinConfig};
use hsbridge_vault::{
    AccountStore, HubSpotOAuth, InMemoryAccountStore, LocalKeyWrapper, ReqwestHubSpotOAuth,
    StoreAccountDirectory, Vault, VaultSettings,
};
use hsbridge_verify::{CookieAttributes, PublicBase, Secret, SecretSet};
use hsbridge_webhook_intake::IntakeState;
use hsbridge_webhook_intake::config::IntakeSettings;
use hsbridge_webhook_intake::dedupe::InMemoryDeduper;
use hsbridge_webhook_intake::queue::{InMemoryEventQueue, QueuedEvent};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The simulated portal the HubSpot simulator installs into.
pub const SIM_HUB_ID: u64 = 62515;
/// The protected API's region, as the stand-in checks it.
const REGION: &str = "us-east-1";
/// Scopes the local app asks for: the CRM read the API caller's enrichment needs, and `oauth`.
const SCOPES: &str = "oauth crm.objects.contacts.read";
/// Deliveries of one event before the local queue gives up on it (the deployed queue's
/// `maxReceiveCount`).
const MAX_RECEIVES: u32 = 3;

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

/// The app's credentials as `hsbridge dev` keeps them when it generated them.
#[derive(Serialize, Deserialize)]
struct GeneratedApp {
    client_id: String,
    client_secret: String,
}

/// The stand-in's local AWS key.
#[derive(Serialize, Deserialize)]
struct LocalAwsKey {
    access_key_id: String,
    secret_access_key: String,
}

impl std::fmt::Debug for LocalAwsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAwsKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[REDACTED]")
            .finish()
    }
}

/// Where the app's credentials came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Environment,
    Generated,
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(len: usize) -> Result<String> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    Ok(hex(&bytes))
}

/// Reads a JSON file written by an earlier run, or creates it with `make`.
fn load_or_create<T: Serialize + for<'de> Deserialize<'de>>(
    path: &Path,
    make: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is damaged; delete it (or the whole data directory) to start over",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let value = make()?;
            let bytes = serde_json::to_vec_pretty(&value).context("could not encode")?;
            write_private(path, &bytes)
                .with_context(|| format!("could not write {}", path.display()))?;
            Ok(value)
        }
        Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
    }
}

/// The local wrapping key: 32 random bytes, created on first start, owner-readable only.
fn local_key(path: &Path) -> Result<LocalKeyWrapper> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                anyhow::anyhow!(
                    "{} is not a 32-byte key; restore it, or delete the data directory to start over (installed accounts are then lost)",
                    path.display()
                )
            })?;
            Ok(LocalKeyWrapper::new(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
            write_private(path, &key)
                .with_context(|| format!("could not write {}", path.display()))?;
            Ok(LocalKeyWrapper::new(key))
        }
        Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
    }
}

/// The app's credentials: `HUBSPOT_CLIENT_ID`, `HUBSPOT_CLIENT_SECRET` and
/// `HUBSPOT_PREVIOUS_CLIENT_SECRET` when set; otherwise generated once and kept in the data
/// directory.
fn app_credentials(data_dir: &Path) -> Result<(HubSpotApp, Origin)> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (client_id, secret, origin) = match env("HUBSPOT_CLIENT_SECRET") {
        Some(secret) => (
            env("HUBSPOT_CLIENT_ID").unwrap_or_else(|| "local-client-id".to_owned()),
            secret,
            Origin::Environment,
        ),
        None => {
            let generated = load_or_create(&data_dir.join("app.json"), || {
                Ok(GeneratedApp {
                    client_id: "local-client-id".to_owned(),
                    client_secret: random_hex(24)?,
                })
            })?;
            (
                generated.client_id,
                generated.client_secret,
                Origin::Generated,
            )
        }
    };
    let mut secrets = SecretSet::new(Secret::new(secret)).context(
        "the client secret is empty or only whitespace; set HUBSPOT_CLIENT_SECRET or unset it",
    )?;
    if let Some(previous) = env("HUBSPOT_PREVIOUS_CLIENT_SECRET") {
        secrets = secrets
            .with_previous(Secret::new(previous))
            .context("HUBSPOT_PREVIOUS_CLIENT_SECRET is empty or only whitespace")?;
    }
    Ok((HubSpotApp { client_id, secrets }, origin))
}

fn loopback(addr: &str, what: &str) -> Result<SocketAddr> {
    let parsed: SocketAddr = addr
        .parse()
        .with_context(|| format!("{what} {addr:?} is not an address like 127.0.0.1:3000"))?;
    if !parsed.ip().is_loopback() {
        bail!(
            "{what} {addr} is not a loopback address: the local stack prints credentials and mints tokens, so it only listens on 127.0.0.1 or ::1"
        );
    }
    Ok(parsed)
}

async fn bind(addr: SocketAddr, flag: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!(
            "could not listen on {addr}; is another process (an earlier `hsbridge dev`?) using it? Stop it, or pick another port with {flag}"
        )
    })
}

/// The functions' address and the stand-in's (by default the next port), both loopback.
fn listen_addrs(args: &DevArgs) -> Result<(SocketAddr, SocketAddr)> {
    let addr = loopback(&args.addr, "--addr")?;
    let protected_addr = match &args.protected_addr {
        Some(a) => loopback(a, "--protected-addr")?,
        None => SocketAddr::new(
            addr.ip(),
            if addr.port() == 0 {
                0
            } else {
                addr.port().wrapping_add(1)
            },
        ),
    };
    Ok((addr, protected_addr))
}

/// The data directory, created if needed.
fn data_dir(args: &DevArgs) -> Result<PathBuf> {
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "could not create the data directory {}",
            args.data_dir.display()
        )
    })?;
    Ok(args.data_dir.clone())
}

/// Everything secret the local stack holds: the app's credentials, the stand-in's AWS key and
/// the wrapping key that seals the accounts' tokens.
struct LocalCredentials {
    app: HubSpotApp,
    origin: Origin,
    aws_key: LocalAwsKey,
    wrapper: LocalKeyWrapper,
}

impl LocalCredentials {
    fn load(data_dir: &Path) -> Result<Self> {
        let (app, origin) = app_credentials(data_dir)?;
        let aws_key = load_or_create(&data_dir.join("aws-local.json"), || {
            Ok(LocalAwsKey {
                access_key_id: format!("AKIALOCAL{}", random_hex(6)?.to_uppercase()),
                secret_access_key: random_hex(20)?,
            })
        })?;
        let wrapper = local_key(&data_dir.join("local.key"))?;
        Ok(Self {
            app,
            origin,
            aws_key,
            wrapper,
        })
    }
}

/// The file-backed accounts store.
fn open_store(data_dir: &Path) -> Result<Arc<InMemoryAccountStore>> {
    Ok(Arc::new(
        InMemoryAccountStore::persistent(data_dir.join("accounts.json"))
            .context("could not open the local accounts store; delete accounts.json in the data directory to start over")?,
    ))
}

/// The SigV4-verifying stand-in for the protected API, accepting only the local key.
async fn spawn_standin(aws_key: &LocalAwsKey, addr: SocketAddr) -> Result<RunningStandin> {
    Standin::new(StandinConfig::new(
        REGION,
        vec![Credential {
            access_key_id: aws_key.access_key_id.clone(),
            secret_access_key: aws_key.secret_access_key.clone(),
            session_token: None,
            principal_arn: "arn:aws:iam::000000000000:user/hsbridge-local-caller".to_owned(),
        }],
    ))
    .spawn(addr)
    .await
    .with_context(|| {
        format!(
            "could not listen on {addr} for the protected-API stand-in; is another process using it? Pick another port with --protected-addr"
        )
    })
}

/// The URLs the local stack is reached at, and where it reaches HubSpot (or the simulator).
struct LocalUrls {
    base_url: String,
    redirect_url: String,
    sim_base_url: Option<String>,
    /// Where the browser is sent to approve an install.
    app_base: String,
    /// Where server-to-server calls to HubSpot go.
    api_base: String,
}

impl LocalUrls {
    fn new(local: SocketAddr, hubspot_sim: bool) -> Self {
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

/// The ports every function shares: clock, app secret, HubSpot's OAuth client, the vault and the
/// account directory.
struct SharedPorts {
    clock: Arc<dyn Clock>,
    secrets: Arc<dyn SecretSource>,
    oauth: Arc<dyn HubSpotOAuth>,
    vault: Arc<Vault>,
    accounts: Arc<dyn AccountDirectory>,
    public_base: PublicBase,
}

/// How long a call to HubSpot (or the simulator) may take.
const HUBSPOT_TIMEOUT: Duration = Duration::from_secs(3);

impl SharedPorts {
    fn new(
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
            clock,
            secrets,
            oauth,
            vault,
            accounts,
            public_base,
        })
    }
}

/// The client of the protected API (the stand-in), signing with the local key.
fn protected_api(aws_key: &LocalAwsKey, protected: &RunningStandin) -> Result<ProtectedApi> {
    let credentials = SharedCredentialsProvider::new(Credentials::new(
        aws_key.access_key_id.clone(),
        aws_key.secret_access_key.clone(),
        None,
        None,
        "hsbridge-dev",
    ));
    ProtectedApi::new(
        ProtectedApiConfig {
            base_url: protected.base_url.clone(),
            region: REGION.to_owned(),
            timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
        },
        credentials,
    )
    .map_err(|e| anyhow::anyhow!("could not build the protected-API client: {e}"))
}

/// The HubSpot simulator, with `--hubspot-sim`.
fn simulator(
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
fn routers(
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
        deduper: Arc::new(InMemoryDeduper::default()),
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
        .merge(relay::app(relay));
    if let Some(sim) = simulator {
        router = router.merge(sim.router());
    }
    Ok(router)
}

/// The state of the queue drain: the API caller's consumer. With the simulator, it enriches
/// events from HubSpot's CRM with the installed account's token, within the rate limits, as
/// deployed with HSBRIDGE_ENRICH_PROPERTIES.
fn consumer_state(
    args: &DevArgs,
    ports: &SharedPorts,
    urls: &LocalUrls,
    api: ProtectedApi,
) -> Result<ConsumerState> {
    let enrichment = if args.hubspot_sim {
        let limits = Arc::new(InMemoryLimits::new(LimitSettings::default()));
        let hubspot = HubSpotApi::new(
            urls.api_base.clone(),
            ports.vault.clone(),
            limits.clone(),
            limits,
            Arc::clone(&ports.clock),
            HubSpotSettings::default(),
        )
        .map_err(|e| anyhow::anyhow!("could not build the HubSpot client: {e}"))?;
        Some(Enrichment {
            properties: vec!["email".to_owned(), "firstname".to_owned()],
            hubspot,
        })
    } else {
        None
    };
    Ok(ConsumerState {
        accounts: Arc::clone(&ports.accounts),
        api,
        events_path: hsbridge_api_caller::config::DEFAULT_EVENTS_PATH.to_owned(),
        enrichment,
        clock: Arc::clone(&ports.clock),
        metrics: Metrics::capturing("hsbridge", "api-caller"),
    })
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

/// The in-process queue, drained by the API caller's own batch handler (`handle_batch`): ten
/// messages a batch, failed ones back on the queue after a pause, dropped with a line after
/// [`MAX_RECEIVES`] deliveries (the deployed queue's dead-letter queue).
async fn drain_queue(queue: Arc<InMemoryEventQueue>, state: ConsumerState) {
    let mut receives: HashMap<String, (QueuedEvent, u32)> = HashMap::new();
    let mut retry: Vec<QueuedEvent> = Vec::new();
    loop {
        let mut events = std::mem::take(&mut retry);
        events.extend(queue.drain());
        if events.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        for chunk in events.chunks(10) {
            let records = chunk
                .iter()
                .map(|e| SqsMessage {
                    message_id: e.dedupe_key.clone(),
                    body: e.body.clone(),
                })
                .collect();
            let outcome = handle_batch(&state, SqsEvent { records }).await;
            for event in chunk {
                let failed = outcome
                    .batch_item_failures
                    .iter()
                    .any(|f| f.item_identifier == event.dedupe_key);
                let entry = receives
                    .entry(event.dedupe_key.clone())
                    .or_insert_with(|| (event.clone(), 0));
                entry.1 += 1;
                if !failed {
                    println!(
                        "api-caller     handled {} (portal {})",
                        event.dedupe_key, event.portal_id
                    );
                    receives.remove(&event.dedupe_key);
                } else if entry.1 >= MAX_RECEIVES {
                    println!(
                        "api-caller     gave up on {} after {MAX_RECEIVES} attempts (deployed, it would go to the dead-letter queue)",
                        event.dedupe_key
                    );
                    receives.remove(&event.dedupe_key);
                } else {
                    println!(
                        "api-caller     {} failed; back on the queue (attempt {})",
                        event.dedupe_key, entry.1
                    );
                    retry.push(event.clone());
                }
            }
        }
        if !retry.is_empty() {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// One line for each request the protected API accepted or refused.
async fn watch_protected(standin: Standin) {
    let (mut seen, mut refused) = (0usize, 0usize);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let recorded = standin.recorded();
        for r in recorded.iter().skip(seen) {
            println!(
                "protected API  {} {}  SigV4 verified: signed by {}",
                r.method, r.path, r.caller
            );
        }
        seen = recorded.len();
        let now_refused = standin.rejected();
        if now_refused > refused {
            println!(
                "protected API  refused {} request(s): SigV4 verification failed",
                now_refused - refused
            );
            refused = now_refused;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::sample_batch;
    use hsbridge_verify::sign_v3;
    use reqwest::redirect::Policy;

    fn data_dir(name: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "hsbridge-dev-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn args(dir: &Path, ttl: u64) -> DevArgs {
        DevArgs {
            addr: "127.0.0.1:0".to_owned(),
            protected_addr: None,
            data_dir: dir.to_path_buf(),
            hubspot_sim: true,
            sim_access_token_ttl: ttl,
        }
    }

    struct Running {
        base: String,
        secret: Secret,
        standin: Standin,
        simulator: Simulator,
        store: Arc<InMemoryAccountStore>,
        task: tokio::task::JoinHandle<Result<()>>,
    }

    async fn run(dir: &Path, ttl: u64) -> Running {
        let stack = DevStack::start(&args(dir, ttl)).await.unwrap();
        Running {
            base: stack.base_url.clone(),
            secret: stack.app.secrets.current().clone(),
            standin: stack.protected.standin.clone(),
            simulator: stack.simulator.clone().unwrap(),
            store: Arc::clone(&stack.store),
            task: tokio::spawn(stack.serve()),
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    fn location(r: &reqwest::Response) -> String {
        r.headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// The browser's steps: install → simulator's page → approve → callback with the cookie.
    async fn install(base: &str) -> (reqwest::StatusCode, String) {
        let http = client();
        let start = http
            .get(format!("{base}/oauth/install"))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), 302);
        let cookie = start.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let authorize = location(&start);
        assert!(
            authorize.starts_with("http://localhost:"),
            "the simulator is another site than the callback: {authorize}"
        );
        let page = http
            .get(&authorize)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let href = page
            .split("id=\"approve\" href=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
        let origin = authorize.split(SIM_PREFIX).next().unwrap();
        let approved = http.get(format!("{origin}{href}")).send().await.unwrap();
        assert_eq!(approved.status(), 302);
        let callback = location(&approved);
        assert!(callback.starts_with(&format!("{base}/oauth/callback?code=")));
        let done = http
            .get(callback)
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        (done.status(), done.text().await.unwrap())
    }

    async fn send(
        base: &str,
        secret: &Secret,
        method: &str,
        path: &str,
        body: &str,
    ) -> (u16, String) {
        let url = format!("{base}{path}");
        let ts = SystemClock.now_ms().to_string();
        let signature = sign_v3(secret, method, &url, body.as_bytes(), &ts);
        let response = client()
            .request(method.parse().unwrap(), &url)
            .header("x-hubspot-signature-v3", signature)
            .header("x-hubspot-request-timestamp", ts)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    fn events_posted(standin: &Standin) -> Vec<String> {
        standin
            .recorded()
            .into_iter()
            .filter(|r| {
                r.method == "POST" && r.path == hsbridge_api_caller::config::DEFAULT_EVENTS_PATH
            })
            .map(|r| String::from_utf8(r.body).unwrap())
            .collect()
    }

    async fn wait_for_events(standin: &Standin, n: usize) -> Vec<String> {
        for _ in 0..100 {
            let posted = events_posted(standin);
            if posted.len() >= n {
                return posted;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the protected API received {} events, expected {n}",
            events_posted(standin).len()
        );
    }

    #[tokio::test]
    async fn every_subscription_of_the_webhooks_file_reaches_the_protected_api_generic_ones_by_object_type_id()
     {
        let dir = data_dir("subscriptions");
        let stack = run(&dir, 1800).await;
        let (status, page) = install(&stack.base).await;
        assert_eq!(status, 200, "{page}");
        // The webhooks file hsbridge dev rendered from the project, as the simulator reads it.
        let file = crate::project::default_file("connector/src/app/webhooks/webhooks-hsmeta.json")
            .unwrap();
        let batch = crate::send::subscription_batch(file, SystemClock.now_ms()).unwrap();
        let sent: Vec<serde_json::Value> = serde_json::from_str(&batch).unwrap();
        let kinds: Vec<&str> = sent
            .iter()
            .map(|e| e["subscriptionType"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "object.creation",
                "object.propertyChange",
                "object.deletion",
                "contact.propertyChange",
                "contact.privacyDeletion"
            ]
        );
        let (status, body) = send(
            &stack.base,
            &stack.secret,
            "POST",
            "/webhooks/hubspot",
            &batch,
        )
        .await;
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"accepted":5,"duplicates":0,"ignored":0}"#)
        );
        let posted = wait_for_events(&stack.standin, 5).await;
        let events: Vec<serde_json::Value> = posted
            .iter()
            .map(|p| serde_json::from_str(p).unwrap())
            .collect();
        let created = events
            .iter()
            .find(|e| e["subscriptionType"] == "object.creation")
            .unwrap();
        assert_eq!(created["event"]["objectTypeId"], "0-1");
        assert_eq!(
            created["enrichment"]["properties"]["email"], "sim-123@example.com",
            "a generic event is enriched by its objectTypeId: {created}"
        );
        stack.task.abort();
    }

    #[test]
    fn the_scopes_agree_in_the_stack_samconfig_the_connector_app_and_hsbridge_dev() {
        let dev = hsbridge_vault::config::split_scopes(SCOPES);
        let template = include_str!("../../template.yaml");
        let param = template
            .split("\n  OAuthScopes:\n")
            .nth(1)
            .and_then(|rest| {
                rest.lines()
                    .find_map(|l| l.trim().strip_prefix("Default: "))
            })
            .unwrap();
        assert_eq!(
            hsbridge_vault::config::split_scopes(param),
            dev,
            "template.yaml"
        );
        let samconfig = include_str!("../../samconfig.toml");
        let overrides: Vec<&str> = samconfig
            .split("OAuthScopes=\\\"")
            .skip(1)
            .filter_map(|rest| rest.split("\\\"").next())
            .collect();
        assert!(!overrides.is_empty());
        for o in overrides {
            assert_eq!(
                hsbridge_vault::config::split_scopes(o),
                dev,
                "samconfig.toml"
            );
        }
        let app: serde_json::Value = serde_json::from_str(
            crate::project::default_file("connector/src/app/app-hsmeta.json").unwrap(),
        )
        .unwrap();
        let required: Vec<String> =
            serde_json::from_value(app["config"]["auth"]["requiredScopes"].clone()).unwrap();
        assert_eq!(required, dev, "the connector app");
    }

    #[tokio::test]
    async fn a_registered_static_auth_account_without_tokens_gets_its_events_delivered_unenriched()
    {
        let dir = data_dir("static");
        let stack = run(&dir, 1800).await;
        let batch = sample_batch(SystemClock.now_ms());
        let (status, body) = send(
            &stack.base,
            &stack.secret,
            "POST",
            "/webhooks/hubspot",
            &batch,
        )
        .await;
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"accepted":0,"duplicates":0,"ignored":1}"#),
            "an unknown account's events are ignored"
        );
        // What `hsbridge accounts add` records: active, no tokens.
        let now = SystemClock.now_ms();
        stack
            .store
            .put(
                &hsbridge_vault::AccountRecord {
                    hub_id: SIM_HUB_ID,
                    status: hsbridge_platform::accounts::AccountStatus::Active,
                    scopes: Vec::new(),
                    access_expires_at_ms: 0,
                    installed_at_ms: now,
                    updated_at_ms: now,
                    refresh_count: 0,
                    consecutive_failures: 0,
                    version: 1,
                    sealed: None,
                    lease: None,
                },
                None,
            )
            .await
            .unwrap();
        let batch = sample_batch(SystemClock.now_ms() + 1);
        let (status, body) = send(
            &stack.base,
            &stack.secret,
            "POST",
            "/webhooks/hubspot",
            &batch,
        )
        .await;
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"accepted":1,"duplicates":0,"ignored":0}"#)
        );
        let posted = wait_for_events(&stack.standin, 1).await;
        let event: serde_json::Value = serde_json::from_str(&posted[0]).unwrap();
        assert_eq!(event["portalId"], SIM_HUB_ID);
        assert!(event["enrichment"].is_null(), "{event}");
        stack.task.abort();
    }

    #[tokio::test]
    async fn install_then_webhook_reaches_the_protected_api_signed_once_and_tampering_is_refused() {
        let dir = data_dir("tour");
        let stack = run(&dir, 1800).await;

        let (status, page) = install(&stack.base).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("The app is installed"));
        let account = stack.store.get(SIM_HUB_ID).await.unwrap().unwrap();
        assert_eq!(
            account.status,
            hsbridge_platform::accounts::AccountStatus::Active
        );

        let batch = sample_batch(SystemClock.now_ms());
        let (status, body) = send(
            &stack.base,
            &stack.secret,
            "POST",
            "/webhooks/hubspot",
            &batch,
        )
        .await;
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"accepted":1,"duplicates":0,"ignored":0}"#)
        );
        let posted = wait_for_events(&stack.standin, 1).await;
        let event: serde_json::Value = serde_json::from_str(&posted[0]).unwrap();
        assert_eq!(event["schema"], "hsbridge.protected-event.v1");
        assert_eq!(
            event["enrichment"]["properties"]["email"], "sim-123@example.com",
            "enriched from the simulator's CRM with the installed account's token: {event}"
        );
        assert_eq!(stack.simulator.count("crm"), 1);

        // HubSpot's retry of the same batch: acknowledged, not queued again.
        let (status, body) = send(
            &stack.base,
            &stack.secret,
            "POST",
            "/webhooks/hubspot",
            &batch,
        )
        .await;
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"accepted":0,"duplicates":1,"ignored":0}"#)
        );
        // Tampered after signing: refused.
        let tampered = batch.replace("contact.creation", "contact.deletion");
        let url = format!("{}/webhooks/hubspot", stack.base);
        let ts = SystemClock.now_ms().to_string();
        let response = client()
            .post(&url)
            .header(
                "x-hubspot-signature-v3",
                sign_v3(&stack.secret, "POST", &url, batch.as_bytes(), &ts),
            )
            .header("x-hubspot-request-timestamp", ts)
            .body(tampered)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);

        // The relay: a HubSpot-signed GET, forwarded with SigV4.
        let (status, body) = send(
            &stack.base,
            &stack.secret,
            "GET",
            "/hubspot/relay/contacts/123?portalId=62515",
            "",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            echoed["caller"],
            "arn:aws:iam::000000000000:user/hsbridge-local-caller"
        );
        assert_eq!(echoed["path"], "/hubspot/relay/contacts/123");

        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            events_posted(&stack.standin).len(),
            1,
            "exactly one delivery"
        );
        assert_eq!(stack.standin.rejected(), 0);
        stack.task.abort();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn an_installed_account_survives_a_restart_and_its_sealed_tokens_still_work() {
        let dir = data_dir("restart");
        let first = run(&dir, 1800).await;
        assert_eq!(install(&first.base).await.0, 200);
        first.task.abort();
        let _ = first.task.await;
        drop(first.standin);

        let stored = std::fs::read_to_string(dir.join("accounts.json")).unwrap();
        assert!(stored.contains("\"hub_id\": 62515"));
        assert!(
            !stored.contains("sim-at-"),
            "no plaintext token in the store file"
        );
        let sim_state = std::fs::read_to_string(dir.join("hubspot-sim.json")).unwrap();
        assert!(!sim_state.contains("sim-at-") && !sim_state.contains("sim-rt-"));

        let second = run(&dir, 1800).await;
        assert_eq!(
            second.store.get(SIM_HUB_ID).await.unwrap().unwrap().status,
            hsbridge_platform::accounts::AccountStatus::Active
        );
        let batch = sample_batch(SystemClock.now_ms());
        let (status, _) = send(
            &second.base,
            &second.secret,
            "POST",
            "/webhooks/hubspot",
            &batch,
        )
        .await;
        assert_eq!(status, 200);
        let posted = wait_for_events(&second.standin, 1).await;
        assert!(posted[0].contains("sim-123@example.com"), "{}", posted[0]);
        second.task.abort();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn short_lived_tokens_are_refreshed_and_each_rotated_refresh_token_is_kept() {
        let dir = data_dir("refresh");
        // 60 s tokens are always inside the vault's five-minute refresh margin.
        let stack = run(&dir, 60).await;
        assert_eq!(install(&stack.base).await.0, 200);
        for n in 1..=3u64 {
            let batch = sample_batch(SystemClock.now_ms() + n);
            let (status, _) = send(
                &stack.base,
                &stack.secret,
                "POST",
                "/webhooks/hubspot",
                &batch,
            )
            .await;
            assert_eq!(status, 200);
            let posted = wait_for_events(&stack.standin, usize::try_from(n).unwrap()).await;
            assert!(posted.last().unwrap().contains("sim-123@example.com"));
        }
        // Each refresh used the refresh token the previous one returned (the simulator
        // rotates them and refuses a used one).
        assert_eq!(stack.simulator.count("token:refresh_token"), 3);
        let account = stack.store.get(SIM_HUB_ID).await.unwrap().unwrap();
        assert_eq!(
            (account.refresh_count, account.consecutive_failures),
            (3, 0)
        );
        stack.task.abort();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn the_stack_refuses_to_listen_beyond_loopback() {
        let dir = data_dir("loopback");
        let mut a = args(&dir, 1800);
        a.addr = "0.0.0.0:3000".to_owned();
        let err = DevStack::start(&a).await.unwrap_err().to_string();
        assert!(err.contains("not a loopback address"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn a_port_in_use_is_named_with_what_to_do() {
        let dir = data_dir("busy");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = args(&dir, 1800);
        a.addr = taken.local_addr().unwrap().to_string();
        let err = format!("{:#}", DevStack::start(&a).await.unwrap_err());
        assert!(
            err.contains("could not listen on") && err.contains("--addr"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
