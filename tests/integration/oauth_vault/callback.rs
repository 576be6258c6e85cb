//! Refused callbacks: every refusal is the same plain page, and nothing is exchanged or stored.

use super::*;

/// Every refusal is the same plain 400 page, and nothing is exchanged or stored.
async fn assert_refused(stand: &Stand, router: &Router, uri: &str, cookie: Option<&str>) {
    let (status, _, body) = get(router, uri, cookie).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("not valid or has expired"));
    for detail in ["signature", "cookie", "state", "expired cookie"] {
        assert!(
            !body.to_lowercase().contains(detail),
            "the page leaks {detail}"
        );
    }
    assert_eq!(stand.hubspot.count(Endpoint::Exchange), 0);
    assert!(scan(&stand.sdk, &stand.table).await.is_empty());
}

#[tokio::test]
async fn a_callback_whose_code_hubspot_calls_invalid_grant_gets_the_start_again_page() {
    // A refreshed or double-clicked callback page: the cookie is good, the code is spent.
    let stand = Stand::new().await;
    let router = stand.router();
    let (cookie, state) = start_install(&router).await;
    let uri = format!("/oauth/callback?code=spent-{CODE}&state={state}");
    let (status, _, body) = get(&router, &uri, Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("start the installation again"), "{body}");
    assert!(!body.contains("HubSpot could not complete"), "{body}");
    assert_eq!(stand.hubspot.count(Endpoint::Exchange), 1);
    assert!(scan(&stand.sdk, &stand.table).await.is_empty());
}

#[tokio::test]
async fn a_callback_without_the_state_cookie_is_refused_and_stores_nothing() {
    let stand = Stand::new().await;
    let router = stand.router();
    let (_, state) = start_install(&router).await;
    assert_refused(&stand, &router, &callback(&state), None).await;
}

#[tokio::test]
async fn an_install_started_on_hubspots_side_restarts_through_the_install_route_without_exchanging_its_code()
 {
    let stand = Stand::new().await;
    let router = stand.router();
    // HubSpot's install link (project install URL, marketplace): a code, no state, no cookie.
    for uri in [
        format!("/oauth/callback?code={CODE}"),
        format!("/oauth/callback?code={CODE}&state="),
    ] {
        let (status, headers, _) = get(&router, &uri, None).await;
        assert_eq!(status, StatusCode::FOUND, "{uri}");
        assert_eq!(
            headers[header::LOCATION],
            "https://install.example.com/oauth/install"
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(headers.get(header::SET_COOKIE).is_none());
    }
    assert_eq!(stand.hubspot.count(Endpoint::Exchange), 0);
    assert!(scan(&stand.sdk, &stand.table).await.is_empty());

    // The restarted flow completes: a fresh state and cookie, a code bound to them.
    let (cookie, state) = start_install(&router).await;
    let (status, _, _) = get(&router, &callback(&state), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stand.hubspot.count(Endpoint::Exchange), 1);

    // A state without its cookie is still refused (a browser dropping cookies cannot loop), and
    // so is a HubSpot-side code that comes with a cookie from another flow.
    assert_refused_after(&stand, &router, &callback(&state), None, 1).await;
    assert_refused_after(
        &stand,
        &router,
        &format!("/oauth/callback?code={CODE}"),
        Some(&cookie),
        1,
    )
    .await;
}

/// Like [`assert_refused`], after `exchanged` earlier exchanges.
async fn assert_refused_after(
    stand: &Stand,
    router: &Router,
    uri: &str,
    cookie: Option<&str>,
    exchanged: usize,
) {
    let (status, _, body) = get(router, uri, cookie).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
    assert!(body.contains("not valid or has expired"));
    assert_eq!(stand.hubspot.count(Endpoint::Exchange), exchanged);
}

#[tokio::test]
async fn a_callback_with_a_tampered_cookie_is_refused_and_stores_nothing() {
    let stand = Stand::new().await;
    let router = stand.router();
    let (cookie, state) = start_install(&router).await;
    let mut tampered = cookie.into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_refused(&stand, &router, &callback(&state), Some(&tampered)).await;
}

#[tokio::test]
async fn a_callback_whose_state_differs_from_the_cookie_is_refused_and_stores_nothing() {
    let stand = Stand::new().await;
    let router = stand.router();
    let (cookie, _) = start_install(&router).await;
    let (_, other_state) = start_install(&router).await;
    assert_refused(
        &stand,
        &router,
        &format!("/oauth/callback?code={CODE}&state={other_state}"),
        Some(&cookie),
    )
    .await;
}

#[tokio::test]
async fn a_callback_after_ten_minutes_is_refused_and_stores_nothing() {
    let stand = Stand::new().await;
    let router = stand.router();
    let (cookie, state) = start_install(&router).await;
    stand.clock.advance_ms(10 * 60 * 1000 + 1);
    assert_refused(&stand, &router, &callback(&state), Some(&cookie)).await;
}

#[tokio::test]
async fn a_callback_carrying_hubspots_error_is_refused_and_stores_nothing() {
    let stand = Stand::new().await;
    let router = stand.router();
    let (cookie, state) = start_install(&router).await;
    assert_refused(
        &stand,
        &router,
        &format!("/oauth/callback?error=access_denied&error_description=denied&state={state}"),
        Some(&cookie),
    )
    .await;
}
