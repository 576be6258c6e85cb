//! The callback's configuration, read once at cold start.

use hsbridge_platform::config::{self, ConfigError, Vars};
use hsbridge_vault::VaultConfig;
use hsbridge_verify::CookieAttributes;
use std::time::Duration;

/// What the Router needs.
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    /// The registered redirect URL (the public URL of `/oauth/callback`).
    pub redirect_url: String,
    pub scopes: Vec<String>,
    pub optional_scopes: Vec<String>,
    /// HubSpot's app base, e.g. `https://app.hubspot.com`.
    pub app_base: String,
    pub cookie: CookieAttributes,
}

/// Everything the deployed function needs.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    pub vault: VaultConfig,
    pub settings: CallbackSettings,
    pub secret_grace: Duration,
    /// Timeout of each call to HubSpot.
    pub hubspot_timeout: Duration,
}

impl CallbackSettings {
    pub fn from_vault_config(vault: &VaultConfig, cookie: CookieAttributes) -> Self {
        Self {
            redirect_url: vault.redirect_url.clone(),
            scopes: vault.scopes.clone(),
            optional_scopes: vault.optional_scopes.clone(),
            app_base: vault.app_base.clone(),
            cookie,
        }
    }
}

impl CallbackConfig {
    /// Every variable [`CallbackConfig::from_env`] reads besides [`VaultConfig::VARIABLES`]
    /// (a unit test proves it reads no other).
    pub const VARIABLES: &[&str] = &[
        "HSBRIDGE_OAUTH_INSECURE_LOOPBACK_COOKIE",
        "HSBRIDGE_SECRET_GRACE_SECONDS",
        "HSBRIDGE_HUBSPOT_TIMEOUT_MS",
    ];

    pub fn from_env(vars: &dyn Vars) -> Result<Self, ConfigError> {
        let vault = VaultConfig::from_env(vars)?;
        // Only for plain http on a loopback address during local development.
        let insecure = config::flag(vars, "HSBRIDGE_OAUTH_INSECURE_LOOPBACK_COOKIE", false)?;
        if insecure && !is_loopback_http(&vault.redirect_url) {
            return Err(ConfigError::Invalid {
                name: "HSBRIDGE_OAUTH_INSECURE_LOOPBACK_COOKIE",
                reason: "only allowed with an http://127.0.0.1 or http://localhost redirect URL"
                    .to_owned(),
            });
        }
        // The cookie follows the public callback URL, whatever base path it is under: `Path=/`
        // with the `__Host-` prefix when deployed, the callback's directory on loopback.
        let cookie = if insecure {
            CookieAttributes::insecure_loopback(&vault.redirect_url)
        } else {
            CookieAttributes::host()
        };
        Ok(Self {
            settings: CallbackSettings::from_vault_config(&vault, cookie),
            vault,
            secret_grace: config::secret_grace(vars)?,
            hubspot_timeout: Duration::from_millis(config::parsed(
                vars,
                "HSBRIDGE_HUBSPOT_TIMEOUT_MS",
                3_000,
            )?),
        })
    }
}

fn is_loopback_http(url: &str) -> bool {
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            url.strip_prefix(p)
                .is_some_and(|rest| rest.starts_with([':', '/']))
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A complete environment for the callback, plus `extra`.
    pub(crate) fn vars(extra: &[(&str, &str)]) -> HashMap<String, String> {
        [
            ("HSBRIDGE_ACCOUNTS_TABLE", "accounts"),
            ("HSBRIDGE_KMS_KEY_ID", "key"),
            ("HSBRIDGE_HUBSPOT_SECRET_ID", "app"),
            (
                "HSBRIDGE_OAUTH_REDIRECT_URL",
                "https://x.example/oauth/callback",
            ),
            ("HSBRIDGE_OAUTH_SCOPES", "oauth"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    #[test]
    fn from_env_reads_exactly_the_listed_variables() {
        let read = config::names_read(&[&vars(&[])], |v| {
            CallbackConfig::from_env(v).unwrap();
        });
        let listed: std::collections::BTreeSet<String> = CallbackConfig::VARIABLES
            .iter()
            .chain(VaultConfig::VARIABLES)
            .map(|n| (*n).to_owned())
            .collect();
        assert_eq!(read, listed);
    }

    #[test]
    fn the_state_cookie_is_secure_and_host_prefixed_by_default() {
        let c = CallbackConfig::from_env(&vars(&[])).unwrap();
        assert!(c.settings.cookie.secure());
        assert_eq!(c.settings.cookie.name(), "__Host-hubspot_oauth_state");
        assert_eq!(c.settings.cookie.path(), "/");
    }

    /// The `Path` attribute of a `Set-Cookie` header value.
    fn path_attribute(set_cookie: &str) -> &str {
        set_cookie
            .split("; ")
            .find_map(|a| a.strip_prefix("Path="))
            .unwrap_or_else(|| panic!("no Path in {set_cookie}"))
    }

    #[test]
    fn the_state_cookie_comes_back_to_a_callback_under_a_base_path() {
        for (url, insecure) in [
            ("https://hooks.example.com/v1/oauth/callback", "false"),
            ("https://hooks.example.com/a/b/oauth/callback", "false"),
            ("http://127.0.0.1:3002/v1/oauth/callback", "true"),
            ("http://localhost:3002/oauth/callback", "true"),
        ] {
            let v = vars(&[
                ("HSBRIDGE_OAUTH_REDIRECT_URL", url),
                ("HSBRIDGE_OAUTH_INSECURE_LOOPBACK_COOKIE", insecure),
            ]);
            let c = CallbackConfig::from_env(&v).unwrap();
            let header = c.settings.cookie.set_cookie("v");
            let callback_path = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap();
            let install_path = callback_path.replace("/callback", "/install");
            for path in [&callback_path, &install_path] {
                assert!(
                    hsbridge_verify::path_matches(path_attribute(&header), path),
                    "{header} is not sent to {path}"
                );
            }
        }
    }

    #[test]
    fn an_insecure_cookie_is_refused_for_a_public_redirect_url() {
        let v = vars(&[("HSBRIDGE_OAUTH_INSECURE_LOOPBACK_COOKIE", "true")]);
        assert!(CallbackConfig::from_env(&v).is_err());
        let v = vars(&[
            ("HSBRIDGE_OAUTH_INSECURE_LOOPBACK_COOKIE", "true"),
            (
                "HSBRIDGE_OAUTH_REDIRECT_URL",
                "http://127.0.0.1:3002/oauth/callback",
            ),
        ]);
        let cookie = CallbackConfig::from_env(&v).unwrap().settings.cookie;
        assert!(!cookie.secure());
        // No `Secure`, so no `__Host-` prefix: the plain name.
        assert_eq!(cookie.name(), "hubspot_oauth_state");
        assert_eq!(cookie.path(), "/oauth");
    }
}
