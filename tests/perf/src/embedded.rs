//! `perf-harness embedded-intake`: the webhook intake's own Router on its embedded adapters (the
//! ones `hsbridge dev` uses: in-memory dedupe, accounts and queue, a static secret) served by
//! `hsbridge_platform::serve::run`, i.e. under lambda_http when `AWS_LAMBDA_RUNTIME_API` is set.
//! The harness runs it as a function process to measure the intake's own cost without a network
//! hop to DynamoDB or SQS. Its binary is the harness's, so only its latency is reported.

use crate::stand::{ACTIVE_PORTAL, CLIENT_ID, CLIENT_SECRET};
use anyhow::{Result, anyhow};
use hsbridge_platform::accounts::{AccountStatus, InMemoryAccountDirectory};
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::secrets::{HubSpotApp, StaticSecretSource};
use hsbridge_platform::{SystemClock, serve, telemetry};
use hsbridge_verify::{Secret, SecretSet};
use hsbridge_webhook_intake::config::IntakeSettings;
use hsbridge_webhook_intake::dedupe::InMemoryDeduper;
use hsbridge_webhook_intake::queue::InMemoryEventQueue;
use hsbridge_webhook_intake::{IntakeState, app};
use std::sync::Arc;
use std::time::Duration;

pub async fn run() -> Result<()> {
    telemetry::init();
    let secrets =
        SecretSet::new(Secret::new(CLIENT_SECRET)).map_err(|_| anyhow!("empty client secret"))?;
    let accounts = InMemoryAccountDirectory::default();
    accounts.set(ACTIVE_PORTAL, AccountStatus::Active);
    let queue = Arc::new(InMemoryEventQueue::default());
    let state = IntakeState {
        settings: IntakeSettings::default(),
        secrets: Arc::new(StaticSecretSource(HubSpotApp {
            client_id: CLIENT_ID.to_owned(),
            secrets,
        })),
        accounts: Arc::new(accounts),
        deduper: Arc::new(InMemoryDeduper::default()),
        queue: Arc::clone(&queue) as Arc<_>,
        clock: Arc::new(SystemClock),
        // As deployed: one EMF line per request on stdout.
        metrics: Metrics::stdout("hsbridge", "webhook-intake"),
    };
    // What a deployed intake hands to SQS is dropped here, as `hsbridge dev` prints and drops it.
    tokio::spawn(async move {
        loop {
            drop(queue.drain());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    serve::run(app(state), "127.0.0.1:3001")
        .await
        .map_err(|e| anyhow!("{e}"))
}
