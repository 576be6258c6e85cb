//! The install: the authorize redirect, the code exchange, the account sealed in DynamoDB.

use super::*;

#[tokio::test]
async fn a_full_install_stores_the_account_with_no_token_in_plaintext() {
    let stand = Stand::new().await;
    let router = stand.router();

    let (status, headers, _) = get(&router, "/oauth/install", None).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = headers[header::LOCATION].to_str().unwrap();
    assert!(
        location.starts_with("https://app.hubspot.test/oauth/authorize?client_id=test-client-id&")
    );
    assert!(
        location.contains("&redirect_uri=https%3A%2F%2Finstall.example.com%2Foauth%2Fcallback&")
    );
    assert!(location.contains("&scope=oauth%20crm.objects.contacts.read&"));
    assert!(location.contains("&optional_scope=crm.objects.deals.read&"));
    let state = location.split("&state=").nth(1).unwrap();
    assert_eq!(state.len(), 43, "a 256-bit state in base64url");
    let set_cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.starts_with("__Host-hubspot_oauth_state="));
    assert!(set_cookie.contains("; Path=/;"));
    assert!(set_cookie.contains("; HttpOnly; Secure;"));
    let cookie = set_cookie.split(';').next().unwrap();

    let (status, headers, body) = get(&router, &callback(state), Some(cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(!body.contains(INSTALL_ACCESS) && !body.contains(INSTALL_REFRESH));

    let items = scan(&stand.sdk, &stand.table).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["hub_id"], AttributeValue::S(HUB.to_string()));
    assert_eq!(items[0]["status"], AttributeValue::S("active".to_owned()));
    assert_no_plaintext(&items, &[INSTALL_ACCESS, INSTALL_REFRESH]);

    let token = stand.vault().access_token(HUB).await.unwrap();
    assert_eq!(token.expose(), INSTALL_ACCESS);
    assert_eq!(stand.hubspot.count(Endpoint::Refresh), 0);
}

#[tokio::test]
async fn a_token_response_without_hub_id_is_identified_by_introspection() {
    let stand = Stand::new().await;
    stand.hubspot.edit_grant(|g| g.with_hub_id = false);
    let router = stand.router();
    let (cookie, state) = start_install(&router).await;
    let (status, _, _) = get(&router, &callback(&state), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stand.hubspot.count(Endpoint::Introspect), 1);
    assert!(stand.item(HUB).await.is_some());
}

#[tokio::test]
async fn a_reinstall_replaces_the_accounts_tokens() {
    let stand = Stand::new().await;
    stand.seed(HUB, 1800).await;
    let router = stand.router();
    let (cookie, state) = start_install(&router).await;
    let (status, _, _) = get(&router, &callback(&state), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stand.vault().access_token(HUB).await.unwrap().expose(),
        INSTALL_ACCESS
    );
}

#[tokio::test]
async fn a_grant_that_misses_a_required_scope_or_is_not_bearer_is_not_stored() {
    let stand = Stand::new().await;
    let router = stand.router();
    stand
        .hubspot
        .edit_grant(|g| g.scopes = vec!["oauth".to_owned()]);
    let (cookie, state) = start_install(&router).await;
    let uri = format!("/oauth/callback?code={CODE}&state={state}");
    let (status, _, body) = get(&router, &uri, Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!body.contains(INSTALL_ACCESS));

    stand.hubspot.edit_grant(|g| {
        g.scopes = vec!["oauth".to_owned(), "crm.objects.contacts.read".to_owned()];
        g.token_type = "mac".to_owned();
    });
    let (cookie, state) = start_install(&router).await;
    let uri = format!("/oauth/callback?code={CODE}&state={state}");
    let (status, _, _) = get(&router, &uri, Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(stand.hubspot.count(Endpoint::Exchange), 2);
    assert!(scan(&stand.sdk, &stand.table).await.is_empty());
}
