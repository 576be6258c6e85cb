//! Token refresh across vault instances: one refresh per expiry, rotation, leases, reinstall marks.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_requests_on_an_expiring_token_cause_exactly_one_refresh() {
    let stand = Stand::patient().await;
    stand.seed(HUB, 60).await;
    stand
        .hubspot
        .delay(Endpoint::Refresh, Duration::from_millis(300));
    // Five instances, ten requests each: the race is decided in DynamoDB, not in memory.
    let vaults: Vec<Arc<Vault>> = (0..5).map(|_| Arc::new(stand.vault())).collect();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let vault = Arc::clone(&vaults[i % vaults.len()]);
            tokio::spawn(async move { vault.access_token(HUB).await })
        })
        .collect();
    for task in tasks {
        let token = task.await.unwrap().unwrap();
        assert_eq!(token.expose(), "access-refreshed-1");
    }
    assert_eq!(stand.hubspot.count(Endpoint::Refresh), 1);
    assert_eq!(
        stand.hubspot.last_refresh_token().as_deref(),
        Some(SEED_REFRESH)
    );

    // The next refresh presents the refresh token the response carried.
    stand.clock.advance_ms(30 * 60 * 1000);
    let token = vaults[0].access_token(HUB).await.unwrap();
    assert_eq!(token.expose(), "access-refreshed-2");
    assert_eq!(
        stand.hubspot.last_refresh_token().as_deref(),
        Some("refresh-rotated-1")
    );
    let item = stand.item(HUB).await.unwrap();
    assert_eq!(item["refresh_count"], AttributeValue::N("2".to_owned()));
    assert!(!item.contains_key("lease_owner"), "the lease is released");
}

#[tokio::test]
async fn a_refresh_response_without_a_refresh_token_keeps_the_old_one() {
    let stand = Stand::new().await;
    stand.seed(HUB, 60).await;
    stand.refresh_answers(RefreshMode::AccessOnly);
    let vault = stand.vault();
    assert_eq!(
        vault.access_token(HUB).await.unwrap().expose(),
        "access-refreshed-1"
    );

    stand.clock.advance_ms(30 * 60 * 1000);
    stand.refresh_answers(RefreshMode::Rotate);
    assert_eq!(
        vault.access_token(HUB).await.unwrap().expose(),
        "access-refreshed-2"
    );
    assert_eq!(
        stand.hubspot.last_refresh_token().as_deref(),
        Some(SEED_REFRESH)
    );
}

#[tokio::test]
async fn when_a_lease_holder_dies_another_instance_refreshes_after_the_lease_expires() {
    let stand = Stand::new().await;
    stand.seed(HUB, 60).await;
    let now = stand.clock.now_ms();
    assert!(
        stand
            .store()
            .try_lease(HUB, "dead-instance", now, now + 15_000)
            .await
            .unwrap()
    );

    let vault = stand.vault_with(VaultSettings {
        wait_budget: Duration::from_millis(300),
        ..VaultSettings::default()
    });
    assert!(matches!(
        vault.access_token(HUB).await,
        Err(VaultError::RefreshBusy { hub_id: HUB })
    ));
    assert_eq!(stand.hubspot.count(Endpoint::Refresh), 0);

    stand.clock.advance_ms(15_001);
    assert_eq!(
        vault.access_token(HUB).await.unwrap().expose(),
        "access-refreshed-1"
    );
    assert_eq!(stand.hubspot.count(Endpoint::Refresh), 1);
}

#[tokio::test]
async fn ciphertext_copied_onto_another_account_does_not_decrypt() {
    let stand = Stand::new().await;
    stand.seed(HUB, 1800).await;
    stand.seed(OTHER_HUB, 1800).await;
    let source = stand.item(HUB).await.unwrap();
    let mut copied = stand.item(OTHER_HUB).await.unwrap();
    for attr in ["wrapped_key", "tokens", "version"] {
        copied.insert(attr.to_owned(), source[attr].clone());
    }
    aws_sdk_dynamodb::Client::new(&stand.sdk)
        .put_item()
        .table_name(&stand.table)
        .set_item(Some(copied))
        .send()
        .await
        .unwrap();

    assert!(matches!(
        stand.vault().access_token(OTHER_HUB).await,
        Err(VaultError::Decryption { hub_id: OTHER_HUB })
    ));
    assert_eq!(
        stand.vault().access_token(HUB).await.unwrap().expose(),
        SEED_ACCESS
    );
}

#[tokio::test]
async fn an_invalid_grant_marks_the_account_as_needing_reinstall() {
    let stand = Stand::new().await;
    let directory =
        DynamoAccountDirectory::new(aws_sdk_dynamodb::Client::new(&stand.sdk), &stand.table);
    for (hub_id, mode) in [
        (HUB, RefreshMode::InvalidGrant),
        (OTHER_HUB, RefreshMode::BadRefreshToken),
    ] {
        stand.seed(hub_id, 60).await;
        stand.refresh_answers(mode);
        let result = stand.vault().access_token(hub_id).await;
        assert!(
            matches!(result, Err(VaultError::NeedsReinstall { hub_id: h }) if h == hub_id),
            "{result:?}"
        );
        assert_eq!(
            directory.status(hub_id).await.unwrap(),
            Some(AccountStatus::NeedsReinstall)
        );
        // Later callers are told without another call to HubSpot.
        let before = stand.hubspot.count(Endpoint::Refresh);
        assert!(matches!(
            stand.vault().access_token(hub_id).await,
            Err(VaultError::NeedsReinstall { .. })
        ));
        assert_eq!(stand.hubspot.count(Endpoint::Refresh), before);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_outlived_its_lease_cannot_store_tokens_on_an_account_marked_needs_reinstall()
 {
    let stand = Stand::new().await;
    stand.seed(HUB, 60).await;
    // Instance A's refresh is answered with new tokens, but only when the test says so...
    let release = stand.hubspot.hold_next(Endpoint::Refresh);
    let a = Arc::new(stand.vault_waiting(VaultSettings::default(), Duration::from_secs(60)));
    let slow = tokio::spawn({
        let a = Arc::clone(&a);
        async move { a.access_token(HUB).await }
    });
    while stand.hubspot.count(Endpoint::Refresh) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...so its lease runs out; instance B takes the lease over, HubSpot refuses the refresh
    // token, and B marks the account.
    stand.refresh_answers(RefreshMode::InvalidGrant);
    stand.clock.advance_ms(10 * 60 * 1000);
    assert!(matches!(
        stand.vault().access_token(HUB).await,
        Err(VaultError::NeedsReinstall { hub_id: HUB })
    ));
    assert!(
        !slow.is_finished(),
        "A's refresh must still be waiting on HubSpot"
    );
    release.notify_one();
    // A's tokens arrive after the mark: they must be neither stored nor returned.
    let late = slow.await.unwrap();
    assert!(
        matches!(late, Err(VaultError::NeedsReinstall { hub_id: HUB })),
        "{late:?}"
    );
    let item = stand.item(HUB).await.unwrap();
    assert_eq!(item["status"].as_s().unwrap(), "needs_reinstall");
    assert!(
        !item.contains_key("tokens") && !item.contains_key("wrapped_key"),
        "valid tokens left on an account marked needs_reinstall"
    );
}
