//! The vault's and the OAuth flow's configuration, read once at cold start.

use hsbridge_platform::config::{self, ConfigError, Vars};

/// Default HubSpot API base (token, introspect and revoke endpoints).
pub const DEFAULT_API_BASE: &str = "https://api.hubapi.com";
/// Default HubSpot app base (the authorize page).
pub const DEFAULT_APP_BASE: &str = "https://app.hubspot.com";

/// Everything the vault and the install flow need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    pub accounts_table: String,
    pub kms_key_id: String,
    pub secret_id: String,
    pub redirect_url: String,
    /// Required scopes: every one must be granted.
    pub scopes: Vec<String>,
    pub optional_scopes: Vec<String>,
    /// Without a trailing `/`.
    pub api_base: String,
    /// Without a trailing `/`.
    pub app_base: String,
    /// The dated API version whose OAuth (and uninstall) paths are called.
    pub api_version: crate::hubspot::ApiVersion,
}

impl VaultConfig {
    /// Every variable [`VaultConfig::from_env`] reads (a unit test proves it reads no other).
    pub const VARIABLES: &[&str] = &[
        "HSBRIDGE_OAUTH_SCOPES",
        "HSBRIDGE_HUBSPOT_API_BASE",
        "HSBRIDGE_HUBSPOT_APP_BASE",
        "HSBRIDGE_OAUTH_REDIRECT_URL",
        "HSBRIDGE_ACCOUNTS_TABLE",
        "HSBRIDGE_KMS_KEY_ID",
        "HSBRIDGE_HUBSPOT_SECRET_ID",
        "HSBRIDGE_OAUTH_OPTIONAL_SCOPES",
        "HSBRIDGE_HUBSPOT_API_VERSION",
    ];

    pub fn from_env(vars: &dyn Vars) -> Result<Self, ConfigError> {
        let scopes = split_scopes(&config::required(
            vars,
            "HSBRIDGE_OAUTH_SCOPES",
            "set it to the space- or comma-separated scopes the app requires, e.g. `oauth crm.objects.contacts.read`",
        )?);
        let api_base = base_url(vars, "HSBRIDGE_HUBSPOT_API_BASE", DEFAULT_API_BASE)?;
        let app_base = base_url(vars, "HSBRIDGE_HUBSPOT_APP_BASE", DEFAULT_APP_BASE)?;
        let redirect_url = config::required(
            vars,
            "HSBRIDGE_OAUTH_REDIRECT_URL",
            "set it to the public URL of /oauth/callback, exactly as registered in the HubSpot app",
        )?;
        if !(redirect_url.starts_with("https://") || redirect_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "HSBRIDGE_OAUTH_REDIRECT_URL",
                reason: "expected an http(s) URL".to_owned(),
            });
        }
        Ok(Self {
            accounts_table: config::required(
                vars,
                "HSBRIDGE_ACCOUNTS_TABLE",
                "set it to the DynamoDB table of installed HubSpot accounts",
            )?,
            kms_key_id: config::required(
                vars,
                "HSBRIDGE_KMS_KEY_ID",
                "set it to the id or ARN of the KMS key that wraps the vault's data keys",
            )?,
            secret_id: config::required(
                vars,
                "HSBRIDGE_HUBSPOT_SECRET_ID",
                "set it to the name or ARN of the Secrets Manager secret holding client_id and client_secret",
            )?,
            redirect_url,
            scopes,
            optional_scopes: config::optional(vars, "HSBRIDGE_OAUTH_OPTIONAL_SCOPES")
                .map(|s| split_scopes(&s))
                .unwrap_or_default(),
            api_base,
            app_base,
            api_version: api_version(vars)?,
        })
    }
}

/// `HSBRIDGE_HUBSPOT_API_VERSION`: one of [`crate::hubspot::ApiVersion::SUPPORTED`].
pub fn api_version(vars: &dyn Vars) -> Result<crate::hubspot::ApiVersion, ConfigError> {
    match config::optional(vars, "HSBRIDGE_HUBSPOT_API_VERSION") {
        None => Ok(crate::hubspot::ApiVersion::default()),
        Some(v) => crate::hubspot::ApiVersion::parse(&v).map_err(|reason| ConfigError::Invalid {
            name: "HSBRIDGE_HUBSPOT_API_VERSION",
            reason,
        }),
    }
}

fn base_url(vars: &dyn Vars, name: &'static str, default: &str) -> Result<String, ConfigError> {
    let value = config::optional(vars, name).unwrap_or_else(|| default.to_owned());
    if !(value.starts_with("https://") || value.starts_with("http://")) {
        return Err(ConfigError::Invalid {
            name,
            reason: "expected an http(s) URL".to_owned(),
        });
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// Scopes separated by spaces and/or commas.
pub fn split_scopes(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(extra: &[(&str, &str)]) -> HashMap<String, String> {
        [
            ("HSBRIDGE_ACCOUNTS_TABLE", "accounts"),
            ("HSBRIDGE_KMS_KEY_ID", "key"),
            ("HSBRIDGE_HUBSPOT_SECRET_ID", "app"),
            (
                "HSBRIDGE_OAUTH_REDIRECT_URL",
                "https://x.example/oauth/callback",
            ),
            ("HSBRIDGE_OAUTH_SCOPES", "oauth, crm.objects.contacts.read"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    #[test]
    fn bases_default_to_hubspots_hosts_and_scopes_split_on_commas_and_spaces() {
        let c = VaultConfig::from_env(&vars(&[])).unwrap();
        assert_eq!(c.api_base, "https://api.hubapi.com");
        assert_eq!(c.app_base, "https://app.hubspot.com");
        assert_eq!(c.scopes, ["oauth", "crm.objects.contacts.read"]);
        assert!(c.optional_scopes.is_empty());
    }

    #[test]
    fn the_api_version_defaults_to_2026_03_and_a_refused_one_is_named_in_a_sentence() {
        let c = VaultConfig::from_env(&vars(&[])).unwrap();
        assert_eq!(c.api_version.as_str(), "2026-03");
        let c =
            VaultConfig::from_env(&vars(&[("HSBRIDGE_HUBSPOT_API_VERSION", "2026-09")])).unwrap();
        assert_eq!(c.api_version.as_str(), "2026-09");
        let e = VaultConfig::from_env(&vars(&[("HSBRIDGE_HUBSPOT_API_VERSION", "v1")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HSBRIDGE_HUBSPOT_API_VERSION") && e.contains("`v1`"),
            "{e}"
        );
    }

    #[test]
    fn from_env_reads_exactly_the_listed_variables() {
        let read = config::names_read(&[&vars(&[])], |v| {
            VaultConfig::from_env(v).unwrap();
        });
        let listed: std::collections::BTreeSet<String> = VaultConfig::VARIABLES
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        assert_eq!(read, listed);
    }

    #[test]
    fn a_missing_kms_key_stops_the_cold_start_with_its_name() {
        let mut v = vars(&[]);
        v.remove("HSBRIDGE_KMS_KEY_ID");
        let err = VaultConfig::from_env(&v).unwrap_err();
        assert!(err.to_string().contains("HSBRIDGE_KMS_KEY_ID"));
    }

    #[test]
    fn a_base_that_is_not_a_url_is_refused() {
        assert!(
            VaultConfig::from_env(&vars(&[("HSBRIDGE_HUBSPOT_API_BASE", "api.hubapi.com")]))
                .is_err()
        );
    }
}
