//! The SigV4-verifying stand-in for the protected API, its client, and the lines it prints.

use super::credentials::LocalAwsKey;
use anyhow::{Context, Result};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use hsbridge_api_caller::protected::{ProtectedApi, ProtectedApiConfig};
use hsbridge_standin::{Credential, RunningStandin, Standin, StandinConfig};
use std::net::SocketAddr;
use std::time::Duration;

/// The protected API's region, as the stand-in checks it.
pub(super) const REGION: &str = "us-east-1";

/// The SigV4-verifying stand-in for the protected API, accepting only the local key.
pub(super) async fn spawn_standin(
    aws_key: &LocalAwsKey,
    addr: SocketAddr,
) -> Result<RunningStandin> {
    Standin::new(StandinConfig::new(
        REGION,
        vec![Credential {
            access_key_id: aws_key.access_key_id.clone(),
            secret_access_key: aws_key.secret_access_key.clone(),
            session_token: None,
            principal_arn: "arn:aws:iam::000000000000:user/hsbridge-local-caller".to_owned(),
        }],
    ))
    .spawn(addr)
    .await
    .with_context(|| {
        format!(
            "could not listen on {addr} for the protected-API stand-in; is another process using it? Pick another port with --protected-addr"
        )
    })
}

/// The client of the protected API (the stand-in), signing with the local key.
pub(super) fn protected_api(
    aws_key: &LocalAwsKey,
    protected: &RunningStandin,
) -> Result<ProtectedApi> {
    let credentials = SharedCredentialsProvider::new(Credentials::new(
        aws_key.access_key_id.clone(),
        aws_key.secret_access_key.clone(),
        None,
        None,
        "hsbridge-dev",
    ));
    ProtectedApi::new(
        ProtectedApiConfig {
            base_url: protected.base_url.clone(),
            region: REGION.to_owned(),
            timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
        },
        credentials,
    )
    .map_err(|e| anyhow::anyhow!("could not build the protected-API client: {e}"))
}

/// One line for each request the protected API accepted or refused.
pub(super) async fn watch_protected(standin: Standin) {
    let (mut seen, mut refused) = (0usize, 0usize);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let recorded = standin.recorded();
        for r in recorded.iter().skip(seen) {
            println!(
                "protected API  {} {}  SigV4 verified: signed by {}",
                r.method, r.path, r.caller
            );
        }
        seen = recorded.len();
        let now_refused = standin.rejected();
        if now_refused > refused {
            println!(
                "protected API  refused {} request(s): SigV4 verification failed",
                now_refused - refused
            );
            refused = now_refused;
        }
    }
}
