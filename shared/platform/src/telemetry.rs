//! Logging set-up. Lambda's advanced logging controls are honoured: `AWS_LAMBDA_LOG_FORMAT`
//! (`JSON` or `Text`) and `AWS_LAMBDA_LOG_LEVEL`; `RUST_LOG` overrides the level for local work.
//! Nothing here may ever format a secret: secrets are `hsbridge_verify::Secret`, whose `Debug`
//! and `Display` are redacted.

use tracing_subscriber::EnvFilter;

/// Install the global subscriber. JSON under Lambda unless `AWS_LAMBDA_LOG_FORMAT=Text`; text
/// locally unless `AWS_LAMBDA_LOG_FORMAT=JSON`. Safe to call twice (the second call is a no-op).
pub fn init() {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let json = match std::env::var("AWS_LAMBDA_LOG_FORMAT") {
        Ok(f) => f.eq_ignore_ascii_case("json"),
        Err(_) => in_lambda,
    };
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| lambda_level(&l))
        .unwrap_or("info");
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(lambda_directives(level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .without_time()
            .try_init()
    } else {
        builder.try_init()
    };
    // A subscriber already installed (tests, or a second call) is fine.
    drop(result);
}

/// Lambda's level names mapped onto `tracing`'s (`FATAL` has no twin; it is `error`).
fn lambda_level(level: &str) -> &'static str {
    match level.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => "info",
    }
}

/// The filter for a Lambda log level. Below `info` only hsbridge's own crates get more detail:
/// at debug and trace the AWS SDK logs request bodies (webhook events with personal data) and
/// SigV4 signatures, which must never reach a log group.
fn lambda_directives(level: &str) -> String {
    match level {
        "debug" | "trace" => format!("info,hsbridge={level}"),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{lambda_directives, lambda_level};

    #[test]
    fn detailed_levels_never_reach_other_crates() {
        assert_eq!(lambda_directives("trace"), "info,hsbridge=trace");
        assert_eq!(lambda_directives("debug"), "info,hsbridge=debug");
        assert_eq!(lambda_directives("warn"), "warn");
        // The directive matches every hsbridge crate's target by prefix, and nothing else.
        let filter = tracing_subscriber::EnvFilter::new(lambda_directives("trace"));
        assert!(filter.to_string().contains("hsbridge=trace"));
    }

    #[test]
    fn lambda_log_levels_map_onto_tracing_levels() {
        assert_eq!(lambda_level("FATAL"), "error");
        assert_eq!(lambda_level("debug"), "debug");
        assert_eq!(lambda_level("nonsense"), "info");
    }
}
