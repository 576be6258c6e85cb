//! The call recorder `scripts/test` puts in front of moto: forwards every request to the
//! upstream unchanged and appends each AWS call, as IAM sees it, to a call log (JSON Lines; the
//! format is in `docs/testing-stand.md`), which `tests/iam/evaluate.mjs` evaluates against the
//! template's roles.
//!
//! ```text
//! aws-call-recorder UPSTREAM_URL CALL_LOG [LISTEN_ADDR]
//! ```
//!
//! Prints `listening on http://ADDR` once it accepts connections, then serves until stopped.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use hsbridge_integration_tests::proxy::FaultProxy;
use std::path::PathBuf;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(upstream), Some(log)) = (args.first(), args.get(1)) else {
        eprintln!("usage: aws-call-recorder UPSTREAM_URL CALL_LOG [LISTEN_ADDR]");
        return ExitCode::from(2);
    };
    let listen = args.get(2).map_or("127.0.0.1:0", String::as_str);
    let log = PathBuf::from(log);
    let proxy = match FaultProxy::start_recording(upstream, &log, listen).await {
        Ok(proxy) => proxy,
        Err(error) => {
            eprintln!(
                "aws-call-recorder: cannot listen on {listen} or open the call log {}: {error}",
                log.display()
            );
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", proxy.url());
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handler: serve until killed.
        std::future::pending::<()>().await;
    }
    ExitCode::SUCCESS
}
