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

/// An HTTP API request (payload format 2.0) as API Gateway hands it to a function: `headers`
/// as sent, plus the ones API Gateway adds (`host`, `x-forwarded-*`); `query` is the raw query
/// string, also given as `queryStringParameters`.
#[derive(Debug, Clone, Default)]
pub struct HttpApiRequest<'a> {
    pub host: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: Vec<(&'a str, String)>,
    pub cookies: Vec<String>,
    pub body: &'a str,
}

impl HttpApiRequest<'_> {
    /// The event's JSON, as the Runtime API's `/next` answers it.
    pub fn event(&self) -> Vec<u8> {
        use serde_json::{Value, json};
        static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
            .collect();
        for (k, v) in [
            ("host", self.host),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-for", "54.174.0.1"),
        ] {
            headers.insert(k.to_owned(), Value::String(v.to_owned()));
        }
        let user_agent = headers
            .get("user-agent")
            .and_then(Value::as_str)
            .unwrap_or("HubSpot Connect 2.0 (http://dev.hubspot.com/)")
            .to_owned();
        let prefix = self.host.split('.').next().unwrap_or_default();
        let now = crate::aws::now_ms();
        let mut event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": self.path,
            "rawQueryString": self.query,
            "headers": headers,
            "requestContext": {
                "accountId": crate::template::ACCOUNT_ID,
                "apiId": prefix,
                "domainName": self.host,
                "domainPrefix": prefix,
                "http": {
                    "method": self.method, "path": self.path, "protocol": "HTTP/1.1",
                    "sourceIp": "54.174.0.1", "userAgent": user_agent
                },
                "requestId": format!(
                    "stand-{now}-{}",
                    REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                ),
                "routeKey": "$default",
                "stage": "$default",
                "time": "01/Jan/2026:00:00:00 +0000",
                "timeEpoch": now
            },
            "isBase64Encoded": false
        });
        if !self.body.is_empty() {
            event["body"] = Value::String(self.body.to_owned());
        }
        if !self.cookies.is_empty() {
            event["cookies"] = json!(self.cookies);
        }
        if !self.query.is_empty() {
            let params: serde_json::Map<String, Value> = self
                .query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                .collect();
            event["queryStringParameters"] = Value::Object(params);
        }
        event.to_string().into_bytes()
    }
}
