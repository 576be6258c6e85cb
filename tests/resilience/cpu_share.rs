//! The intake held to a 128 MB Lambda's CPU share, with DynamoDB slowed by the fault proxy
//! (added latency, not errors): it still answers 2xx or 503 before HubSpot's 5 s, and never
//! acknowledges an event that is not queued.
//!
//! Lambda gives a function CPU in proportion to its memory, one vCPU at 1,769 MB, so the
//! template's 128 MB get 128/1769 of one CPU: a CFS quota of 7,235 µs per 100,000 µs here, on
//! the one thread that runs the intake (and any thread it starts, which inherits the group).
//! The proxy and the test run on the test's own runtime, moto in its own process: only the
//! function is held, as in `scripts/perf`. A thread can be moved on its own only in cgroup v1's
//! `cpu` hierarchy (its `tasks` file); creating the group needs root. Where neither is there,
//! the test says so on stdout and checks nothing.
//! <https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html>

use crate::SHARED;
use crate::stand::{IntakeStand, PORTAL, batch, keys, send, signed};
use hsbridge_integration_tests::aws::now_ms;
use hsbridge_integration_tests::proxy::Service;
use hsbridge_platform::{Clock, ManualClock};
use http::StatusCode;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// HubSpot gives up on a webhook request after 5 s.
const HUBSPOT_TIMEOUT: Duration = Duration::from_secs(5);
/// Lambda's memory size that gets one full vCPU, and the template's size.
const MB_PER_VCPU: u64 = 1769;
const MEMORY_MB: u64 = 128;
const PERIOD_US: u64 = 100_000;
/// Per DynamoDB call, just under the SDK's 800 ms attempt timeout, so every call succeeds,
/// late: the account read, the dedupe read, the claims, the hand-off and the completions (about
/// 2.9 s) do not fit in the 3 s budget's 2.7 s of work.
const DYNAMODB_DELAY: Duration = Duration::from_millis(700);
/// HubSpot's retries of the batch after a 503, at most (it makes up to 10).
const RETRIES: usize = 3;

/// A cgroup v1 `cpu` group with the CPU share of [`MEMORY_MB`]; removed when dropped (after
/// its threads have ended).
struct CpuShare {
    dir: PathBuf,
}

impl CpuShare {
    fn new() -> Result<Self, String> {
        let root = Path::new("/sys/fs/cgroup/cpu");
        if !root.join("cpu.cfs_quota_us").exists() {
            return Err(format!(
                "no cgroup v1 cpu hierarchy at {} (a thread cannot be held alone elsewhere)",
                root.display()
            ));
        }
        let dir = root.join(format!("hsbridge-resilience-{}", std::process::id()));
        std::fs::create_dir(&dir)
            .map_err(|e| format!("cannot create {} (needs root): {e}", dir.display()))?;
        let share = Self { dir };
        let quota = PERIOD_US * MEMORY_MB / MB_PER_VCPU;
        share.write("cpu.cfs_period_us", &PERIOD_US.to_string())?;
        share.write("cpu.cfs_quota_us", &quota.to_string())?;
        Ok(share)
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        let path = self.dir.join(file);
        std::fs::write(&path, value)
            .map_err(|e| format!("writing {value} to {}: {e}", path.display()))
    }

    /// Moves the calling thread (only it) into the group.
    fn hold_this_thread(&self) -> Result<(), String> {
        // "/proc/thread-self" links to "PID/task/TID".
        let link = std::fs::read_link("/proc/thread-self").map_err(|e| e.to_string())?;
        let tid = link
            .file_name()
            .and_then(|t| t.to_str())
            .ok_or("no thread id in /proc/thread-self")?
            .to_owned();
        self.write("tasks", &tid)
    }

    /// `cpu.stat`: periods the group ran in, and how many of them it was throttled in.
    fn stat(&self) -> (u64, u64) {
        let text = std::fs::read_to_string(self.dir.join("cpu.stat")).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or(0)
        };
        (field("nr_periods "), field("nr_throttled "))
    }
}

impl Drop for CpuShare {
    fn drop(&mut self) {
        drop(std::fs::remove_dir(&self.dir));
    }
}

/// What the held intake answered: the batch (status, body, time) and, after a 503, HubSpot's
/// last retry once AWS is healed and the claims left behind have expired.
struct Held {
    status: StatusCode,
    answer: Value,
    took: Duration,
    retry: Option<(StatusCode, Value)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_128_mb_cpu_share_with_dynamodb_slowed_the_intake_answers_in_time_and_acknowledges_only_queued_events()
 {
    let _shared = SHARED.read().await;
    let share = match CpuShare::new() {
        Ok(share) => share,
        Err(why) => {
            writeln!(std::io::stdout(), "not run at the CPU share: {why}").unwrap();
            return;
        }
    };
    let stand = IntakeStand::new().await;
    let clock = ManualClock::at(now_ms());
    let app = stand.app_with_clock(Arc::new(clock.clone()));
    let occurred_at = clock.now_ms();
    let body = batch(PORTAL, 0..100, occurred_at);
    let warm_up = batch(PORTAL, 1_000..1_001, occurred_at);

    // The intake runs on a runtime of its own, on the held thread: every poll of its futures
    // (SDK, hyper, timers) is held to the share.
    let held = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    share.hold_this_thread().unwrap();
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(async {
                        // A warm instance: the app secret read and cached, connections open.
                        let (status, _) = send(&app, signed(&warm_up, clock.now_ms())).await;
                        assert_eq!(status, StatusCode::OK);
                        stand.proxy.slow_down(Service::DynamoDb, DYNAMODB_DELAY);
                        let started = Instant::now();
                        let (status, answer) = send(&app, signed(&body, clock.now_ms())).await;
                        let took = started.elapsed();
                        let mut retry = None;
                        if status == StatusCode::SERVICE_UNAVAILABLE {
                            // Healed; the requests the proxy still holds reach moto first.
                            stand.proxy.heal();
                            tokio::time::sleep(Duration::from_secs(2)).await;
                            // HubSpot retries a failed delivery several times. Here a retry
                            // re-claims the 100 expired claims in transactions, which moto makes
                            // slow (a parsed condition per action, a copy of the table),
                            // slower still at the share.
                            for _ in 0..RETRIES {
                                clock.advance_ms(11_000);
                                let answer = send(&app, signed(&body, clock.now_ms())).await;
                                let done = answer.0 == StatusCode::OK;
                                retry = Some(answer);
                                if done {
                                    break;
                                }
                            }
                        }
                        Held {
                            status,
                            answer,
                            took,
                            retry,
                        }
                    })
                })
                .join()
                .unwrap()
        })
    });
    let (periods, throttled) = share.stat();
    writeln!(
        std::io::stdout(),
        "held to {MEMORY_MB} MB's CPU share (ran in {periods} periods of 100 ms, throttled in \
         {throttled}), DynamoDB +{DYNAMODB_DELAY:?} per call: {} in {:?}",
        held.status,
        held.took
    )
    .unwrap();
    assert!(periods > 0, "the intake's thread never ran in the group");
    assert!(
        held.took < HUBSPOT_TIMEOUT,
        "answered after {:?}",
        held.took
    );

    let expected: BTreeSet<String> = keys(PORTAL, 0..100, occurred_at).into_iter().collect();
    let warm_key = keys(PORTAL, 1_000..1_001, occurred_at);
    let queued: Vec<String> = stand
        .queued_keys()
        .await
        .into_iter()
        .filter(|k| !warm_key.contains(k))
        .collect();
    match (held.status, held.retry) {
        // Acknowledged: then every event is on the queue already, once.
        (StatusCode::OK, _) => {
            assert_eq!(held.answer["accepted"], 100, "{}", held.answer);
            assert_eq!(queued.len(), 100, "each event queued once");
            assert_eq!(
                queued.into_iter().collect::<BTreeSet<_>>(),
                expected,
                "acknowledged but not queued"
            );
        }
        (StatusCode::SERVICE_UNAVAILABLE, Some((status, ack))) => {
            assert_eq!(status, StatusCode::OK, "the retry: {ack}");
            assert_eq!(
                queued.iter().cloned().collect::<BTreeSet<_>>(),
                expected,
                "every event is on the queue after the retry"
            );
        }
        (other, _) => panic!("answered {other}: {}", held.answer),
    }
}
