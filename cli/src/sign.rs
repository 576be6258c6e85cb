//! `hsbridge sign`: a curl-like client that signs with AWS SigV4 (service `execute-api`) using
//! the default AWS credential chain, the way the API caller signs its calls. For a loopback URL
//! (the local stack's stand-in) the local key `hsbridge dev` writes to `.hsbridge-dev/env` is
//! used when it is set, under names that shadow no AWS credential.

use anyhow::{Context, Result, bail};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use hsbridge_api_caller::protected::{
    Outgoing, ProtectedApi, ProtectedApiConfig, canonical_path, canonical_query,
};
use hsbridge_platform::aws::{self, AwsTimeouts};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::time::{Duration, SystemTime};

/// `hsbridge sign`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct SignArgs {
    /// The URL to call, e.g. https://abc123.execute-api.eu-west-1.amazonaws.com/prod/hello
    pub url: String,
    /// The HTTP method (POST when a body is given, GET otherwise).
    #[arg(short = 'X', long)]
    pub method: Option<String>,
    /// The request body (`@file` reads a file).
    #[arg(short = 'd', long)]
    pub data: Option<String>,
    /// A header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// The region to sign for (default: AWS_REGION, then the region in an execute-api URL).
    #[arg(long)]
    pub region: Option<String>,
    /// Print the signed request (credentials redacted) instead of sending it.
    #[arg(long)]
    pub print: bool,
    /// Timeout of the whole call, in seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

/// The local stand-in's key and region, as `.hsbridge-dev/env` exports them.
pub const DEV_ACCESS_KEY_ID: &str = "HSBRIDGE_DEV_ACCESS_KEY_ID";
pub const DEV_SECRET_ACCESS_KEY: &str = "HSBRIDGE_DEV_SECRET_ACCESS_KEY";
pub const DEV_REGION: &str = "HSBRIDGE_DEV_REGION";

/// Whether a URL's host is this machine (where the local key may go, and nowhere else).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The local key and its region, for a loopback URL when both halves are set.
fn dev_key(host: &str) -> Option<(Credentials, Option<String>)> {
    if !is_loopback(host) {
        return None;
    }
    let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (id, secret) = (var(DEV_ACCESS_KEY_ID)?, var(DEV_SECRET_ACCESS_KEY)?);
    Some((
        Credentials::new(id, secret, None, None, "hsbridge-dev-env"),
        var(DEV_REGION),
    ))
}

/// The region in `https://{id}.execute-api.{region}.amazonaws.com/...`.
fn region_of(host: &str) -> Option<String> {
    let rest = host.split_once(".execute-api.")?.1;
    Some(rest.split('.').next()?.to_owned())
}

pub async fn run(args: SignArgs) -> Result<()> {
    let uri: http::Uri = args
        .url
        .parse()
        .with_context(|| format!("{:?} is not a URL", args.url))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        bail!("{:?} is not an absolute http(s) URL", args.url);
    };
    if scheme != "https" && scheme != "http" {
        bail!("only http and https URLs can be signed");
    }
    let path = canonical_path(uri.path())
        .map_err(|e| anyhow::anyhow!("the URL's path cannot be signed: {e}"))?;
    let query = uri
        .query()
        .map(canonical_query)
        .transpose()
        .map_err(|e| anyhow::anyhow!("the URL's query cannot be signed: {e}"))?;
    let body = match args.data.as_deref() {
        Some(d) if d.starts_with('@') => {
            std::fs::read(&d[1..]).with_context(|| format!("could not read {}", &d[1..]))?
        }
        Some(d) => d.as_bytes().to_vec(),
        None => Vec::new(),
    };
    let method = match &args.method {
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .ok()
            .context("-X takes an HTTP method such as GET or POST")?,
        None if args.data.is_some() => Method::POST,
        None => Method::GET,
    };
    let mut headers = HeaderMap::new();
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("-H {h:?}: expected `Name: value`"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("-H {h:?}: not a header name"))?;
        let value = HeaderValue::from_str(value.trim())
            .with_context(|| format!("-H {h:?}: not a header value"))?;
        headers.append(name, value);
    }
    if !body.is_empty() && !headers.contains_key(http::header::CONTENT_TYPE) {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }

    let sdk = aws::load(AwsTimeouts::default()).await;
    let (credentials, dev_region) = match dev_key(authority.host()) {
        Some((key, region)) => (SharedCredentialsProvider::new(key), region),
        None => (
            sdk.credentials_provider().context(
                "no AWS credentials provider is configured; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
            )?,
            None,
        ),
    };
    let region = args
        .region
        .clone()
        .or(dev_region)
        .or_else(|| sdk.region().map(|r| r.to_string()))
        .or_else(|| region_of(authority.host()))
        .context("no region: pass --region or set AWS_REGION")?;
    let api = ProtectedApi::new(
        ProtectedApiConfig {
            base_url: format!("{scheme}://{authority}"),
            region,
            timeout: Duration::from_secs(args.timeout.max(1)),
            max_response_bytes: 10 * 1024 * 1024,
        },
        credentials,
    )
    .map_err(|e| anyhow::anyhow!("could not build an HTTP client: {e}"))?;
    let outgoing = Outgoing {
        method,
        path,
        query,
        headers,
        body: body.into(),
    };

    if args.print {
        let signed = api.sign(outgoing, SystemTime::now()).await.map_err(|e| {
            anyhow::anyhow!(
                "could not sign: {e}; check the AWS credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE)"
            )
        })?;
        println!("{} {}", signed.method(), signed.uri());
        for (name, value) in signed.headers() {
            let shown = match name.as_str() {
                // The signature is fine to show; the session token is a credential.
                "x-amz-security-token" => "[REDACTED]".to_owned(),
                _ => String::from_utf8_lossy(value.as_bytes()).into_owned(),
            };
            println!("{name}: {shown}");
        }
        if !signed.body().is_empty() {
            println!();
            println!("{}", String::from_utf8_lossy(signed.body()));
        }
        return Ok(());
    }
    let upstream = api.send(outgoing).await.map_err(|e| {
        anyhow::anyhow!("the call failed: {e}; check the URL and the AWS credentials")
    })?;
    println!("{}", upstream.status);
    println!("{}", String::from_utf8_lossy(&upstream.body));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{is_loopback, region_of};

    #[test]
    fn the_local_key_goes_only_to_loopback_hosts() {
        for host in ["127.0.0.1", "localhost", "LOCALHOST", "[::1]", "127.0.0.2"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "abc123.execute-api.eu-west-1.amazonaws.com",
            "localhost.example.com",
            "10.0.0.1",
            "127.0.0.1.nip.io",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn the_region_is_read_from_an_execute_api_host() {
        assert_eq!(
            region_of("abc123.execute-api.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_of("127.0.0.1"), None);
    }
}
