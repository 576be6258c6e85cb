//! The intake's configuration, read once at cold start.

use hsbridge_platform::config::{self, ConfigError, Vars};
use hsbridge_verify::{MAX_WINDOW_MS, PublicBase};
use std::time::Duration;

/// What the Router needs to decide about a request.
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// The public base URL HubSpot calls (custom domain, with any mapping key); `None` means
    /// rebuild it from `Host` and `X-Forwarded-Proto`.
    pub public_base: Option<PublicBase>,
    pub max_body_bytes: usize,
    pub max_events: usize,
    /// Accept v1-only requests (no timestamp) on this route.
    pub allow_v1: bool,
    pub signature_window_ms: u64,
    /// How long an event's dedupe record lasts: longer than HubSpot's 24 h retry horizon.
    pub dedupe_horizon: Duration,
    /// How long a claim may stay in progress before another delivery may take it over.
    pub in_progress_ttl: Duration,
    /// How long the event log keeps each event's path (the dedupe record carries it: the
    /// record lives for the longer of this and the dedupe horizon).
    pub event_log_retention: Duration,
    /// The whole request's time budget (HubSpot waits 5 s).
    pub request_budget: Duration,
    /// On a signature mismatch, log at debug level which known mangling explains it.
    pub explain_rejections: bool,
    /// The exact raw query string of the app's webhook target URL, if it has one. HubSpot
    /// sends none on webhooks; `hubspot.fetch` requests, signed with the same client secret,
    /// carry the caller's context (`portalId`, `userId`, ...) in theirs, so any other query
    /// marks a request that is not a webhook delivery to this target.
    pub expected_query: Option<String>,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            public_base: None,
            max_body_bytes: 1024 * 1024,
            max_events: 100,
            allow_v1: false,
            signature_window_ms: MAX_WINDOW_MS,
            dedupe_horizon: Duration::from_secs(72 * 3600),
            in_progress_ttl: Duration::from_secs(10),
            event_log_retention: hsbridge_platform::event_log::DEFAULT_RETENTION,
            request_budget: Duration::from_millis(3_000),
            explain_rejections: false,
            expected_query: None,
        }
    }
}

/// Bounds of `HSBRIDGE_REQUEST_BUDGET_MS`: long enough for the AWS calls' own timeouts, short
/// enough that the handler answers (503 at worst) before the 4 s Lambda timeout.
pub const MIN_BUDGET_MS: u64 = 1_000;
pub const MAX_BUDGET_MS: u64 = 3_500;

/// `HSBRIDGE_WEBHOOK_QUERY`: a raw query string as it appears after `?` in the target URL.
fn expected_query(vars: &dyn Vars) -> Result<Option<String>, ConfigError> {
    let Some(query) = config::optional(vars, "HSBRIDGE_WEBHOOK_QUERY") else {
        return Ok(None);
    };
    let plain = !query.starts_with('?')
        && query
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'#' && b != b'"' && b != b'<' && b != b'>');
    if !plain {
        return Err(ConfigError::Invalid {
            name: "HSBRIDGE_WEBHOOK_QUERY",
            reason: "expected the query string of the webhook target URL exactly as configured in HubSpot, without the leading ?".to_owned(),
        });
    }
    Ok(Some(query))
}

/// Everything the deployed function needs.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    pub settings: IntakeSettings,
    pub secret_id: String,
    pub secret_grace: Duration,
    pub dedupe_table: String,
    pub accounts_table: String,
    pub queue_url: String,
}

impl IntakeConfig {
    /// Every variable [`IntakeConfig::from_env`] reads (a unit test proves it reads no other).
    pub const VARIABLES: &[&str] = &[
        "HSBRIDGE_PUBLIC_BASE_URL",
        "HSBRIDGE_SIGNATURE_WINDOW_MS",
        "HSBRIDGE_MAX_BODY_BYTES",
        "HSBRIDGE_DEDUPE_HORIZON_SECONDS",
        "HSBRIDGE_REQUEST_BUDGET_MS",
        "HSBRIDGE_MAX_EVENTS",
        "HSBRIDGE_ALLOW_V1",
        "HSBRIDGE_EXPLAIN_REJECTIONS",
        "HSBRIDGE_WEBHOOK_QUERY",
        "HSBRIDGE_HUBSPOT_SECRET_ID",
        "HSBRIDGE_SECRET_GRACE_SECONDS",
        "HSBRIDGE_DEDUPE_TABLE",
        "HSBRIDGE_ACCOUNTS_TABLE",
        "HSBRIDGE_EVENTS_QUEUE_URL",
        "HSBRIDGE_EVENT_LOG_RETENTION_DAYS",
    ];

    pub fn from_env(vars: &dyn Vars) -> Result<Self, ConfigError> {
        let defaults = IntakeSettings::default();
        let public_base = config::public_base(vars)?;
        let window = config::parsed(vars, "HSBRIDGE_SIGNATURE_WINDOW_MS", MAX_WINDOW_MS)?;
        if window == 0 || window > MAX_WINDOW_MS {
            return Err(ConfigError::Invalid {
                name: "HSBRIDGE_SIGNATURE_WINDOW_MS",
                reason: format!("must be between 1 and {MAX_WINDOW_MS} (HubSpot's 5 minutes)"),
            });
        }
        let max_body_bytes =
            config::parsed(vars, "HSBRIDGE_MAX_BODY_BYTES", defaults.max_body_bytes)?;
        if max_body_bytes == 0 {
            return Err(ConfigError::Invalid {
                name: "HSBRIDGE_MAX_BODY_BYTES",
                reason: "must be positive".to_owned(),
            });
        }
        let horizon_secs = config::parsed(
            vars,
            "HSBRIDGE_DEDUPE_HORIZON_SECONDS",
            defaults.dedupe_horizon.as_secs(),
        )?;
        if horizon_secs < 24 * 3600 {
            return Err(ConfigError::Invalid {
                name: "HSBRIDGE_DEDUPE_HORIZON_SECONDS",
                reason: "must be at least 86400 (HubSpot retries for 24 hours)".to_owned(),
            });
        }
        let budget_ms = config::parsed(
            vars,
            "HSBRIDGE_REQUEST_BUDGET_MS",
            u64::try_from(defaults.request_budget.as_millis()).unwrap_or(u64::MAX),
        )?;
        if !(MIN_BUDGET_MS..=MAX_BUDGET_MS).contains(&budget_ms) {
            return Err(ConfigError::Invalid {
                name: "HSBRIDGE_REQUEST_BUDGET_MS",
                reason: format!(
                    "must be between {MIN_BUDGET_MS} and {MAX_BUDGET_MS}: HubSpot waits 5 s, and the Lambda timeout (4 s) must end after the handler has answered"
                ),
            });
        }
        let settings = IntakeSettings {
            public_base,
            request_budget: Duration::from_millis(budget_ms),
            max_body_bytes,
            max_events: config::parsed(vars, "HSBRIDGE_MAX_EVENTS", defaults.max_events)?,
            allow_v1: config::flag(vars, "HSBRIDGE_ALLOW_V1", false)?,
            signature_window_ms: window,
            dedupe_horizon: Duration::from_secs(horizon_secs),
            event_log_retention: config::event_log_retention(vars)?,
            explain_rejections: config::flag(vars, "HSBRIDGE_EXPLAIN_REJECTIONS", false)?,
            expected_query: expected_query(vars)?,
            ..defaults
        };
        Ok(Self {
            settings,
            secret_id: config::required(
                vars,
                "HSBRIDGE_HUBSPOT_SECRET_ID",
                "set it to the name or ARN of the Secrets Manager secret holding client_id and client_secret",
            )?,
            secret_grace: config::secret_grace(vars)?,
            dedupe_table: config::required(
                vars,
                "HSBRIDGE_DEDUPE_TABLE",
                "set it to the DynamoDB table that records delivered webhook events",
            )?,
            accounts_table: config::required(
                vars,
                "HSBRIDGE_ACCOUNTS_TABLE",
                "set it to the DynamoDB table of installed HubSpot accounts",
            )?,
            queue_url: config::required(
                vars,
                "HSBRIDGE_EVENTS_QUEUE_URL",
                "set it to the URL of the SQS queue that receives accepted events",
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn required_vars() -> HashMap<String, String> {
        [
            ("HSBRIDGE_HUBSPOT_SECRET_ID", "hsbridge/hubspot-app"),
            ("HSBRIDGE_DEDUPE_TABLE", "dedupe"),
            ("HSBRIDGE_ACCOUNTS_TABLE", "accounts"),
            ("HSBRIDGE_EVENTS_QUEUE_URL", "http://queue"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn defaults_follow_hubspots_limits() {
        let c = IntakeConfig::from_env(&required_vars()).unwrap();
        assert_eq!(c.settings.max_body_bytes, 1024 * 1024);
        assert_eq!(c.settings.max_events, 100);
        assert!(!c.settings.allow_v1);
        assert_eq!(c.settings.dedupe_horizon, Duration::from_secs(72 * 3600));
        assert_eq!(c.secret_grace, Duration::from_secs(24 * 3600));
        assert_eq!(c.settings.request_budget, Duration::from_secs(3));
        assert_eq!(
            c.settings.event_log_retention,
            Duration::from_secs(7 * 86_400)
        );
    }

    #[test]
    fn an_event_log_retention_beyond_its_bounds_is_refused_by_name() {
        for days in ["0", "91", "a week"] {
            let mut vars = required_vars();
            vars.insert("HSBRIDGE_EVENT_LOG_RETENTION_DAYS".into(), days.into());
            let err = IntakeConfig::from_env(&vars).unwrap_err().to_string();
            assert!(err.contains("HSBRIDGE_EVENT_LOG_RETENTION_DAYS"), "{err}");
        }
    }

    #[test]
    fn the_request_budget_must_end_before_the_lambda_timeout() {
        let mut vars = required_vars();
        vars.insert("HSBRIDGE_REQUEST_BUDGET_MS".into(), "4000".into());
        let err = IntakeConfig::from_env(&vars).unwrap_err().to_string();
        assert!(err.contains("HSBRIDGE_REQUEST_BUDGET_MS"), "{err}");
        vars.insert("HSBRIDGE_REQUEST_BUDGET_MS".into(), "2500".into());
        assert_eq!(
            IntakeConfig::from_env(&vars)
                .unwrap()
                .settings
                .request_budget,
            Duration::from_millis(2500)
        );
    }

    #[test]
    fn a_missing_queue_url_stops_the_cold_start_with_its_name() {
        let mut vars = required_vars();
        vars.remove("HSBRIDGE_EVENTS_QUEUE_URL");
        let err = IntakeConfig::from_env(&vars).unwrap_err();
        assert!(err.to_string().contains("HSBRIDGE_EVENTS_QUEUE_URL"));
    }

    #[test]
    fn the_signature_window_can_only_be_narrowed() {
        let mut vars = required_vars();
        vars.insert("HSBRIDGE_SIGNATURE_WINDOW_MS".into(), "600000".into());
        assert!(IntakeConfig::from_env(&vars).is_err());
        vars.insert("HSBRIDGE_SIGNATURE_WINDOW_MS".into(), "60000".into());
        assert_eq!(
            IntakeConfig::from_env(&vars)
                .unwrap()
                .settings
                .signature_window_ms,
            60_000
        );
    }

    #[test]
    fn explaining_rejections_is_off_unless_switched_on() {
        assert!(
            !IntakeConfig::from_env(&required_vars())
                .unwrap()
                .settings
                .explain_rejections
        );
        let mut vars = required_vars();
        vars.insert("HSBRIDGE_EXPLAIN_REJECTIONS".into(), "true".into());
        assert!(
            IntakeConfig::from_env(&vars)
                .unwrap()
                .settings
                .explain_rejections
        );
        vars.insert("HSBRIDGE_EXPLAIN_REJECTIONS".into(), "sometimes".into());
        let err = IntakeConfig::from_env(&vars).unwrap_err();
        assert!(err.to_string().contains("HSBRIDGE_EXPLAIN_REJECTIONS"));
    }

    #[test]
    fn from_env_reads_exactly_the_listed_variables() {
        let mut every = required_vars();
        for (name, value) in [
            ("HSBRIDGE_PUBLIC_BASE_URL", "https://hooks.example.com"),
            ("HSBRIDGE_WEBHOOK_QUERY", "a=b"),
            ("HSBRIDGE_ALLOW_V1", "false"),
        ] {
            every.insert(name.into(), value.into());
        }
        let read = config::names_read(&[&required_vars(), &every], |vars| {
            IntakeConfig::from_env(vars).unwrap();
        });
        let listed: std::collections::BTreeSet<String> = IntakeConfig::VARIABLES
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        assert_eq!(read, listed);
    }

    #[test]
    fn a_dedupe_horizon_shorter_than_hubspots_retries_is_refused() {
        let mut vars = required_vars();
        vars.insert("HSBRIDGE_DEDUPE_HORIZON_SECONDS".into(), "3600".into());
        assert!(IntakeConfig::from_env(&vars).is_err());
    }
}
