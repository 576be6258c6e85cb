//! DynamoDB helpers the adapters share.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemError;
use aws_sdk_dynamodb::types::WriteRequest;

/// DynamoDB's limit of requests in one `BatchWriteItem`.
pub const BATCH_WRITES: usize = 25;
/// Calls per chunk of batch writes: the first and up to two for the items DynamoDB left
/// unprocessed (throttled partitions answer 200 with them, not an error).
pub const BATCH_WRITE_ROUNDS: usize = 3;

/// Writes one chunk (at most [`BATCH_WRITES`] requests) to `table` in at most
/// [`BATCH_WRITE_ROUNDS`] calls, sending again what DynamoDB left unprocessed; answers how many
/// requests were still unprocessed after the last round, for the caller to count as not written.
pub async fn write_chunk(
    client: &Client,
    table: &str,
    mut requests: Vec<WriteRequest>,
) -> Result<usize, SdkError<BatchWriteItemError>> {
    for _ in 0..BATCH_WRITE_ROUNDS {
        if requests.is_empty() {
            break;
        }
        let out = client
            .batch_write_item()
            .request_items(table, std::mem::take(&mut requests))
            .send()
            .await?;
        requests = out
            .unprocessed_items()
            .and_then(|u| u.get(table))
            .cloned()
            .unwrap_or_default();
    }
    Ok(requests.len())
}
