//! What Lambda gives a function's process besides the function's own configuration: the
//! variables it sets in every execution environment
//! (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime>),
//! and, with the [`RuntimeApi`](crate::runtime_api::RuntimeApi), the API it pulls events from.

/// Who a function's process is, as Lambda would describe it.
#[derive(Debug, Clone)]
pub struct Execution<'a> {
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub function_name: &'a str,
    /// `AWS_LAMBDA_RUNTIME_API`: `host:port`.
    pub runtime_api: &'a str,
    pub region: &'a str,
    pub memory_mb: u64,
    /// The execution role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// `LoggingConfig.LogFormat` and `ApplicationLogLevel`: with advanced logging controls
    /// Lambda passes them as `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL`.
    pub log_format: Option<&'a str>,
    pub log_level: Option<&'a str>,
}

/// The variables Lambda sets for a custom runtime (`provided.al2023`).
pub fn lambda_env(execution: &Execution<'_>) -> Vec<(String, String)> {
    let function = execution.function_name;
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_RUNTIME_API", execution.runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            execution.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/01/01/[$LATEST]0123456789abcdef".to_owned(),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("LAMBDA_TASK_ROOT", "/var/task".to_owned()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".to_owned()),
        ("AWS_REGION", execution.region.to_owned()),
        ("AWS_DEFAULT_REGION", execution.region.to_owned()),
        ("AWS_ACCESS_KEY_ID", execution.access_key_id.to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            execution.secret_access_key.to_owned(),
        ),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(format) = execution.log_format {
        env.push(("AWS_LAMBDA_LOG_FORMAT".to_owned(), format.to_owned()));
    }
    if let Some(level) = execution.log_level {
        env.push(("AWS_LAMBDA_LOG_LEVEL".to_owned(), level.to_owned()));
    }
    env
}
