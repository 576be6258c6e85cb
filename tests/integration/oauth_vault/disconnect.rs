//! Disconnect: the app uninstalled, the refresh token revoked, the tokens erased.

use super::*;

#[tokio::test]
async fn disconnect_uninstalls_the_app_then_revokes_and_erases_the_tokens() {
    let stand = Stand::new().await;
    stand.seed(HUB, 1800).await;
    let report = stand.vault().disconnect(HUB, true).await.unwrap();
    assert_eq!(report.uninstall, HubSpotStep::Done);
    assert_eq!(report.revoke, HubSpotStep::Done);
    assert_eq!(
        stand.hubspot.paths(),
        [
            "/appinstalls/2026-03/external-install",
            "/oauth/2026-03/token/revoke"
        ]
    );
    let item = stand.item(HUB).await.unwrap();
    assert_eq!(item["status"], AttributeValue::S("disconnected".to_owned()));
    assert!(!item.contains_key("tokens"));
}

#[tokio::test]
async fn a_refused_uninstall_is_reported_and_the_tokens_are_erased_anyway() {
    let stand = Stand::new().await;
    stand.seed(HUB, 1800).await;
    stand.hubspot.always(
        Endpoint::Uninstall,
        Answer::json(StatusCode::FORBIDDEN, json!({"category": "MISSING_SCOPES"})),
    );
    let report = stand.vault().disconnect(HUB, true).await.unwrap();
    match &report.uninstall {
        HubSpotStep::Failed(why) => assert!(
            why.contains("403") && why.contains("MISSING_SCOPES"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(report.revoke, HubSpotStep::Done);
    let item = stand.item(HUB).await.unwrap();
    assert_eq!(item["status"], AttributeValue::S("disconnected".to_owned()));
    assert!(!item.contains_key("tokens") && !item.contains_key("wrapped_key"));
}

#[tokio::test]
async fn disconnect_revokes_deletes_the_tokens_and_marks_the_account_disconnected() {
    let stand = Stand::new().await;
    stand.seed(HUB, 1800).await;
    stand.vault().disconnect(HUB, false).await.unwrap();
    assert_eq!(stand.hubspot.count(Endpoint::Revoke), 1);
    let item = stand.item(HUB).await.unwrap();
    assert_eq!(item["status"], AttributeValue::S("disconnected".to_owned()));
    assert!(!item.contains_key("tokens") && !item.contains_key("wrapped_key"));
    assert!(matches!(
        stand.vault().access_token(HUB).await,
        Err(VaultError::Disconnected { hub_id: HUB })
    ));
}
