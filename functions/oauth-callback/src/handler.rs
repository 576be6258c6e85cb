//! `GET /oauth/install` and `GET /oauth/callback`.
//!
//! The callback's order of checks is the security design: HubSpot's `error` parameter, then the
//! state cookie (present, authentic, same state as the URL, under ten minutes old), and only then
//! the code exchange. Every refusal before the exchange is the same plain 400 page; the reason
//! goes to the log, never to the browser.

use crate::config::CallbackSettings;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hsbridge_platform::Clock;
use hsbridge_platform::secrets::{HubSpotApp, SecretSource};
use hsbridge_vault::hubspot::TokenGrant;
use hsbridge_vault::{HubSpotOAuth, OAuthError, Vault, VaultError};
use hsbridge_verify::{OAuthState, cookie_from_header, mint_state_cookie, verify_state_cookie};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::collections::HashSet;
use std::sync::Arc;

pub const INSTALL_PATH: &str = "/oauth/install";
pub const CALLBACK_PATH: &str = "/oauth/callback";

/// RFC 3986 unreserved characters stay; everything else (space included, as `%20`) is escaped.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Everything a request needs; built once per cold start.
#[derive(Debug, Clone)]
pub struct CallbackState {
    pub settings: CallbackSettings,
    pub secrets: Arc<dyn SecretSource>,
    pub oauth: Arc<dyn HubSpotOAuth>,
    pub vault: Arc<Vault>,
    pub clock: Arc<dyn Clock>,
}

/// The callback's Router: served by lambda_http, by a local server, or by tests with `oneshot`.
pub fn app(state: CallbackState) -> Router {
    Router::new()
        .route(INSTALL_PATH, get(install))
        .route(CALLBACK_PATH, get(callback))
        .with_state(Arc::new(state))
}

/// What can go wrong; the browser sees only a fixed page per kind.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The request is not a valid continuation of an install started here.
    #[error("install callback refused: {0}")]
    Refused(&'static str),
    /// HubSpot's answer did not meet our requirements (scopes, token type, ...).
    #[error("the grant was not acceptable: {0}")]
    Unacceptable(&'static str),
    #[error("HubSpot's token endpoint failed")]
    HubSpot(#[source] OAuthError),
    #[error("the account could not be stored")]
    Vault(#[source] VaultError),
    #[error("the app credentials could not be read")]
    Secrets(#[source] hsbridge_platform::secrets::SecretError),
    #[error("no randomness available")]
    Random,
    /// A header could not be built (configuration that slipped past start-up checks).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl IntoResponse for CallbackError {
    fn into_response(self) -> Response {
        log_chain(&self);
        let (status, body) = match self {
            Self::Refused(_) => (
                StatusCode::BAD_REQUEST,
                "This install link is not valid or has expired. Please start the installation again.",
            ),
            Self::Unacceptable(_) => (
                StatusCode::BAD_REQUEST,
                "The installation did not grant what this app needs. Please start the installation again.",
            ),
            Self::HubSpot(_) => (
                StatusCode::BAD_GATEWAY,
                "HubSpot could not complete the installation. Please try again.",
            ),
            Self::Vault(_) | Self::Secrets(_) | Self::Random | Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The installation could not be completed. Please try again.",
            ),
        };
        page(status, body)
    }
}

fn log_chain(err: &dyn std::error::Error) {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    tracing::warn!(error = %chain, "oauth request failed");
}

fn page(status: StatusCode, text: &'static str) -> Response {
    let mut response = (
        status,
        Html(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>HubSpot installation</title></head><body><p>{text}</p></body></html>"
        )),
    )
        .into_response();
    no_store(response.headers_mut());
    response
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

async fn app_credentials(state: &CallbackState) -> Result<HubSpotApp, CallbackError> {
    state
        .secrets
        .hubspot_app()
        .await
        .map_err(CallbackError::Secrets)
}

async fn install(State(state): State<Arc<CallbackState>>) -> Result<Response, CallbackError> {
    let app = app_credentials(&state).await?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| CallbackError::Random)?;
    let oauth_state = OAuthState::from_random_bytes(bytes);
    let cookie = mint_state_cookie(&app.secrets, &oauth_state, None, state.clock.now_ms())
        .map_err(|_| CallbackError::Internal("the state cookie could not be made"))?;
    let settings = &state.settings;
    let enc = |s: &str| utf8_percent_encode(s, QUERY_VALUE).to_string();
    let mut url = format!(
        "{}/oauth/authorize?client_id={}&redirect_uri={}&scope={}",
        settings.app_base,
        enc(&app.client_id),
        enc(&settings.redirect_url),
        enc(&settings.scopes.join(" ")),
    );
    if !settings.optional_scopes.is_empty() {
        url.push_str("&optional_scope=");
        url.push_str(&enc(&settings.optional_scopes.join(" ")));
    }
    url.push_str("&state=");
    url.push_str(oauth_state.as_str());

    let location = HeaderValue::from_str(&url)
        .map_err(|_| CallbackError::Internal("the authorize URL is not a header value"))?;
    let set_cookie = HeaderValue::from_str(&settings.cookie.set_cookie(&cookie))
        .map_err(|_| CallbackError::Internal("the cookie is not a header value"))?;
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(header::SET_COOKIE, set_cookie);
    no_store(headers);
    Ok(response)
}

#[derive(Debug, Default)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: bool,
}

fn parse_query(raw: Option<&str>) -> Result<CallbackQuery, CallbackError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|_| CallbackError::Refused("malformed query"))?;
    let mut q = CallbackQuery::default();
    for (k, v) in pairs {
        let slot = match k.as_str() {
            "code" => &mut q.code,
            "state" => &mut q.state,
            "error" => {
                q.error = true;
                continue;
            }
            _ => continue,
        };
        if slot.is_some() {
            return Err(CallbackError::Refused("a parameter is repeated"));
        }
        *slot = Some(v);
    }
    Ok(q)
}

async fn callback(
    State(state): State<Arc<CallbackState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, CallbackError> {
    let query = parse_query(raw.as_deref())?;
    if query.error {
        return Err(CallbackError::Refused("HubSpot returned an error"));
    }
    let app = app_credentials(&state).await?;
    // Only the name this callback mints: a deployed callback ignores a plain-named cookie,
    // which any sibling subdomain could have planted.
    let cookie = cookie_from_header(&headers, state.settings.cookie.name());
    if cookie.is_none() && query.state.as_deref().is_none_or(str::is_empty) {
        // An install started on HubSpot's side (the project's install link, a marketplace
        // listing) arrives with a code but without a state we issued. Its code cannot be bound
        // to this browser, so it is never exchanged: the flow restarts here, and HubSpot comes
        // back with a code bound to a fresh state. A callback that carries a state but lost its
        // cookie is refused as before, so a browser that drops cookies cannot loop.
        return Ok(restart_install(&state.settings.redirect_url));
    }
    verify_state_cookie(
        &app.secrets,
        cookie.as_deref(),
        query.state.as_deref(),
        state.clock.now_ms(),
    )
    .map_err(|e| match e {
        hsbridge_verify::CookieError::Missing => CallbackError::Refused("state cookie missing"),
        hsbridge_verify::CookieError::Malformed => CallbackError::Refused("state cookie malformed"),
        hsbridge_verify::CookieError::BadSignature => {
            CallbackError::Refused("state cookie signature mismatch")
        }
        hsbridge_verify::CookieError::StateMismatch => CallbackError::Refused("state mismatch"),
        hsbridge_verify::CookieError::Expired => CallbackError::Refused("state cookie expired"),
    })?;
    let code = query
        .code
        .filter(|c| !c.is_empty())
        .ok_or(CallbackError::Refused("no code"))?;

    let grant = state
        .oauth
        .exchange_code(&app, &code, &state.settings.redirect_url)
        .await
        .map_err(exchange_error)?;
    validate_grant(&grant)?;
    let (hub_id, granted) = identify(&state, &app, &grant).await?;
    let granted_set: HashSet<&str> = granted.iter().map(String::as_str).collect();
    if !state
        .settings
        .scopes
        .iter()
        .all(|s| granted_set.contains(s.as_str()))
    {
        return Err(CallbackError::Unacceptable(
            "a required scope was not granted",
        ));
    }
    state
        .vault
        .install(hub_id, &grant, &granted)
        .await
        .map_err(CallbackError::Vault)?;

    let mut response = page(
        StatusCode::OK,
        "The app is installed. You can close this window and return to HubSpot.",
    );
    let clear = HeaderValue::from_str(&state.settings.cookie.clear_cookie())
        .map_err(|_| CallbackError::Internal("the cookie is not a header value"))?;
    response.headers_mut().insert(header::SET_COOKIE, clear);
    Ok(response)
}

/// A redirect to the install route beside the callback (the redirect URL with its last path
/// segment replaced), which mints a state cookie and sends the browser to HubSpot again.
fn restart_install(redirect_url: &str) -> Response {
    let install = redirect_url.strip_suffix(CALLBACK_PATH).map_or_else(
        || "install".to_owned(),
        |base| format!("{base}{INSTALL_PATH}"),
    );
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&install) {
        headers.insert(header::LOCATION, location);
    }
    no_store(headers);
    response
}

/// A code HubSpot answers `invalid_grant` for was already used (a refreshed or double-clicked
/// callback page) or has expired: the user's link is stale, so they get the same 400 page as any
/// other stale link and can start again. HubSpot unreachable, answering 5xx or refusing our client
/// credentials stays a gateway failure (502).
fn exchange_error(e: OAuthError) -> CallbackError {
    match e {
        OAuthError::InvalidGrant => {
            CallbackError::Refused("HubSpot refused the code (used or expired)")
        }
        other => CallbackError::HubSpot(other),
    }
}

fn validate_grant(grant: &TokenGrant) -> Result<(), CallbackError> {
    if !grant.token_type.eq_ignore_ascii_case("bearer") {
        return Err(CallbackError::Unacceptable("token_type is not bearer"));
    }
    if grant.expires_in <= 0 {
        return Err(CallbackError::Unacceptable("expires_in is not positive"));
    }
    if grant.access_token.is_empty() || grant.refresh_token.as_ref().is_none_or(|r| r.is_empty()) {
        return Err(CallbackError::Unacceptable("a token is missing"));
    }
    Ok(())
}

/// The hub id and granted scopes: from the token response, else from introspection.
async fn identify(
    state: &CallbackState,
    app: &HubSpotApp,
    grant: &TokenGrant,
) -> Result<(u64, Vec<String>), CallbackError> {
    if let (Some(hub_id), Some(scopes)) = (grant.hub_id, grant.scopes.clone()) {
        return Ok((hub_id, scopes));
    }
    let info = state
        .oauth
        .introspect(app, &grant.access_token)
        .await
        .map_err(CallbackError::HubSpot)?;
    let hub_id = grant
        .hub_id
        .or(info.hub_id)
        .ok_or(CallbackError::Unacceptable("the hub id is unknown"))?;
    let scopes = grant.scopes.clone().or(info.scopes).unwrap_or_default();
    Ok((hub_id, scopes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_state_parameter_is_refused() {
        assert!(parse_query(Some("state=a&state=b&code=c")).is_err());
        let q = parse_query(Some("code=c%20d&state=s")).unwrap();
        assert_eq!(q.code.as_deref(), Some("c d"));
        assert!(!q.error);
        assert!(parse_query(Some("error=access_denied")).unwrap().error);
    }

    #[test]
    fn a_used_or_expired_code_is_the_users_stale_link_and_an_unreachable_hubspot_is_a_gateway_failure()
     {
        let stale = exchange_error(OAuthError::InvalidGrant).into_response();
        assert_eq!(stale.status(), StatusCode::BAD_REQUEST);
        let down = exchange_error(OAuthError::Rejected {
            status: 503,
            code: String::new(),
        })
        .into_response();
        assert_eq!(down.status(), StatusCode::BAD_GATEWAY);
        let odd = exchange_error(OAuthError::Malformed("x")).into_response();
        assert_eq!(odd.status(), StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn spaces_in_scopes_become_percent_20() {
        assert_eq!(
            utf8_percent_encode("oauth crm.objects.contacts.read", QUERY_VALUE).to_string(),
            "oauth%20crm.objects.contacts.read"
        );
    }
}
