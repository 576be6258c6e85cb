//! The simulator's dated API surface: the OAuth token, introspection and revocation endpoints
//! under every version hsbridge supports (so a test sees which version a setting makes it call),
//! and the app-uninstall endpoint.

use super::{Simulator, bump, digest, introspect, json, revoke, token};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use hsbridge_vault::ApiVersion;
use http::{HeaderMap, StatusCode, header};

/// `/oauth/<version>/token...` for every supported version, each call counted as
/// `oauth:<version>`, and `DELETE /appinstalls/<version>/external-install`.
pub(super) fn routes(prefix: &str) -> Router<Simulator> {
    let mut router = Router::new();
    for version in ApiVersion::SUPPORTED {
        let counter = format!("oauth:{version}");
        let (c1, c2, c3) = (counter.clone(), counter.clone(), counter);
        router = router
            .route(
                &format!("{prefix}{}", version.token_path()),
                post(move |sim: State<Simulator>, body: Bytes| async move {
                    sim.0.change(|db| bump(db, &c1));
                    token(sim, body).await
                }),
            )
            .route(
                &format!("{prefix}{}", version.introspect_path()),
                post(move |sim: State<Simulator>, body: Bytes| async move {
                    sim.0.change(|db| bump(db, &c2));
                    introspect(sim, body).await
                }),
            )
            .route(
                &format!("{prefix}{}", version.revoke_path()),
                post(move |sim: State<Simulator>, body: Bytes| async move {
                    sim.0.change(|db| bump(db, &c3));
                    revoke(sim, body).await
                }),
            )
            .route(
                &format!("{prefix}{}", version.uninstall_path()),
                delete(
                    move |sim: State<Simulator>, headers: HeaderMap| async move {
                        uninstall(&sim.0, &headers, version)
                    },
                ),
            );
    }
    router
}

/// As HubSpot documents it: the account's access token with the `oauth` scope, 204 and no
/// body; the app's tokens for that account stop working.
fn uninstall(sim: &Simulator, headers: &HeaderMap, version: ApiVersion) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(digest);
    let now = sim.now();
    sim.change(|db| {
        let Some(access) = token
            .and_then(|t| db.access.get(&t).cloned())
            .filter(|a| a.expires_at_ms > now)
        else {
            return json(
                StatusCode::UNAUTHORIZED,
                &serde_json::json!({
                    "status": "error",
                    "message": "Authentication credentials not found.",
                    "category": "INVALID_AUTHENTICATION",
                }),
            );
        };
        if !access.scopes.iter().any(|s| s == "oauth") {
            return json(
                StatusCode::FORBIDDEN,
                &serde_json::json!({
                    "status": "error",
                    "message": "This app hasn't been granted all required scopes to make this call. It needs oauth.",
                    "category": "MISSING_SCOPES",
                }),
            );
        }
        let hub = access.hub_id;
        db.refresh.retain(|_, r| r.hub_id != hub);
        db.access.retain(|_, a| a.hub_id != hub);
        bump(db, "uninstall");
        bump(db, &format!("uninstall:{version}"));
        StatusCode::NO_CONTENT.into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::super::{AccessToken, RefreshGrant, SimConfig};
    use super::*;
    use hsbridge_platform::ManualClock;
    use hsbridge_platform::secrets::{HubSpotApp, StaticSecretSource};
    use hsbridge_vault::{HubSpotOAuth, OAuthError, ReqwestHubSpotOAuth};
    use hsbridge_verify::{Secret, SecretSet};
    use std::sync::Arc;
    use std::time::Duration;

    fn app() -> HubSpotApp {
        HubSpotApp {
            client_id: "sim-client".into(),
            secrets: SecretSet::new(Secret::new("sim-secret")).unwrap(),
        }
    }

    /// A simulator on loopback with one account holding `scopes`; its base URL and the
    /// account's access and refresh tokens.
    async fn serve(scopes: &[&str]) -> (Simulator, String, Secret, Secret) {
        let clock = ManualClock::at(1_800_000_000_000);
        let sim = Simulator::new(
            SimConfig {
                hub_id: 62515,
                redirect_uri: "http://127.0.0.1:1/oauth/callback".into(),
                access_token_ttl_secs: 1800,
                state_file: None,
            },
            Arc::new(StaticSecretSource(app())),
            Arc::new(clock),
        )
        .unwrap();
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        sim.change(|db| {
            db.refresh.insert(
                digest("rt-1"),
                RefreshGrant {
                    hub_id: 62515,
                    client_id: "sim-client".into(),
                    scopes: scopes.clone(),
                },
            );
            db.access.insert(
                digest("at-1"),
                AccessToken {
                    hub_id: 62515,
                    scopes,
                    expires_at_ms: 1_800_000_000_000 + 1_800_000,
                    refresh: digest("rt-1"),
                },
            );
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!(
            "http://{}{}",
            listener.local_addr().unwrap(),
            super::super::SIM_PREFIX
        );
        let router = sim.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        (sim, base, Secret::new("at-1"), Secret::new("rt-1"))
    }

    #[tokio::test]
    async fn each_supported_version_is_served_and_the_client_calls_the_one_it_is_set_to() {
        let (sim, base, access, refresh) = serve(&["oauth"]).await;
        for version in ApiVersion::SUPPORTED {
            let oauth = ReqwestHubSpotOAuth::new(&base, Duration::from_secs(3))
                .unwrap()
                .with_version(version);
            oauth.introspect(&app(), &access).await.unwrap();
            assert_eq!(sim.count(&format!("oauth:{version}")), 1, "{version}");
        }
        let oauth = ReqwestHubSpotOAuth::new(&base, Duration::from_secs(3))
            .unwrap()
            .with_version(ApiVersion::V2026_09);
        oauth.revoke(&app(), &refresh).await.unwrap();
        assert_eq!(sim.count("oauth:2026-09"), 2);
        assert_eq!(sim.count("oauth:2026-03"), 1);
        // HubSpot's v1 paths are not served: nothing in hsbridge may depend on them.
        let v1 = reqwest::Client::new()
            .post(format!("{base}/oauth/v1/token"))
            .send()
            .await
            .unwrap();
        assert_eq!(v1.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn an_uninstall_with_the_accounts_token_ends_its_tokens_and_answers_204() {
        let (sim, base, access, _) = serve(&["oauth", "crm.objects.contacts.read"]).await;
        let oauth = ReqwestHubSpotOAuth::new(&base, Duration::from_secs(3)).unwrap();
        oauth.uninstall(&access).await.unwrap();
        assert_eq!(sim.count("uninstall:2026-03"), 1);
        assert!(sim.with_db(|db| db.access.is_empty() && db.refresh.is_empty()));
        // The token is gone: a second uninstall is refused.
        assert!(matches!(
            oauth.uninstall(&access).await,
            Err(OAuthError::Rejected { status: 401, .. })
        ));
    }

    #[tokio::test]
    async fn an_uninstall_without_the_oauth_scope_is_refused_with_403() {
        let (sim, base, access, _) = serve(&["crm.objects.contacts.read"]).await;
        let oauth = ReqwestHubSpotOAuth::new(&base, Duration::from_secs(3)).unwrap();
        match oauth.uninstall(&access).await {
            Err(OAuthError::Rejected { status: 403, code }) => assert_eq!(code, "MISSING_SCOPES"),
            other => panic!("{other:?}"),
        }
        assert_eq!(sim.count("uninstall"), 0);
    }
}
