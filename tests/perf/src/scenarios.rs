//! The representative events, what each must answer, and how one is measured.

use crate::cgroup::Hold;
use crate::events;
use anyhow::{Context, Result, bail};
use aws_config::SdkConfig;
use hsbridge_integration_tests::lambda::{Execution, lambda_env};
use hsbridge_integration_tests::process::{Proc, ProcStats};
use hsbridge_integration_tests::runtime_api::{Outcome, RuntimeApi};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long one invocation may take before the run counts it as failed.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a process may take to reach its first `/next`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// `POST /webhooks/hubspot`, one new event.
    Intake1,
    /// `POST /webhooks/hubspot`, 100 new events.
    Intake100,
    /// A 100-event batch delivered again: every event a duplicate.
    IntakeDup,
    /// A signed `GET` through the relay to the SigV4-protected API.
    RelayGet,
    /// `GET /oauth/callback`: cookie check, code exchange, vault install (KMS + DynamoDB).
    OAuthCallback,
    /// The api-caller with an SQS batch of 10 intake messages, each POSTed with SigV4.
    Sqs10,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Intake1 => "intake, 1-event batch",
            Kind::Intake100 => "intake, 100-event batch",
            Kind::IntakeDup => "intake, duplicate 100-event batch",
            Kind::RelayGet => "relay GET",
            Kind::OAuthCallback => "OAuth callback",
            Kind::Sqs10 => "api-caller, SQS batch of 10",
        }
    }
}

/// Event ids and OAuth codes are unique across the whole run, so no delivery is a duplicate of
/// another process's by accident.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The events for one function process; it remembers the batch it replays as duplicates.
#[derive(Debug, Default)]
pub struct Feed {
    dup_body: Option<String>,
}

impl Feed {
    fn ids(&mut self, n: u64) -> u64 {
        NEXT_ID.fetch_add(n, Ordering::Relaxed)
    }

    pub fn payload(&mut self, kind: Kind) -> Result<Vec<u8>> {
        Ok(match kind {
            Kind::Intake1 => events::webhook(&events::webhook_batch(self.ids(1), 1)),
            Kind::Intake100 => events::webhook(&events::webhook_batch(self.ids(100), 100)),
            Kind::IntakeDup => {
                if self.dup_body.is_none() {
                    self.dup_body = Some(events::webhook_batch(self.ids(100), 100));
                }
                events::webhook(self.dup_body.as_deref().unwrap_or_default())
            }
            Kind::RelayGet => events::relay_get(),
            Kind::OAuthCallback => events::oauth_callback(self.ids(1))?,
            Kind::Sqs10 => events::sqs_batch(self.ids(10), 10)?,
        })
    }

    /// Sends the duplicate batch once so that the measured deliveries are all duplicates.
    pub fn needs_priming(&self, kind: Kind) -> bool {
        kind == Kind::IntakeDup && self.dup_body.is_none()
    }
}

/// Whether the answer is the one this event must get.
pub fn answered_right(kind: Kind, outcome: &Outcome, primed: bool) -> bool {
    let Outcome::Response(body) = outcome else {
        return false;
    };
    let field = |name: &str| {
        events::http_body(body)
            .and_then(|b| b.get(name).and_then(serde_json::Value::as_u64))
            .unwrap_or(u64::MAX)
    };
    let status = events::http_status(body);
    match kind {
        Kind::Intake1 => status == Some(200) && field("accepted") == 1,
        Kind::Intake100 => status == Some(200) && field("accepted") == 100,
        Kind::IntakeDup if primed => status == Some(200) && field("accepted") == 100,
        Kind::IntakeDup => status == Some(200) && field("duplicates") == 100,
        Kind::RelayGet | Kind::OAuthCallback => status == Some(200),
        Kind::Sqs10 => serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("batchItemFailures").cloned())
            .is_some_and(|f| f.as_array().is_some_and(Vec::is_empty)),
    }
}

/// How to start one function process.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// `rust`, `node`, `rust-embedded`, `node-memory`.
    pub runtime: &'static str,
    pub function: &'static str,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub scenarios: Vec<Kind>,
    /// Cold starts to measure (0: warm figures only).
    pub cold_starts: usize,
    pub binary: Option<PathBuf>,
    /// The SQS queue the function writes to, drained after each invocation (not timed).
    pub queue_url: Option<String>,
    /// The dedupe table, emptied after each invocation of new events (not timed): moto copies
    /// a whole table for every transaction on it, a cost real DynamoDB does not have.
    pub dedupe_table: Option<String>,
    /// Held to this memory size and its CPU share (see `cgroup`); `None`: a whole core.
    pub memory_mb: Option<u64>,
}

/// A function process on its own Runtime API.
#[derive(Debug)]
pub struct Running {
    pub api: RuntimeApi,
    pub proc: Proc,
    pub init: Duration,
    /// Dropped after `proc` (fields drop in order): the group is removed once empty.
    _hold: Option<Hold>,
}

pub async fn start(spec: &FunctionSpec, log_dir: &Path) -> Result<Running> {
    let api = RuntimeApi::start(spec.function).await?;
    let mut env = perf_env(spec.function, &api.endpoint());
    env.extend(spec.env.iter().cloned());
    let args: Vec<&str> = spec.args.iter().map(String::as_str).collect();
    let log = log_dir.join(format!("{}-{}.log", spec.runtime, spec.function));
    let hold = spec.memory_mb.map(Hold::new).transpose()?;
    let mut proc = Proc::spawn(&spec.program, &args, &env, &log)?;
    // Within microseconds of the spawn, long before the runtime's first `/next`.
    if let Some(hold) = &hold {
        hold.add(proc.pid())?;
    }
    loop {
        if let Some(first) = api.first_next() {
            let init = first.saturating_duration_since(proc.spawned_at);
            return Ok(Running {
                api,
                proc,
                init,
                _hold: hold,
            });
        }
        if let Some(status) = proc.exited() {
            bail!(
                "{} {} exited during init ({status}); init error: {:?}; see {}",
                spec.runtime,
                spec.function,
                api.init_error(),
                log.display()
            );
        }
        if proc.spawned_at.elapsed() > INIT_TIMEOUT {
            bail!(
                "{} {} did not ask for an event within {INIT_TIMEOUT:?}; see {}",
                spec.runtime,
                spec.function,
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// What Lambda puts in every function's environment, and what every function of the harness
/// gets besides its own variables.
fn perf_env(function: &str, runtime_api: &str) -> Vec<(String, String)> {
    let mut env = lambda_env(&Execution {
        function_name: function,
        runtime_api,
        region: crate::stand::REGION,
        memory_mb: 128,
        access_key_id: crate::stand::ACCESS_KEY,
        secret_access_key: crate::stand::SECRET_KEY,
        log_format: None,
        log_level: None,
    });
    env.extend(
        [
            ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    env
}

/// One measured batch of invocations of a scenario on a warm process.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub kind: Kind,
    pub latencies_ms: Vec<f64>,
    pub errors: usize,
    pub first_error: Option<String>,
    /// CPU time of the process over the measured invocations, per invocation.
    pub cpu_ms_per_invocation: f64,
}

/// Invokes `kind` `warmup` times unmeasured, then up to `count` times (or until `max_time`).
#[allow(clippy::too_many_arguments)]
pub async fn measure(
    running: &Running,
    feed: &mut Feed,
    kind: Kind,
    warmup: usize,
    count: usize,
    max_time: Duration,
    drain: Option<(&SdkConfig, &str)>,
    dedupe_table: Option<&str>,
) -> Result<Sample> {
    let drain_queue = || async {
        if let Some((sdk, url)) = drain {
            crate::stand::drain_queue(sdk, url).await?;
            // New events leave records nothing reads again; the duplicate batch needs its own.
            if let (Some(table), Kind::Intake1 | Kind::Intake100) = (dedupe_table, kind) {
                crate::stand::clear_table(sdk, table).await?;
            }
        }
        anyhow::Ok(())
    };
    if feed.needs_priming(kind) {
        let payload = feed.payload(kind)?;
        let (_, outcome) = running.api.invoke(payload, INVOKE_TIMEOUT).await?;
        if !answered_right(kind, &outcome, true) {
            bail!("priming the duplicate batch failed: {}", describe(&outcome));
        }
        drain_queue().await?;
    }
    for _ in 0..warmup {
        let payload = feed.payload(kind)?;
        running.api.invoke(payload, INVOKE_TIMEOUT).await?;
        drain_queue().await?;
    }
    let mut cpu_ms = 0.0;
    let started = Instant::now();
    let mut sample = Sample {
        kind,
        latencies_ms: Vec::with_capacity(count),
        errors: 0,
        first_error: None,
        cpu_ms_per_invocation: 0.0,
    };
    let mut done = 0usize;
    while done < count && started.elapsed() < max_time {
        // Built before the clock starts: signing the event is the caller's cost, not the function's.
        let payload = feed.payload(kind)?;
        let before: ProcStats = running.proc.stats()?;
        let (elapsed, outcome) = running
            .api
            .invoke(payload, INVOKE_TIMEOUT)
            .await
            .with_context(|| format!("invoking {}", kind.label()))?;
        cpu_ms += running.proc.stats()?.cpu_ms - before.cpu_ms;
        done += 1;
        drain_queue().await?;
        if answered_right(kind, &outcome, false) {
            sample.latencies_ms.push(elapsed.as_secs_f64() * 1000.0);
        } else {
            sample.errors += 1;
            if sample.first_error.is_none() {
                sample.first_error = Some(describe(&outcome));
            }
        }
    }
    if done > 0 {
        sample.cpu_ms_per_invocation = cpu_ms / done as f64;
    }
    Ok(sample)
}

pub fn describe(outcome: &Outcome) -> String {
    let (what, body) = match outcome {
        Outcome::Response(b) => ("response", b),
        Outcome::Error(b) => ("error", b),
    };
    let text = String::from_utf8_lossy(body);
    let short: String = text.chars().take(400).collect();
    format!("{what}: {short}")
}
