//! The simulator's own answers, through a real HTTP client.

use super::*;

async fn exchange(hubspot: &HubSpot, code: &str) -> (StatusCode, Value) {
    post_form(
        hubspot,
        "/oauth/2026-03/token",
        &[("grant_type", "authorization_code"), ("code", code)],
    )
    .await
}

async fn post_form(hubspot: &HubSpot, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", hubspot.base()))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn each_code_installs_a_new_hub_when_told_to_and_counts_calls_it_does_not_keep() {
    let hubspot = HubSpot::start().await;
    hubspot
        .new_hub_each_code(9_000_000, "perf")
        .stop_recording();
    let (status, first) = exchange(&hubspot, "a").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["hub_id"], 9_000_000);
    assert_eq!(first["access_token"], "perf-access-9000000");
    let (_, second) = exchange(&hubspot, "b").await;
    assert_eq!(second["hub_id"], 9_000_001);
    assert_eq!(second["refresh_token"], "perf-refresh-9000001");
    assert!(hubspot.calls().is_empty());
}

#[tokio::test]
async fn a_refresh_rotates_keeps_or_omits_the_refresh_token_and_numbers_the_access_token() {
    let hubspot = HubSpot::start().await;
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", "r-0")];
    let (_, rotated) = post_form(&hubspot, "/oauth/2026-09/token", &refresh).await;
    assert_eq!(rotated["access_token"], "access-refreshed-1");
    assert_eq!(rotated["refresh_token"], "refresh-rotated-1");
    hubspot.refresh_tokens(RefreshTokens::Keep);
    let (_, kept) = post_form(&hubspot, "/oauth/2026-03/token", &refresh).await;
    assert_eq!(kept["access_token"], "access-refreshed-2");
    assert_eq!(kept["refresh_token"], "r-0");
    hubspot.refresh_tokens(RefreshTokens::Omit);
    let (_, omitted) = post_form(&hubspot, "/oauth/2026-03/token", &refresh).await;
    assert!(omitted.get("refresh_token").is_none(), "{omitted}");
    assert_eq!(hubspot.refresh_tokens_seen(), ["r-0", "r-0", "r-0"]);
    assert_eq!(
        hubspot.paths(),
        [
            "/oauth/2026-09/token",
            "/oauth/2026-03/token",
            "/oauth/2026-03/token"
        ]
    );
}

#[tokio::test]
async fn another_client_another_code_or_an_unknown_path_is_refused() {
    let hubspot = HubSpot::start().await;
    hubspot.expect_client("id", "secret").accept_code("good");
    let good = [
        ("grant_type", "authorization_code"),
        ("code", "good"),
        ("client_id", "id"),
        ("client_secret", "secret"),
    ];
    assert_eq!(
        post_form(&hubspot, "/oauth/2026-03/token", &good).await.0,
        StatusCode::OK
    );
    let mut wrong_secret = good;
    wrong_secret[3].1 = "other";
    let (status, body) = post_form(&hubspot, "/oauth/2026-03/token", &wrong_secret).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let mut spent = good;
    spent[1].1 = "spent";
    let (status, body) = post_form(&hubspot, "/oauth/2026-03/token", &spent).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        post_form(&hubspot, "/oauth/v1/token", &good).await.0,
        StatusCode::BAD_REQUEST,
        "an unsupported version's token path is not served"
    );
    assert_eq!(hubspot.count(Endpoint::Exchange), 3);
}

#[tokio::test]
async fn an_injected_answer_is_sent_once_or_by_rule_after_its_delay() {
    let hubspot = HubSpot::start().await;
    hubspot.answer_next(
        Endpoint::Crm,
        Answer::json(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"policyName": "SECONDLY"}),
        )
        .after(Duration::from_millis(50)),
    );
    let url = format!("{}/crm/v3/objects/contacts/7", hubspot.base());
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let first = client.get(&url).bearer_auth("t1").send().await.unwrap();
    assert_eq!(first.status().as_u16(), 429);
    assert!(started.elapsed() >= Duration::from_millis(50));
    let second = client.get(&url).bearer_auth("t2").send().await.unwrap();
    assert_eq!(second.status().as_u16(), 200);
    let object: Value = second.json().await.unwrap();
    assert_eq!(object["properties"]["email"], "contacts-7@example.com");
    hubspot.answer_with(Endpoint::Crm, |call| {
        (call.n == 3).then(|| Answer::text(StatusCode::BAD_GATEWAY, "upstream"))
    });
    let third = client.get(&url).send().await.unwrap();
    assert_eq!(third.status().as_u16(), 502);
    assert_eq!(third.text().await.unwrap(), "upstream");
    let bearers: Vec<_> = hubspot
        .calls_to(Endpoint::Crm)
        .into_iter()
        .map(|c| c.bearer)
        .collect();
    assert_eq!(
        bearers,
        [Some("t1".to_owned()), Some("t2".to_owned()), None]
    );
}
