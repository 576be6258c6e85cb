//! Port and reqwest adapter for HubSpot's OAuth token endpoints (`/oauth/<version>/token`,
//! `.../token/introspect`, `.../token/revoke`) under a dated API version ([`ApiVersion`]).
//!
//! The form POSTs are hand-rolled on reqwest rather than taken from the `oauth2` crate: three
//! small requests do not justify its dependency tree, and HubSpot's legacy error shape
//! (`status: BAD_REFRESH_TOKEN`) needs custom handling anyway.
//!
//! Every call has a connect and a total timeout. Tokens and the client secret go only into the
//! form body; they never appear in an error (reqwest's errors carry the URL, which holds none)
//! or a log line. HubSpot's `error_description` is not kept: it could echo what was sent.

use async_trait::async_trait;
use hsbridge_platform::http::LazyClient;
use hsbridge_platform::secrets::HubSpotApp;
use hsbridge_verify::Secret;
use serde::Deserialize;
use std::time::Duration;

const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The dated version of HubSpot's API whose OAuth paths are called
/// (`HSBRIDGE_HUBSPOT_API_VERSION`). HubSpot's v1 OAuth endpoints end on 2027-02-16 and are
/// never used.
///
/// - `2026-03`, the default: the newest version whose OAuth paths HubSpot's own reference
///   documents (token, introspect, revoke:
///   <https://developers.hubspot.com/docs/api-reference/2026-03/authentication/oauth-tokens/refresh-oauth-token>,
///   <https://developers.hubspot.com/docs/api-reference/2026-03/authentication/oauth-tokens/token-introspect>,
///   <https://developers.hubspot.com/docs/api-reference/latest/authentication/oauth-tokens/revoke-token>;
///   the v1 migration guide names 2026-03 "the latest OAuth API":
///   <https://developers.hubspot.com/docs/api-reference/legacy/authentication/oauth-tokens/v1/migration-guide>).
/// - `2026-09`: the version released in September 2026. Its OAuth paths
///   (`/oauth/2026-09/token...`) appear in HubSpot's published OpenAPI description but not yet
///   on a reference page, so it is accepted and not the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiVersion {
    #[default]
    V2026_03,
    V2026_09,
}

impl ApiVersion {
    /// Every accepted version, oldest first.
    pub const SUPPORTED: [ApiVersion; 2] = [ApiVersion::V2026_03, ApiVersion::V2026_09];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V2026_03 => "2026-03",
            ApiVersion::V2026_09 => "2026-09",
        }
    }

    /// The version named `s`, or a sentence saying what is accepted.
    pub fn parse(s: &str) -> Result<Self, String> {
        let wanted = s.trim();
        Self::SUPPORTED
            .into_iter()
            .find(|v| v.as_str() == wanted)
            .ok_or_else(|| {
                let accepted: Vec<&str> = Self::SUPPORTED.iter().map(|v| v.as_str()).collect();
                let why = if wanted.eq_ignore_ascii_case("v1") {
                    " (HubSpot's v1 OAuth endpoints end on 2027-02-16 and are never used)"
                } else {
                    ""
                };
                format!(
                    "`{wanted}` is not a HubSpot API version this build supports; use one of {}{why}",
                    accepted.join(", ")
                )
            })
    }

    pub fn token_path(self) -> String {
        format!("/oauth/{}/token", self.as_str())
    }

    pub fn introspect_path(self) -> String {
        format!("/oauth/{}/token/introspect", self.as_str())
    }

    pub fn revoke_path(self) -> String {
        format!("/oauth/{}/token/revoke", self.as_str())
    }

    /// `DELETE` with the account's access token uninstalls the app from the account
    /// (<https://developers.hubspot.com/docs/api-reference/latest/app-management/app-uninstalls/guide>).
    pub fn uninstall_path(self) -> String {
        format!("/appinstalls/{}/external-install", self.as_str())
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A successful token response.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenGrant {
    pub access_token: Secret,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default)]
    pub expires_in: i64,
    #[serde(default)]
    pub token_type: String,
    #[serde(default, deserialize_with = "hub_id_opt")]
    pub hub_id: Option<u64>,
    #[serde(default, deserialize_with = "scopes_opt")]
    pub scopes: Option<Vec<String>>,
}

/// What introspection says about an access token.
#[derive(Debug, Clone, Deserialize)]
pub struct Introspection {
    #[serde(default, deserialize_with = "hub_id_opt")]
    pub hub_id: Option<u64>,
    #[serde(default, deserialize_with = "scopes_opt")]
    pub scopes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrString {
    Num(u64),
    Str(String),
}

fn hub_id_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<NumOrString>::deserialize(d)? {
        None => None,
        Some(NumOrString::Num(n)) => Some(n),
        Some(NumOrString::Str(s)) => s.trim().parse().ok(),
    })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrString {
    List(Vec<String>),
    Str(String),
}

fn scopes_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Ok(match Option::<ListOrString>::deserialize(d)? {
        None => None,
        Some(ListOrString::List(l)) => Some(l),
        Some(ListOrString::Str(s)) => Some(crate::config::split_scopes(&s)),
    })
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    status: Option<String>,
    /// HubSpot's API error shape (`MISSING_SCOPES`, `INVALID_AUTHENTICATION`, ...).
    #[serde(default)]
    category: Option<String>,
}

/// Why a call to HubSpot's OAuth endpoints failed. Nothing secret inside.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The code or refresh token is invalid, expired or revoked (`invalid_grant`,
    /// legacy `BAD_REFRESH_TOKEN`).
    #[error("HubSpot refused the grant (invalid_grant)")]
    InvalidGrant,
    /// HubSpot answered with another error.
    #[error("HubSpot answered {status} ({code})")]
    Rejected { status: u16, code: String },
    /// The answer was not what the endpoint documents.
    #[error("HubSpot's answer was malformed: {0}")]
    Malformed(&'static str),
    /// No answer (connection, timeout).
    #[error("HubSpot could not be reached")]
    Transport(#[source] reqwest::Error),
}

/// Port: HubSpot's OAuth token endpoints.
#[async_trait]
pub trait HubSpotOAuth: Send + Sync + std::fmt::Debug {
    async fn exchange_code(
        &self,
        app: &HubSpotApp,
        code: &str,
        redirect_uri: &str,
    ) -> Result<TokenGrant, OAuthError>;
    async fn refresh(
        &self,
        app: &HubSpotApp,
        refresh_token: &Secret,
    ) -> Result<TokenGrant, OAuthError>;
    async fn introspect(
        &self,
        app: &HubSpotApp,
        access_token: &Secret,
    ) -> Result<Introspection, OAuthError>;
    async fn revoke(&self, app: &HubSpotApp, refresh_token: &Secret) -> Result<(), OAuthError>;
    /// Uninstalls the app from the account `access_token` belongs to (it needs the `oauth`
    /// scope); HubSpot e-mails the account's admins.
    async fn uninstall(&self, access_token: &Secret) -> Result<(), OAuthError>;
}

/// Adapter: reqwest (rustls) against `{api_base}`.
#[derive(Debug, Clone)]
pub struct ReqwestHubSpotOAuth {
    client: LazyClient,
    api_base: String,
    version: ApiVersion,
}

impl ReqwestHubSpotOAuth {
    /// A client with a 2 s connect timeout and `timeout` for each whole call.
    pub fn new(api_base: &str, timeout: Duration) -> Result<Self, OAuthError> {
        let client = LazyClient::new(move || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2).min(timeout))
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
        });
        Ok(Self {
            client,
            api_base: api_base.trim_end_matches('/').to_owned(),
            version: ApiVersion::default(),
        })
    }

    /// The same client calling `version`'s paths.
    #[must_use]
    pub fn with_version(mut self, version: ApiVersion) -> Self {
        self.version = version;
        self
    }

    pub fn version(&self) -> ApiVersion {
        self.version
    }

    async fn post_form(
        &self,
        path: String,
        form: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>), OAuthError> {
        let response = self
            .client
            .get()
            .map_err(OAuthError::Transport)?
            .post(format!("{}{path}", self.api_base))
            .header(http::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| OAuthError::Transport(e.without_url()))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| OAuthError::Transport(e.without_url()))?;
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(OAuthError::Malformed("the answer is too large"));
        }
        Ok((status, body.to_vec()))
    }

    async fn token_call(&self, form: &[(&str, &str)]) -> Result<TokenGrant, OAuthError> {
        let (status, body) = self.post_form(self.version.token_path(), form).await?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body)
                .map_err(|_| OAuthError::Malformed("the token response is not the expected JSON"));
        }
        Err(error_from(status, &body))
    }
}

/// Maps an error answer; only a sanitised error code is kept.
fn error_from(status: u16, body: &[u8]) -> OAuthError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let invalid = parsed.error.as_deref() == Some("invalid_grant")
        || parsed.status.as_deref() == Some("BAD_REFRESH_TOKEN");
    if invalid {
        return OAuthError::InvalidGrant;
    }
    let code: String = parsed
        .error
        .or(parsed.category)
        .or(parsed.status)
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    OAuthError::Rejected { status, code }
}

#[async_trait]
impl HubSpotOAuth for ReqwestHubSpotOAuth {
    async fn exchange_code(
        &self,
        app: &HubSpotApp,
        code: &str,
        redirect_uri: &str,
    ) -> Result<TokenGrant, OAuthError> {
        self.token_call(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", &app.client_id),
            ("client_secret", app.secrets.current().expose()),
        ])
        .await
    }

    async fn refresh(
        &self,
        app: &HubSpotApp,
        refresh_token: &Secret,
    ) -> Result<TokenGrant, OAuthError> {
        self.token_call(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", &app.client_id),
            ("client_secret", app.secrets.current().expose()),
        ])
        .await
    }

    async fn introspect(
        &self,
        app: &HubSpotApp,
        access_token: &Secret,
    ) -> Result<Introspection, OAuthError> {
        let (status, body) = self
            .post_form(
                self.version.introspect_path(),
                &[
                    ("client_id", &app.client_id),
                    ("client_secret", app.secrets.current().expose()),
                    ("token", access_token.expose()),
                    ("token_type_hint", "access_token"),
                ],
            )
            .await?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body)
                .map_err(|_| OAuthError::Malformed("the introspection is not the expected JSON"));
        }
        Err(error_from(status, &body))
    }

    async fn uninstall(&self, access_token: &Secret) -> Result<(), OAuthError> {
        // <https://developers.hubspot.com/docs/api-reference/latest/app-management/app-uninstalls/guide>:
        // DELETE with the account's bearer token, 204 and no body.
        let response = self
            .client
            .get()
            .map_err(OAuthError::Transport)?
            .delete(format!(
                "{}{}",
                self.api_base,
                self.version.uninstall_path()
            ))
            .bearer_auth(access_token.expose())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| OAuthError::Transport(e.without_url()))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| OAuthError::Transport(e.without_url()))?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(OAuthError::Malformed("the answer is too large"));
        }
        Err(error_from(status, &body))
    }

    async fn revoke(&self, app: &HubSpotApp, refresh_token: &Secret) -> Result<(), OAuthError> {
        let (status, body) = self
            .post_form(
                self.version.revoke_path(),
                &[
                    ("client_id", &app.client_id),
                    ("client_secret", app.secrets.current().expose()),
                    ("token", refresh_token.expose()),
                    ("token_type_hint", "refresh_token"),
                ],
            )
            .await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(error_from(status, &body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_one_of_the_dated_ones_and_v1_is_refused_with_its_reason() {
        assert_eq!(ApiVersion::default().as_str(), "2026-03");
        assert_eq!(ApiVersion::parse("2026-09"), Ok(ApiVersion::V2026_09));
        assert_eq!(ApiVersion::V2026_09.token_path(), "/oauth/2026-09/token");
        assert_eq!(
            ApiVersion::V2026_03.uninstall_path(),
            "/appinstalls/2026-03/external-install"
        );
        let v1 = ApiVersion::parse("v1").unwrap_err();
        assert!(
            v1.contains("2026-03, 2026-09") && v1.contains("never used"),
            "{v1}"
        );
        for refused in ["v3", "2026-06", "", "2026-03/../v1"] {
            assert!(ApiVersion::parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn both_invalid_grant_shapes_are_recognised() {
        assert!(matches!(
            error_from(400, br#"{"error":"invalid_grant","error_description":"x"}"#),
            OAuthError::InvalidGrant
        ));
        assert!(matches!(
            error_from(400, br#"{"status":"BAD_REFRESH_TOKEN","message":"x"}"#),
            OAuthError::InvalidGrant
        ));
        assert!(matches!(
            error_from(500, b"oops"),
            OAuthError::Rejected { status: 500, .. }
        ));
    }

    #[test]
    fn a_grant_reads_hub_id_and_scopes_in_either_shape() {
        let g: TokenGrant = serde_json::from_str(
            r#"{"access_token":"a","refresh_token":"r","expires_in":1800,"token_type":"bearer","hub_id":"62515","scopes":"oauth crm.x"}"#,
        )
        .unwrap();
        assert_eq!(g.hub_id, Some(62515));
        assert_eq!(
            g.scopes.as_deref(),
            Some(&["oauth".to_owned(), "crm.x".to_owned()][..])
        );
        assert!(!format!("{g:?}").contains("\"a\""));
    }
}
