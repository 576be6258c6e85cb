//! The account store's save conditions, the same for the DynamoDB and the embedded adapter.

use super::*;

fn sealed(byte: u8) -> SealedTokens {
    SealedTokens {
        wrapped_key: vec![byte; 8],
        ciphertext: vec![byte; 16],
    }
}

fn update(new_version: u64) -> TokenUpdate {
    TokenUpdate {
        new_version,
        sealed: sealed(9),
        access_expires_at_ms: 5_000,
        updated_at_ms: 4_000,
    }
}

/// The save conditions every store adapter must enforce: version, active status, lease owner.
async fn a_save_needs_the_version_an_active_account_and_the_lease(store: &dyn AccountStore) {
    let hub = 4242;
    let record = AccountRecord {
        hub_id: hub,
        status: AccountStatus::Active,
        scopes: vec!["oauth".into()],
        access_expires_at_ms: 1_000,
        installed_at_ms: 1,
        updated_at_ms: 1,
        refresh_count: 0,
        consecutive_failures: 0,
        version: 1,
        sealed: Some(sealed(1)),
        lease: None,
    };
    store.put(&record, None).await.unwrap();
    let conflict = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Conflict));

    // Without the lease, or once another instance has taken it over, nothing is stored.
    assert!(conflict(store.save_tokens(hub, 1, "a", &update(2)).await));
    assert!(store.try_lease(hub, "a", 100, 200).await.unwrap());
    assert!(
        store.try_lease(hub, "b", 201, 300).await.unwrap(),
        "an expired lease is taken over"
    );
    assert!(conflict(store.save_tokens(hub, 1, "a", &update(2)).await));
    // The current owner saves, and only from the version it read.
    assert!(conflict(store.save_tokens(hub, 0, "b", &update(2)).await));
    store.save_tokens(hub, 1, "b", &update(2)).await.unwrap();
    let saved = store.get(hub).await.unwrap().unwrap();
    assert_eq!((saved.version, saved.refresh_count), (2, 1));
    assert_eq!(saved.sealed, Some(sealed(9)));

    // Marking the account bumps the version and drops the envelope: a refresh that read it
    // before cannot save, even holding the lease.
    store
        .set_status(hub, 2, AccountStatus::NeedsReinstall, 400)
        .await
        .unwrap();
    let marked = store.get(hub).await.unwrap().unwrap();
    assert_eq!(
        (marked.status, marked.version, marked.sealed),
        (AccountStatus::NeedsReinstall, 3, None)
    );
    assert!(conflict(store.save_tokens(hub, 2, "b", &update(3)).await));
    // Not even with the new version: the account is not active.
    assert!(conflict(store.save_tokens(hub, 3, "b", &update(4)).await));
    let after = store.get(hub).await.unwrap().unwrap();
    assert_eq!((after.version, after.sealed), (3, None));
}

#[tokio::test]
async fn the_dynamodb_store_refuses_a_save_without_the_lease_the_version_or_an_active_account() {
    let stand = Stand::new().await;
    a_save_needs_the_version_an_active_account_and_the_lease(&stand.store()).await;
}

#[tokio::test]
async fn the_embedded_store_refuses_a_save_without_the_lease_the_version_or_an_active_account() {
    a_save_needs_the_version_an_active_account_and_the_lease(&InMemoryAccountStore::default())
        .await;
}
