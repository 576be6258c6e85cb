//! AWS SDK clients pointed at moto, resource builders and readers.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use hsbridge_platform::aws::{self, AwsTimeouts};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Sends the functions' `tracing` logs into the test's captured output (hsbridge's crates at
/// debug level, everything else at info; `RUST_LOG` overrides), where nextest keeps them
/// (`.config/nextest.toml`) for `scripts/check-log-hygiene` to scan for secrets and PII. The
/// first call in a process installs the subscriber; later calls do nothing.
pub fn init_test_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hsbridge=debug"));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_test_writer()
        .try_init();
    // Already installed by an earlier test in this process: fine.
    drop(installed);
}

/// The SDK configuration the functions themselves load, pointed at moto by `AWS_ENDPOINT_URL`.
/// Every test against moto starts here, so this also turns the test's logs on.
pub async fn sdk() -> SdkConfig {
    sdk_with(AwsTimeouts::default()).await
}

/// [`sdk`] with other timeouts: for a suite whose calls are slower than the functions' hot path
/// on a shared moto (creating a stack, long polls).
pub async fn sdk_with(timeouts: AwsTimeouts) -> SdkConfig {
    init_test_logs();
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: run ./scripts/test, which starts moto and sets it"
    );
    aws::load(timeouts).await
}

/// The roles of `template.yaml`, by logical id: a function's SDK configuration signs with an
/// access key id naming its role ([`sdk_as`]), which moto accepts like any other, so the
/// recorder in front of moto (`aws-call-recorder`) attributes each call to the role whose policies
/// `tests/iam/evaluate.mjs` then evaluates it against. Calls signed with any other key id (the
/// stand's own set-up and read-back, moto's `testing`) are recorded but not evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    WebhookIntake,
    OAuthCallback,
    ApiCaller,
    HubSpotRelay,
}

impl Role {
    /// The role's logical id in `template.yaml`, which is also the access key id it signs with.
    pub fn logical_id(self) -> &'static str {
        match self {
            Role::WebhookIntake => "WebhookIntakeRole",
            Role::OAuthCallback => "OAuthCallbackRole",
            Role::ApiCaller => "ApiCallerRole",
            Role::HubSpotRelay => "HubSpotRelayRole",
        }
    }

    /// The credentials a function playing this role signs with (the secret is moto's).
    pub fn credentials(self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            self.logical_id(),
            "testing",
            None,
            None,
            "hsbridge-test-stand",
        )
    }
}

/// `sdk` signing as `role` (see [`Role`]).
pub fn as_role(sdk: &SdkConfig, role: Role) -> SdkConfig {
    sdk.to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(role.credentials()),
        )
        .build()
}

/// The SDK configuration a function playing `role` loads: [`sdk`] with the role's credentials.
pub async fn sdk_as(role: Role) -> SdkConfig {
    as_role(&sdk().await, role)
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A table keyed by one string attribute. The name is the caller's alone ([`unique`]), so a
/// table that already exists was made by an attempt of this call that the SDK retried after a
/// timeout (moto under load): that is success.
pub async fn create_table(sdk: &SdkConfig, name: &str, key: &str) {
    let created = aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await;
    created_once(name, created);
}

/// A `CreateTable` that failed only because a retried attempt of it had already made the
/// table (the name is the caller's alone) succeeded.
fn created_once<T>(
    name: &str,
    created: Result<
        T,
        aws_sdk_dynamodb::error::SdkError<
            aws_sdk_dynamodb::operation::create_table::CreateTableError,
        >,
    >,
) {
    if let Err(error) = created {
        let retried = error
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception());
        assert!(retried, "creating table {name}: {error:?}");
    }
}

/// The dedupe table as `template.yaml` declares it: keyed by `pk`, with the event log's
/// `by_portal` index (`log_portal`, `log_sort`). Tolerates a retried create like
/// [`create_table`].
pub async fn create_dedupe_table(sdk: &SdkConfig, name: &str) {
    use aws_sdk_dynamodb::types::{GlobalSecondaryIndex, Projection, ProjectionType};
    let def = |n: &str, t| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(t)
            .build()
            .unwrap()
    };
    let key = |n: &str, t| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let created = aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(def("pk", ScalarAttributeType::S))
        .attribute_definitions(def("log_portal", ScalarAttributeType::N))
        .attribute_definitions(def("log_sort", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(hsbridge_platform::event_log::INDEX)
                .key_schema(key("log_portal", KeyType::Hash))
                .key_schema(key("log_sort", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await;
    created_once(name, created);
}

/// Every item of a table.
pub async fn scan(
    sdk: &SdkConfig,
    table: &str,
) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    aws_sdk_dynamodb::Client::new(sdk)
        .scan()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

pub async fn create_queue(sdk: &SdkConfig, name: &str) -> String {
    aws_sdk_sqs::Client::new(sdk)
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// Receive (and delete) everything on the queue now.
pub async fn drain_queue(sdk: &SdkConfig, url: &str) -> Vec<String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut bodies = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for m in messages {
            bodies.push(m.body.clone().unwrap());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// A Secrets Manager secret holding the HubSpot app document (client id `test-client-id`).
pub async fn create_app_secret(sdk: &SdkConfig, name: &str, client_secret: &str) {
    create_app_secret_for(sdk, name, "test-client-id", client_secret).await;
}

/// A Secrets Manager secret holding the HubSpot app document of `client_id`.
pub async fn create_app_secret_for(
    sdk: &SdkConfig,
    name: &str,
    client_id: &str,
    client_secret: &str,
) {
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(name)
        .secret_string(app_document_for(client_id, client_secret))
        .send()
        .await
        .unwrap();
}

/// Rotate: the new value becomes AWSCURRENT and the old one AWSPREVIOUS.
pub async fn rotate_app_secret(sdk: &SdkConfig, name: &str, client_secret: &str) {
    aws_sdk_secretsmanager::Client::new(sdk)
        .put_secret_value()
        .secret_id(name)
        .secret_string(app_document(client_secret))
        .send()
        .await
        .unwrap();
}

pub fn app_document(client_secret: &str) -> String {
    app_document_for("test-client-id", client_secret)
}

/// The app document the functions read from the secret.
pub fn app_document_for(client_id: &str, client_secret: &str) -> String {
    serde_json::json!({"client_id": client_id, "client_secret": client_secret}).to_string()
}

/// A symmetric KMS key playing the template's `TokenKey` (the tag tells the IAM evaluation so:
/// a key has no name); returns its id.
pub async fn create_kms_key(sdk: &SdkConfig) -> String {
    aws_sdk_kms::Client::new(sdk)
        .create_key()
        .description("hsbridge vault test key")
        .tags(
            aws_sdk_kms::types::Tag::builder()
                .tag_key("hsbridge:logical-id")
                .tag_value("TokenKey")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id
}
