//! Turning measurements into figures: percentiles, the Markdown tables, the latency chart (SVG)
//! and the cost estimate.

use crate::scenarios::{Kind, Sample};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Lambda arm64 price in us-east-1 (first pricing tier): per GB-second and per request.
pub const ARM64_USD_PER_GB_SECOND: f64 = 0.000_013_333_4;
pub const USD_PER_REQUEST: f64 = 0.000_000_2;
pub const MEMORY_GB: f64 = 128.0 / 1024.0;
/// Lambda gives a function one full vCPU at 1,769 MB and CPU in proportion below it.
pub const FULL_VCPU_MB: f64 = 1769.0;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub n: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
    /// Mean of each invocation's duration rounded up to the next millisecond (Lambda's billing).
    pub billed_mean_ms: f64,
}

/// Nearest-rank percentiles of `values` (ms).
pub fn percentiles(values: &[f64]) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[i.clamp(1, sorted.len()) - 1]
    };
    let n = sorted.len();
    Percentiles {
        n,
        p50: rank(50.0),
        p90: rank(90.0),
        p99: rank(99.0),
        max: sorted[n - 1],
        mean: sorted.iter().sum::<f64>() / n as f64,
        billed_mean_ms: sorted.iter().map(|v| v.ceil().max(1.0)).sum::<f64>() / n as f64,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarmResult {
    pub runtime: String,
    pub function: String,
    pub kind: Kind,
    pub scenario: String,
    pub latency: Percentiles,
    pub errors: usize,
    pub first_error: Option<String>,
    pub cpu_ms_per_invocation: f64,
}

impl WarmResult {
    pub fn new(runtime: &str, function: &str, sample: &Sample) -> Self {
        Self {
            runtime: runtime.to_owned(),
            function: function.to_owned(),
            kind: sample.kind,
            scenario: sample.kind.label().to_owned(),
            latency: percentiles(&sample.latencies_ms),
            errors: sample.errors,
            first_error: sample.first_error.clone(),
            cpu_ms_per_invocation: sample.cpu_ms_per_invocation,
        }
    }

    /// Estimated billed ms at 128 MB: the CPU part stretched by the CPU share Lambda gives.
    pub fn billed_ms_at_128mb(&self) -> f64 {
        let stretch = FULL_VCPU_MB / 128.0;
        let cpu = self.cpu_ms_per_invocation.min(self.latency.mean);
        (self.latency.mean + cpu * (stretch - 1.0)).ceil().max(1.0)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColdResult {
    pub runtime: String,
    pub function: String,
    pub init: Percentiles,
    pub first_invocation: Percentiles,
    pub first_invocation_scenario: String,
    /// Median of each cold process's peak RSS after its first invocation, KiB.
    pub peak_rss_after_first_kib: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionFacts {
    pub runtime: String,
    pub function: String,
    /// Peak RSS of the warm process after every scenario, KiB.
    pub peak_rss_kib: u64,
    pub binary_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyThroughput {
    pub rust_verify_ns: f64,
    pub rust_hmac_floor_ns: f64,
    pub node_is_valid_ns: Option<f64>,
    pub node_hmac_floor_ns: Option<f64>,
    pub node_version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub rustc: String,
    pub node: String,
    pub loadavg_start: String,
    pub loadavg_end: String,
    pub target: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub machine: Machine,
    pub cold: Vec<ColdResult>,
    pub warm: Vec<WarmResult>,
    pub functions: Vec<FunctionFacts>,
    pub node_package_bytes: Option<u64>,
    pub verify: Option<VerifyThroughput>,
    pub wall_seconds: f64,
}

fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn ratio(a: f64, b: f64) -> String {
    if a > 0.0 && b > 0.0 {
        format!("{:.1}×", b / a)
    } else {
        "–".to_owned()
    }
}

impl Report {
    fn warm(&self, runtime: &str, kind: Kind) -> Option<&WarmResult> {
        self.warm
            .iter()
            .find(|w| w.runtime == runtime && w.kind == kind)
    }

    fn cold(&self, runtime: &str, function: &str) -> Option<&ColdResult> {
        self.cold
            .iter()
            .find(|c| c.runtime == runtime && c.function == function)
    }

    fn facts(&self, runtime: &str, function: &str) -> Option<&FunctionFacts> {
        self.functions
            .iter()
            .find(|f| f.runtime == runtime && f.function == function)
    }

    /// The figures as Markdown, for `docs/PERFORMANCE.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "Machine: {} CPUs ({}), kernel {}, {}, node {}; binaries for {}. Load average at start {}, at end {}. Run took {:.0} s.\n",
            m.cpus,
            m.cpu_model,
            m.kernel,
            m.rustc,
            m.node,
            m.target,
            m.loadavg_start,
            m.loadavg_end,
            self.wall_seconds
        );

        out.push_str("### Cold start, memory, size\n\n");
        out.push_str("| runtime | function | init p50 | init p90 | init max | first invocation p50 | peak RSS (cold, after 1st) | peak RSS (warm, after all) | binary |\n|---|---|---|---|---|---|---|---|---|\n");
        for c in &self.cold {
            let facts = self.facts(&c.runtime, &c.function);
            let _ = writeln!(
                out,
                "| {} | {} | {} ms | {} ms | {} ms | {} ms ({}) | {} | {} | {} |",
                c.runtime,
                c.function,
                ms(c.init.p50),
                ms(c.init.p90),
                ms(c.init.max),
                ms(c.first_invocation.p50),
                c.first_invocation_scenario,
                mib(c.peak_rss_after_first_kib),
                facts.map_or("–".to_owned(), |f| mib(f.peak_rss_kib)),
                facts
                    .and_then(|f| f.binary_bytes)
                    .map_or("–".to_owned(), |b| format!(
                        "{:.2} MiB",
                        b as f64 / 1_048_576.0
                    )),
            );
        }
        if let Some(bytes) = self.node_package_bytes {
            let _ = writeln!(
                out,
                "\nNode baseline package (node_modules without the Node binary, plus handler): {:.1} MiB unzipped.",
                bytes as f64 / 1_048_576.0
            );
        }
        if let (Some(rust), Some(node)) = (
            self.cold("rust", "webhook-intake"),
            self.cold("node", "webhook-intake"),
        ) {
            let _ = writeln!(
                out,
                "\nInit, Node ÷ Rust (webhook intake): p50 {}, p90 {}. Peak RSS (warm), Node ÷ Rust: {}.",
                ratio(rust.init.p50, node.init.p50),
                ratio(rust.init.p90, node.init.p90),
                match (
                    self.facts("rust", "webhook-intake"),
                    self.facts("node", "webhook-intake")
                ) {
                    (Some(r), Some(n)) => ratio(r.peak_rss_kib as f64, n.peak_rss_kib as f64),
                    _ => "–".to_owned(),
                }
            );
        }

        out.push_str("\n### Warm latency per invocation (Runtime API round trip)\n\n");
        out.push_str("| runtime | function | event | n | p50 | p90 | p99 | max | CPU / invocation | errors |\n|---|---|---|---|---|---|---|---|---|---|\n");
        for w in &self.warm {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} ms | {} ms | {} ms | {} ms | {} ms | {} |",
                w.runtime,
                w.function,
                w.scenario,
                w.latency.n,
                ms(w.latency.p50),
                ms(w.latency.p90),
                ms(w.latency.p99),
                ms(w.latency.max),
                ms(w.cpu_ms_per_invocation),
                w.errors
            );
        }

        out.push_str("\n### Ratios, Node ÷ Rust (same event, same stand-ins)\n\n");
        out.push_str(
            "| adapters | event | p50 | p99 | CPU / invocation |\n|---|---|---|---|---|\n",
        );
        for (rust, node, label) in [
            ("rust", "node", "AWS SDKs on moto"),
            ("rust-embedded", "node-memory", "embedded (in memory)"),
        ] {
            for kind in [Kind::Intake1, Kind::Intake100, Kind::IntakeDup] {
                if let (Some(r), Some(n)) = (self.warm(rust, kind), self.warm(node, kind)) {
                    let _ = writeln!(
                        out,
                        "| {label} | {} | {} | {} | {} |",
                        kind.label(),
                        ratio(r.latency.p50, n.latency.p50),
                        ratio(r.latency.p99, n.latency.p99),
                        ratio(r.cpu_ms_per_invocation, n.cpu_ms_per_invocation),
                    );
                }
            }
        }

        if let Some(v) = &self.verify {
            out.push_str("\n### v3 verification, 1 KiB body (same run, in-process loops)\n\n");
            out.push_str("| | ns per call | calls/s |\n|---|---|---|\n");
            let mut row = |name: &str, ns: f64| {
                let _ = writeln!(out, "| {name} | {ns:.0} | {:.0} |", 1e9 / ns);
            };
            row("Rust `hsbridge_verify::verify`", v.rust_verify_ns);
            row("Rust bare HMAC-SHA256 floor", v.rust_hmac_floor_ns);
            if let Some(ns) = v.node_is_valid_ns {
                row("Node `Signature.isValid` (@hubspot/api-client)", ns);
            }
            if let Some(ns) = v.node_hmac_floor_ns {
                row("Node bare `crypto.createHmac` floor", ns);
            }
            let _ = writeln!(
                out,
                "\nverify ÷ floor: {:.2}×. Rust throughput ÷ Node SDK throughput: {}.",
                v.rust_verify_ns / v.rust_hmac_floor_ns,
                v.node_is_valid_ns
                    .map_or("–".to_owned(), |n| ratio(v.rust_verify_ns, n))
            );
        }

        out.push_str("\n### Cost per million invocations, 128 MB arm64\n\n");
        let _ = writeln!(
            out,
            "${USD_PER_REQUEST:.1e} per request + ${ARM64_USD_PER_GB_SECOND} per GB-s × 0.125 GB × billed ms (each invocation rounded up to 1 ms). \"As measured\" bills the mean measured duration; \"CPU-scaled\" stretches the measured CPU time per invocation by {:.1} (a 128 MB function gets 128/{FULL_VCPU_MB:.0} of a vCPU) and keeps the waiting time.\n",
            FULL_VCPU_MB / 128.0
        );
        out.push_str("| runtime | event | billed ms (as measured) | $ / M (as measured) | billed ms (CPU-scaled) | $ / M (CPU-scaled) |\n|---|---|---|---|---|---|\n");
        for w in &self.warm {
            let measured = w.latency.billed_mean_ms;
            let scaled = w.billed_ms_at_128mb();
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} | ${:.3} | {:.0} | ${:.3} |",
                w.runtime,
                w.scenario,
                measured,
                cost_per_million(measured),
                scaled,
                cost_per_million(scaled)
            );
        }
        out
    }

    /// Latency percentiles per function and event, log scale.
    pub fn svg(&self) -> String {
        let order = |runtime: &str| match runtime {
            "rust" => 0,
            r if r.starts_with("rust@") => 1,
            "node" => 2,
            "rust-embedded" => 3,
            _ => 4,
        };
        let mut rows: Vec<&WarmResult> = self.warm.iter().filter(|w| w.latency.n > 0).collect();
        // Rust and Node side by side for each event.
        rows.sort_by_key(|w| (w.kind as u8, order(&w.runtime)));
        let (left, right, top, row_h) = (330.0, 170.0, 60.0, 26.0);
        let width = 1150.0;
        let plot_w = width - left - right;
        let height = top + row_h * rows.len() as f64 + 60.0;
        let (lo, hi) = (0.05f64.log10(), 5000f64.log10());
        let x = |v: f64| left + (v.max(0.05).log10() - lo) / (hi - lo) * plot_w;
        let color = |runtime: &str| match runtime {
            "rust" => "#d9480f",
            r if r.starts_with("rust@") => "#862e9c",
            "rust-embedded" => "#f59f00",
            "node" => "#2b8a3e",
            _ => "#74b816",
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            s,
            r#"<rect width="100%" height="100%" fill="white"/><text x="{left}" y="22" font-size="15" font-weight="bold">Warm invocation latency, ms (log scale): bar p50–p90, whisker to p99</text>"#
        );
        let _ = writeln!(
            s,
            r##"<text x="{left}" y="40" fill="#555">{} CPUs, {}; AWS on moto, HubSpot and the protected API on loopback stand-ins</text>"##,
            self.machine.cpus,
            xml(&self.machine.cpu_model)
        );
        for tick in [
            0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
        ] {
            let tx = x(tick);
            let _ = writeln!(
                s,
                r##"<line x1="{tx:.1}" y1="{top}" x2="{tx:.1}" y2="{:.1}" stroke="#ddd"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{tick}</text>"##,
                height - 50.0,
                height - 36.0
            );
        }
        for (i, w) in rows.iter().enumerate() {
            let y = top + row_h * i as f64;
            let c = color(&w.runtime);
            let l = &w.latency;
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{} · {}</text>"#,
                left - 8.0,
                y + 15.0,
                xml(&w.runtime),
                xml(&w.scenario)
            );
            let _ = writeln!(
                s,
                r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{c}" stroke-width="2"/><rect x="{:.1}" y="{:.1}" width="{:.1}" height="12" fill="{c}"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{c}" stroke-width="2"/><text x="{:.1}" y="{:.1}" fill="#333">p50 {} · p99 {}</text>"##,
                x(l.p90),
                y + 11.0,
                x(l.p99),
                y + 11.0,
                x(l.p50),
                y + 5.0,
                (x(l.p90) - x(l.p50)).max(2.0),
                x(l.p99),
                y + 5.0,
                x(l.p99),
                y + 17.0,
                x(l.p99) + 6.0,
                y + 15.0,
                ms(l.p50),
                ms(l.p99)
            );
        }
        let ly = height - 14.0;
        let mut legend = vec!["rust", "rust-embedded", "node", "node-memory"];
        if let Some(held) = rows.iter().find(|w| w.runtime.starts_with("rust@")) {
            legend.insert(1, held.runtime.as_str());
        }
        for (i, runtime) in legend.iter().enumerate() {
            let lx = left + 130.0 * i as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{lx}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{ly}">{runtime}</text>"#,
                ly - 10.0,
                color(runtime),
                lx + 16.0
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

pub fn cost_per_million(billed_ms: f64) -> f64 {
    1e6 * (USD_PER_REQUEST + ARM64_USD_PER_GB_SECOND * MEMORY_GB * billed_ms / 1000.0)
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
