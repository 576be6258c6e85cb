//! The local stack end to end: install, webhooks, restarts, refreshes, refusals.

use super::*;
use crate::send::sample_batch;
use crate::sim::{SIM_PREFIX, Simulator};
use anyhow::Result;
use hsbridge_platform::{Clock, SystemClock};
use hsbridge_standin::Standin;
use hsbridge_vault::{AccountStore, InMemoryAccountStore};
use hsbridge_verify::Secret;
use hsbridge_verify::sign_v3;
use reqwest::redirect::Policy;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

/// What `hsbridge accounts add` records for the simulated portal: active, no tokens.
async fn register_static_account(store: &InMemoryAccountStore, now: u64) {
    store
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

impl Running {
    /// A webhook batch signed as HubSpot signs it, to the stack's intake.
    async fn post_events(&self, batch: &str) -> (u16, String) {
        send(&self.base, &self.secret, "POST", "/webhooks/hubspot", batch).await
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The browser's steps: install → simulator's page → approve → callback with the cookie.
async fn install(base: &str) -> (reqwest::StatusCode, String) {
    hsbridge_integration_tests::cli::install_like_a_browser(base, SIM_PREFIX).await
}

async fn send(base: &str, secret: &Secret, method: &str, path: &str, body: &str) -> (u16, String) {
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
    let file =
        crate::project::default_file("connector/src/app/webhooks/webhooks-hsmeta.json").unwrap();
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
    let (status, body) = stack.post_events(&batch).await;
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
    let template = include_str!("../../../template.yaml");
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
    let samconfig = include_str!("../../../samconfig.toml");
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
async fn a_registered_static_auth_account_without_tokens_gets_its_events_delivered_unenriched() {
    let dir = data_dir("static");
    let stack = run(&dir, 1800).await;
    let batch = sample_batch(SystemClock.now_ms());
    let (status, body) = stack.post_events(&batch).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"accepted":0,"duplicates":0,"ignored":1}"#),
        "an unknown account's events are ignored"
    );
    // What `hsbridge accounts add` records: active, no tokens.
    let now = SystemClock.now_ms();
    register_static_account(&stack.store, now).await;
    let batch = sample_batch(SystemClock.now_ms() + 1);
    let (status, body) = stack.post_events(&batch).await;
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
    let (status, body) = stack.post_events(&batch).await;
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
    let (status, body) = stack.post_events(&batch).await;
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
    let (status, _) = second.post_events(&batch).await;
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
        let (status, _) = stack.post_events(&batch).await;
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

#[tokio::test]
async fn an_events_path_is_shown_and_listed_from_the_local_stacks_embedded_log() {
    use crate::events::dev::DevEventLog;
    use hsbridge_platform::event_log::{EventLogReader, ListFilter, Status};
    let dir = data_dir("events");
    let stack = run(&dir, 1800).await;
    let now = SystemClock.now_ms();
    register_static_account(&stack.store, now).await;
    let batch = sample_batch(now);
    let (status, _) = stack.post_events(&batch).await;
    assert_eq!(status, 200);
    let posted = wait_for_events(&stack.standin, 1).await;
    let event: serde_json::Value = serde_json::from_str(&posted[0]).unwrap();
    let key = event["dedupeKey"].as_str().unwrap().to_owned();
    let log = DevEventLog::new(&stack.base).unwrap();
    // The record of the delivery follows the batch's handling.
    let mut path = None;
    for _ in 0..50 {
        let (found, _) = log.show(&key, SystemClock.now_ms()).await.unwrap();
        if found
            .as_ref()
            .is_some_and(|p| p.status() == Status::Delivered)
        {
            path = found;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let path = path.expect("the event's delivery is in the local log");
    assert_eq!(path.delivery.as_ref().unwrap().api_status, Some(200));
    assert!(path.intake.as_ref().unwrap().queued_at_ms.is_some());
    let page = log
        .list(
            &ListFilter {
                portal: Some(SIM_HUB_ID),
                subscription_type: None,
                status: None,
                from_ms: 0,
                to_ms: SystemClock.now_ms(),
                before: None,
                limit: 10,
            },
            SystemClock.now_ms(),
        )
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].key, key);
    stack.task.abort();
}
