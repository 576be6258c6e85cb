//! Each route on embedded adapters with everything it could write observable, and the request
//! builders the case tables use.

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use axum::Router;
use axum::body::{Body, Bytes};
use hsbridge_api_caller::protected::{ProtectedApi, ProtectedApiConfig};
use hsbridge_api_caller::relay::{self, RelaySettings, RelayState};
use hsbridge_integration_tests::signed;
use hsbridge_oauth_callback::{CallbackSettings, CallbackState};
use hsbridge_platform::ManualClock;
use hsbridge_platform::accounts::{AccountStatus, InMemoryAccountDirectory};
use hsbridge_platform::event_log::IntakeEntry;
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::secrets::{HubSpotApp, StaticSecretSource};
use hsbridge_standin::{Credential, RunningStandin, Standin, StandinConfig};
use hsbridge_vault::hubspot::{Introspection, TokenGrant};
use hsbridge_vault::{
    HubSpotOAuth, InMemoryAccountStore, LocalKeyWrapper, OAuthError, Vault, VaultSettings,
};
/// The deployed callback's state cookie name, for the suites that build Cookie headers.
pub use hsbridge_verify::HOST_STATE_COOKIE_NAME;
use hsbridge_verify::{
    CookieAttributes, HEADER_TIMESTAMP, OAuthState, PublicBase, Secret, SecretSet,
    mint_state_cookie,
};
use hsbridge_webhook_intake::dedupe::{Claim, DedupeError, Deduper, InMemoryDeduper, RecordState};
use hsbridge_webhook_intake::queue::InMemoryEventQueue;
use hsbridge_webhook_intake::{IntakeState, config::IntakeSettings};
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

/// The fixed clock every route runs on.
pub const NOW: u64 = 1_700_000_000_000;
/// HubSpot's window, and the verifier's.
pub const WINDOW_MS: u64 = 300_000;
pub const SECRET: &str = "adversarial-client-secret-never-logged";
pub const CLIENT_ID: &str = "adversarial-client-id";
pub const PORTAL: u64 = 62515;
/// The intake rebuilds its URL from `Host` (no configured base), as deployed by default.
pub const HOOK_HOST: &str = "hooks.example.com";
pub const WEBHOOK_PATH: &str = "/webhooks/hubspot";
/// The relay has a configured public base, so `Host` is never signature input there.
pub const RELAY_BASE: &str = "https://bridge.example.com";
pub const REDIRECT_URL: &str = "https://bridge.example.com/oauth/callback";
pub const APP_BASE: &str = "https://app.hubspot.com";
pub const GOOD_CODE: &str = "code-good-1";
pub const TEN_MB: usize = 10 * 1024 * 1024;

/// The routes' `tracing` logs go into the test's captured output, where nextest keeps them for
/// `scripts/check-log-hygiene`: hostile input must not make a route log a secret either. Called
/// by every route's constructor.
pub use hsbridge_integration_tests::aws::init_test_logs;

/// What a case may leave behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing queued, claimed, stored, exchanged or forwarded.
    Nothing,
    /// The request is legitimate: it is handed on (a control case).
    HandedOn,
    /// Nothing is written, but the outside service is asked and refuses (a replayed OAuth code
    /// reaches HubSpot's token endpoint, which refuses a used code).
    RefusedUpstream,
}

/// One row of a case table: a hostile (or control) request and what it must get.
pub struct Case {
    pub name: &'static str,
    /// Sent first and answered 2xx, e.g. the original of a replay.
    pub before: Option<Request<Body>>,
    /// How far the clock moves between `before` and `request`.
    pub advance_ms: u64,
    pub request: Request<Body>,
    pub expected: StatusCode,
    pub effect: Effect,
}

impl Case {
    pub fn new(name: &'static str, request: Request<Body>, expected: u16) -> Self {
        Self {
            name,
            before: None,
            advance_ms: 0,
            request,
            expected: StatusCode::from_u16(expected).unwrap(),
            effect: Effect::Nothing,
        }
    }

    pub fn refused_upstream(mut self) -> Self {
        self.effect = Effect::RefusedUpstream;
        self
    }

    pub fn handed_on(mut self) -> Self {
        self.effect = Effect::HandedOn;
        self
    }

    pub fn after(mut self, before: Request<Body>, advance_ms: u64) -> Self {
        self.before = Some(before);
        self.advance_ms = advance_ms;
        self
    }
}

/// A route's Router plus counters of everything it could have written.
pub trait Route {
    fn router(&self) -> Router;
    fn clock(&self) -> &ManualClock;
    /// A number that grows with every write the route can make (queue, dedupe, store, forward).
    fn writes(&self) -> usize;
    /// A number that grows with every call to an outside service that writes nothing here.
    fn outbound(&self) -> usize {
        0
    }
}

/// Whether what a request left behind is what its case allows.
pub fn effect_holds(effect: Effect, wrote: usize, called: usize) -> bool {
    match effect {
        Effect::Nothing => wrote == 0 && called == 0,
        Effect::HandedOn => wrote > 0,
        Effect::RefusedUpstream => wrote == 0 && called > 0,
    }
}

pub async fn send(router: Router, request: Request<Body>) -> (StatusCode, http::HeaderMap, Bytes) {
    let response = router.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

/// Runs every case on a fresh instance of the route and checks status and writes; returns the
/// headers and body of each answer for route-specific checks.
pub async fn run_table<R: Route>(
    fresh: impl AsyncFn() -> R,
    cases: Vec<Case>,
) -> Vec<(&'static str, StatusCode, http::HeaderMap, Bytes)> {
    let mut failures = Vec::new();
    let mut answers = Vec::new();
    for case in cases {
        let route = fresh().await;
        if let Some(before) = case.before {
            let (status, _, body) = send(route.router(), before).await;
            assert!(
                status.is_success(),
                "{}: the original request got {status}: {}",
                case.name,
                String::from_utf8_lossy(&body)
            );
        }
        route.clock().advance_ms(case.advance_ms);
        let writes_before = route.writes();
        let outbound_before = route.outbound();
        let (status, headers, body) = send(route.router(), case.request).await;
        let wrote = route.writes() - writes_before;
        let effect_ok = effect_holds(case.effect, wrote, route.outbound() - outbound_before);
        if status != case.expected || !effect_ok {
            failures.push(format!(
                "{}: got {status} with {wrote} writes, expected {} and {:?}: {}",
                case.name,
                case.expected,
                case.effect,
                String::from_utf8_lossy(&body.slice(..body.len().min(300)))
            ));
        }
        answers.push((case.name, status, headers, body));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    answers
}

// ---------------------------------------------------------------------------------------------
// Request building.

pub fn ts(ms: u64) -> String {
    ms.to_string()
}

/// HubSpot's v3 signature, computed by the support library (not by the verifier under test).
pub fn signature(method: &str, uri: &str, body: &[u8], timestamp: &str) -> String {
    signed::v3(SECRET, method, uri, body, timestamp)
}

/// A request as HubSpot sends it to `public_url_base + path_and_query`, signed at `at_ms`.
pub fn hubspot(
    method: &str,
    public_url_base: &str,
    host: &str,
    path_and_query: &str,
    body: impl Into<Vec<u8>>,
    at_ms: u64,
) -> Request<Body> {
    signed::hubspot(
        SECRET,
        method,
        public_url_base,
        host,
        path_and_query,
        body,
        at_ms,
    )
}

/// A webhook batch POSTed by HubSpot to the intake, signed now.
pub fn webhook(body: impl Into<Vec<u8>>) -> Request<Body> {
    webhook_at(body, NOW)
}

pub fn webhook_at(body: impl Into<Vec<u8>>, at_ms: u64) -> Request<Body> {
    hubspot(
        "POST",
        &format!("https://{HOOK_HOST}"),
        HOOK_HOST,
        WEBHOOK_PATH,
        body,
        at_ms,
    )
}

/// A relay request signed by HubSpot now.
pub fn relayed(method: &str, path_and_query: &str, body: impl Into<Vec<u8>>) -> Request<Body> {
    hubspot(
        method,
        RELAY_BASE,
        "bridge.example.com",
        path_and_query,
        body,
        NOW,
    )
}

/// A relay request HubSpot signed for `signed_path_and_query`, sent to `sent_path_and_query`
/// with the same signature and timestamp: the re-split and re-encoded forms of one signature.
pub fn resent(
    method: &str,
    signed_path_and_query: &str,
    sent_path_and_query: &str,
) -> Request<Body> {
    Shifted::of(method, signed_path_and_query, b"").to(sent_path_and_query)
}

/// A signed relay request sent with parts moved across the boundaries of the string v3 hashes
/// (`METHOD + URI' + body + timestamp`, nothing between them).
pub struct Shifted {
    request: Request<Body>,
}

impl Shifted {
    /// HubSpot's request: `path_and_query` with `body`, signed now.
    pub fn of(method: &str, path_and_query: &str, body: &[u8]) -> Self {
        Self {
            request: relayed(method, path_and_query, body.to_vec()),
        }
    }

    /// Sent to another raw URI, all else unchanged.
    pub fn to(mut self, path_and_query: &str) -> Request<Body> {
        *self.request.uri_mut() = path_and_query.parse().unwrap();
        self.request
    }

    /// Sent to another raw URI with another body.
    pub fn with_body(mut self, path_and_query: &str, body: &[u8]) -> Request<Body> {
        *self.request.body_mut() = Body::from(body.to_vec());
        self.to(path_and_query)
    }

    /// Sent to another raw URI with another timestamp header.
    pub fn with_timestamp(mut self, path_and_query: &str, timestamp: &str) -> Request<Body> {
        self.request.headers_mut().insert(
            HEADER_TIMESTAMP,
            http::HeaderValue::from_str(timestamp).unwrap(),
        );
        self.to(path_and_query)
    }
}

pub fn event_json(portal: u64, event_id: u64) -> String {
    format!(
        r#"{{"eventId":{event_id},"subscriptionId":12345,"portalId":{portal},"appId":54321,"occurredAt":{NOW},"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM"}}"#
    )
}

pub fn batch() -> String {
    format!("[{}]", event_json(PORTAL, 1))
}

pub fn without(mut request: Request<Body>, name: &str) -> Request<Body> {
    request.headers_mut().remove(name);
    request
}

/// Replaces a header's value.
pub fn with(mut request: Request<Body>, name: &'static str, value: &[u8]) -> Request<Body> {
    request.headers_mut().insert(
        HeaderName::from_static(name),
        HeaderValue::from_bytes(value).unwrap(),
    );
    request
}

/// Adds a second value to a header.
pub fn twice(mut request: Request<Body>, name: &'static str, value: &[u8]) -> Request<Body> {
    request.headers_mut().append(
        HeaderName::from_static(name),
        HeaderValue::from_bytes(value).unwrap(),
    );
    request
}

/// Repeats a header's own value as a second header line.
pub fn duplicated(request: Request<Body>, name: &'static str) -> Request<Body> {
    let value = request.headers().get(name).unwrap().as_bytes().to_vec();
    twice(request, name, &value)
}

pub fn get(uri: &str) -> http::request::Builder {
    Request::builder()
        .uri(uri)
        .header("host", "bridge.example.com")
}

// ---------------------------------------------------------------------------------------------
// The intake.

/// The in-memory deduper, counting the claims it grants (each is a write).
#[derive(Debug, Default)]
pub struct CountingDeduper {
    inner: InMemoryDeduper,
    claimed: AtomicUsize,
}

#[async_trait]
impl Deduper for CountingDeduper {
    async fn claim(
        &self,
        events: &[IntakeEntry],
        owner: &str,
        now_ms: u64,
        in_progress_ms: u64,
    ) -> Result<Vec<Claim>, DedupeError> {
        let claims = self
            .inner
            .claim(events, owner, now_ms, in_progress_ms)
            .await?;
        let granted = claims.iter().filter(|c| **c == Claim::Claimed).count();
        self.claimed.fetch_add(granted, Ordering::SeqCst);
        Ok(claims)
    }
    async fn complete(
        &self,
        events: &[IntakeEntry],
        owner: &str,
        now_ms: u64,
        horizon_ms: u64,
    ) -> Result<usize, DedupeError> {
        self.inner.complete(events, owner, now_ms, horizon_ms).await
    }
    async fn release(&self, keys: &[String], owner: &str) -> Result<usize, DedupeError> {
        self.inner.release(keys, owner).await
    }
    async fn state(&self, key: &str, now_ms: u64) -> Result<RecordState, DedupeError> {
        self.inner.state(key, now_ms).await
    }
}

pub struct Intake {
    router: Router,
    pub queue: Arc<InMemoryEventQueue>,
    pub deduper: Arc<CountingDeduper>,
    clock: ManualClock,
}

impl Intake {
    pub fn new() -> Self {
        Self::with_settings(IntakeSettings {
            signature_window_ms: WINDOW_MS,
            ..IntakeSettings::default()
        })
    }

    /// An intake whose webhook target URL carries this query string.
    pub fn expecting_query(query: &str) -> Self {
        Self::with_settings(IntakeSettings {
            signature_window_ms: WINDOW_MS,
            expected_query: Some(query.to_owned()),
            ..IntakeSettings::default()
        })
    }

    pub fn with_settings(settings: IntakeSettings) -> Self {
        init_test_logs();
        let accounts = InMemoryAccountDirectory::default();
        accounts.set(PORTAL, AccountStatus::Active);
        let queue = Arc::new(InMemoryEventQueue::default());
        let deduper = Arc::new(CountingDeduper::default());
        let clock = ManualClock::at(NOW);
        let state = IntakeState {
            settings,
            secrets: Arc::new(StaticSecretSource(app_credentials())),
            accounts: Arc::new(accounts),
            deduper: deduper.clone(),
            queue: queue.clone(),
            clock: Arc::new(clock.clone()),
            metrics: Metrics::capturing("hsbridge", "webhook-intake"),
        };
        Self {
            router: hsbridge_webhook_intake::app(state),
            queue,
            deduper,
            clock,
        }
    }
}

impl Route for Intake {
    fn router(&self) -> Router {
        self.router.clone()
    }
    fn clock(&self) -> &ManualClock {
        &self.clock
    }
    fn writes(&self) -> usize {
        self.queue.len() + self.deduper.claimed.load(Ordering::SeqCst)
    }
}

pub fn app_credentials() -> HubSpotApp {
    HubSpotApp {
        client_id: CLIENT_ID.into(),
        secrets: SecretSet::new(Secret::new(SECRET)).unwrap(),
    }
}

// ---------------------------------------------------------------------------------------------
// The OAuth install flow.

/// HubSpot's token endpoint as a script: `GOOD_CODE` is exchanged once (a code is single-use),
/// anything else is `invalid_grant`. Records the redirect URI of each exchange.
#[derive(Debug, Default)]
pub struct ScriptedHubSpot {
    pub exchanges: AtomicUsize,
    pub redirect_uris: Mutex<Vec<String>>,
    used: Mutex<Vec<String>>,
}

#[async_trait]
impl HubSpotOAuth for ScriptedHubSpot {
    async fn exchange_code(
        &self,
        _: &HubSpotApp,
        code: &str,
        redirect_uri: &str,
    ) -> Result<TokenGrant, OAuthError> {
        self.exchanges.fetch_add(1, Ordering::SeqCst);
        self.redirect_uris
            .lock()
            .unwrap()
            .push(redirect_uri.to_owned());
        let mut used = self.used.lock().unwrap();
        if code != GOOD_CODE || used.iter().any(|c| c == code) {
            return Err(OAuthError::InvalidGrant);
        }
        used.push(code.to_owned());
        Ok(TokenGrant {
            access_token: Secret::new("access-token-adversarial"),
            refresh_token: Some(Secret::new("refresh-token-adversarial")),
            expires_in: 1800,
            token_type: "bearer".into(),
            hub_id: Some(PORTAL),
            scopes: Some(vec!["oauth".into()]),
        })
    }
    async fn refresh(&self, _: &HubSpotApp, _: &Secret) -> Result<TokenGrant, OAuthError> {
        Err(OAuthError::Malformed("not scripted"))
    }
    async fn introspect(&self, _: &HubSpotApp, _: &Secret) -> Result<Introspection, OAuthError> {
        Err(OAuthError::Malformed("not scripted"))
    }
    async fn revoke(&self, _: &HubSpotApp, _: &Secret) -> Result<(), OAuthError> {
        Ok(())
    }
    async fn uninstall(&self, _: &Secret) -> Result<(), OAuthError> {
        Ok(())
    }
}

pub struct OAuth {
    router: Router,
    pub store: Arc<InMemoryAccountStore>,
    pub hubspot: Arc<ScriptedHubSpot>,
    clock: ManualClock,
}

impl OAuth {
    pub fn new() -> Self {
        Self::with_redirect_url(REDIRECT_URL)
    }

    /// The callback registered at `redirect_url` (e.g. under an API base path).
    pub fn with_redirect_url(redirect_url: &str) -> Self {
        init_test_logs();
        let store = Arc::new(InMemoryAccountStore::default());
        let hubspot = Arc::new(ScriptedHubSpot::default());
        let clock = ManualClock::at(NOW);
        let secrets = Arc::new(StaticSecretSource(app_credentials()));
        let vault = Vault::new(
            store.clone(),
            Arc::new(LocalKeyWrapper::random().unwrap()),
            hubspot.clone(),
            secrets.clone(),
            Arc::new(clock.clone()),
            VaultSettings::default(),
        );
        let state = CallbackState {
            settings: CallbackSettings {
                redirect_url: redirect_url.into(),
                scopes: vec!["oauth".into()],
                optional_scopes: vec![],
                app_base: APP_BASE.into(),
                cookie: CookieAttributes::host(),
            },
            secrets,
            oauth: hubspot.clone(),
            vault: Arc::new(vault),
            clock: Arc::new(clock.clone()),
        };
        Self {
            router: hsbridge_oauth_callback::app(state),
            store,
            hubspot,
            clock,
        }
    }
}

impl Route for OAuth {
    fn router(&self) -> Router {
        self.router.clone()
    }
    fn clock(&self) -> &ManualClock {
        &self.clock
    }
    fn writes(&self) -> usize {
        self.store.all().unwrap().len()
    }
    fn outbound(&self) -> usize {
        self.hubspot.exchanges.load(Ordering::SeqCst)
    }
}

pub fn oauth_state() -> OAuthState {
    OAuthState::from_random_bytes([0x42; 32])
}

/// A state cookie as `/oauth/install` sets it, issued at `at_ms`.
pub fn state_cookie(at_ms: u64) -> String {
    mint_state_cookie(
        &SecretSet::new(Secret::new(SECRET)).unwrap(),
        &oauth_state(),
        None,
        at_ms,
    )
    .unwrap()
}

/// HubSpot's redirect back to the callback with `query`, carrying `cookie` if any.
pub fn callback(query: &str, cookie: Option<&str>) -> Request<Body> {
    let mut builder = get(&format!("/oauth/callback?{query}"));
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", format!("{HOST_STATE_COOKIE_NAME}={cookie}"));
    }
    builder.body(Body::empty()).unwrap()
}

/// The callback a browser that started the install makes after HubSpot's consent.
pub fn good_callback() -> Request<Body> {
    callback(
        &format!("code={GOOD_CODE}&state={}", oauth_state().as_str()),
        Some(&state_cookie(NOW)),
    )
}

// ---------------------------------------------------------------------------------------------
// The relay.

const AKID: &str = "AKIDADVERSARIAL";
const SECRET_KEY: &str = "adversarial/secret/access/key";
const SESSION: &str = "adversarial-session-token";
pub const ROLE: &str = "arn:aws:sts::000000000000:assumed-role/hsbridge-relay/fn";

pub struct Relay {
    router: Router,
    pub upstream: RunningStandin,
    clock: ManualClock,
}

impl Relay {
    pub async fn new() -> Self {
        init_test_logs();
        let upstream = Standin::new(StandinConfig::new(
            "eu-west-1",
            vec![Credential {
                access_key_id: AKID.into(),
                secret_access_key: SECRET_KEY.into(),
                session_token: Some(SESSION.into()),
                principal_arn: ROLE.into(),
            }],
        ))
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
        let api = ProtectedApi::new(
            ProtectedApiConfig {
                base_url: format!("{}/prod", upstream.base_url),
                region: "eu-west-1".into(),
                timeout: Duration::from_secs(5),
                max_response_bytes: 64 * 1024,
            },
            SharedCredentialsProvider::new(Credentials::new(
                AKID,
                SECRET_KEY,
                Some(SESSION.into()),
                None,
                "adversarial",
            )),
        )
        .unwrap();
        let clock = ManualClock::at(NOW);
        let router = relay::app(RelayState {
            settings: RelaySettings {
                public_base: Some(PublicBase::parse(RELAY_BASE).unwrap()),
                max_body_bytes: 1024 * 1024,
                signature_window_ms: WINDOW_MS,
                target_prefix: "/hubspot/relay".to_owned(),
            },
            secrets: Arc::new(StaticSecretSource(app_credentials())),
            api,
            clock: Arc::new(clock.clone()),
            metrics: Metrics::capturing("hsbridge", "hubspot-relay"),
        });
        Self {
            router,
            upstream,
            clock,
        }
    }
}

impl Route for Relay {
    fn router(&self) -> Router {
        self.router.clone()
    }
    fn clock(&self) -> &ManualClock {
        &self.clock
    }
    fn writes(&self) -> usize {
        self.upstream.standin.recorded().len() + self.upstream.standin.rejected()
    }
}

/// `depth` nested arrays inside a batch.
pub fn deeply_nested(depth: usize) -> String {
    format!("[{}{}]", "[".repeat(depth), "]".repeat(depth))
}
