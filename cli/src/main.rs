//! `hsbridge`: the command a newcomer runs first.
//!
//! - `hsbridge dev` serves the functions' Routers on one loopback port with embedded adapters
//!   (no AWS, no Docker): secrets from the environment or generated, an in-memory dedupe store,
//!   and an in-process queue whose events are printed as they arrive.
//! - `hsbridge webhook send` signs a batch exactly as HubSpot does and sends it.
#![allow(clippy::print_stdout)] // a command-line tool talks on stdout

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use hsbridge_platform::accounts::{AccountStatus, InMemoryAccountDirectory};
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::secrets::{HubSpotApp, StaticSecretSource};
use hsbridge_platform::{Clock, SystemClock, telemetry};
use hsbridge_verify::{PublicBase, Secret, SecretSet, sign_v1, sign_v2, sign_v3};
use hsbridge_webhook_intake::config::IntakeSettings;
use hsbridge_webhook_intake::dedupe::InMemoryDeduper;
use hsbridge_webhook_intake::queue::InMemoryEventQueue;
use hsbridge_webhook_intake::{IntakeState, app};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

mod verify;

/// The account the local stack treats as installed.
const DEMO_PORTAL: u64 = 62515;

#[derive(Debug, Parser)]
#[command(
    name = "hsbridge",
    version,
    about = "The secure boundary between HubSpot and your AWS account"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the functions locally with embedded adapters (no AWS).
    Dev {
        /// Loopback address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: String,
    },
    /// Webhook tools.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Check a captured request's HubSpot signature; with --explain, say why it did not match.
    Verify(verify::VerifyArgs),
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Sign a batch as HubSpot does and send it; prints the status and the body.
    Send {
        /// The webhook URL, e.g. http://127.0.0.1:3000/webhooks/hubspot
        #[arg(long)]
        url: String,
        /// The app's client secret.
        #[arg(long, env = "HUBSPOT_CLIENT_SECRET", hide_env_values = true)]
        secret: String,
        /// Which signature to send.
        #[arg(long, value_enum, default_value_t = SigVersion::V3)]
        sig: SigVersion,
        /// A JSON batch to send instead of the generated sample.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// The request timestamp (epoch ms) instead of now.
        #[arg(long)]
        timestamp: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SigVersion {
    V1,
    V2,
    V3,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev { addr } => dev(&addr).await,
        Command::Verify(args) => return verify::run(args).await,
        Command::Webhook {
            command:
                WebhookCommand::Send {
                    url,
                    secret,
                    sig,
                    file,
                    timestamp,
                },
        } => webhook_send(&url, &secret, sig, file.as_deref(), timestamp).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn random_secret() -> Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn dev(addr: &str) -> Result<()> {
    telemetry::init();
    let client_id =
        std::env::var("HUBSPOT_CLIENT_ID").unwrap_or_else(|_| "local-client-id".to_owned());
    let (secret, generated) = match std::env::var("HUBSPOT_CLIENT_SECRET") {
        Ok(s) if !s.is_empty() => (s, false),
        _ => (random_secret()?, true),
    };
    let mut secrets = SecretSet::new(Secret::new(secret.clone()))
        .context("HUBSPOT_CLIENT_SECRET is empty; set it or unset it to have one generated")?;
    if let Ok(previous) = std::env::var("HUBSPOT_PREVIOUS_CLIENT_SECRET") {
        secrets = secrets
            .with_previous(Secret::new(previous))
            .context("HUBSPOT_PREVIOUS_CLIENT_SECRET is empty; unset it or give it a value")?;
    }
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!(
            "could not listen on {addr}; is another process using it? Try --addr 127.0.0.1:3100"
        )
    })?;
    let local = listener.local_addr().context("no local address")?;
    let queue = Arc::new(InMemoryEventQueue::default());
    let state = dev_state(local, HubSpotApp { client_id, secrets }, Arc::clone(&queue))?;

    println!("hsbridge dev: serving on http://{local} with embedded adapters (no AWS)");
    println!(
        "  webhook URL     http://{local}/webhooks/hubspot   (account {DEMO_PORTAL} is installed)"
    );
    if generated {
        println!(
            "  client secret   {secret}   (generated; set HUBSPOT_CLIENT_SECRET to choose one)"
        );
    } else {
        println!("  client secret   from HUBSPOT_CLIENT_SECRET");
    }
    println!();
    println!("Next, in another terminal:");
    println!(
        "  HUBSPOT_CLIENT_SECRET={} cargo run -p hsbridge -- webhook send --url http://{local}/webhooks/hubspot",
        if generated {
            secret.as_str()
        } else {
            "\"$HUBSPOT_CLIENT_SECRET\""
        }
    );

    // The in-process queue: print what a deployed stack would hand to the API caller.
    let drain = Arc::clone(&queue);
    tokio::spawn(async move {
        loop {
            for event in drain.drain() {
                println!("queued  {}  {}", event.dedupe_key, event.body);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    axum::serve(listener, app(state))
        .await
        .context("the local server stopped")
}

/// The intake on embedded adapters, as `hsbridge dev` serves it on `local`.
fn dev_state(
    local: std::net::SocketAddr,
    app_credentials: HubSpotApp,
    queue: Arc<InMemoryEventQueue>,
) -> Result<IntakeState> {
    // HubSpot signs the URL it called; locally that is plain http on this address.
    let public_base = PublicBase::parse(&format!("http://{local}"))
        .map_err(|e| anyhow::anyhow!("cannot use {local} as the public base URL: {e}"))?;
    let accounts = InMemoryAccountDirectory::default();
    accounts.set(DEMO_PORTAL, AccountStatus::Active);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Ok(IntakeState {
        settings: IntakeSettings {
            public_base: Some(public_base),
            ..IntakeSettings::default()
        },
        secrets: Arc::new(StaticSecretSource(app_credentials)),
        accounts: Arc::new(accounts),
        deduper: Arc::new(InMemoryDeduper::default()),
        queue,
        clock,
        metrics: Metrics::capturing("hsbridge", "webhook-intake"),
    })
}

fn sample_batch(now_ms: u64) -> String {
    serde_json::json!([{
        "eventId": now_ms % 1_000_000_007, "subscriptionId": 12345, "portalId": DEMO_PORTAL,
        "appId": 54321, "occurredAt": now_ms, "subscriptionType": "contact.creation",
        "attemptNumber": 0, "objectId": 123, "changeSource": "CRM", "changeFlag": "NEW"
    }])
    .to_string()
}

async fn webhook_send(
    url: &str,
    secret: &str,
    sig: SigVersion,
    file: Option<&std::path::Path>,
    timestamp: Option<u64>,
) -> Result<()> {
    if secret.is_empty() {
        bail!("the client secret is empty: pass --secret or set HUBSPOT_CLIENT_SECRET");
    }
    let now_ms = SystemClock.now_ms();
    let body = match file {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?
        }
        None => sample_batch(now_ms).into_bytes(),
    };
    let secret = Secret::new(secret);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("could not build an HTTP client")?;
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.clone());
    request = match sig {
        SigVersion::V3 => {
            let ts = timestamp.unwrap_or(now_ms).to_string();
            request
                .header(
                    "x-hubspot-signature-v3",
                    sign_v3(&secret, "POST", url, &body, &ts),
                )
                .header("x-hubspot-request-timestamp", ts)
        }
        SigVersion::V2 => request
            .header("x-hubspot-signature", sign_v2(&secret, "POST", url, &body))
            .header("x-hubspot-signature-version", "v2"),
        SigVersion::V1 => request
            .header("x-hubspot-signature", sign_v1(&secret, &body))
            .header("x-hubspot-signature-version", "v1"),
    };
    let response = request
        .send()
        .await
        .with_context(|| format!("could not reach {url}; is `hsbridge dev` running?"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!("{status}");
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_batch_signed_for_the_printed_local_url_is_accepted_and_queued() {
        let local: std::net::SocketAddr = "127.0.0.1:3000".parse().unwrap();
        let secrets = SecretSet::new(Secret::new("local-secret")).unwrap();
        let queue = Arc::new(InMemoryEventQueue::default());
        let state = dev_state(
            local,
            HubSpotApp {
                client_id: "id".into(),
                secrets,
            },
            Arc::clone(&queue),
        )
        .unwrap();
        let now = SystemClock.now_ms();
        let body = sample_batch(now);
        let url = format!("http://{local}/webhooks/hubspot");
        let signature = sign_v3(
            &Secret::new("local-secret"),
            "POST",
            &url,
            body.as_bytes(),
            &now.to_string(),
        );
        let request = http::Request::post("/webhooks/hubspot")
            .header("host", local.to_string())
            .header("x-hubspot-signature-v3", signature)
            .header("x-hubspot-request-timestamp", now.to_string())
            .body(Body::from(body))
            .unwrap();
        let response = app(state).oneshot(request).await.unwrap();
        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(queue.len(), 1);
    }
}
