//! The api-caller's and the relay's configuration, read once at cold start.

use crate::limits::LimitSettings;
use crate::protected::{ProtectedApiConfig, canonical_path};
use hsbridge_platform::config::{self, ConfigError, Vars};
use hsbridge_vault::VaultConfig;
use hsbridge_verify::{MAX_WINDOW_MS, PublicBase};
use std::time::Duration;

/// The protected API, as both functions reach it.
pub fn protected_api(
    vars: &dyn Vars,
    default_timeout_ms: u64,
    timeout_var: &'static str,
) -> Result<ProtectedApiConfig, ConfigError> {
    let base = config::required(
        vars,
        "HSBRIDGE_PROTECTED_API_URL",
        "set it to the protected API's invoke URL, e.g. https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
    )?;
    let base = base.trim_end_matches('/').to_owned();
    let scheme_ok = base.starts_with("https://") || base.starts_with("http://");
    if !scheme_ok || base.parse::<http::Uri>().is_err() || base.contains(['?', '#']) {
        return Err(ConfigError::Invalid {
            name: "HSBRIDGE_PROTECTED_API_URL",
            reason: "expected an http(s) URL without query or fragment".to_owned(),
        });
    }
    let region = config::optional(vars, "HSBRIDGE_PROTECTED_API_REGION")
        .or_else(|| config::optional(vars, "AWS_REGION"))
        .ok_or(ConfigError::Missing {
            name: "HSBRIDGE_PROTECTED_API_REGION",
            hint: "set it (or AWS_REGION) to the protected API's region",
        })?;
    let timeout_ms = config::parsed(vars, timeout_var, default_timeout_ms)?;
    if timeout_ms == 0 {
        return Err(ConfigError::Invalid {
            name: timeout_var,
            reason: "must be positive".to_owned(),
        });
    }
    Ok(ProtectedApiConfig {
        base_url: base,
        region,
        timeout: Duration::from_millis(timeout_ms),
        max_response_bytes: 1024 * 1024,
    })
}

/// The relay's configuration.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub protected: ProtectedApiConfig,
    pub secret_id: String,
    pub secret_grace: Duration,
    pub public_base: Option<PublicBase>,
    pub max_body_bytes: usize,
    pub signature_window_ms: u64,
    /// Canonical path below the protected API's base URL under which every relayed request is
    /// forwarded (`/hubspot/relay` by default): the relay can reach nothing else.
    pub target_prefix: String,
}

/// The default of `HSBRIDGE_RELAY_TARGET_PREFIX`.
pub const DEFAULT_RELAY_TARGET_PREFIX: &str = "/hubspot/relay";
/// The default of `HSBRIDGE_EVENTS_PATH`.
pub const DEFAULT_EVENTS_PATH: &str = "/hubspot/events";

/// The events route below the protected API's base URL, in canonical form. The relay reads it
/// too, only to refuse a prefix that would let it reach that route.
pub fn events_path(vars: &dyn Vars) -> Result<String, ConfigError> {
    let events_path = config::optional(vars, "HSBRIDGE_EVENTS_PATH")
        .unwrap_or_else(|| DEFAULT_EVENTS_PATH.to_owned());
    match canonical_path(&events_path) {
        Ok(p) if events_path.starts_with('/') && p == events_path => Ok(p),
        _ => Err(ConfigError::Invalid {
            name: "HSBRIDGE_EVENTS_PATH",
            reason: "expected a path such as /hubspot/events, with only A-Z a-z 0-9 - _ . ~ and / (or %XX escapes in upper case)".to_owned(),
        }),
    }
}

/// `HSBRIDGE_RELAY_TARGET_PREFIX`: one or more segments, canonical, no trailing `/`, and not a
/// prefix of the events route (the protected API must be able to tell a relayed call from a
/// delivered event by its path alone, and IAM grants each role only its own routes).
fn relay_target_prefix(vars: &dyn Vars, events_path: &str) -> Result<String, ConfigError> {
    let name = "HSBRIDGE_RELAY_TARGET_PREFIX";
    let prefix =
        config::optional(vars, name).unwrap_or_else(|| DEFAULT_RELAY_TARGET_PREFIX.to_owned());
    let canonical = canonical_path(&prefix).ok();
    if !(prefix.starts_with('/')
        && prefix.len() > 1
        && !prefix.ends_with('/')
        && canonical.as_deref() == Some(prefix.as_str()))
    {
        return Err(ConfigError::Invalid {
            name,
            reason: "expected a path such as /hubspot/relay: one or more segments of A-Z a-z 0-9 - _ . ~, no trailing /".to_owned(),
        });
    }
    let events_below = events_path == prefix
        || events_path
            .strip_prefix(prefix.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
    if events_below {
        return Err(ConfigError::Invalid {
            name,
            reason: format!(
                "{prefix} contains the events route HSBRIDGE_EVENTS_PATH={events_path}: the relay must not reach the route events are delivered to"
            ),
        });
    }
    Ok(prefix)
}

/// Requests per 10 s that are safe on every HubSpot tier, and what HubSpot's certification
/// reviewers suggest throttling to.
pub const SAFE_RATE_LIMIT: u32 = 100;

/// The per-account budget: `HSBRIDGE_HUBSPOT_RATE_LIMIT` when set, else what the app's
/// distribution allows (`HSBRIDGE_HUBSPOT_DISTRIBUTION`, with `HSBRIDGE_HUBSPOT_ACCOUNT_TIER`
/// for a private app), else [`SAFE_RATE_LIMIT`]. HubSpot's figures
/// (<https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines>): a
/// marketplace OAuth app gets 110 requests per 10 s per installed account, whatever the
/// account's subscription; a privately distributed app gets its installing account's limits,
/// shared with every other app there: 100 per 10 s on Free and Starter, 190 on Professional and
/// Enterprise, 250 with the API limit increase
/// (<https://developers.hubspot.com/changelog/increasing-our-api-limits>).
pub fn rate_limit(vars: &dyn Vars) -> Result<u32, ConfigError> {
    let distribution = config::optional(vars, "HSBRIDGE_HUBSPOT_DISTRIBUTION");
    let tier = config::optional(vars, "HSBRIDGE_HUBSPOT_ACCOUNT_TIER");
    let by_distribution = match (distribution.as_deref(), tier.as_deref()) {
        (None, None) => SAFE_RATE_LIMIT,
        (None, Some(_)) | (Some("marketplace"), Some(_)) => {
            return Err(ConfigError::Invalid {
                name: "HSBRIDGE_HUBSPOT_ACCOUNT_TIER",
                reason: "applies to a privately distributed app only: set HSBRIDGE_HUBSPOT_DISTRIBUTION=private, or remove it".to_owned(),
            });
        }
        (Some("marketplace"), None) => 110,
        (Some("private"), None | Some("starter")) => SAFE_RATE_LIMIT,
        (Some("private"), Some("professional")) => 190,
        (Some("private"), Some("api-limit-increase")) => 250,
        (Some("private"), Some(other)) => {
            return Err(ConfigError::Invalid {
                name: "HSBRIDGE_HUBSPOT_ACCOUNT_TIER",
                reason: format!(
                    "`{other}` is not a tier; use starter (Free and Starter: 100 per 10 s), professional (Professional and Enterprise: 190) or api-limit-increase (250)"
                ),
            });
        }
        (Some(other), _) => {
            return Err(ConfigError::Invalid {
                name: "HSBRIDGE_HUBSPOT_DISTRIBUTION",
                reason: format!(
                    "`{other}` is not a distribution; use marketplace or private (unset: {SAFE_RATE_LIMIT} per 10 s, safe on every tier)"
                ),
            });
        }
    };
    config::parsed(vars, "HSBRIDGE_HUBSPOT_RATE_LIMIT", by_distribution)
}

/// The relay's call to the protected API ends by this at the latest: API Gateway's HTTP API
/// stops waiting for the relay function at 30 s, which leaves a second for verifying and
/// answering. HubSpot waits 15 s for a `hubspot.fetch` unless the card passes a longer
/// `timeout` (up to 120 s): a relay timeout above 14 s needs the card to ask for more, see the
/// README. <https://developers.hubspot.com/docs/apps/developer-platform/add-features/ui-extensibility/fetching-data>
pub const RELAY_TIMEOUT_LIMIT_MS: u64 = 29_000;

impl RelayConfig {
    /// Every variable [`RelayConfig::from_env`] reads (a unit test proves it reads no other).
    pub const VARIABLES: &[&str] = &[
        "HSBRIDGE_PROTECTED_API_URL",
        "HSBRIDGE_PROTECTED_API_REGION",
        "AWS_REGION",
        "HSBRIDGE_RELAY_TIMEOUT_MS",
        "HSBRIDGE_PUBLIC_BASE_URL",
        "HSBRIDGE_RELAY_MAX_BODY_BYTES",
        "HSBRIDGE_HUBSPOT_SECRET_ID",
        "HSBRIDGE_SECRET_GRACE_SECONDS",
        "HSBRIDGE_EVENTS_PATH",
        "HSBRIDGE_RELAY_TARGET_PREFIX",
    ];

    pub fn from_env(vars: &dyn Vars) -> Result<Self, ConfigError> {
        let protected = protected_api(vars, 10_000, "HSBRIDGE_RELAY_TIMEOUT_MS")?;
        if protected.timeout > Duration::from_millis(RELAY_TIMEOUT_LIMIT_MS) {
            return Err(ConfigError::Invalid {
                name: "HSBRIDGE_RELAY_TIMEOUT_MS",
                reason: format!(
                    "must be at most {RELAY_TIMEOUT_LIMIT_MS}: API Gateway's HTTP API stops waiting for the relay at 30 s"
                ),
            });
        }
        let public_base = config::public_base(vars)?;
        let max_body_bytes = config::parsed(vars, "HSBRIDGE_RELAY_MAX_BODY_BYTES", 1024 * 1024)?;
        if max_body_bytes == 0 {
            return Err(ConfigError::Invalid {
                name: "HSBRIDGE_RELAY_MAX_BODY_BYTES",
                reason: "must be positive".to_owned(),
            });
        }
        Ok(Self {
            protected,
            secret_id: config::required(
                vars,
                "HSBRIDGE_HUBSPOT_SECRET_ID",
                "set it to the name or ARN of the Secrets Manager secret holding client_id and client_secret",
            )?,
            secret_grace: config::secret_grace(vars)?,
            public_base,
            max_body_bytes,
            signature_window_ms: MAX_WINDOW_MS,
            target_prefix: relay_target_prefix(vars, &events_path(vars)?)?,
        })
    }
}

/// The queue consumer's configuration.
#[derive(Debug, Clone)]
pub struct CallerConfig {
    pub protected: ProtectedApiConfig,
    /// Canonical path of the events route below the protected API's base URL.
    pub events_path: String,
    pub accounts_table: String,
    /// Present when CRM properties are to be fetched for each event.
    pub enrichment: Option<EnrichmentConfig>,
    /// The protected API is the stack's demo API, which answers and discards every event
    /// (`HSBRIDGE_PROTECTED_API_IS_DEMO`); said once at cold start.
    pub protected_is_demo: bool,
    /// The event log's table (the dedupe table), where each message's outcome is recorded
    /// (`HSBRIDGE_EVENT_LOG_TABLE`); without it nothing is recorded.
    pub event_log_table: Option<String>,
    pub event_log_retention: Duration,
    /// Where alerts go (`HSBRIDGE_ALERTS`).
    pub alerts: AlertsConfig,
    /// The events queue's `maxReceiveCount` (`HSBRIDGE_MAX_RECEIVE_COUNT`): a message failing
    /// its receive number this is on its way to the dead-letter queue. Unset: not known, and no
    /// dead-letter alert is raised.
    pub max_receive_count: Option<u32>,
}

/// Where the api-caller's alerts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertsConfig {
    /// `HSBRIDGE_ALERTS=off` (the default): logged only.
    Off,
    /// `HSBRIDGE_ALERTS=eventbridge`: `PutEvents` to the default bus, each call bounded by
    /// `timeout` (`HSBRIDGE_ALERT_TIMEOUT_MS`, 1000 by default).
    EventBridge {
        /// `HSBRIDGE_STACK_NAME`, carried in each alert so one rule can tell stacks apart.
        stack: Option<String>,
        timeout: Duration,
    },
}

impl AlertsConfig {
    pub fn from_env(vars: &dyn Vars) -> Result<Self, ConfigError> {
        match config::optional(vars, "HSBRIDGE_ALERTS").as_deref() {
            None | Some("off") => Ok(Self::Off),
            Some("eventbridge") => {
                let timeout_ms = config::parsed(vars, "HSBRIDGE_ALERT_TIMEOUT_MS", 1_000u64)?;
                if timeout_ms == 0 || timeout_ms > 10_000 {
                    return Err(ConfigError::Invalid {
                        name: "HSBRIDGE_ALERT_TIMEOUT_MS",
                        reason: "must be between 1 and 10000 (an alert never holds up a delivery for long)".to_owned(),
                    });
                }
                Ok(Self::EventBridge {
                    stack: config::optional(vars, "HSBRIDGE_STACK_NAME"),
                    timeout: Duration::from_millis(timeout_ms),
                })
            }
            Some(other) => Err(ConfigError::Invalid {
                name: "HSBRIDGE_ALERTS",
                reason: format!("`{other}` is not an alert target; use eventbridge or off"),
            }),
        }
    }
}

/// What enrichment needs: the vault (tokens), the limits table, HubSpot's base and limits.
#[derive(Debug, Clone)]
pub struct EnrichmentConfig {
    pub properties: Vec<String>,
    pub vault: VaultConfig,
    pub secret_grace: Duration,
    pub rate_table: String,
    pub limits: LimitSettings,
}

impl CallerConfig {
    /// Every variable [`CallerConfig::from_env`] reads with enrichment on and off, besides
    /// [`VaultConfig::VARIABLES`] (enrichment's vault; a unit test proves it reads no other).
    pub const VARIABLES: &[&str] = &[
        "HSBRIDGE_PROTECTED_API_URL",
        "HSBRIDGE_PROTECTED_API_REGION",
        "AWS_REGION",
        "HSBRIDGE_PROTECTED_API_TIMEOUT_MS",
        "HSBRIDGE_EVENTS_PATH",
        "HSBRIDGE_ENRICH_PROPERTIES",
        "HSBRIDGE_HUBSPOT_DISTRIBUTION",
        "HSBRIDGE_HUBSPOT_ACCOUNT_TIER",
        "HSBRIDGE_HUBSPOT_RATE_LIMIT",
        "HSBRIDGE_HUBSPOT_RATE_WINDOW_MS",
        "HSBRIDGE_BREAKER_THRESHOLD",
        "HSBRIDGE_BREAKER_COOLDOWN_MS",
        "HSBRIDGE_ACCOUNTS_TABLE",
        "HSBRIDGE_SECRET_GRACE_SECONDS",
        "HSBRIDGE_RATE_TABLE",
        "HSBRIDGE_PROTECTED_API_IS_DEMO",
        "HSBRIDGE_ALERTS",
        "HSBRIDGE_ALERT_TIMEOUT_MS",
        "HSBRIDGE_STACK_NAME",
        "HSBRIDGE_MAX_RECEIVE_COUNT",
        "HSBRIDGE_EVENT_LOG_TABLE",
        "HSBRIDGE_EVENT_LOG_RETENTION_DAYS",
    ];

    pub fn from_env(vars: &dyn Vars) -> Result<Self, ConfigError> {
        let protected = protected_api(vars, 5_000, "HSBRIDGE_PROTECTED_API_TIMEOUT_MS")?;
        let events_path = events_path(vars)?;
        let properties: Vec<String> = config::optional(vars, "HSBRIDGE_ENRICH_PROPERTIES")
            .map(|s| {
                s.split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let enrichment = if properties.is_empty() {
            None
        } else {
            let defaults = LimitSettings::default();
            let limits = LimitSettings {
                limit: rate_limit(vars)?,
                window_ms: config::parsed(
                    vars,
                    "HSBRIDGE_HUBSPOT_RATE_WINDOW_MS",
                    defaults.window_ms,
                )?,
                slots: defaults.slots,
                breaker_threshold: config::parsed(
                    vars,
                    "HSBRIDGE_BREAKER_THRESHOLD",
                    defaults.breaker_threshold,
                )?,
                breaker_cooldown_ms: config::parsed(
                    vars,
                    "HSBRIDGE_BREAKER_COOLDOWN_MS",
                    defaults.breaker_cooldown_ms,
                )?,
            };
            if limits.limit == 0 || limits.window_ms < u64::from(limits.slots) {
                return Err(ConfigError::Invalid {
                    name: "HSBRIDGE_HUBSPOT_RATE_LIMIT",
                    reason: "the limit must be positive and the window at least 20 ms".to_owned(),
                });
            }
            if limits.breaker_threshold == 0 {
                return Err(ConfigError::Invalid {
                    name: "HSBRIDGE_BREAKER_THRESHOLD",
                    reason: "must be positive".to_owned(),
                });
            }
            Some(EnrichmentConfig {
                properties,
                vault: VaultConfig::from_env(vars)?,
                secret_grace: config::secret_grace(vars)?,
                rate_table: config::required(
                    vars,
                    "HSBRIDGE_RATE_TABLE",
                    "set it to the DynamoDB table holding HubSpot rate budgets and circuit breakers",
                )?,
                limits,
            })
        };
        Ok(Self {
            protected,
            events_path,
            accounts_table: config::required(
                vars,
                "HSBRIDGE_ACCOUNTS_TABLE",
                "set it to the DynamoDB table of installed HubSpot accounts",
            )?,
            enrichment,
            protected_is_demo: config::flag(vars, "HSBRIDGE_PROTECTED_API_IS_DEMO", false)?,
            event_log_table: config::optional(vars, "HSBRIDGE_EVENT_LOG_TABLE"),
            event_log_retention: config::event_log_retention(vars)?,
            alerts: AlertsConfig::from_env(vars)?,
            max_receive_count: match config::optional(vars, "HSBRIDGE_MAX_RECEIVE_COUNT") {
                None => None,
                Some(_) => match config::parsed(vars, "HSBRIDGE_MAX_RECEIVE_COUNT", 0u32)? {
                    0 => {
                        return Err(ConfigError::Invalid {
                            name: "HSBRIDGE_MAX_RECEIVE_COUNT",
                            reason: "must be the queue's maxReceiveCount, 1 or more".to_owned(),
                        });
                    }
                    n => Some(n),
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn base() -> HashMap<String, String> {
        vars(&[
            (
                "HSBRIDGE_PROTECTED_API_URL",
                "https://api.example.com/prod/",
            ),
            ("AWS_REGION", "eu-west-1"),
            ("HSBRIDGE_ACCOUNTS_TABLE", "accounts"),
            ("HSBRIDGE_HUBSPOT_SECRET_ID", "app"),
        ])
    }

    #[test]
    fn alerts_are_off_unless_eventbridge_is_asked_for_and_a_typo_is_refused() {
        let c = CallerConfig::from_env(&base()).unwrap();
        assert_eq!((c.alerts, c.max_receive_count), (AlertsConfig::Off, None));
        let mut v = base();
        v.insert("HSBRIDGE_ALERTS".into(), "eventbridge".into());
        v.insert("HSBRIDGE_STACK_NAME".into(), "hsbridge-prod".into());
        v.insert("HSBRIDGE_MAX_RECEIVE_COUNT".into(), "5".into());
        let c = CallerConfig::from_env(&v).unwrap();
        assert_eq!(
            c.alerts,
            AlertsConfig::EventBridge {
                stack: Some("hsbridge-prod".into()),
                timeout: Duration::from_secs(1)
            }
        );
        assert_eq!(c.max_receive_count, Some(5));
        for (name, value) in [
            ("HSBRIDGE_ALERTS", "event-bridge"),
            ("HSBRIDGE_MAX_RECEIVE_COUNT", "0"),
            ("HSBRIDGE_ALERT_TIMEOUT_MS", "60000"),
        ] {
            let mut bad = v.clone();
            bad.insert(name.into(), value.into());
            let e = CallerConfig::from_env(&bad).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn the_consumer_needs_no_vault_without_enrichment() {
        let c = CallerConfig::from_env(&base()).unwrap();
        assert_eq!(c.protected.base_url, "https://api.example.com/prod");
        assert_eq!(c.protected.region, "eu-west-1");
        assert_eq!(c.events_path, "/hubspot/events");
        assert!(c.enrichment.is_none());
    }

    #[test]
    fn a_stack_on_the_demo_api_says_so_and_a_bad_flag_is_named() {
        assert!(!CallerConfig::from_env(&base()).unwrap().protected_is_demo);
        let mut v = base();
        v.insert("HSBRIDGE_PROTECTED_API_IS_DEMO".into(), "true".into());
        assert!(CallerConfig::from_env(&v).unwrap().protected_is_demo);
        v.insert("HSBRIDGE_PROTECTED_API_IS_DEMO".into(), "maybe".into());
        let err = CallerConfig::from_env(&v).unwrap_err();
        assert!(
            err.to_string().contains("HSBRIDGE_PROTECTED_API_IS_DEMO"),
            "{err}"
        );
    }

    fn listed(lists: &[&[&str]]) -> std::collections::BTreeSet<String> {
        lists
            .iter()
            .flat_map(|l| l.iter())
            .map(|n| (*n).to_owned())
            .collect()
    }

    #[test]
    fn the_consumers_from_env_reads_exactly_the_listed_variables() {
        let mut enriched = base();
        enriched.extend(vars(&[
            ("HSBRIDGE_ENRICH_PROPERTIES", "email"),
            ("HSBRIDGE_KMS_KEY_ID", "key"),
            ("HSBRIDGE_OAUTH_SCOPES", "oauth"),
            ("HSBRIDGE_OAUTH_REDIRECT_URL", "https://x/oauth/callback"),
            ("HSBRIDGE_RATE_TABLE", "rate"),
            ("HSBRIDGE_ALERTS", "eventbridge"),
            ("HSBRIDGE_MAX_RECEIVE_COUNT", "5"),
        ]));
        let read = config::names_read(&[&base(), &enriched], |v| {
            CallerConfig::from_env(v).unwrap();
        });
        assert_eq!(
            read,
            listed(&[CallerConfig::VARIABLES, VaultConfig::VARIABLES])
        );
    }

    #[test]
    fn the_relays_from_env_reads_exactly_the_listed_variables() {
        let read = config::names_read(&[&base()], |v| {
            RelayConfig::from_env(v).unwrap();
        });
        assert_eq!(read, listed(&[RelayConfig::VARIABLES]));
    }

    #[test]
    fn enrichment_requires_the_rate_table_and_names_it() {
        let mut v = base();
        v.extend(vars(&[
            ("HSBRIDGE_ENRICH_PROPERTIES", "email, firstname"),
            ("HSBRIDGE_KMS_KEY_ID", "key"),
            ("HSBRIDGE_OAUTH_SCOPES", "oauth"),
            ("HSBRIDGE_OAUTH_REDIRECT_URL", "https://x/oauth/callback"),
        ]));
        let err = CallerConfig::from_env(&v).unwrap_err();
        assert!(err.to_string().contains("HSBRIDGE_RATE_TABLE"), "{err}");
        v.insert("HSBRIDGE_RATE_TABLE".into(), "rate".into());
        let e = CallerConfig::from_env(&v).unwrap().enrichment.unwrap();
        assert_eq!(e.properties, ["email", "firstname"]);
        assert_eq!(e.limits, LimitSettings::default());
    }

    #[test]
    fn an_events_path_that_would_be_re_encoded_is_refused() {
        let mut v = base();
        v.insert("HSBRIDGE_EVENTS_PATH".into(), "/hub spot".into());
        let err = CallerConfig::from_env(&v).unwrap_err();
        assert!(err.to_string().contains("HSBRIDGE_EVENTS_PATH"));
    }

    #[test]
    fn the_relay_timeout_stays_below_api_gateways_30_seconds() {
        let mut v = base();
        assert_eq!(
            RelayConfig::from_env(&v).unwrap().protected.timeout,
            Duration::from_secs(10)
        );
        v.insert("HSBRIDGE_RELAY_TIMEOUT_MS".into(), "29000".into());
        assert_eq!(
            RelayConfig::from_env(&v).unwrap().protected.timeout,
            Duration::from_secs(29)
        );
        v.insert("HSBRIDGE_RELAY_TIMEOUT_MS".into(), "29001".into());
        let err = RelayConfig::from_env(&v).unwrap_err();
        assert!(
            err.to_string().contains("HSBRIDGE_RELAY_TIMEOUT_MS")
                && err.to_string().contains("30 s"),
            "{err}"
        );
    }

    #[test]
    fn the_rate_budget_follows_the_distribution_and_defaults_to_what_every_tier_allows() {
        let limit = |pairs: &[(&str, &str)]| {
            let vars: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            rate_limit(&vars)
        };
        assert_eq!(limit(&[]).unwrap(), 100);
        assert_eq!(
            limit(&[("HSBRIDGE_HUBSPOT_DISTRIBUTION", "marketplace")]).unwrap(),
            110
        );
        assert_eq!(
            limit(&[("HSBRIDGE_HUBSPOT_DISTRIBUTION", "private")]).unwrap(),
            100
        );
        assert_eq!(
            limit(&[
                ("HSBRIDGE_HUBSPOT_DISTRIBUTION", "private"),
                ("HSBRIDGE_HUBSPOT_ACCOUNT_TIER", "professional")
            ])
            .unwrap(),
            190
        );
        assert_eq!(
            limit(&[
                ("HSBRIDGE_HUBSPOT_DISTRIBUTION", "private"),
                ("HSBRIDGE_HUBSPOT_ACCOUNT_TIER", "api-limit-increase")
            ])
            .unwrap(),
            250
        );
        assert_eq!(
            limit(&[
                ("HSBRIDGE_HUBSPOT_DISTRIBUTION", "marketplace"),
                ("HSBRIDGE_HUBSPOT_RATE_LIMIT", "50")
            ])
            .unwrap(),
            50
        );
        for (pairs, named) in [
            (
                vec![("HSBRIDGE_HUBSPOT_DISTRIBUTION", "public")],
                "HSBRIDGE_HUBSPOT_DISTRIBUTION",
            ),
            (
                vec![
                    ("HSBRIDGE_HUBSPOT_DISTRIBUTION", "marketplace"),
                    ("HSBRIDGE_HUBSPOT_ACCOUNT_TIER", "professional"),
                ],
                "HSBRIDGE_HUBSPOT_ACCOUNT_TIER",
            ),
            (
                vec![
                    ("HSBRIDGE_HUBSPOT_DISTRIBUTION", "private"),
                    ("HSBRIDGE_HUBSPOT_ACCOUNT_TIER", "enterprise+"),
                ],
                "HSBRIDGE_HUBSPOT_ACCOUNT_TIER",
            ),
        ] {
            let e = limit(&pairs).unwrap_err().to_string();
            assert!(e.contains(named), "{e}");
        }
    }

    #[test]
    fn the_relay_forwards_below_its_own_prefix_by_default() {
        let c = RelayConfig::from_env(&base()).unwrap();
        assert_eq!(c.target_prefix, "/hubspot/relay");
        let mut v = base();
        v.insert("HSBRIDGE_RELAY_TARGET_PREFIX".into(), "/cards/v1".into());
        assert_eq!(
            RelayConfig::from_env(&v).unwrap().target_prefix,
            "/cards/v1"
        );
    }

    #[test]
    fn a_relay_prefix_that_covers_the_events_route_is_refused_with_both_names() {
        for (prefix, events) in [
            ("/hubspot", "/hubspot/events"),
            ("/hubspot/events", "/hubspot/events"),
            ("/api", "/api/hubspot/events"),
        ] {
            let mut v = base();
            v.insert("HSBRIDGE_RELAY_TARGET_PREFIX".into(), prefix.into());
            v.insert("HSBRIDGE_EVENTS_PATH".into(), events.into());
            let err = RelayConfig::from_env(&v).unwrap_err().to_string();
            assert!(
                err.contains("HSBRIDGE_RELAY_TARGET_PREFIX")
                    && err.contains("HSBRIDGE_EVENTS_PATH"),
                "{prefix} over {events}: {err}"
            );
        }
        // A sibling that merely shares leading characters is not below the prefix.
        let mut v = base();
        v.insert("HSBRIDGE_RELAY_TARGET_PREFIX".into(), "/hubspot/ev".into());
        assert!(RelayConfig::from_env(&v).is_ok());
    }

    #[test]
    fn a_relay_prefix_that_is_not_a_canonical_path_is_refused() {
        for prefix in [
            "/",
            "hubspot/relay",
            "/hubspot/relay/",
            "/a b",
            "/a/../b",
            "/a%2fb",
        ] {
            let mut v = base();
            v.insert("HSBRIDGE_RELAY_TARGET_PREFIX".into(), prefix.into());
            let err = RelayConfig::from_env(&v).unwrap_err().to_string();
            assert!(
                err.contains("HSBRIDGE_RELAY_TARGET_PREFIX"),
                "{prefix:?}: {err}"
            );
        }
    }

    #[test]
    fn a_protected_api_url_must_be_http() {
        let mut v = base();
        v.insert(
            "HSBRIDGE_PROTECTED_API_URL".into(),
            "api.example.com".into(),
        );
        assert!(RelayConfig::from_env(&v).is_err());
    }
}
