//! The HubSpot app's credentials: `client_id` and the set of client secrets a request may be
//! signed with. In AWS they live in one Secrets Manager secret (JSON `{"client_id", "client_secret"}`);
//! the `AWSCURRENT` version is always used, and `AWSPREVIOUS` too while the current version is
//! younger than a grace period, so rotating the secret breaks no in-flight webhook or install.
//!
//! Values are cached in memory for a short TTL and never logged: they live in
//! `hsbridge_verify::Secret`, whose `Debug` is redacted.

use crate::clock::Clock;
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use hsbridge_verify::{Secret, SecretSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

pub const STAGE_CURRENT: &str = "AWSCURRENT";
pub const STAGE_PREVIOUS: &str = "AWSPREVIOUS";

/// The HubSpot app: its public client id and the secrets it may sign with.
#[derive(Debug, Clone)]
pub struct HubSpotApp {
    pub client_id: String,
    pub secrets: SecretSet,
}

/// Why the app's credentials could not be had. Carries no secret material.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the HubSpot app secret was not found; create it or fix HSBRIDGE_HUBSPOT_SECRET_ID")]
    NotFound,
    #[error("the HubSpot app secret could not be read")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the HubSpot app secret is not valid: {0}")]
    Invalid(&'static str),
}

/// Port: where the app's credentials come from.
#[async_trait]
pub trait SecretSource: Send + Sync + std::fmt::Debug {
    async fn hubspot_app(&self) -> Result<HubSpotApp, SecretError>;
}

/// Embedded adapter: credentials given at start-up (local stack, tests).
#[derive(Debug, Clone)]
pub struct StaticSecretSource(pub HubSpotApp);

#[async_trait]
impl SecretSource for StaticSecretSource {
    async fn hubspot_app(&self) -> Result<HubSpotApp, SecretError> {
        Ok(self.0.clone())
    }
}

/// The JSON document stored in the secret.
#[derive(serde::Deserialize)]
struct AppSecretDocument {
    client_id: String,
    client_secret: Secret,
}

impl std::fmt::Debug for AppSecretDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSecretDocument")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// What template.yaml creates the app secret with, before `hsbridge secret set` fills it in.
/// Published in the template, so it must never verify a signature: a secret still holding it is
/// refused as invalid (requests fail with 5xx, HubSpot retries), and a previous version holding
/// it is ignored.
pub const PLACEHOLDER: &str = "REPLACE_ME";

fn parse_document(text: &str) -> Result<AppSecretDocument, SecretError> {
    let doc: AppSecretDocument = serde_json::from_str(text)
        .map_err(|_| SecretError::Invalid("expected JSON with client_id and client_secret"))?;
    // Compared trimmed: the placeholder with a stray space or newline is as public as itself.
    if doc.client_id.trim() == PLACEHOLDER || doc.client_secret.expose().trim() == PLACEHOLDER {
        return Err(SecretError::Invalid(
            "the app secret still holds the stack's placeholder; fill it with `hsbridge secret set`",
        ));
    }
    if doc.client_id.trim().is_empty() {
        return Err(SecretError::Invalid("client_id is empty"));
    }
    if doc.client_secret.expose().trim().is_empty() {
        return Err(SecretError::Invalid(
            "client_secret is empty or only whitespace",
        ));
    }
    Ok(doc)
}

/// Settings of the Secrets Manager adapter.
#[derive(Debug, Clone, Copy)]
pub struct SecretCachePolicy {
    /// How long a fetched value is used before it is fetched again.
    pub ttl: Duration,
    /// How long after a rotation the previous secret is still accepted.
    pub grace: Duration,
    /// How long a cached value may still be served when Secrets Manager cannot be reached.
    pub stale_limit: Duration,
}

impl Default for SecretCachePolicy {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(60),
            grace: Duration::from_secs(24 * 3600),
            stale_limit: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug)]
struct Cached {
    fetched_at_ms: u64,
    app: HubSpotApp,
}

/// AWS adapter: Secrets Manager, every read naming its version stage.
#[derive(Debug)]
pub struct SecretsManagerSource {
    client: Client,
    secret_id: String,
    policy: SecretCachePolicy,
    clock: Arc<dyn Clock>,
    // Held across the fetch so that a cold cache causes one read, not one per request.
    cache: Mutex<Option<Cached>>,
}

impl SecretsManagerSource {
    pub fn new(
        client: Client,
        secret_id: impl Into<String>,
        policy: SecretCachePolicy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
            policy,
            clock,
            cache: Mutex::new(None),
        }
    }

    async fn fetch(&self, now_ms: u64) -> Result<HubSpotApp, SecretError> {
        let current = self
            .read_stage(STAGE_CURRENT)
            .await?
            .ok_or(SecretError::NotFound)?;
        let doc = parse_document(current.secret_string().unwrap_or_default())?;
        let mut secrets = SecretSet::new(doc.client_secret)
            .map_err(|_| SecretError::Invalid("client_secret is empty"))?;

        let current_created_ms = current
            .created_date()
            .and_then(|d| d.to_millis().ok())
            .and_then(|ms| u64::try_from(ms).ok());
        let grace_ms = u64::try_from(self.policy.grace.as_millis()).unwrap_or(u64::MAX);
        // Unknown creation time: accept the previous secret rather than break a rotation.
        let within_grace =
            current_created_ms.is_none_or(|created| now_ms.saturating_sub(created) < grace_ms);
        // A malformed previous version is ignored: the current one still works.
        if within_grace
            && let Some(previous) = self.read_stage(STAGE_PREVIOUS).await?
            && let Ok(prev) = parse_document(previous.secret_string().unwrap_or_default())
            && prev.client_secret != *secrets.current()
        {
            secrets = secrets
                .with_previous(prev.client_secret)
                .map_err(|_| SecretError::Invalid("previous client_secret is empty"))?;
        }
        Ok(HubSpotApp {
            client_id: doc.client_id,
            secrets,
        })
    }

    /// One stage of the secret; `None` when that stage does not exist.
    async fn read_stage(&self, stage: &str) -> Result<Option<GetSecretValueOutput>, SecretError> {
        match self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out)),
            Err(err) => {
                let not_found = err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception());
                if not_found {
                    Ok(None)
                } else {
                    Err(SecretError::Unavailable(Box::new(err)))
                }
            }
        }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn hubspot_app(&self) -> Result<HubSpotApp, SecretError> {
        let now_ms = self.clock.now_ms();
        let ttl_ms = u64::try_from(self.policy.ttl.as_millis()).unwrap_or(u64::MAX);
        let stale_ms = u64::try_from(self.policy.stale_limit.as_millis()).unwrap_or(u64::MAX);
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && now_ms.saturating_sub(c.fetched_at_ms) < ttl_ms
        {
            return Ok(c.app.clone());
        }
        match self.fetch(now_ms).await {
            Ok(app) => {
                *cache = Some(Cached {
                    fetched_at_ms: now_ms,
                    app: app.clone(),
                });
                Ok(app)
            }
            Err(SecretError::Unavailable(source)) => match cache.as_ref() {
                // A passing outage: keep verifying with what we had, for a bounded time.
                Some(c) if now_ms.saturating_sub(c.fetched_at_ms) < stale_ms => {
                    tracing::warn!(error = %source, "secrets manager unreachable; using the cached app secret");
                    Ok(c.app.clone())
                }
                _ => Err(SecretError::Unavailable(source)),
            },
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PLACEHOLDER, parse_document};

    #[test]
    fn the_templates_placeholder_is_never_a_usable_secret() {
        for doc in [
            format!(r#"{{"client_id":"{PLACEHOLDER}","client_secret":"{PLACEHOLDER}"}}"#),
            format!(r#"{{"client_id":"app-1","client_secret":"{PLACEHOLDER}"}}"#),
            format!(r#"{{"client_id":"{PLACEHOLDER}","client_secret":"s3cret-value"}}"#),
            format!(r#"{{"client_id":"app-1","client_secret":" {PLACEHOLDER}\n"}}"#),
            format!(r#"{{"client_id":"{PLACEHOLDER} ","client_secret":"s3cret-value"}}"#),
        ] {
            let err = parse_document(&doc).unwrap_err().to_string();
            assert!(err.contains("hsbridge secret set"), "{err}");
        }
        assert!(parse_document(r#"{"client_id":"app-1","client_secret":"s3cret-value"}"#).is_ok());
    }

    #[test]
    fn a_blank_client_secret_is_never_a_usable_secret() {
        for secret in ["", " ", "\\t\\n", "\\u00a0"] {
            let doc = format!(r#"{{"client_id":"app-1","client_secret":"{secret}"}}"#);
            let err = parse_document(&doc).unwrap_err().to_string();
            assert!(err.contains("client_secret is empty"), "{secret:?}: {err}");
        }
    }
}
