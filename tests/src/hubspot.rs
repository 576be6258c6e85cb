//! One HTTP HubSpot simulator for every suite: the OAuth token endpoint (code exchange and
//! refresh), introspection, revocation, the app uninstall, and CRM object reads, served on
//! `127.0.0.1:0` under every supported API version's paths. Every request is recorded; every
//! answer can be replaced (status, body, headers, delay), once or by a rule, and a refresh can
//! rotate, keep or omit the refresh token.
//!
//! The paths are written here, not taken from the vault's `ApiVersion`, so a test that checks
//! which path the code called compares the code with HubSpot's documented paths, not with itself.

use crate::aws::now_ms;
use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[cfg(test)]
mod tests;

/// The OAuth API versions the simulator serves (`/oauth/{version}/token`, ...).
pub const VERSIONS: [&str; 2] = ["2026-03", "2026-09"];

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// The token endpoint with `grant_type=authorization_code`.
    Exchange,
    /// The token endpoint with `grant_type=refresh_token`.
    Refresh,
    /// `POST /oauth/{v}/token/introspect`.
    Introspect,
    /// `POST /oauth/{v}/token/revoke`.
    Revoke,
    /// `DELETE /appinstalls/{v}/external-install`.
    Uninstall,
    /// `GET /crm/v3/objects/{type}/{id}`.
    Crm,
    /// Anything else (another grant type, an unknown path).
    Other,
}

/// One request the simulator received.
#[derive(Debug, Clone)]
pub struct Call {
    pub endpoint: Endpoint,
    pub method: Method,
    pub path: String,
    /// The form fields of a form-encoded body (token, introspect, revoke).
    pub form: HashMap<String, String>,
    /// The `Authorization: Bearer` token, if any.
    pub bearer: Option<String>,
    /// When it arrived, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The call's number among the calls to its endpoint, from 1 (the first refresh, the first
    /// CRM read).
    pub n: usize,
}

/// An answer to send instead of the simulator's own.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
}

impl Answer {
    /// `status` with a JSON `body`.
    pub fn json(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// `status` with a plain-text `body`.
    pub fn text(status: StatusCode, body: &str) -> Self {
        Self::json(status, Value::String(body.to_owned()))
    }

    /// `status` with an empty body.
    pub fn status(status: StatusCode) -> Self {
        Self::json(status, Value::Null)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    fn into_response(self) -> Response {
        let mut response = if self.body.is_null() {
            self.status.into_response()
        } else if let Value::String(text) = self.body {
            (self.status, text).into_response()
        } else {
            (self.status, axum::Json(self.body)).into_response()
        };
        for (name, value) in self.headers {
            response.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        response
    }
}

/// A rule deciding an endpoint's answer from the call; `None` leaves the simulator's own.
pub type Rule = Arc<dyn Fn(&Call) -> Option<Answer> + Send + Sync>;

/// What a successful refresh carries as its refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTokens {
    /// A new one each time: `refresh-rotated-{n}`.
    Rotate,
    /// The one presented, as HubSpot answers today.
    Keep,
    /// None at all: the caller keeps its old one.
    Omit,
}

/// What a successful code exchange grants.
#[derive(Debug, Clone)]
pub struct Grant {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub token_type: String,
    /// The account installed, in the answer or (without it) from introspection.
    pub hub_id: u64,
    pub scopes: Vec<String>,
    /// `false`: the answer carries neither `hub_id` nor `scopes`, so the caller must introspect.
    pub with_hub_id: bool,
}

/// How the code exchange answers.
#[derive(Debug, Clone)]
enum Exchange {
    /// The same grant for every accepted code.
    Fixed(Grant),
    /// A new hub for every code, from the given id, with tokens `{prefix}-access-{hub}` and
    /// `{prefix}-refresh-{hub}`.
    NewHubEachCode { next_hub: u64, prefix: String },
}

#[derive(Debug)]
struct Settings {
    /// When set, the token, introspect and revoke endpoints refuse other client credentials.
    client: Option<(String, String)>,
    /// When set, the only code the exchange accepts; others get `invalid_grant`.
    code: Option<String>,
    exchange: Exchange,
    refresh_tokens: RefreshTokens,
    refresh_expires_in: i64,
    /// When set, the uninstall refuses other bearers with 401.
    uninstall_bearers: Option<Vec<String>>,
    /// Whether calls are kept for [`HubSpot::calls`] (they are always counted).
    recording: bool,
}

struct State {
    settings: Mutex<Settings>,
    calls: Mutex<Vec<Call>>,
    /// Calls per endpoint since the start (not reset by [`HubSpot::clear_calls`]).
    counts: Mutex<HashMap<Endpoint, usize>>,
    once: Mutex<HashMap<Endpoint, VecDeque<Answer>>>,
    rules: Mutex<HashMap<Endpoint, Rule>>,
    delays: Mutex<HashMap<Endpoint, Duration>>,
    holds: Mutex<HashMap<Endpoint, Arc<tokio::sync::Notify>>>,
}

/// Aborts the server task when the last handle goes.
struct Server(tokio::task::JoinHandle<()>);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The simulator; clones share one server and one record.
#[derive(Clone)]
pub struct HubSpot {
    base: String,
    state: Arc<State>,
    _server: Arc<Server>,
}

impl std::fmt::Debug for HubSpot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSpot").field("base", &self.base).finish()
    }
}

/// The default grant of a code exchange.
pub fn grant(access_token: &str, refresh_token: &str, hub_id: u64) -> Grant {
    Grant {
        access_token: access_token.to_owned(),
        refresh_token: refresh_token.to_owned(),
        expires_in: 1800,
        token_type: "Bearer".to_owned(),
        hub_id,
        scopes: vec!["oauth".to_owned(), "crm.objects.contacts.read".to_owned()],
        with_hub_id: true,
    }
}

impl HubSpot {
    /// Starts the simulator on a loopback port (panics if it cannot: a failed set-up).
    pub async fn start() -> Self {
        Self::try_start()
            .await
            .expect("starting the HubSpot simulator")
    }

    /// Starts the simulator on a loopback port. Until told otherwise it accepts any client and
    /// any code, grants hub 62515 `access-install`/`refresh-install`, rotates refresh tokens,
    /// and uninstalls for any bearer.
    pub async fn try_start() -> std::io::Result<Self> {
        let state = Arc::new(State {
            settings: Mutex::new(Settings {
                client: None,
                code: None,
                exchange: Exchange::Fixed(grant("access-install", "refresh-install", 62515)),
                refresh_tokens: RefreshTokens::Rotate,
                refresh_expires_in: 1800,
                uninstall_bearers: None,
                recording: true,
            }),
            calls: Mutex::new(Vec::new()),
            counts: Mutex::new(HashMap::new()),
            once: Mutex::new(HashMap::new()),
            rules: Mutex::new(HashMap::new()),
            delays: Mutex::new(HashMap::new()),
            holds: Mutex::new(HashMap::new()),
        });
        let shared = Arc::clone(&state);
        let router = axum::Router::new().fallback(
            move |method: Method, uri: http::Uri, headers: HeaderMap, body: Bytes| {
                let state = Arc::clone(&shared);
                async move { handle(&state, method, uri.path(), &headers, &body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "the HubSpot simulator stopped");
            }
        });
        Ok(Self {
            base,
            state,
            _server: Arc::new(Server(task)),
        })
    }

    /// The base URL (`http://127.0.0.1:PORT`), for `HSBRIDGE_HUBSPOT_API_BASE`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Refuse token, introspect and revoke calls made with other client credentials (401
    /// `invalid_client`).
    pub fn expect_client(&self, client_id: &str, client_secret: &str) -> &Self {
        self.settings().client = Some((client_id.to_owned(), client_secret.to_owned()));
        self
    }

    /// Accept only `code` in the exchange; any other is `invalid_grant`.
    pub fn accept_code(&self, code: &str) -> &Self {
        self.settings().code = Some(code.to_owned());
        self
    }

    /// What an accepted code grants.
    pub fn grant(&self, grant: Grant) -> &Self {
        self.settings().exchange = Exchange::Fixed(grant);
        self
    }

    /// Change the grant an accepted code gets.
    pub fn edit_grant(&self, edit: impl FnOnce(&mut Grant)) -> &Self {
        if let Exchange::Fixed(grant) = &mut self.settings().exchange {
            edit(grant);
        }
        self
    }

    /// Each accepted code installs a new hub, from `first_hub` on, with tokens
    /// `{prefix}-access-{hub}` and `{prefix}-refresh-{hub}`.
    pub fn new_hub_each_code(&self, first_hub: u64, prefix: &str) -> &Self {
        self.settings().exchange = Exchange::NewHubEachCode {
            next_hub: first_hub,
            prefix: prefix.to_owned(),
        };
        self
    }

    /// What a successful refresh carries as its refresh token.
    pub fn refresh_tokens(&self, tokens: RefreshTokens) -> &Self {
        self.settings().refresh_tokens = tokens;
        self
    }

    /// The uninstall answers 401 `INVALID_AUTHENTICATION` to any bearer but these.
    pub fn uninstall_accepts(&self, bearers: &[&str]) -> &Self {
        self.settings().uninstall_bearers = Some(bearers.iter().map(|b| (*b).to_owned()).collect());
        self
    }

    /// The next call to `endpoint` gets `answer` (queued after earlier ones).
    pub fn answer_next(&self, endpoint: Endpoint, answer: Answer) -> &Self {
        self.state
            .once
            .lock()
            .unwrap()
            .entry(endpoint)
            .or_default()
            .push_back(answer);
        self
    }

    /// Every call to `endpoint` is answered by `rule` (where it gives an answer) until another
    /// rule replaces it.
    pub fn answer_with(
        &self,
        endpoint: Endpoint,
        rule: impl Fn(&Call) -> Option<Answer> + Send + Sync + 'static,
    ) -> &Self {
        self.state
            .rules
            .lock()
            .unwrap()
            .insert(endpoint, Arc::new(rule));
        self
    }

    /// Every call to `endpoint` gets `answer`.
    pub fn always(&self, endpoint: Endpoint, answer: Answer) -> &Self {
        self.answer_with(endpoint, move |_| Some(answer.clone()))
    }

    /// Back to the simulator's own answers for `endpoint`.
    pub fn answer_normally(&self, endpoint: Endpoint) -> &Self {
        self.state.rules.lock().unwrap().remove(&endpoint);
        self.state.once.lock().unwrap().remove(&endpoint);
        self
    }

    /// Every call to `endpoint` waits `delay` before it is answered (the answer is decided when
    /// the request arrives).
    pub fn delay(&self, endpoint: Endpoint, delay: Duration) -> &Self {
        self.state.delays.lock().unwrap().insert(endpoint, delay);
        self
    }

    /// The next call to `endpoint` is answered only once the returned handle is notified.
    pub fn hold_next(&self, endpoint: Endpoint) -> Arc<tokio::sync::Notify> {
        let release = Arc::new(tokio::sync::Notify::new());
        self.state
            .holds
            .lock()
            .unwrap()
            .insert(endpoint, Arc::clone(&release));
        release
    }

    /// Every request so far, in order of arrival.
    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// The requests to `endpoint` so far.
    pub fn calls_to(&self, endpoint: Endpoint) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.endpoint == endpoint)
            .collect()
    }

    /// How many requests `endpoint` has had.
    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.calls_to(endpoint).len()
    }

    /// The path of every request so far, in order.
    pub fn paths(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.path).collect()
    }

    /// The refresh token the last refresh presented.
    pub fn last_refresh_token(&self) -> Option<String> {
        self.calls_to(Endpoint::Refresh)
            .last()
            .map(|c| c.form.get("refresh_token").cloned().unwrap_or_default())
    }

    /// The refresh tokens every refresh presented, in order.
    pub fn refresh_tokens_seen(&self) -> Vec<String> {
        self.calls_to(Endpoint::Refresh)
            .into_iter()
            .map(|c| c.form.get("refresh_token").cloned().unwrap_or_default())
            .collect()
    }

    /// Keep no more calls (a long run would grow the record without bound); answers that
    /// depend on a call's number still see it.
    pub fn stop_recording(&self) -> &Self {
        self.settings().recording = false;
        self
    }

    /// Forget the calls recorded so far (the calls' numbering goes on).
    pub fn clear_calls(&self) {
        self.state.calls.lock().unwrap().clear();
    }

    fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.state.settings.lock().unwrap()
    }
}

fn endpoint_of(method: &Method, path: &str, form: &HashMap<String, String>) -> Endpoint {
    let versioned = |template: &str| VERSIONS.iter().any(|v| path == template.replace("{v}", v));
    if *method == Method::POST && versioned("/oauth/{v}/token") {
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => Endpoint::Exchange,
            Some("refresh_token") => Endpoint::Refresh,
            _ => Endpoint::Other,
        }
    } else if *method == Method::POST && versioned("/oauth/{v}/token/introspect") {
        Endpoint::Introspect
    } else if *method == Method::POST && versioned("/oauth/{v}/token/revoke") {
        Endpoint::Revoke
    } else if *method == Method::DELETE && versioned("/appinstalls/{v}/external-install") {
        Endpoint::Uninstall
    } else if *method == Method::GET
        && path
            .strip_prefix("/crm/v3/objects/")
            .is_some_and(|rest| rest.split('/').count() == 2)
    {
        Endpoint::Crm
    } else {
        Endpoint::Other
    }
}

async fn handle(
    state: &State,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let endpoint = endpoint_of(&method, path, &form);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    // The call is recorded, and its answer decided, when it arrives.
    let call = {
        let mut calls = state.calls.lock().unwrap();
        let n = {
            let mut counts = state.counts.lock().unwrap();
            let count = counts.entry(endpoint).or_default();
            *count += 1;
            *count
        };
        let call = Call {
            endpoint,
            method,
            path: path.to_owned(),
            form,
            bearer,
            at_ms: now_ms(),
            n,
        };
        if state.settings.lock().unwrap().recording {
            calls.push(call.clone());
        }
        call
    };
    let injected = state
        .once
        .lock()
        .unwrap()
        .get_mut(&endpoint)
        .and_then(VecDeque::pop_front);
    let rule = state.rules.lock().unwrap().get(&endpoint).cloned();
    let injected = injected.or_else(|| rule.and_then(|rule| rule(&call)));
    let answer = injected.unwrap_or_else(|| own_answer(state, &call));
    let delay = answer.delay
        + state
            .delays
            .lock()
            .unwrap()
            .get(&endpoint)
            .copied()
            .unwrap_or_default();
    tokio::time::sleep(delay).await;
    let hold = state.holds.lock().unwrap().remove(&endpoint);
    if let Some(release) = hold {
        release.notified().await;
    }
    answer.into_response()
}

fn bad_request(error: &str) -> Answer {
    Answer::json(StatusCode::BAD_REQUEST, json!({ "error": error }))
}

/// The simulator's own answer to `call`.
fn own_answer(state: &State, call: &Call) -> Answer {
    let mut settings = state.settings.lock().unwrap();
    let field = |name: &str| call.form.get(name).map(String::as_str);
    let client_ok = |with_id: bool| match &settings.client {
        None => true,
        Some((id, secret)) => {
            (!with_id || field("client_id") == Some(id)) && field("client_secret") == Some(secret)
        }
    };
    let invalid_client =
        || Answer::json(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
    match call.endpoint {
        Endpoint::Exchange => {
            if !client_ok(true) {
                return invalid_client();
            }
            if settings
                .code
                .as_deref()
                .is_some_and(|c| field("code") != Some(c))
            {
                return bad_request("invalid_grant");
            }
            let grant = match &mut settings.exchange {
                Exchange::Fixed(grant) => grant.clone(),
                Exchange::NewHubEachCode { next_hub, prefix } => {
                    let hub = *next_hub;
                    *next_hub += 1;
                    Grant {
                        access_token: format!("{prefix}-access-{hub}"),
                        refresh_token: format!("{prefix}-refresh-{hub}"),
                        token_type: "bearer".to_owned(),
                        ..grant("", "", hub)
                    }
                }
            };
            let mut body = json!({
                "access_token": grant.access_token,
                "refresh_token": grant.refresh_token,
                "expires_in": grant.expires_in,
                "token_type": grant.token_type,
                "token_use": "access_token",
            });
            if grant.with_hub_id {
                body["hub_id"] = json!(grant.hub_id);
                body["scopes"] = json!(grant.scopes);
            }
            Answer::json(StatusCode::OK, body)
        }
        Endpoint::Refresh => {
            if !client_ok(true) {
                return invalid_client();
            }
            let n = call.n;
            let mut body = json!({
                "access_token": format!("access-refreshed-{n}"),
                "expires_in": settings.refresh_expires_in,
                "token_type": "bearer",
            });
            match settings.refresh_tokens {
                RefreshTokens::Rotate => {
                    body["refresh_token"] = json!(format!("refresh-rotated-{n}"))
                }
                RefreshTokens::Keep => body["refresh_token"] = json!(field("refresh_token")),
                RefreshTokens::Omit => {}
            }
            Answer::json(StatusCode::OK, body)
        }
        Endpoint::Introspect => {
            if !client_ok(false) || field("token_type_hint") != Some("access_token") {
                return invalid_client();
            }
            let (hub, scopes) = match &settings.exchange {
                Exchange::Fixed(grant) => (grant.hub_id, grant.scopes.clone()),
                Exchange::NewHubEachCode { next_hub, .. } => (
                    next_hub.saturating_sub(1),
                    vec!["oauth".to_owned(), "crm.objects.contacts.read".to_owned()],
                ),
            };
            Answer::json(
                StatusCode::OK,
                json!({"active": true, "hub_id": hub, "scopes": scopes}),
            )
        }
        Endpoint::Revoke => {
            if !client_ok(false) || field("token_type_hint") != Some("refresh_token") {
                return invalid_client();
            }
            Answer::status(StatusCode::OK)
        }
        Endpoint::Uninstall => {
            let known = match (&settings.uninstall_bearers, &call.bearer) {
                (None, Some(_)) => true,
                (Some(accepted), Some(bearer)) => accepted.contains(bearer),
                (_, None) => false,
            };
            if known {
                Answer::status(StatusCode::NO_CONTENT)
            } else {
                Answer::json(
                    StatusCode::UNAUTHORIZED,
                    json!({"category": "INVALID_AUTHENTICATION"}),
                )
            }
        }
        Endpoint::Crm => {
            let mut parts = call.path.trim_start_matches("/crm/v3/objects/").split('/');
            let object_type = parts.next().unwrap_or_default();
            let object_id = parts.next().unwrap_or_default();
            crm_object(object_type, object_id)
        }
        Endpoint::Other if call.path.contains("/token") => bad_request("unsupported_grant_type"),
        Endpoint::Other => Answer::json(StatusCode::NOT_FOUND, json!({"status": "error"})),
    }
}

/// The simulator's answer to a CRM read of `object_type` `object_id`: the object with an
/// `email` of `{type}-{id}@example.com` and `firstname` Ada.
pub fn crm_object(object_type: &str, object_id: &str) -> Answer {
    Answer::json(
        StatusCode::OK,
        json!({
            "id": object_id,
            "properties": {"email": format!("{object_type}-{object_id}@example.com"), "firstname": "Ada"},
        }),
    )
}

/// A CRM read's answer for `call`, as [`crm_object`] gives it.
pub fn crm_object_for(call: &Call) -> Answer {
    let mut parts = call.path.trim_start_matches("/crm/v3/objects/").split('/');
    crm_object(
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    )
}
