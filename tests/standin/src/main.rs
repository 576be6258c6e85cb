//! `sigv4-standin`: serves the SigV4-verifying API Gateway stand-in on a local socket.
//!
//! Prints exactly one line, `listening on http://ADDR`, on stdout once bound; logs one line per
//! request (method, path, outcome) on stderr. Keys, tokens and signatures are never printed.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use hsbridge_standin::{Credential, Standin, StandinConfig};

const DEFAULT_PRINCIPAL_ARN: &str = "arn:aws:iam::000000000000:user/hubspot-function-caller";

/// A local stand-in for an API Gateway REST API with AWS_IAM authorization.
///
/// The accepted credential comes from the environment: STANDIN_ACCESS_KEY_ID,
/// STANDIN_SECRET_ACCESS_KEY, optional STANDIN_SESSION_TOKEN and STANDIN_PRINCIPAL_ARN.
#[derive(Debug, Parser)]
#[command(name = "sigv4-standin", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Region the credential scope must name.
    #[arg(long, default_value = "us-east-1")]
    region: String,
}

fn required_env(name: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        Ok(_) => Err(format!(
            "{name} is set but empty; set it to the caller's value."
        )),
        Err(std::env::VarError::NotPresent) => Err(format!(
            "{name} is not set; the stand-in needs it to know which credential to accept."
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8.")),
    }
}

fn optional_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn credential_from_env() -> Result<Credential, String> {
    let access_key_id = required_env("STANDIN_ACCESS_KEY_ID");
    let secret_access_key = required_env("STANDIN_SECRET_ACCESS_KEY");
    match (access_key_id, secret_access_key) {
        (Ok(access_key_id), Ok(secret_access_key)) => Ok(Credential {
            access_key_id,
            secret_access_key,
            session_token: optional_env("STANDIN_SESSION_TOKEN"),
            principal_arn: optional_env("STANDIN_PRINCIPAL_ARN")
                .unwrap_or_else(|| DEFAULT_PRINCIPAL_ARN.to_owned()),
        }),
        (a, b) => Err([a.err(), b.err()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();

    let args = Args::parse();
    let credential = match credential_from_env() {
        Ok(credential) => credential,
        Err(message) => {
            eprintln!("sigv4-standin: {message}");
            return ExitCode::from(2);
        }
    };
    let config = StandinConfig::new(args.region, vec![credential]);
    let running = match Standin::new(config).spawn(args.addr).await {
        Ok(running) => running,
        Err(error) => {
            eprintln!("sigv4-standin: cannot listen on {}: {error}", args.addr);
            return ExitCode::FAILURE;
        }
    };

    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "listening on {}", running.base_url)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(stdout);

    match tokio::signal::ctrl_c().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sigv4-standin: cannot wait for Ctrl-C: {error}");
            ExitCode::FAILURE
        }
    }
}
