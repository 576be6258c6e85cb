//! The proxy records each call the intake makes as IAM sees it: signed as the intake's role,
//! with the action and the resource ARN of each item of a batch or transaction.

use crate::SHARED;
use crate::stand::{IntakeStand, PORTAL, batch, send, signed};
use hsbridge_integration_tests::aws::{Role, now_ms};
use http::StatusCode;
use std::collections::BTreeSet;

#[tokio::test]
async fn every_call_the_intake_makes_is_recorded_as_its_role_on_its_own_resources() {
    let _shared = SHARED.read().await;
    let stand = IntakeStand::new().await;
    let app = stand.app();
    let ts = now_ms();
    let (status, ack) = send(&app, signed(&batch(PORTAL, 0..3, ts), ts)).await;
    assert_eq!(status, StatusCode::OK, "{ack}");

    let recorded = stand.proxy.recorded();
    assert!(!recorded.is_empty());
    let table = |name: &str| format!("arn:aws:dynamodb:us-east-1:123456789012:table/{name}");
    let queue = stand
        .config
        .queue_url
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let ours: BTreeSet<String> = [
        table(&stand.config.dedupe_table),
        table(&stand.config.accounts_table),
        format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
    ]
    .into();
    for call in &recorded {
        assert_eq!(call.caller, Role::WebhookIntake.logical_id(), "{call:?}");
        let resource = call.resource.as_deref().unwrap_or_default();
        assert!(
            ours.contains(resource) || call.service == "secretsmanager",
            "a call on another resource: {call:?}"
        );
    }
    let actions: BTreeSet<&str> = recorded.iter().map(|c| c.action.as_str()).collect();
    for needed in [
        "secretsmanager:GetSecretValue",
        "dynamodb:BatchGetItem",
        "sqs:SendMessage",
    ] {
        assert!(actions.contains(needed), "{needed} not in {actions:?}");
    }
}
