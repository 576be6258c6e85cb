//! What the functions talk to, all on loopback: moto (DynamoDB, SQS, Secrets Manager, KMS) with
//! the tables, queue, secret and key each function needs; the support library's HubSpot
//! simulator; and the SigV4-verifying API Gateway stand-in as the protected API.

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use hsbridge_integration_tests::hubspot::HubSpot;
use hsbridge_standin::{Credential, RunningStandin, Standin, StandinConfig};
use std::sync::Arc;

pub use hsbridge_integration_tests::moto::{ACCESS_KEY, REGION, SECRET_KEY};
pub const CLIENT_SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
pub const CLIENT_ID: &str = "perf-client-id";
pub const ACTIVE_PORTAL: u64 = 62515;
/// Hubs installed by the OAuth callback scenario start here, one new hub per callback.
pub const FIRST_INSTALLED_HUB: u64 = 9_000_000;

pub use hsbridge_integration_tests::moto::{Moto, start as start_moto};

/// Names of what one runtime's functions use (Rust and Node get separate tables and queues).
#[derive(Debug, Clone)]
pub struct Resources {
    pub dedupe_table: String,
    pub accounts_table: String,
    pub queue_url: String,
    pub secret_id: String,
    pub kms_key_id: String,
}

pub async fn create_resources(sdk: &SdkConfig, prefix: &str) -> Result<Resources> {
    let dedupe_table = format!("{prefix}-dedupe");
    let accounts_table = format!("{prefix}-accounts");
    create_table(sdk, &dedupe_table, "pk").await?;
    create_table(sdk, &accounts_table, "hub_id").await?;
    let queue_url = aws_sdk_sqs::Client::new(sdk)
        .create_queue()
        .queue_name(format!("{prefix}-events"))
        .send()
        .await
        .context("creating the events queue")?
        .queue_url
        .context("no queue URL")?;
    let secret_id = format!("{prefix}-hubspot-app");
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(&secret_id)
        .secret_string(
            serde_json::json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}).to_string(),
        )
        .send()
        .await
        .context("creating the app secret")?;
    let kms_key_id = aws_sdk_kms::Client::new(sdk)
        .create_key()
        .description("hsbridge perf")
        .send()
        .await
        .context("creating the KMS key")?
        .key_metadata
        .context("no key metadata")?
        .key_id;
    aws_sdk_dynamodb::Client::new(sdk)
        .put_item()
        .table_name(&accounts_table)
        .item("hub_id", AttributeValue::S(ACTIVE_PORTAL.to_string()))
        .item("status", AttributeValue::S("active".to_owned()))
        .send()
        .await
        .context("marking the test account active")?;
    Ok(Resources {
        dedupe_table,
        accounts_table,
        queue_url,
        secret_id,
        kms_key_id,
    })
}

async fn create_table(sdk: &SdkConfig, name: &str, key: &str) -> Result<()> {
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()?,
        )
        .send()
        .await
        .with_context(|| format!("creating table {name}"))?;
    Ok(())
}

/// Deletes every item of `table` (key attribute `pk`).
pub async fn clear_table(sdk: &SdkConfig, table: &str) -> Result<()> {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let items = dynamo
        .scan()
        .table_name(table)
        .projection_expression("pk")
        .send()
        .await
        .with_context(|| format!("scanning {table}"))?;
    for chunk in items.items().chunks(25) {
        let deletes = chunk
            .iter()
            .filter_map(|item| item.get("pk").cloned())
            .map(|pk| {
                let delete = aws_sdk_dynamodb::types::DeleteRequest::builder()
                    .key("pk", pk)
                    .build()?;
                Ok(aws_sdk_dynamodb::types::WriteRequest::builder()
                    .delete_request(delete)
                    .build())
            })
            .collect::<Result<Vec<_>>>()?;
        dynamo
            .batch_write_item()
            .request_items(table, deletes)
            .send()
            .await
            .with_context(|| format!("clearing {table}"))?;
    }
    Ok(())
}

/// Consumes everything on a queue, as the api-caller would. moto's `SendMessageBatch` slows
/// down in proportion to the messages already queued (about 25 ms more per 100 here), so the
/// harness drains after every invocation that queued events, outside the timed part.
pub async fn drain_queue(sdk: &SdkConfig, url: &str) -> Result<()> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    for _ in 0..1000 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(300)
            .send()
            .await
            .context("draining the events queue")?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(());
        }
        let mut delete = sqs.delete_message_batch().queue_url(url);
        for (i, m) in messages.iter().enumerate() {
            delete = delete.entries(
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .build()?,
            );
        }
        delete.send().await.context("deleting drained messages")?;
    }
    Ok(())
}

/// HubSpot (the support library's simulator): every authorization code installs a new hub,
/// from [`FIRST_INSTALLED_HUB`] on; calls are counted, not kept.
pub async fn start_fake_hubspot() -> Result<HubSpot> {
    let hubspot = HubSpot::try_start()
        .await
        .context("starting the HubSpot simulator")?;
    hubspot
        .new_hub_each_code(FIRST_INSTALLED_HUB, "perf")
        .stop_recording();
    Ok(hubspot)
}

/// The protected API: verifies the functions' SigV4 signatures and answers 200.
pub async fn start_protected_api() -> Result<RunningStandin> {
    let standin = Standin::new(StandinConfig::new(
        REGION,
        vec![Credential {
            access_key_id: ACCESS_KEY.to_owned(),
            secret_access_key: SECRET_KEY.to_owned(),
            session_token: None,
            principal_arn: "arn:aws:sts::123456789012:assumed-role/api-caller/perf".to_owned(),
        }],
    ))
    // Recording every request would grow without bound over a run; answer a fixed body.
    .with_responder(Arc::new(|_| Some((200, br#"{"ok":true}"#.to_vec()))));
    standin
        .spawn("127.0.0.1:0".parse()?)
        .await
        .context("starting the SigV4 stand-in")
}
