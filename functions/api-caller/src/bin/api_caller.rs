//! The api-caller Lambda function: SQS batches of HubSpot events, delivered with SigV4.

use hsbridge_api_caller::consumer::{LambdaSqsEvent, handle_lambda_batch};
use hsbridge_api_caller::{CallerConfig, wiring};
use hsbridge_platform::aws::{self, AwsTimeouts};
use hsbridge_platform::config::ProcessEnv;
use hsbridge_platform::metrics::Metrics;
use hsbridge_platform::{SystemClock, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};
use std::process::ExitCode;
use std::sync::Arc;

// One thread: an instance gets one event at a time and, at 128 MB, 7.2 % of one CPU.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    telemetry::init();
    let config = match CallerConfig::from_env(&ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if config.protected_is_demo {
        tracing::warn!(
            protected_api = %config.protected.base_url,
            "events go to the stack's demo API, which answers and discards them: no event reaches a system of yours. Deploy with ProtectedApiUrl and ProtectedApiStageArn set to your API"
        );
    }
    let sdk = aws::load(AwsTimeouts::default()).await;
    let metrics = Metrics::stdout("hsbridge", "api-caller");
    let clock: Arc<dyn hsbridge_platform::Clock> = Arc::new(SystemClock);
    let watch = Arc::new(wiring::dead_letter_watch(&config, &sdk, &clock));
    let state = match wiring::consumer_state(&config, &sdk, clock, metrics) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let handler = service_fn(move |event: LambdaEvent<LambdaSqsEvent>| {
        let state = Arc::clone(&state);
        let watch = Arc::clone(&watch);
        async move {
            let answer = handle_lambda_batch(&state, watch.as_ref().as_ref(), event.payload).await;
            Ok::<_, lambda_runtime::Error>(answer)
        }
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("the Lambda runtime stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
