//! Reading configuration from the environment once, at cold start, failing with a sentence that
//! names the variable and says what to do.

use hsbridge_verify::PublicBase;
use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

/// A configuration problem found at start-up. The message is meant for an operator's eyes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing environment variable {name}: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("environment variable {name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A source of configuration values: the process environment, or a map in tests.
pub trait Vars {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Vars for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Vars for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A source that remembers every name asked of it: how a configuration's unit tests prove that
/// its `from_env` reads only the names its `VARIABLES` list (which the deployment test holds
/// the template's environment against).
pub struct Recording<'a> {
    inner: &'a dyn Vars,
    asked: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for Recording<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("asked", &self.asked())
            .finish_non_exhaustive()
    }
}

impl<'a> Recording<'a> {
    pub fn new(inner: &'a dyn Vars) -> Self {
        Self {
            inner,
            asked: Mutex::new(BTreeSet::new()),
        }
    }

    /// Every name asked so far.
    pub fn asked(&self) -> BTreeSet<String> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl Vars for Recording<'_> {
    fn var(&self, name: &str) -> Option<String> {
        if let Ok(mut asked) = self.asked.lock() {
            asked.insert(name.to_owned());
        }
        self.inner.var(name)
    }
}

/// The names `read` asks of each source in `sources`, together: with sources that take every
/// branch, exactly the names a configuration can read.
pub fn names_read(sources: &[&dyn Vars], read: impl Fn(&dyn Vars)) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for source in sources {
        let recording = Recording::new(*source);
        read(&recording);
        names.extend(recording.asked());
    }
    names
}

/// A non-empty value, or `Missing` with a hint.
pub fn required(
    vars: &dyn Vars,
    name: &'static str,
    hint: &'static str,
) -> Result<String, ConfigError> {
    match vars.var(name) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(ConfigError::Missing { name, hint }),
    }
}

/// A non-empty value or `None`.
pub fn optional(vars: &dyn Vars, name: &'static str) -> Option<String> {
    vars.var(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A parsed value, or the default when unset.
pub fn parsed<T>(vars: &dyn Vars, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match optional(vars, name) {
        None => Ok(default),
        Some(v) => v.parse::<T>().map_err(|e| ConfigError::Invalid {
            name,
            reason: e.to_string(),
        }),
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`), or the default when unset.
pub fn flag(vars: &dyn Vars, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match optional(vars, name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => Ok(true),
        Some(v) if matches!(v.as_str(), "false" | "0" | "no") => Ok(false),
        Some(_) => Err(ConfigError::Invalid {
            name,
            reason: "expected true or false".to_owned(),
        }),
    }
}

/// `HSBRIDGE_PUBLIC_BASE_URL`: the public base HubSpot calls (custom domain and mapping key),
/// or `None` to rebuild it from the `Host` header.
pub fn public_base(vars: &dyn Vars) -> Result<Option<PublicBase>, ConfigError> {
    optional(vars, "HSBRIDGE_PUBLIC_BASE_URL")
        .map(|s| {
            PublicBase::parse(&s).map_err(|_| ConfigError::Invalid {
                name: "HSBRIDGE_PUBLIC_BASE_URL",
                reason: "expected an http(s) URL such as https://hooks.example.com".to_owned(),
            })
        })
        .transpose()
}

/// `HSBRIDGE_SECRET_GRACE_SECONDS`: how long after a rotation the previous client secret is
/// still accepted (default 24 h).
pub fn secret_grace(vars: &dyn Vars) -> Result<Duration, ConfigError> {
    parsed(vars, "HSBRIDGE_SECRET_GRACE_SECONDS", 24 * 3600).map(Duration::from_secs)
}

/// `HSBRIDGE_EVENT_LOG_RETENTION_DAYS`: how long the event log keeps each event's path (default
/// 7 days, 1 to 90).
pub fn event_log_retention(vars: &dyn Vars) -> Result<Duration, ConfigError> {
    use crate::event_log::{DEFAULT_RETENTION, MAX_RETENTION_DAYS, MIN_RETENTION_DAYS};
    let days = parsed(
        vars,
        "HSBRIDGE_EVENT_LOG_RETENTION_DAYS",
        DEFAULT_RETENTION.as_secs() / 86_400,
    )?;
    if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&days) {
        return Err(ConfigError::Invalid {
            name: "HSBRIDGE_EVENT_LOG_RETENTION_DAYS",
            reason: format!("must be between {MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS} days"),
        });
    }
    Ok(Duration::from_secs(days * 86_400))
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

    #[test]
    fn a_missing_required_variable_is_named_in_the_error() {
        let err = required(&vars(&[]), "HSBRIDGE_X", "set it to the table name").unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing environment variable HSBRIDGE_X: set it to the table name"
        );
    }

    #[test]
    fn a_blank_required_variable_counts_as_missing() {
        let err = required(&vars(&[("HSBRIDGE_X", "  ")]), "HSBRIDGE_X", "h").unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Missing {
                name: "HSBRIDGE_X",
                ..
            }
        ));
    }

    #[test]
    fn an_unparsable_number_is_invalid_not_defaulted() {
        let err = parsed::<u64>(&vars(&[("N", "ten")]), "N", 5).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "N", .. }));
        assert_eq!(parsed::<u64>(&vars(&[]), "N", 5), Ok(5));
    }

    #[test]
    fn flags_accept_the_usual_spellings_and_reject_others() {
        assert_eq!(flag(&vars(&[("F", "TRUE")]), "F", false), Ok(true));
        assert_eq!(flag(&vars(&[("F", "0")]), "F", true), Ok(false));
        assert!(flag(&vars(&[("F", "maybe")]), "F", true).is_err());
    }
}
