//! The project's files: the defaults built into the command (the files in
//! `infra/hubspot-project/`), what the generator changes in them, and the atomic writes.

use super::Values;
use super::checks::{Target, legacy_object_type, public_url, read_scope};
use super::json::Json;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../../infra/hubspot-project/", $path)))),*]
    };
}

/// Every file of both projects, as checked in. A file missing from the target directory is
/// created from here; an existing one is kept, with only the generator's values changed.
pub const DEFAULTS: &[(&str, &str)] = embedded![
    "connector/hsproject.json",
    "connector/src/app/app-hsmeta.json",
    "connector/src/app/webhooks/webhooks-hsmeta.json",
    "connector/src/app/cards/relay-card-hsmeta.json",
    "connector/src/app/cards/RelayCard.jsx",
    "connector/src/app/cards/relay.js",
    "connector/src/app/cards/relay-url.js",
    "connector/src/app/cards/package.json",
    "functions/hsproject.json",
    "functions/src/app/app-hsmeta.json",
    "functions/src/app/functions/call-protected-api-hsmeta.json",
    "functions/src/app/functions/CallProtectedApi.js",
    "functions/src/app/functions/package.json",
    "functions/src/app/functions/package-lock.json",
];

const APP: &str = "connector/src/app/app-hsmeta.json";
const WEBHOOKS: &str = "connector/src/app/webhooks/webhooks-hsmeta.json";
const RELAY_URL_JS: &str = "connector/src/app/cards/relay-url.js";
const FUNCTIONS_APP: &str = "functions/src/app/app-hsmeta.json";
const LOCAL_MARKER: &str = "LOCAL-ONLY.md";

/// The files to write, computed and checked in full before anything is written.
#[derive(Debug)]
pub struct Plan {
    pub writes: Vec<(PathBuf, String)>,
    pub warnings: Vec<String>,
}

impl Plan {
    /// Writes each changed file through a temporary file and a rename; returns what it wrote.
    pub fn write(self) -> Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        for (path, text) in self.writes {
            write_atomically(&path, text.as_bytes())?;
            written.push(path);
        }
        Ok(written)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("a project file has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("a project file has no name")?;
    let tmp = dir.join(format!(".{name}.hsbridge-{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("could not write {}", path.display()));
    }
    Ok(())
}

/// Reads a project file, or its default when it does not exist yet.
fn read(dir: &Path, rel: &str) -> Result<(String, bool)> {
    let path = dir.join(rel);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((text, true)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let default = DEFAULTS
                .iter()
                .find(|(p, _)| *p == rel)
                .map(|(_, t)| (*t).to_owned())
                .with_context(|| format!("{} is missing", path.display()))?;
            Ok((default, false))
        }
        Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
    }
}

fn parse(dir: &Path, rel: &str, text: &str) -> Result<Json> {
    let path = dir.join(rel);
    let json: Json = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not valid JSON ({e}); fix it, or delete it to get the default back",
            path.display()
        )
    })?;
    check_component(&path, &json)?;
    Ok(json)
}

/// The shape every `*-hsmeta.json` shares: `uid` (at most 64 characters of letters, digits,
/// `_`, `-`, `.`), `type`, and a `config` object.
/// https://developers.hubspot.com/docs/apps/developer-platform/build-apps/app-configuration
fn check_component(path: &Path, json: &Json) -> Result<()> {
    if path.file_name().and_then(|n| n.to_str()) == Some("hsproject.json") {
        return Ok(());
    }
    let p = path.display();
    let uid = json
        .get("uid")
        .and_then(Json::as_str)
        .with_context(|| format!("{p} has no \"uid\" string"))?;
    if uid.is_empty()
        || uid.len() > 64
        || !uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        bail!("{p}: the uid {uid:?} must be 1 to 64 letters, digits, '_', '-' or '.'");
    }
    json.get("type")
        .and_then(Json::as_str)
        .with_context(|| format!("{p} has no \"type\" string"))?;
    if !matches!(json.get("config"), Some(Json::Object(_))) {
        bail!("{p} has no \"config\" object");
    }
    Ok(())
}

fn expect_type(path: &Path, json: &Json, ty: &str) -> Result<()> {
    let found = json.get("type").and_then(Json::as_str).unwrap_or_default();
    if found != ty {
        bail!("{}: \"type\" is {found:?}, expected {ty:?}", path.display());
    }
    Ok(())
}

fn strings(json: Option<&Json>) -> Vec<String> {
    json.and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Json::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The relay URL a `relay-url.js` holds.
fn relay_url_in(text: &str) -> Option<String> {
    let start = text.find("RELAY_URL = '")? + "RELAY_URL = '".len();
    let end = text[start..].find('\'')?;
    Some(text[start..start + end].to_owned())
}

fn relay_url_js(url: &str, target: Target) -> String {
    let mut text = String::from(
        "// Written by `hsbridge hubspot-project` from the stack's RelayUrl output; edit the stack, not\n// this file. It must also be listed in app-hsmeta.json's permittedUrls.fetch.\n",
    );
    if target == Target::Local {
        text.push_str(
            "// LOCAL: rendered by `hsbridge dev` for inspection; HubSpot cannot reach this URL.\n",
        );
    }
    text.push_str(&format!("export const RELAY_URL = '{url}';\n"));
    text
}

/// Computes every change, checking each file and value, before anything is written.
pub fn plan(dir: &Path, values: &Values, target: Target) -> Result<Plan> {
    let webhook = public_url("the webhook target URL", &values.webhook_url, target)?;
    let redirect = public_url("the OAuth redirect URL", &values.redirect_url, target)?;
    let mut relay = public_url("the relay URL", &values.relay_url, target)?.to_string();
    if !relay.ends_with('/') {
        // Listed by its prefix with the slash: a fetch permitted to the bare host could be aimed
        // at the webhook route.
        relay.push('/');
    }
    if values.scopes.is_empty() {
        bail!("the required scopes are empty; the stack's OAuthScopes names at least `oauth`");
    }
    for scope in values.scopes.iter().chain(&values.optional_scopes) {
        if scope.contains(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c))) {
            bail!("the scope {scope:?} is not a HubSpot scope name");
        }
    }

    let mut writes: Vec<(PathBuf, String)> = Vec::new();
    let mut warnings = Vec::new();
    let mut put = |rel: &str, text: String, existed: bool, old: &str| {
        if !existed || text != old {
            writes.push((dir.join(rel), text));
        }
    };

    // The connector app: OAuth, the redirect URL, the scopes, the relay in permittedUrls.fetch.
    // https://developers.hubspot.com/scopes (required / conditionally required / optional)
    let (old_app, app_existed) = read(dir, APP)?;
    let mut app = parse(dir, APP, &old_app)?;
    let app_path = dir.join(APP);
    expect_type(&app_path, &app, "app")?;
    let auth_type = app
        .at(&["config", "auth", "type"])
        .and_then(Json::as_str)
        .unwrap_or_default();
    if auth_type != "oauth" {
        bail!(
            "{}: config.auth.type is {auth_type:?}; the connector app installs with OAuth, so it must be \"oauth\" (app functions belong in the functions app)",
            app_path.display()
        );
    }
    let (old_relay_js, relay_js_existed) = read(dir, RELAY_URL_JS)?;
    let previous_relay = relay_url_in(&old_relay_js);
    let requested: Vec<String> = {
        let conditional = strings(app.at(&["config", "auth", "conditionallyRequiredScopes"]));
        values
            .scopes
            .iter()
            .chain(&values.optional_scopes)
            .chain(&conditional)
            .cloned()
            .collect()
    };
    {
        let bad = || {
            anyhow::anyhow!(
                "{}: config must be an object with an auth object",
                app_path.display()
            )
        };
        let config = app.object_mut("config").ok_or_else(bad)?;
        let auth = config.object_mut("auth").ok_or_else(bad)?;
        auth.set("redirectUrls", Json::strings(&[redirect.to_string()]));
        auth.set("requiredScopes", Json::strings(&values.scopes));
        auth.set("optionalScopes", Json::strings(&values.optional_scopes));
        let config = app.object_mut("config").ok_or_else(bad)?;
        let permitted = config.object_mut("permittedUrls").with_context(|| {
            format!(
                "{}: config.permittedUrls must be an object",
                app_path.display()
            )
        })?;
        let mut fetch: Vec<String> = vec![relay.clone()];
        for url in strings(permitted.get("fetch")) {
            if Some(&url) != previous_relay.as_ref() && url != relay {
                public_url(
                    &format!("{}: the permittedUrls.fetch entry", app_path.display()),
                    &url,
                    target,
                )?;
                fetch.push(url);
            }
        }
        permitted.set("fetch", Json::strings(&fetch));
    }
    put(APP, app.to_pretty(), app_existed, &old_app);
    put(
        RELAY_URL_JS,
        relay_url_js(&relay, target),
        relay_js_existed,
        &old_relay_js,
    );

    // The webhooks: the stack's target URL; subscriptions the user's, checked against the scopes.
    // https://developers.hubspot.com/docs/apps/developer-platform/add-features/configure-webhooks
    let (old_hooks, hooks_existed) = read(dir, WEBHOOKS)?;
    let mut hooks = parse(dir, WEBHOOKS, &old_hooks)?;
    let hooks_path = dir.join(WEBHOOKS);
    expect_type(&hooks_path, &hooks, "webhooks")?;
    check_subscriptions(&hooks_path, &hooks, &requested, &mut warnings)?;
    if let Some(n) = hooks.at(&["config", "settings", "maxConcurrentRequests"]) {
        let ok = matches!(n, Json::Scalar(serde_json::Value::Number(v)) if v.as_u64().is_some_and(|v| v >= 1));
        if !ok {
            bail!(
                "{}: config.settings.maxConcurrentRequests must be a whole number of at least 1",
                hooks_path.display()
            );
        }
    }
    hooks
        .object_mut("config")
        .and_then(|c| c.object_mut("settings"))
        .with_context(|| {
            format!(
                "{}: config.settings must be an object",
                hooks_path.display()
            )
        })?
        .set("targetUrl", Json::str(webhook.as_str()));
    put(WEBHOOKS, hooks.to_pretty(), hooks_existed, &old_hooks);

    // The functions app: static auth and private distribution, as app functions require.
    let (old_fn_app, _) = read(dir, FUNCTIONS_APP)?;
    let fn_app = parse(dir, FUNCTIONS_APP, &old_fn_app)?;
    let fn_path = dir.join(FUNCTIONS_APP);
    expect_type(&fn_path, &fn_app, "app")?;
    let fn_auth = fn_app
        .at(&["config", "auth", "type"])
        .and_then(Json::as_str);
    let fn_dist = fn_app
        .at(&["config", "distribution"])
        .and_then(Json::as_str);
    if fn_auth != Some("static") || fn_dist != Some("private") {
        bail!(
            "{}: the functions app must use static auth and private distribution (config.auth.type \"static\", config.distribution \"private\"); HubSpot runs app functions only in such apps",
            fn_path.display()
        );
    }

    // Every other file: created from its default when missing; every hsmeta file must parse.
    for (rel, default) in DEFAULTS {
        if [APP, WEBHOOKS, RELAY_URL_JS].contains(rel) {
            continue;
        }
        let (text, existed) = read(dir, rel)?;
        if rel.ends_with("-hsmeta.json") || rel.ends_with("hsproject.json") {
            parse(dir, rel, &text)?;
        }
        if !existed {
            put(rel, (*default).to_owned(), false, "");
        }
    }
    if target == Target::Local {
        put(
            LOCAL_MARKER,
            "# Local rendering: do not upload\n\nRendered by `hsbridge dev` from the local stack's URLs for inspection. HubSpot refuses\nhttp and loopback URLs; generate the project to upload with `hsbridge hubspot-project --stack NAME`.\n".to_owned(),
            dir.join(LOCAL_MARKER).exists(),
            &std::fs::read_to_string(dir.join(LOCAL_MARKER)).unwrap_or_default(),
        );
    }
    Ok(Plan { writes, warnings })
}

/// Each subscription needs the read scope of its object among the app's requested scopes.
fn check_subscriptions(
    path: &Path,
    hooks: &Json,
    requested: &[String],
    warnings: &mut Vec<String>,
) -> Result<()> {
    let p = path.display();
    let Some(subs) = hooks.at(&["config", "subscriptions"]) else {
        return Ok(());
    };
    let mut need = |object_type: &str, what: &str| -> Result<()> {
        match read_scope(object_type) {
            Some(scope) if requested.iter().any(|s| s == scope) => Ok(()),
            Some(scope) => bail!(
                "{p}: the subscription {what} needs the scope {scope}, which the app does not request; add it to the stack's OAuthScopes (and redeploy) or remove the subscription"
            ),
            None => {
                warnings.push(format!(
                    "{p}: cannot tell which read scope the subscription {what} needs; make sure the app requests it"
                ));
                Ok(())
            }
        }
    };
    for (list, generic) in [
        ("crmObjects", true),
        ("legacyCrmObjects", false),
        ("hubEvents", false),
    ] {
        let Some(items) = subs.get(list) else {
            continue;
        };
        let items = items
            .as_array()
            .with_context(|| format!("{p}: config.subscriptions.{list} must be an array"))?;
        for (i, item) in items.iter().enumerate() {
            let ty = item
                .get("subscriptionType")
                .and_then(Json::as_str)
                .with_context(|| {
                    format!("{p}: config.subscriptions.{list}[{i}] has no subscriptionType")
                })?;
            let object_type = if generic {
                if !ty.starts_with("object.") {
                    bail!(
                        "{p}: config.subscriptions.crmObjects[{i}] has subscriptionType {ty:?}; generic subscriptions are object.* (legacy ones such as contact.creation go in legacyCrmObjects)"
                    );
                }
                item.get("objectType")
                    .and_then(Json::as_str)
                    .with_context(|| {
                        format!(
                            "{p}: config.subscriptions.crmObjects[{i}] ({ty}) has no objectType"
                        )
                    })?
            } else {
                legacy_object_type(ty)
            };
            need(object_type, &format!("{list}[{i}] ({ty} on {object_type})"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
