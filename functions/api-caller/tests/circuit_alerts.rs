//! The circuit's alerts: HubSpot failing for an account raises `Circuit Opened` once, and the
//! first success after the cool-down raises `Circuit Closed` once (a fake HubSpot on loopback,
//! the embedded gate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use hsbridge_api_caller::hubspot::{
    CallStats, HubSpotApi, HubSpotError, HubSpotSettings, TokenSource,
};
use hsbridge_api_caller::limits::{InMemoryLimits, LimitSettings};
use hsbridge_platform::SystemClock;
use hsbridge_platform::alerts::{Alert, CapturedAlerts};
use hsbridge_vault::VaultError;
use hsbridge_verify::Secret;
use http::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug)]
struct OneToken;

#[async_trait]
impl TokenSource for OneToken {
    async fn access_token(&self, _: u64) -> Result<Secret, VaultError> {
        Ok(Secret::new("token"))
    }
    async fn refresh_after_rejection(&self, _: u64, _: &Secret) -> Result<Secret, VaultError> {
        Ok(Secret::new("token"))
    }
}

async fn crm(State(failing): State<Arc<AtomicBool>>) -> (StatusCode, &'static str) {
    if failing.load(Ordering::SeqCst) {
        (StatusCode::BAD_GATEWAY, "upstream")
    } else {
        (StatusCode::OK, r#"{"id":"1","properties":{}}"#)
    }
}

#[tokio::test]
async fn the_circuit_raises_one_alert_when_it_opens_and_one_when_it_closes() {
    let failing = Arc::new(AtomicBool::new(true));
    let router = Router::new()
        .route("/crm/v3/objects/contacts/1", get(crm))
        .with_state(Arc::clone(&failing));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let limits = Arc::new(InMemoryLimits::new(LimitSettings {
        breaker_threshold: 2,
        breaker_cooldown_ms: 200,
        ..LimitSettings::default()
    }));
    let alerts = Arc::new(CapturedAlerts::default());
    let api = HubSpotApi::new(
        &base,
        Arc::new(OneToken),
        limits.clone(),
        limits,
        Arc::new(SystemClock),
        HubSpotSettings {
            max_attempts: 1,
            ..HubSpotSettings::default()
        },
    )
    .unwrap()
    .with_alerts(alerts.clone());
    let call = || async {
        let mut stats = CallStats::default();
        api.crm_object(1, "contacts", "1", &[], &mut stats).await
    };
    for _ in 0..2 {
        assert!(matches!(
            call().await,
            Err(HubSpotError::Unavailable { .. })
        ));
    }
    assert!(matches!(
        call().await,
        Err(HubSpotError::CircuitOpen { .. })
    ));
    let raised = alerts.raised();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert!(matches!(
        raised[0],
        Alert::CircuitOpened {
            portal_id: 1,
            failures: 2,
            ..
        }
    ));

    failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        call().await.unwrap().is_some(),
        "half-open: the call goes through"
    );
    assert!(call().await.unwrap().is_some());
    assert_eq!(
        alerts.raised()[1..],
        [Alert::CircuitClosed { portal_id: 1 }],
        "closed once"
    );
}
