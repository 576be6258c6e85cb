//! A HubSpot simulator for the local stack (`hsbridge dev --hubspot-sim`): the authorize page
//! (which approves), the OAuth token, introspection and revocation endpoints, and one CRM object
//! endpoint, all under [`SIM_PREFIX`]. It lets install → webhook → signed call run entirely on
//! this machine.
//!
//! It behaves like HubSpot where hsbridge depends on it: authorization codes are single-use and
//! expire after five minutes, a code is bound to the client id and the exact redirect URI it was
//! issued for, the client secret is checked (the previous one too, while a rotation is under
//! way), access tokens expire, refresh tokens rotate on use, revoked tokens stop working, and an
//! unknown redirect URI gets an error page rather than a redirect. Its tokens are random; only
//! their SHA-256 digests are kept (in memory, and in `state_file` when given).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hsbridge_platform::Clock;
use hsbridge_platform::secrets::SecretSource;
use hsbridge_verify::Secret;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

mod api;

/// Where the simulator's routes live on the local server.
pub const SIM_PREFIX: &str = "/hubspot-sim";
/// How long an authorization code stays usable.
const CODE_TTL_MS: u64 = 5 * 60 * 1000;

/// What the simulated HubSpot account and app look like.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The portal the simulated user installs into.
    pub hub_id: u64,
    /// The one redirect URI registered for the app.
    pub redirect_uri: String,
    /// Lifetime of an access token, in seconds.
    pub access_token_ttl_secs: u64,
    /// Where to keep token digests across restarts (`None`: memory only).
    pub state_file: Option<PathBuf>,
}

/// The simulator's state; clones share it.
#[derive(Debug, Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: SimConfig,
    app: Arc<dyn SecretSource>,
    clock: Arc<dyn Clock>,
    db: Mutex<Db>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Db {
    /// Code digest → grant. Not persisted: codes live for minutes.
    #[serde(skip)]
    codes: HashMap<String, CodeGrant>,
    /// Access-token digest → token.
    access: HashMap<String, AccessToken>,
    /// Refresh-token digest → the grant behind it.
    refresh: HashMap<String, RefreshGrant>,
    /// Calls to each endpoint, for `hsbridge dev`'s summary and the tests.
    #[serde(default)]
    counters: HashMap<String, u64>,
}

#[derive(Debug, Clone)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    expires_at_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccessToken {
    hub_id: u64,
    scopes: Vec<String>,
    expires_at_ms: u64,
    /// Digest of the refresh token it was issued with (revoking that ends it too).
    refresh: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshGrant {
    hub_id: u64,
    client_id: String,
    scopes: Vec<String>,
}

impl Simulator {
    /// A simulator answering for the app whose credentials `app` holds. Loads `state_file` when
    /// it exists; an unreadable file is an error (the operator deletes it to start over).
    pub fn new(
        config: SimConfig,
        app: Arc<dyn SecretSource>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let db = match &config.state_file {
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| {
                    anyhow::anyhow!(
                        "{} is not a HubSpot simulator state file; delete it to start over",
                        path.display()
                    )
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Db::default(),
                Err(e) => {
                    return Err(anyhow::anyhow!("could not read {}: {e}", path.display()));
                }
            },
            None => Db::default(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                app,
                clock,
                db: Mutex::new(db),
            }),
        })
    }

    /// The simulator's routes, under [`SIM_PREFIX`].
    pub fn router(&self) -> Router {
        Router::new()
            .route(&format!("{SIM_PREFIX}/oauth/authorize"), get(authorize))
            .route(&format!("{SIM_PREFIX}/oauth/approve"), get(approve))
            .merge(api::routes(SIM_PREFIX))
            .route(
                &format!("{SIM_PREFIX}/crm/v3/objects/{{object_type}}/{{object_id}}"),
                get(crm_object),
            )
            .with_state(self.clone())
    }

    /// The simulated portal.
    pub fn hub_id(&self) -> u64 {
        self.inner.config.hub_id
    }

    /// How often each endpoint was called successfully (`token:authorization_code`,
    /// `token:refresh_token`, `crm`, `revoke`, ...).
    #[cfg(test)]
    pub fn count(&self, what: &str) -> u64 {
        self.with_db(|db| db.counters.get(what).copied().unwrap_or(0))
    }

    fn with_db<T>(&self, f: impl FnOnce(&mut Db) -> T) -> T {
        let mut db = self
            .inner
            .db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut db)
    }

    /// Like `with_db`, then saves the state file (under the same lock).
    fn change<T>(&self, f: impl FnOnce(&mut Db) -> T) -> T {
        let mut db = self
            .inner
            .db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let out = f(&mut db);
        if let Some(path) = &self.inner.config.state_file {
            let saved = serde_json::to_vec_pretty(&*db)
                .map_err(std::io::Error::other)
                .and_then(|bytes| write_private(path, &bytes));
            if let Err(error) = saved {
                tracing::warn!(%error, path = %path.display(), "could not save the HubSpot simulator's state");
            }
        }
        out
    }

    fn now(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// Issues an access/refresh pair and returns HubSpot's token response.
    fn issue(&self, db: &mut Db, hub_id: u64, client_id: &str, scopes: &[String]) -> Response {
        let (Some(access), Some(refresh)) = (random_token("sim-at"), random_token("sim-rt")) else {
            return no_randomness();
        };
        let refresh_digest = digest(&refresh);
        let ttl = self.inner.config.access_token_ttl_secs;
        db.access.insert(
            digest(&access),
            AccessToken {
                hub_id,
                scopes: scopes.to_vec(),
                expires_at_ms: self.now().saturating_add(ttl.saturating_mul(1000)),
                refresh: refresh_digest.clone(),
            },
        );
        db.refresh.insert(
            refresh_digest,
            RefreshGrant {
                hub_id,
                client_id: client_id.to_owned(),
                scopes: scopes.to_vec(),
            },
        );
        json(
            StatusCode::OK,
            &serde_json::json!({
                "token_type": "bearer",
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": ttl,
                "hub_id": hub_id,
                "scopes": scopes,
            }),
        )
    }
}

/// Writes `bytes` to `path` through a temporary sibling, readable by the owner only.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A fresh random token; `None` when the system has no randomness (no token is then issued:
/// an empty or fixed one would be guessable).
fn random_token(prefix: &str) -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("{prefix}-{hex}"))
}

fn no_randomness() -> Response {
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "no system randomness",
    )
}

fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        &serde_json::json!({"error": error, "error_description": description}),
    )
}

fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
    let mut response = (
        status,
        Html(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head><body><h1>{}</h1>{body}</body></html>",
            escape(title),
            escape(title)
        )),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// The query or form pairs; a repeated name keeps its first value.
fn pairs(raw: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in serde_urlencoded::from_str::<Vec<(String, String)>>(raw).unwrap_or_default() {
        out.entry(k).or_insert(v);
    }
    out
}

fn scopes_of(params: &HashMap<String, String>) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for name in ["scope", "optional_scope"] {
        for s in params
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
            .split([' ', ','])
            .filter(|s| !s.is_empty())
        {
            if !scopes.iter().any(|x| x == s) {
                scopes.push(s.to_owned());
            }
        }
    }
    scopes
}

/// Checks the authorize request's client and redirect URI; an error page otherwise (never a
/// redirect to an unregistered URI).
async fn check_authorize(
    sim: &Simulator,
    params: &HashMap<String, String>,
) -> Result<(String, String, String), Response> {
    let refuse = |text: &str| {
        html_page(
            StatusCode::BAD_REQUEST,
            "Authorization failed",
            &format!("<p id=\"error\">{}</p>", escape(text)),
        )
    };
    let app = sim
        .inner
        .app
        .hubspot_app()
        .await
        .map_err(|_| refuse("The app's credentials are not available."))?;
    let client_id = params.get("client_id").cloned().unwrap_or_default();
    if client_id != app.client_id {
        return Err(refuse("Unknown client_id."));
    }
    let redirect_uri = params.get("redirect_uri").cloned().unwrap_or_default();
    if redirect_uri != sim.inner.config.redirect_uri {
        return Err(refuse("The redirect_uri is not registered for this app."));
    }
    let state = params.get("state").cloned().unwrap_or_default();
    Ok((client_id, redirect_uri, state))
}

async fn authorize(State(sim): State<Simulator>, RawQuery(raw): RawQuery) -> Response {
    let raw = raw.unwrap_or_default();
    let params = pairs(&raw);
    let (_, redirect_uri, state) = match check_authorize(&sim, &params).await {
        Ok(ok) => ok,
        Err(page) => return page,
    };
    let scopes = scopes_of(&params);
    let hub_id = sim.inner.config.hub_id;
    let approve = format!("{SIM_PREFIX}/oauth/approve?{raw}");
    let deny = format!(
        "{redirect_uri}?error=access_denied&error_description={}&state={}",
        enc("The user denied the request"),
        enc(&state)
    );
    let items: String = scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(s)))
        .collect();
    html_page(
        StatusCode::OK,
        "HubSpot simulator: connect app",
        &format!(
            "<p>Install this app into the simulated HubSpot account <b id=\"hub-id\">{hub_id}</b>?</p>\
             <p>It asks for:</p><ul id=\"scopes\">{items}</ul>\
             <p><a id=\"approve\" href=\"{}\">Connect app</a> &nbsp; <a id=\"deny\" href=\"{}\">Cancel</a></p>",
            escape(&approve),
            escape(&deny)
        ),
    )
}

async fn approve(State(sim): State<Simulator>, RawQuery(raw): RawQuery) -> Response {
    let params = pairs(raw.as_deref().unwrap_or_default());
    let (client_id, redirect_uri, state) = match check_authorize(&sim, &params).await {
        Ok(ok) => ok,
        Err(page) => return page,
    };
    let Some(code) = random_token("sim-code") else {
        return no_randomness();
    };
    let now = sim.now();
    let grant = CodeGrant {
        client_id,
        redirect_uri: redirect_uri.clone(),
        scopes: scopes_of(&params),
        expires_at_ms: now.saturating_add(CODE_TTL_MS),
    };
    sim.with_db(|db| {
        db.codes.retain(|_, c| c.expires_at_ms > now);
        db.codes.insert(digest(&code), grant);
    });
    // An install started on HubSpot's side (its install link) carries no state, and the code
    // comes back without one.
    let location = if state.is_empty() {
        format!("{redirect_uri}?code={}", enc(&code))
    } else {
        format!("{redirect_uri}?code={}&state={}", enc(&code), enc(&state))
    };
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The client credentials of a token-endpoint form, checked against the app (the previous
/// secret is accepted while a rotation is under way, as HubSpot does).
async fn client_ok(sim: &Simulator, form: &HashMap<String, String>) -> Result<String, Response> {
    let app = sim.inner.app.hubspot_app().await.map_err(|_| {
        oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "credentials unavailable",
        )
    })?;
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let secret = Secret::new(form.get("client_secret").cloned().unwrap_or_default());
    let secret_ok = !secret.is_empty() && app.secrets.iter().any(|(_, s)| *s == secret);
    if client_id != app.client_id || !secret_ok {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "missing or unknown client id, or wrong client secret",
        ));
    }
    Ok(client_id)
}

fn form_of(body: &Bytes) -> HashMap<String, String> {
    pairs(std::str::from_utf8(body).unwrap_or_default())
}

async fn token(State(sim): State<Simulator>, body: Bytes) -> Response {
    let form = form_of(&body);
    let client_id = match client_ok(&sim, &form).await {
        Ok(id) => id,
        Err(response) => return response,
    };
    let now = sim.now();
    let hub_id = sim.inner.config.hub_id;
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = digest(form.get("code").map(String::as_str).unwrap_or_default());
            let redirect = form.get("redirect_uri").cloned().unwrap_or_default();
            sim.change(|db| {
                // Single use: the code is gone whatever happens next.
                let Some(grant) = db.codes.remove(&code) else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "unknown or used code",
                    );
                };
                if grant.expires_at_ms <= now
                    || grant.client_id != client_id
                    || grant.redirect_uri != redirect
                {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "expired code, or another client or redirect_uri",
                    );
                }
                bump(db, "token:authorization_code");
                sim.issue(db, hub_id, &client_id, &grant.scopes)
            })
        }
        Some("refresh_token") => {
            let refresh = digest(
                form.get("refresh_token")
                    .map(String::as_str)
                    .unwrap_or_default(),
            );
            sim.change(|db| {
                let grant = match db.refresh.get(&refresh) {
                    Some(g) if g.client_id == client_id => g.clone(),
                    _ => {
                        return oauth_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_grant",
                            "unknown or revoked refresh token",
                        );
                    }
                };
                // Rotation: the used refresh token stops working; its access tokens too.
                db.refresh.remove(&refresh);
                db.access.retain(|_, a| a.refresh != refresh);
                bump(db, "token:refresh_token");
                sim.issue(db, grant.hub_id, &client_id, &grant.scopes)
            })
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
    }
}

async fn introspect(State(sim): State<Simulator>, body: Bytes) -> Response {
    let form = form_of(&body);
    let client_id = match client_ok(&sim, &form).await {
        Ok(id) => id,
        Err(response) => return response,
    };
    let token = digest(form.get("token").map(String::as_str).unwrap_or_default());
    let now = sim.now();
    sim.change(|db| {
        bump(db, "introspect");
        match db.access.get(&token) {
            Some(a) if a.expires_at_ms > now => json(
                StatusCode::OK,
                &serde_json::json!({
                    "active": true,
                    "token_type": "access_token",
                    "client_id": client_id,
                    "hub_id": a.hub_id,
                    "scopes": a.scopes,
                    "exp": a.expires_at_ms / 1000,
                }),
            ),
            _ => json(StatusCode::OK, &serde_json::json!({"active": false})),
        }
    })
}

async fn revoke(State(sim): State<Simulator>, body: Bytes) -> Response {
    let form = form_of(&body);
    if let Err(response) = client_ok(&sim, &form).await {
        return response;
    }
    let token = digest(form.get("token").map(String::as_str).unwrap_or_default());
    sim.change(|db| {
        // RFC 7009: an unknown token is not an error.
        if db.refresh.remove(&token).is_some() {
            db.access.retain(|_, a| a.refresh != token);
            bump(db, "revoke");
        }
        StatusCode::OK.into_response()
    })
}

async fn crm_object(
    State(sim): State<Simulator>,
    Path((object_type, object_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(digest);
    let now = sim.now();
    let authorised = sim.with_db(|db| {
        token
            .and_then(|t| db.access.get(&t).cloned())
            .filter(|a| a.expires_at_ms > now)
    });
    let Some(access) = authorised else {
        return json(
            StatusCode::UNAUTHORIZED,
            &serde_json::json!({
                "status": "error",
                "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
                "category": "INVALID_AUTHENTICATION",
            }),
        );
    };
    // HubSpot takes an object type by name or by id (`0-1` for contacts, as generic `object.*`
    // webhook events carry it in `objectTypeId`).
    let name = match object_type.as_str() {
        "0-1" => "contacts",
        "0-2" => "companies",
        "0-3" => "deals",
        other => other,
    };
    let wanted_scope = format!("crm.objects.{name}.read");
    if !access.scopes.contains(&wanted_scope) {
        return json(
            StatusCode::FORBIDDEN,
            &serde_json::json!({
                "status": "error",
                "message": format!("This app hasn't been granted all required scopes to make this call. It needs {wanted_scope}."),
                "category": "MISSING_SCOPES",
            }),
        );
    }
    sim.change(|db| bump(db, "crm"));
    let params = pairs(raw.as_deref().unwrap_or_default());
    let wanted: Vec<&str> = params
        .get("properties")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
        .filter(|p| !p.is_empty())
        .collect();
    let mut properties = serde_json::Map::new();
    properties.insert("hs_object_id".into(), object_id.clone().into());
    for name in wanted {
        let value = match name {
            "email" => format!("sim-{object_id}@example.com"),
            "firstname" => "Sim".to_owned(),
            "lastname" => format!("Contact {object_id}"),
            _ => continue,
        };
        properties.insert(name.to_owned(), value.into());
    }
    json(
        StatusCode::OK,
        &serde_json::json!({
            "id": object_id,
            "properties": properties,
            "archived": false,
        }),
    )
}

fn bump(db: &mut Db, what: &str) {
    *db.counters.entry(what.to_owned()).or_default() += 1;
}
