//! Each accepted request as an `execute-api:Invoke` call, appended to the call log that the IAM
//! evaluation reads (`tests/iam/evaluate.mjs`; the format is in `docs/testing-stand.md`) when
//! `HSBRIDGE_AWS_CALL_LOG` names it. The line holds the method, the raw path (whose first segment
//! is the stage) and the signing access key id, never a header, a query or a body.

use std::io::Write;

/// The variable naming the call log.
pub const CALL_LOG_VAR: &str = "HSBRIDGE_AWS_CALL_LOG";

/// Appends one line when the log is configured; a log that cannot be written is reported on
/// stderr, never a reason to refuse the request.
pub fn append(method: &str, path: &str, access_key_id: &str, region: &str) {
    let Some(file) = std::env::var_os(CALL_LOG_VAR) else {
        return;
    };
    let line = serde_json::json!({
        "service": "execute-api",
        "operation": "Invoke",
        "action": "execute-api:Invoke",
        "method": method,
        "path": path,
        "caller": access_key_id,
        "region": region,
    });
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(error) = written {
        tracing::warn!(%error, "cannot append to the call log");
    }
}
