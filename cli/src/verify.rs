//! `hsbridge verify`: checks a captured request's HubSpot signature and, with `--explain`, says
//! exactly why it did not match (see `hsbridge_verify::explain`).
//!
//! Input is either a raw HTTP request as `curl -v` or a proxy dump shows it (request line,
//! headers, blank line, body; CRLF or LF; `> ` prefixes allowed), or an API Gateway / function URL
//! event. The URI checked is the one the intake rebuilds: scheme from `X-Forwarded-Proto`
//! (default https), the `Host` header, the raw path and the raw query.
//!
//! Exit codes: 0 valid, 1 invalid, 2 usage or input error. Output never holds a secret, a body
//! or a full signature.

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, ValueEnum};
use hsbridge_platform::aws::AwsTimeouts;
use hsbridge_platform::config::{self, ProcessEnv, Vars};
use hsbridge_platform::request::public_uri;
use hsbridge_platform::secrets::{SecretCachePolicy, SecretSource, SecretsManagerSource};
use hsbridge_platform::{Clock, SystemClock};
use hsbridge_verify::{
    Explanation, Hints, Policy, PublicBase, Secret, SecretSet, SecretSlot, SignatureVersion,
    SignedRequest, UriError, explain, rebuild_public_uri,
};
use lambda_http::RequestExt;
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue};
use lambda_http::request::RequestContext;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Options of `hsbridge verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Say why the signature did not match (the first failed check, and the mangling found).
    #[arg(long)]
    explain: bool,
    /// A raw HTTP request: request line, headers, blank line, body (curl -v or a proxy dump).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "event",
        conflicts_with = "event"
    )]
    request: Option<PathBuf>,
    /// An API Gateway HTTP API (payload 2.0), function URL or REST API (1.0) event, as JSON.
    #[arg(long, value_name = "FILE")]
    event: Option<PathBuf>,
    /// The app's client secret.
    #[arg(long, env = "HUBSPOT_CLIENT_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// The previous client secret, during a rotation.
    #[arg(long, env = "HUBSPOT_PREVIOUS_CLIENT_SECRET", hide_env_values = true)]
    previous_secret: Option<String>,
    /// Read the secrets from this Secrets Manager secret (AWSCURRENT and AWSPREVIOUS) instead.
    #[arg(long, value_name = "ID")]
    secret_id: Option<String>,
    /// With --stack, the secrets are read from the stack's app secret (its
    /// HubSpotAppSecretArn output).
    #[command(flatten)]
    aws: crate::stack::StackArgs,
    /// Which of the secrets the verifier accepts; the others only help explain a mismatch.
    #[arg(long, value_enum, default_value_t = Accept::Both)]
    accept: Accept,
    /// The URL HubSpot was configured to call (full target URL, or its base).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// The time the request was received, epoch ms (default: now). Needed for captures.
    #[arg(long, value_name = "MS")]
    now: Option<u64>,
    /// Try these signature versions instead of the intake's policy (e.g. `v3,v2,v1`). By
    /// default the check is the deployed intake's: v3, plus v1 when HSBRIDGE_ALLOW_V1 is true.
    #[arg(long, value_enum, value_delimiter = ',')]
    versions: Option<Vec<Version>>,
    /// Judge as an intake with HSBRIDGE_ALLOW_V1=true does (v3, and v1-only requests).
    #[arg(long)]
    allow_v1: bool,
    /// The timestamp window, ms (at most HubSpot's 300000). Default: HSBRIDGE_SIGNATURE_WINDOW_MS,
    /// else the intake's default (300000).
    #[arg(long, value_name = "MS")]
    window_ms: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Accept {
    Both,
    Current,
    Previous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Version {
    V1,
    V2,
    V3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// A request as captured, with what the file said about where it came from.
struct Captured {
    method: String,
    uri: String,
    body: Vec<u8>,
    headers: HeaderMap,
    stage: Option<String>,
    notes: Vec<String>,
}

/// Runs `hsbridge verify`: 0 valid, 1 invalid, 2 usage or input error.
pub async fn run(args: VerifyArgs) -> ExitCode {
    match check(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn check(args: &VerifyArgs) -> Result<bool> {
    let public_url = args.public_url.as_deref();
    if let Some(url) = public_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        bail!(
            "--public-url must be an http(s) URL such as https://hooks.example.com/webhooks/hubspot"
        );
    }
    let captured = match (&args.request, &args.event) {
        (Some(path), _) => read_raw(path, public_url)?,
        (None, Some(path)) => read_event(path, public_url)?,
        (None, None) => {
            bail!("pass --request FILE (a raw HTTP request) or --event FILE (a Lambda event)")
        }
    };
    let (current, previous) = secrets(args).await?;
    let (accepted, others) = accepted_secrets(args.accept, current, previous)?;
    let judged = judging_policy(args, &ProcessEnv)?;
    let policy = Policy::accepting(&judged.versions)
        .with_window_ms(judged.window_ms)
        .map_err(|e| anyhow!("{}: {e}; give 1 to 300000", judged.window_from))?;
    let now_ms = args.now.unwrap_or_else(|| SystemClock.now_ms());

    let request = SignedRequest {
        method: &captured.method,
        uri: &captured.uri,
        body: &captured.body,
        headers: &captured.headers,
    };
    let hints = Hints {
        public_url,
        host_url: None,
        stage: captured.stage.as_deref(),
        other_secrets: others.iter().map(|(slot, s)| (*slot, s)).collect(),
    };
    let explanation = explain(&request, &accepted, &policy, now_ms, &hints);
    print(args, &captured, &explanation, &judged);
    Ok(explanation.is_valid())
}

/// The policy a capture is judged by, and where each part came from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Judging {
    versions: Vec<SignatureVersion>,
    window_ms: u64,
    /// `HSBRIDGE_SIGNATURE_WINDOW_MS`, `--window-ms` or the intake's default.
    window_from: &'static str,
    /// Whether the versions are the intake's (not `--versions`).
    intake: bool,
}

impl Judging {
    fn describe(&self) -> String {
        let versions: Vec<&str> = self.versions.iter().map(|v| v.as_str()).collect();
        let whose = if self.intake {
            "the deployed intake's"
        } else {
            "as asked with --versions"
        };
        format!(
            "{whose}: {} accepted, timestamp window {} ms ({})",
            versions.join(", "),
            self.window_ms,
            self.window_from
        )
    }
}

/// The deployed intake's policy (v3; v1 too with `HSBRIDGE_ALLOW_V1`; its window), unless
/// flags ask for another.
fn judging_policy(args: &VerifyArgs, env: &dyn Vars) -> Result<Judging> {
    let (window_ms, window_from) = match args.window_ms {
        Some(ms) => (ms, "--window-ms"),
        None => match config::optional(env, "HSBRIDGE_SIGNATURE_WINDOW_MS") {
            Some(_) => (
                config::parsed(
                    env,
                    "HSBRIDGE_SIGNATURE_WINDOW_MS",
                    hsbridge_verify::MAX_WINDOW_MS,
                )
                .map_err(|e| anyhow!("{e}"))?,
                "HSBRIDGE_SIGNATURE_WINDOW_MS",
            ),
            None => (hsbridge_verify::MAX_WINDOW_MS, "the intake's default"),
        },
    };
    if let Some(versions) = &args.versions {
        return Ok(Judging {
            versions: versions
                .iter()
                .map(|v| match v {
                    Version::V1 => SignatureVersion::V1,
                    Version::V2 => SignatureVersion::V2,
                    Version::V3 => SignatureVersion::V3,
                })
                .collect(),
            window_ms,
            window_from,
            intake: false,
        });
    }
    // The same reading of the same variable as the intake's configuration.
    let allow_v1 = args.allow_v1
        || config::flag(env, "HSBRIDGE_ALLOW_V1", false).map_err(|e| anyhow!("{e}"))?;
    let versions = if allow_v1 {
        vec![SignatureVersion::V3, SignatureVersion::V1]
    } else {
        vec![SignatureVersion::V3]
    };
    Ok(Judging {
        versions,
        window_ms,
        window_from,
        intake: true,
    })
}

fn print(args: &VerifyArgs, captured: &Captured, e: &Explanation, judged: &Judging) {
    match (args.format, args.explain) {
        (Format::Json, explain) => {
            let mut out = json!({
                "result": if e.is_valid() { "valid" } else { "invalid" },
            });
            if explain {
                out = explanation_json(e, captured);
            }
            out["policy"] = json!({
                "versions": judged.versions.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
                "window_ms": judged.window_ms,
                "intake": judged.intake,
                "text": judged.describe(),
            });
            println!("{out}");
        }
        (Format::Text, false) => {
            match e {
                Explanation::Valid { .. } => println!("valid"),
                Explanation::Invalid { .. } => {
                    println!("invalid (run with --explain to see why)");
                }
            }
            // On stderr: stdout stays the one word scripts read.
            eprintln!("Policy: {}", judged.describe());
        }
        (Format::Text, true) => {
            println!("Policy: {}", judged.describe());
            println!("Checked {} {}", captured.method, captured.uri);
            println!("{e}");
            for note in &captured.notes {
                println!("Note: {note}");
            }
        }
    }
}

fn explanation_json(e: &Explanation, captured: &Captured) -> serde_json::Value {
    let mangling = e.mangling().map(|m| {
        json!({
            "kind": m.kind.as_str(),
            "slot": m.slot.as_str(),
            "detail": m.detail,
            "finding": m.finding(),
            "fix": m.fix(),
        })
    });
    match e {
        Explanation::Valid { version, slot, .. } => json!({
            "result": "valid",
            "uri": captured.uri,
            "version": version.as_str(),
            "slot": slot.as_str(),
            "diagnosis": e.mangling().map(|m| m.kind.as_str()),
            "mangling": mangling,
            "text": e.to_string(),
            "notes": captured.notes,
        }),
        Explanation::Invalid {
            version,
            first_failure,
            signature_matches,
            diagnosis,
            checked,
            skipped,
            prefixes,
            extra_macs,
        } => json!({
            "result": "invalid",
            "uri": captured.uri,
            "version": version.map(SignatureVersion::as_str),
            "first_failure": first_failure.as_str(),
            "first_failure_text": first_failure.to_string(),
            "signature_matches": signature_matches.map(SecretSlot::as_str),
            "diagnosis": diagnosis.as_ref().map(|m| m.kind.as_str()),
            "mangling": mangling,
            "checked": checked.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            "skipped": skipped.iter().map(|(k, r)| json!({"kind": k.as_str(), "reason": r.as_str()})).collect::<Vec<_>>(),
            "received_prefix": prefixes.received,
            "computed_prefixes": prefixes.computed.iter().map(|(s, p)| json!({"slot": s.as_str(), "prefix": p})).collect::<Vec<_>>(),
            "extra_macs": extra_macs,
            "text": e.to_string(),
            "notes": captured.notes,
        }),
    }
}

/// The current and previous secrets from the flags, the environment or Secrets Manager.
async fn secrets(args: &VerifyArgs) -> Result<(Option<Secret>, Option<Secret>)> {
    if args.secret_id.is_some() || args.aws.stack.is_some() {
        let sdk = args
            .aws
            .sdk(AwsTimeouts {
                connect: Duration::from_secs(3),
                attempt: Duration::from_secs(5),
                operation: Duration::from_secs(10),
                max_attempts: 3,
            })
            .await?;
        let stack = args.aws.read(&sdk).await?;
        let id = crate::stack::pick(
            stack.as_ref(),
            "HubSpotAppSecretArn",
            args.secret_id.clone(),
            "which secret? pass --secret-id",
        )?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        // Read AWSPREVIOUS whatever its age; --accept says whether the verifier takes it.
        let policy = SecretCachePolicy {
            grace: Duration::MAX,
            ..SecretCachePolicy::default()
        };
        let source = SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            id.as_str(),
            policy,
            clock,
        );
        let app = source.hubspot_app().await.map_err(|e| {
            anyhow!("{e}; check --secret-id (or --stack), the region and the credentials (AWS_ENDPOINT_URL for a local stand-in)")
        })?;
        return Ok((
            Some(app.secrets.current().clone()),
            app.secrets.previous().cloned(),
        ));
    }
    let nonempty = |s: &Option<String>| s.as_ref().filter(|s| !s.is_empty()).map(Secret::new);
    Ok((nonempty(&args.secret), nonempty(&args.previous_secret)))
}

type Others = Vec<(SecretSlot, Secret)>;

fn accepted_secrets(
    accept: Accept,
    current: Option<Secret>,
    previous: Option<Secret>,
) -> Result<(SecretSet, Others)> {
    let no_secret =
        "no client secret: pass --secret, set HUBSPOT_CLIENT_SECRET, or pass --secret-id";
    let empty = |_| anyhow!("a client secret is empty or only whitespace; give it a value");
    match accept {
        Accept::Both => {
            let mut set = SecretSet::new(current.context(no_secret)?).map_err(empty)?;
            if let Some(previous) = previous {
                set = set.with_previous(previous).map_err(empty)?;
            }
            Ok((set, Vec::new()))
        }
        Accept::Current => {
            let set = SecretSet::new(current.context(no_secret)?).map_err(empty)?;
            let others = previous
                .map(|p| (SecretSlot::Previous, p))
                .into_iter()
                .collect();
            Ok((set, others))
        }
        Accept::Previous => {
            let previous = previous.context(
                "--accept previous needs a previous secret: pass --previous-secret or set \
                 HUBSPOT_PREVIOUS_CLIENT_SECRET",
            )?;
            let set = SecretSet::new(previous).map_err(empty)?;
            let others = current
                .map(|c| (SecretSlot::Current, c))
                .into_iter()
                .collect();
            Ok((set, others))
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .with_context(|| format!("could not read {}; check the path", path.display()))
}

/// The scheme and host of `--public-url`, used when the capture has no `Host` header.
fn base_of(public_url: Option<&str>) -> Option<PublicBase> {
    let url = public_url?;
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?']).next()?;
    PublicBase::parse(&format!("{scheme}://{authority}")).ok()
}

fn uri_error(e: &UriError) -> anyhow::Error {
    match e {
        UriError::MissingHost => {
            anyhow!("the request has no Host header; add one to the capture or pass --public-url")
        }
        other => anyhow!("the request's URL cannot be rebuilt: {other}"),
    }
}

/// Parses a raw HTTP request (curl -v `> ` lines or a plain dump).
fn read_raw(path: &Path, public_url: Option<&str>) -> Result<Captured> {
    let bytes = read_file(path)?;
    let (head, mut body) = split_raw(&bytes);
    let head = String::from_utf8(head).map_err(|_| {
        anyhow!(
            "the request line and headers of {} are not UTF-8",
            path.display()
        )
    })?;
    let mut lines = head.lines().map(|l| l.trim_end_matches('\r'));
    let request_line = lines
        .next()
        .filter(|l| !l.trim().is_empty())
        .with_context(|| {
            format!(
                "{} is empty; save the raw request (request line, headers, blank line, body)",
                path.display()
            )
        })?;
    let (method, target) = parse_request_line(request_line).with_context(|| {
        format!(
            "the first line of {} is not a request line like `POST /webhooks/hubspot HTTP/1.1`",
            path.display()
        )
    })?;
    let mut headers = HeaderMap::new();
    for (n, line) in lines.enumerate() {
        if line.starts_with(':') {
            continue; // an HTTP/2 pseudo-header from a proxy dump
        }
        let (name, value) = line.split_once(':').with_context(|| {
            format!(
                "line {} of {} is not a `Name: value` header",
                n + 2,
                path.display()
            )
        })?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).with_context(|| {
            format!(
                "line {} of {}: `{}` is not a header name",
                n + 2,
                path.display(),
                name.trim()
            )
        })?;
        let value = HeaderValue::from_str(value.trim()).with_context(|| {
            format!(
                "line {} of {}: the header value is not valid",
                n + 2,
                path.display()
            )
        })?;
        headers.append(name, value);
    }
    let mut notes = Vec::new();
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    match declared {
        Some(len) if body.len() > len && body[len..].iter().all(|b| matches!(b, b'\r' | b'\n')) => {
            body.truncate(len);
        }
        Some(len) if body.len() != len => notes.push(format!(
            "Content-Length says {len} bytes but the capture holds {}; the bytes captured were checked",
            body.len()
        )),
        Some(_) => {}
        None if !body.is_empty() => notes.push(
            "no Content-Length header: the body runs to the end of the file, any final newline included"
                .to_owned(),
        ),
        None => {}
    }
    let uri = if target.starts_with("http://") || target.starts_with("https://") {
        target.to_owned()
    } else {
        let (path_part, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        match rebuild_public_uri(None, &headers, path_part, query) {
            Ok(uri) => uri,
            Err(UriError::MissingHost) if base_of(public_url).is_some() => {
                rebuild_public_uri(base_of(public_url).as_ref(), &headers, path_part, query)
                    .map_err(|e| uri_error(&e))?
            }
            Err(e) => return Err(uri_error(&e)),
        }
    };
    Ok(Captured {
        method: method.to_owned(),
        uri,
        body,
        headers,
        stage: None,
        notes,
    })
}

/// Splits a capture into the head's lines (curl's `> ` prefixes removed) and the body's bytes.
fn split_raw(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let text_start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let bytes = &bytes[text_start..];
    if bytes.starts_with(b"> ") || bytes.starts_with(b"* ") {
        // curl -v: the request is on `> ` lines up to a lone `>`; what follows (minus curl's
        // `*`, `<`, `{`, `}` lines) is the body, if it was pasted in.
        let mut head = Vec::new();
        let mut rest = bytes;
        while let Some(line_end) = rest
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| i + 1)
            .or((!rest.is_empty()).then_some(rest.len()))
        {
            let line = &rest[..line_end];
            rest = &rest[line_end..];
            let trimmed = trim_eol(line);
            if trimmed == b">" || trimmed == b"> " {
                break;
            }
            if let Some(content) = trimmed.strip_prefix(b"> ") {
                head.extend_from_slice(content);
                head.push(b'\n');
            } else if !trimmed.starts_with(b"* ") {
                head.extend_from_slice(trimmed);
                head.push(b'\n');
            }
        }
        let mut body = Vec::new();
        let mut remaining = rest;
        while !remaining.is_empty() {
            let end = remaining
                .iter()
                .position(|&b| b == b'\n')
                .map_or(remaining.len(), |i| i + 1);
            let line = &remaining[..end];
            remaining = &remaining[end..];
            if !(line.starts_with(b"* ")
                || line.starts_with(b"< ")
                || line.starts_with(b"{ ")
                || line.starts_with(b"} ")
                || trim_eol(line) == b"<")
            {
                body.extend_from_slice(line);
            }
        }
        return (head, body);
    }
    let crlf = find(bytes, b"\r\n\r\n").map(|i| (i, 4));
    let lf = find(bytes, b"\n\n").map(|i| (i, 2));
    let split = match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    match split {
        Some((i, len)) => (bytes[..i].to_vec(), bytes[i + len..].to_vec()),
        None => (bytes.to_vec(), Vec::new()),
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `METHOD target HTTP/x`; the target may hold spaces when a tool decoded it.
fn parse_request_line(line: &str) -> Option<(&str, &str)> {
    let (method, rest) = line.trim().split_once(' ')?;
    let target = match rest.rfind(" HTTP/") {
        Some(i) => &rest[..i],
        None => rest,
    };
    (!method.is_empty() && !target.is_empty()).then_some((method, target.trim()))
}

/// Reads a Lambda event through lambda_http, as the function would receive it.
fn read_event(path: &Path, public_url: Option<&str>) -> Result<Captured> {
    let text = String::from_utf8(read_file(path)?)
        .map_err(|_| anyhow!("{} is not UTF-8 JSON", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not JSON; pass an API Gateway or function URL event",
            path.display()
        )
    })?;
    // lambda_http panics on a body marked base64 that is not: check first.
    if value
        .get("isBase64Encoded")
        .and_then(serde_json::Value::as_bool)
        == Some(true)
        && let Some(body) = value.get("body").and_then(serde_json::Value::as_str)
        && STANDARD.decode(body).is_err()
    {
        bail!(
            "the event says isBase64Encoded but its body is not valid base64; fix the event or set isBase64Encoded to false"
        );
    }
    let parsed = std::panic::catch_unwind(|| lambda_http::request::from_str(&text))
        .map_err(|_| {
            anyhow!(
                "lambda_http could not read {}; check its Host header and path",
                path.display()
            )
        })?
        .map_err(|e| {
            anyhow!(
                "{} is not an API Gateway (payload 1.0 or 2.0) or function URL event: {e}",
                path.display()
            )
        })?;
    let mut notes = Vec::new();
    let stage = match parsed.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.stage.clone(),
        Some(RequestContext::ApiGatewayV1(ctx)) => {
            notes.push(
                "this is a REST API (payload 1.0) event: its query string was rebuilt from a map, \
                 so its order and encoding may differ from what HubSpot signed"
                    .to_owned(),
            );
            ctx.stage.clone()
        }
        _ => None,
    }
    .filter(|s| s != "$default");
    let (parts, body) = parsed.into_parts();
    let uri = match public_uri(&parts, None) {
        Ok(uri) => uri,
        Err(UriError::MissingHost) if base_of(public_url).is_some() => {
            public_uri(&parts, base_of(public_url).as_ref()).map_err(|e| uri_error(&e))?
        }
        Err(e) => return Err(uri_error(&e)),
    };
    Ok(Captured {
        method: parts.method.as_str().to_owned(),
        uri,
        body: body.to_vec(),
        headers: parts.headers,
        stage,
        notes,
    })
}
