//! CloudWatch Embedded Metric Format (EMF): one JSON line per request on stdout, which Lambda's
//! log pipeline turns into metrics without any API call. Metric values are counts and
//! durations only: never an identifier, secret or payload.

use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The unit of a metric, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Where metric lines go: stdout in Lambda, a buffer in tests.
#[derive(Debug, Clone)]
pub struct Metrics {
    namespace: &'static str,
    function: &'static str,
    sink: Sink,
}

#[derive(Debug, Clone)]
enum Sink {
    Stdout,
    Captured(Arc<Mutex<Vec<String>>>),
}

/// Metrics for one request, flushed as one EMF line.
#[derive(Debug)]
pub struct MetricSet {
    values: Vec<(&'static str, f64, Unit)>,
}

impl Metrics {
    pub fn stdout(namespace: &'static str, function: &'static str) -> Self {
        Self {
            namespace,
            function,
            sink: Sink::Stdout,
        }
    }

    /// Metrics kept in memory, for tests to read back with [`Metrics::captured`].
    pub fn capturing(namespace: &'static str, function: &'static str) -> Self {
        Self {
            namespace,
            function,
            sink: Sink::Captured(Arc::default()),
        }
    }

    /// The lines captured so far (empty for stdout metrics).
    pub fn captured(&self) -> Vec<String> {
        match &self.sink {
            Sink::Stdout => Vec::new(),
            Sink::Captured(lines) => lines.lock().map(|l| l.clone()).unwrap_or_default(),
        }
    }

    pub fn set(&self) -> MetricSet {
        MetricSet { values: Vec::new() }
    }

    /// Write one EMF line for the set. Empty sets write nothing.
    pub fn flush(&self, set: MetricSet, now_ms: u64) {
        if set.values.is_empty() {
            return;
        }
        let line = self.render(&set, now_ms);
        match &self.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                // Losing a metric line must never fail a request.
                let _ = writeln!(out, "{line}");
            }
            Sink::Captured(lines) => {
                if let Ok(mut l) = lines.lock() {
                    l.push(line);
                }
            }
        }
    }

    fn render(&self, set: &MetricSet, now_ms: u64) -> String {
        let definitions: Vec<Value> = set
            .values
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        let mut root = Map::new();
        root.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": now_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [["Function"]],
                    "Metrics": definitions,
                }],
            }),
        );
        root.insert("Function".to_owned(), json!(self.function));
        for (name, value, _) in &set.values {
            root.insert((*name).to_owned(), json!(value));
        }
        Value::Object(root).to_string()
    }
}

impl MetricSet {
    /// Add to a metric in this set (names repeat: values add up).
    pub fn add(&mut self, name: &'static str, value: f64, unit: Unit) {
        if let Some(slot) = self.values.iter_mut().find(|(n, _, _)| *n == name) {
            slot.1 += value;
        } else {
            self.values.push((name, value, unit));
        }
    }

    pub fn count(&mut self, name: &'static str, n: usize) {
        // Counts are small; the f64 conversion is exact below 2^53.
        #[allow(clippy::cast_precision_loss)]
        self.add(name, n as f64, Unit::Count);
    }

    pub fn millis(&mut self, name: &'static str, ms: u128) {
        #[allow(clippy::cast_precision_loss)]
        self.add(name, ms as f64, Unit::Milliseconds);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_metric_set_is_flushed_as_one_embedded_metric_format_line() {
        let metrics = Metrics::capturing("hsbridge", "webhook-intake");
        let mut set = metrics.set();
        set.count("Accepted", 2);
        set.count("Accepted", 1);
        set.millis("Latency", 7);
        metrics.flush(set, 1_700_000_000_000);
        let lines = metrics.captured();
        assert_eq!(lines.len(), 1);
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["Accepted"], json!(3.0));
        assert_eq!(v["Function"], json!("webhook-intake"));
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Unit"],
            json!("Milliseconds")
        );
    }

    #[test]
    fn an_empty_metric_set_writes_nothing() {
        let metrics = Metrics::capturing("hsbridge", "f");
        metrics.flush(metrics.set(), 1);
        assert!(metrics.captured().is_empty());
    }
}
