//! The in-process queue's drain: the API caller's consumer.

use super::DevArgs;
use super::ports::SharedPorts;
use super::urls::LocalUrls;
use anyhow::Result;
use hsbridge_api_caller::consumer::{
    ConsumerState, Enrichment, EventLogging, SqsAttributes, SqsEvent, SqsMessage, handle_batch,
};
use hsbridge_api_caller::hubspot::{HubSpotApi, HubSpotSettings};
use hsbridge_api_caller::limits::{InMemoryLimits, LimitSettings};
use hsbridge_api_caller::protected::ProtectedApi;
use hsbridge_platform::metrics::Metrics;
use hsbridge_webhook_intake::queue::{InMemoryEventQueue, QueuedEvent};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Deliveries of one event before the local queue gives up on it (the deployed queue's
/// `maxReceiveCount`).
const MAX_RECEIVES: u32 = 3;

/// The state of the queue drain: the API caller's consumer. With the simulator, it enriches
/// events from HubSpot's CRM with the installed account's token, within the rate limits, as
/// deployed with HSBRIDGE_ENRICH_PROPERTIES.
pub(super) fn consumer_state(
    args: &DevArgs,
    ports: &SharedPorts,
    urls: &LocalUrls,
    api: ProtectedApi,
) -> Result<ConsumerState> {
    let enrichment = if args.hubspot_sim {
        let limits = Arc::new(InMemoryLimits::new(LimitSettings::default()));
        let hubspot = HubSpotApi::new(
            urls.api_base.clone(),
            ports.vault.clone(),
            limits.clone(),
            limits,
            Arc::clone(&ports.clock),
            HubSpotSettings::default(),
        )
        .map_err(|e| anyhow::anyhow!("could not build the HubSpot client: {e}"))?;
        Some(Enrichment {
            properties: vec!["email".to_owned(), "firstname".to_owned()],
            hubspot,
        })
    } else {
        None
    };
    Ok(ConsumerState {
        event_log: Some(EventLogging {
            log: ports.event_log.clone(),
            retention: hsbridge_platform::event_log::DEFAULT_RETENTION,
        }),
        accounts: Arc::clone(&ports.accounts),
        api,
        events_path: hsbridge_api_caller::config::DEFAULT_EVENTS_PATH.to_owned(),
        enrichment,
        clock: Arc::clone(&ports.clock),
        metrics: Metrics::capturing("hsbridge", "api-caller"),
    })
}

/// The in-process queue, drained by the API caller's own batch handler (`handle_batch`): ten
/// messages a batch, failed ones back on the queue after a pause, dropped with a line after
/// [`MAX_RECEIVES`] deliveries (the deployed queue's dead-letter queue).
pub(super) async fn drain_queue(queue: Arc<InMemoryEventQueue>, state: ConsumerState) {
    let mut receives: HashMap<String, (QueuedEvent, u32)> = HashMap::new();
    let mut retry: Vec<QueuedEvent> = Vec::new();
    loop {
        let mut events = std::mem::take(&mut retry);
        events.extend(queue.drain());
        if events.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        for chunk in events.chunks(10) {
            let records = chunk
                .iter()
                .map(|e| SqsMessage {
                    message_id: e.dedupe_key.clone(),
                    body: e.body.clone(),
                    attributes: SqsAttributes {
                        approximate_receive_count: Some(
                            receives
                                .get(&e.dedupe_key)
                                .map_or(1, |(_, n)| n + 1)
                                .to_string(),
                        ),
                    },
                })
                .collect();
            let outcome = handle_batch(&state, SqsEvent { records }).await;
            for event in chunk {
                let failed = outcome
                    .batch_item_failures
                    .iter()
                    .any(|f| f.item_identifier == event.dedupe_key);
                let entry = receives
                    .entry(event.dedupe_key.clone())
                    .or_insert_with(|| (event.clone(), 0));
                entry.1 += 1;
                if !failed {
                    println!(
                        "api-caller     handled {} (portal {})",
                        event.dedupe_key, event.portal_id
                    );
                    receives.remove(&event.dedupe_key);
                } else if entry.1 >= MAX_RECEIVES {
                    println!(
                        "api-caller     gave up on {} after {MAX_RECEIVES} attempts (deployed, it would go to the dead-letter queue)",
                        event.dedupe_key
                    );
                    receives.remove(&event.dedupe_key);
                } else {
                    println!(
                        "api-caller     {} failed; back on the queue (attempt {})",
                        event.dedupe_key, entry.1
                    );
                    retry.push(event.clone());
                }
            }
        }
        if !retry.is_empty() {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}
