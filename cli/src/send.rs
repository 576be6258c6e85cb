//! `hsbridge webhook send`: signs a request exactly as HubSpot does and sends it.

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use hsbridge_platform::{Clock, SystemClock};
use hsbridge_verify::{Secret, sign_v1, sign_v2, sign_v3};
use std::path::PathBuf;
use std::time::Duration;

/// The portal the generated sample batch is for (the HubSpot simulator's).
pub const SAMPLE_PORTAL: u64 = crate::dev::SIM_HUB_ID;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SigVersion {
    V1,
    V2,
    V3,
}

/// `hsbridge webhook send`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
    /// The URL HubSpot would call, e.g. http://127.0.0.1:3000/webhooks/hubspot (with --stack,
    /// the stack's WebhookUrl output).
    #[arg(long)]
    pub url: Option<String>,
    /// The app's client secret (with --stack, the current one of the stack's app secret, read
    /// from Secrets Manager and never printed).
    #[arg(long, env = "HUBSPOT_CLIENT_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// With --stack, send to the deployed stack's webhook URL, signed with its app secret.
    #[command(flatten)]
    pub aws: crate::stack::StackArgs,
    /// Which signature to send.
    #[arg(long, value_enum, default_value_t = SigVersion::V3)]
    pub sig: SigVersion,
    /// A JSON batch to send instead of a generated sample.
    #[arg(long, conflicts_with = "subscriptions")]
    pub file: Option<PathBuf>,
    /// A webhooks file (`webhooks-hsmeta.json` of the connector app): send one event of each
    /// active subscription in it, as HubSpot would for the sample portal.
    #[arg(long)]
    pub subscriptions: Option<PathBuf>,
    /// Also write the body that was sent to this file (to send the same batch again).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// The request timestamp (epoch ms) instead of now.
    #[arg(long)]
    pub timestamp: Option<u64>,
    /// The HTTP method (HubSpot's app fetches sign GET requests too; they carry no body).
    #[arg(short = 'X', long, default_value = "POST")]
    pub method: String,
    /// Change one byte of the body after signing, as an attacker in the middle would.
    #[arg(long)]
    pub tamper: bool,
}

/// A one-event batch like HubSpot's, for the sample portal.
pub fn sample_batch(now_ms: u64) -> String {
    serde_json::json!([{
        "eventId": now_ms % 1_000_000_007, "subscriptionId": 12345, "portalId": SAMPLE_PORTAL,
        "appId": 54321, "occurredAt": now_ms, "subscriptionType": "contact.creation",
        "attemptNumber": 0, "objectId": 123, "changeSource": "CRM", "changeFlag": "NEW"
    }])
    .to_string()
}

/// The `objectTypeId` HubSpot puts in generic `object.*` events.
fn object_type_id(object_type: &str) -> Option<&'static str> {
    Some(match object_type {
        "contact" | "contacts" => "0-1",
        "company" | "companies" => "0-2",
        "deal" | "deals" => "0-3",
        "ticket" | "tickets" => "0-5",
        _ => return None,
    })
}

/// One event per active subscription of a webhooks file, as HubSpot sends them: generic
/// `crmObjects` events (`object.*`) carry `objectTypeId`; legacy and hub events carry their own
/// subscription type.
/// https://developers.hubspot.com/docs/apps/developer-platform/add-features/configure-webhooks
pub fn subscription_batch(webhooks_file: &str, now_ms: u64) -> Result<String> {
    let file: serde_json::Value =
        serde_json::from_str(webhooks_file).context("it is not valid JSON")?;
    let subscriptions = file
        .pointer("/config/subscriptions")
        .context("it has no config.subscriptions")?;
    let mut events = Vec::new();
    let mut next_id = now_ms % 1_000_000_007;
    for list in ["crmObjects", "legacyCrmObjects", "hubEvents"] {
        let Some(items) = subscriptions.get(list).and_then(|v| v.as_array()) else {
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            if item.get("active").and_then(serde_json::Value::as_bool) == Some(false) {
                continue;
            }
            let kind = item
                .get("subscriptionType")
                .and_then(|v| v.as_str())
                .with_context(|| format!("{list}[{i}] has no subscriptionType"))?;
            next_id += 1;
            let mut event = serde_json::json!({
                "eventId": next_id, "subscriptionId": 12345 + events.len(), "portalId": SAMPLE_PORTAL,
                "appId": 54321, "occurredAt": now_ms, "subscriptionType": kind,
                "attemptNumber": 0, "objectId": 123, "changeSource": "CRM",
            });
            if list == "crmObjects" {
                let object_type = item
                    .get("objectType")
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                let id = object_type_id(object_type).with_context(|| {
                    format!("{list}[{i}]: the simulator knows no objectTypeId for objectType {object_type:?}")
                })?;
                event["objectTypeId"] = id.into();
            }
            if let Some(property) = item.get("propertyName").and_then(|v| v.as_str()) {
                event["propertyName"] = property.into();
                event["propertyValue"] = "sim-value".into();
            }
            events.push(event);
        }
    }
    if events.is_empty() {
        bail!("it has no active subscription");
    }
    Ok(serde_json::Value::Array(events).to_string())
}

/// The URL and the client secret: the stack's when one is named, else the flags'.
async fn target(args: &SendArgs) -> Result<(String, String)> {
    if args.aws.stack.is_none() {
        let url = args.url.clone().context(
            "which URL? pass --url (e.g. http://127.0.0.1:3000/webhooks/hubspot) or --stack NAME",
        )?;
        let secret = args
            .secret
            .clone()
            .filter(|s| !s.is_empty())
            .context("no client secret: pass --secret or set HUBSPOT_CLIENT_SECRET (with `hsbridge dev`, `source .hsbridge-dev/env` sets it)")?;
        return Ok((url, secret));
    }
    let sdk = args.aws.sdk(crate::ops::OPERATOR_TIMEOUTS).await?;
    let stack = args.aws.read(&sdk).await?;
    let url = crate::stack::pick(stack.as_ref(), "WebhookUrl", None, "which URL?")?;
    let secret_id =
        crate::stack::pick(stack.as_ref(), "HubSpotAppSecretArn", None, "which secret?")?;
    let source = hsbridge_platform::secrets::SecretsManagerSource::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        secret_id.as_str(),
        hsbridge_platform::secrets::SecretCachePolicy::default(),
        std::sync::Arc::new(SystemClock),
    );
    use hsbridge_platform::secrets::SecretSource;
    let app = source
        .hubspot_app()
        .await
        .map_err(|e| anyhow::anyhow!("{e}; check the stack's app secret ({secret_id})"))?;
    Ok((url, app.secrets.current().expose().to_owned()))
}

pub async fn run(args: SendArgs) -> Result<()> {
    let (url, secret) = target(&args).await?;
    let method = http::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .ok()
        .context("-X takes an HTTP method such as GET or POST")?;
    let now_ms = SystemClock.now_ms();
    let mut body = match (&args.file, method == http::Method::GET) {
        (Some(path), _) => {
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?
        }
        (None, false) if args.subscriptions.is_some() => {
            let path = args
                .subscriptions
                .as_deref()
                .unwrap_or_else(|| std::path::Path::new(""));
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("could not read {}", path.display()))?;
            subscription_batch(&text, now_ms)
                .with_context(|| format!("{} is not a usable webhooks file", path.display()))?
                .into_bytes()
        }
        (None, true) => Vec::new(),
        (None, false) => sample_batch(now_ms).into_bytes(),
    };
    if let Some(path) = &args.save {
        std::fs::write(path, &body)
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    let secret = Secret::new(secret);
    let m = method.as_str();
    let mut headers: Vec<(&str, String)> = vec![];
    match args.sig {
        SigVersion::V3 => {
            let ts = args.timestamp.unwrap_or(now_ms).to_string();
            headers.push((
                "x-hubspot-signature-v3",
                sign_v3(&secret, m, &url, &body, &ts),
            ));
            headers.push(("x-hubspot-request-timestamp", ts));
        }
        SigVersion::V2 => {
            headers.push(("x-hubspot-signature", sign_v2(&secret, m, &url, &body)));
            headers.push(("x-hubspot-signature-version", "v2".to_owned()));
        }
        SigVersion::V1 => {
            headers.push(("x-hubspot-signature", sign_v1(&secret, &body)));
            headers.push(("x-hubspot-signature-version", "v1".to_owned()));
        }
    }
    if args.tamper {
        match body.last_mut() {
            // `]` → `}` keeps it printable; any change must be caught.
            Some(last) => *last ^= 0x20,
            None => bail!("--tamper needs a body to change; send a POST"),
        }
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("could not build an HTTP client")?;
    let mut request = client.request(method.clone(), &url);
    if method != http::Method::GET {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|e| {
        anyhow::anyhow!(
            "could not reach {}: {}; is `hsbridge dev` running?",
            url,
            e.without_url()
        )
    })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!("{status}");
    println!("{text}");
    Ok(())
}
