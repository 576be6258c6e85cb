//! `HSBRIDGE_HUBSPOT_API_VERSION`: which OAuth paths the callback calls, and which values it refuses.

use super::*;

#[tokio::test]
async fn the_api_version_setting_decides_which_oauth_paths_an_install_calls() {
    for version in ["2026-03", "2026-09"] {
        let stand = Stand::new().await;
        // Without hub_id in the grant, the install introspects too.
        stand.hubspot.edit_grant(|g| g.with_hub_id = false);
        let router = stand.router_with(&[("HSBRIDGE_HUBSPOT_API_VERSION", version)]);
        let (cookie, state) = start_install(&router).await;
        let (status, _, body) = get(&router, &callback(&state), Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK, "{version}: {body}");
        let paths = stand.hubspot.paths();
        assert_eq!(
            paths,
            [
                format!("/oauth/{version}/token"),
                format!("/oauth/{version}/token/introspect")
            ],
            "{version}"
        );
    }
}

#[test]
fn a_refused_api_version_stops_the_callbacks_cold_start_with_a_sentence() {
    let vars: HashMap<String, String> = [
        ("HSBRIDGE_ACCOUNTS_TABLE", "t"),
        ("HSBRIDGE_KMS_KEY_ID", "k"),
        ("HSBRIDGE_HUBSPOT_SECRET_ID", "s"),
        (
            "HSBRIDGE_OAUTH_REDIRECT_URL",
            "https://install.example.com/oauth/callback",
        ),
        ("HSBRIDGE_OAUTH_SCOPES", SCOPES),
        ("HSBRIDGE_HUBSPOT_API_VERSION", "v1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let e = CallbackConfig::from_env(&vars).unwrap_err().to_string();
    assert!(
        e.contains("HSBRIDGE_HUBSPOT_API_VERSION") && e.contains("2026-03, 2026-09"),
        "{e}"
    );
}
