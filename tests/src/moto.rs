//! moto in server mode: the one `AWS_ENDPOINT_URL` points at (what `scripts/test` starts), or
//! one started here on a free loopback port (the perf harness, a single test run by hand).

use crate::process::Proc;
use anyhow::{Result, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use std::path::Path;
use std::time::{Duration, Instant};

/// The credentials and region moto is spoken to with by the stand itself.
pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";
pub const REGION: &str = "us-east-1";

/// A moto server this process started, and the SDK configuration pointed at it; the server
/// stops when this drops.
#[derive(Debug)]
pub struct Moto {
    pub endpoint: String,
    pub sdk: SdkConfig,
    _proc: Proc,
}

/// Starts `moto_server` on a free loopback port (its output in `log`) and waits, at most 30 s,
/// until it answers.
pub async fn start(moto_server: &Path, log: &Path) -> Result<Moto> {
    let port = free_port()?;
    let proc = Proc::spawn(
        moto_server,
        &["-H", "127.0.0.1", "-p", &port.to_string()],
        &[],
        log,
    )?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let sdk = sdk(&endpoint).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let started = Instant::now();
    loop {
        if ddb.list_tables().send().await.is_ok() {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("moto did not answer within 30 s; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Moto {
        endpoint,
        sdk,
        _proc: proc,
    })
}

/// The SDK configuration for `endpoint` with the stand's own credentials.
pub async fn sdk(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "stand",
        ))
        .load()
        .await
}

/// A loopback port nothing listens on at the moment of asking.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
