//! The local stack's secrets: the app's credentials (from the environment or generated), the
//! stand-in's local AWS key and the wrapping key that seals the accounts' tokens.

use crate::sim::write_private;
use anyhow::{Context, Result};
use hsbridge_platform::secrets::HubSpotApp;
use hsbridge_vault::LocalKeyWrapper;
use hsbridge_verify::{Secret, SecretSet};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The app's credentials as `hsbridge dev` keeps them when it generated them.
#[derive(Serialize, Deserialize)]
pub(super) struct GeneratedApp {
    pub(super) client_id: String,
    pub(super) client_secret: String,
}

/// The stand-in's local AWS key.
#[derive(Serialize, Deserialize)]
pub(super) struct LocalAwsKey {
    pub(super) access_key_id: String,
    pub(super) secret_access_key: String,
}

impl std::fmt::Debug for LocalAwsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAwsKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[REDACTED]")
            .finish()
    }
}

/// Where the app's credentials came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Environment,
    Generated,
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn random_hex(len: usize) -> Result<String> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    Ok(hex(&bytes))
}

/// Reads a JSON file written by an earlier run, or creates it with `make`.
pub(super) fn load_or_create<T: Serialize + for<'de> Deserialize<'de>>(
    path: &Path,
    make: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is damaged; delete it (or the whole data directory) to start over",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let value = make()?;
            let bytes = serde_json::to_vec_pretty(&value).context("could not encode")?;
            write_private(path, &bytes)
                .with_context(|| format!("could not write {}", path.display()))?;
            Ok(value)
        }
        Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
    }
}

/// The local wrapping key: 32 random bytes, created on first start, owner-readable only.
pub(super) fn local_key(path: &Path) -> Result<LocalKeyWrapper> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                anyhow::anyhow!(
                    "{} is not a 32-byte key; restore it, or delete the data directory to start over (installed accounts are then lost)",
                    path.display()
                )
            })?;
            Ok(LocalKeyWrapper::new(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
            write_private(path, &key)
                .with_context(|| format!("could not write {}", path.display()))?;
            Ok(LocalKeyWrapper::new(key))
        }
        Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
    }
}

/// The app's credentials: `HUBSPOT_CLIENT_ID`, `HUBSPOT_CLIENT_SECRET` and
/// `HUBSPOT_PREVIOUS_CLIENT_SECRET` when set; otherwise generated once and kept in the data
/// directory.
pub(super) fn app_credentials(data_dir: &Path) -> Result<(HubSpotApp, Origin)> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (client_id, secret, origin) = match env("HUBSPOT_CLIENT_SECRET") {
        Some(secret) => (
            env("HUBSPOT_CLIENT_ID").unwrap_or_else(|| "local-client-id".to_owned()),
            secret,
            Origin::Environment,
        ),
        None => {
            let generated = load_or_create(&data_dir.join("app.json"), || {
                Ok(GeneratedApp {
                    client_id: "local-client-id".to_owned(),
                    client_secret: random_hex(24)?,
                })
            })?;
            (
                generated.client_id,
                generated.client_secret,
                Origin::Generated,
            )
        }
    };
    let mut secrets = SecretSet::new(Secret::new(secret)).context(
        "the client secret is empty or only whitespace; set HUBSPOT_CLIENT_SECRET or unset it",
    )?;
    if let Some(previous) = env("HUBSPOT_PREVIOUS_CLIENT_SECRET") {
        secrets = secrets
            .with_previous(Secret::new(previous))
            .context("HUBSPOT_PREVIOUS_CLIENT_SECRET is empty or only whitespace")?;
    }
    Ok((HubSpotApp { client_id, secrets }, origin))
}

/// Everything secret the local stack holds: the app's credentials, the stand-in's AWS key and
/// the wrapping key that seals the accounts' tokens.
pub(super) struct LocalCredentials {
    pub(super) app: HubSpotApp,
    pub(super) origin: Origin,
    pub(super) aws_key: LocalAwsKey,
    pub(super) wrapper: LocalKeyWrapper,
}

impl LocalCredentials {
    pub(super) fn load(data_dir: &Path) -> Result<Self> {
        let (app, origin) = app_credentials(data_dir)?;
        let aws_key = load_or_create(&data_dir.join("aws-local.json"), || {
            Ok(LocalAwsKey {
                access_key_id: format!("AKIALOCAL{}", random_hex(6)?.to_uppercase()),
                secret_access_key: random_hex(20)?,
            })
        })?;
        let wrapper = local_key(&data_dir.join("local.key"))?;
        Ok(Self {
            app,
            origin,
            aws_key,
            wrapper,
        })
    }
}
