//! The event log in the dedupe table: the records' attributes, the API caller's batch write and
//! the operator's reads.

use super::{
    DELIVERY_PREFIX, DeliveryEntry, DeliveryLog, Entry, EventLogError, EventLogReader, EventPath,
    INDEX, IntakeEntry, ListFilter, Outcome, Page, ReadReport, assemble, attr, page_of, sort_key,
    ttl_seconds,
};
use crate::dynamo::BATCH_WRITES;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use std::collections::HashMap;

/// Items a `Query` or `Scan` page asks for.
const READ_PAGE: i32 = 100;
/// The most calls one `list` of a portal makes before answering with what it has (and a
/// cursor).
const MAX_READ_CALLS: usize = 50;
/// A `Scan` is sorted here, so it must read the whole range: at most this many calls.
const MAX_SCAN_CALLS: usize = 1_000;

type Item = HashMap<String, AttributeValue>;

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn get_n(item: &Item, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

/// The log's attributes of an intake record (merged into the dedupe record the intake writes
/// anyway). `queued_at_ms` is written by the completion only.
pub fn intake_attributes(entry: &IntakeEntry) -> Item {
    let mut item = HashMap::from([
        (attr::PORTAL.to_owned(), n(entry.portal_id)),
        (
            attr::SORT.to_owned(),
            s(&sort_key(entry.received_at_ms, &entry.key)),
        ),
        (
            attr::SUBSCRIPTION_TYPE.to_owned(),
            s(&entry.subscription_type),
        ),
        (attr::RECEIVED_AT.to_owned(), n(entry.received_at_ms)),
        (attr::UNTIL.to_owned(), n(entry.log_until_ms)),
    ]);
    if let Some(queued) = entry.queued_at_ms {
        item.insert(attr::QUEUED_AT.to_owned(), n(queued));
    }
    item
}

/// An intake record as read; `None` for a dedupe record without log fields (written before the
/// log existed) or one that is not an intake record.
pub fn intake_of(item: &Item) -> Option<IntakeEntry> {
    let key = get_s(item, attr::PK)?;
    if key.starts_with(DELIVERY_PREFIX) {
        return None;
    }
    let completed = get_s(item, attr::DEDUPE_STATUS) == Some("COMPLETED");
    Some(IntakeEntry {
        key: key.to_owned(),
        portal_id: get_n(item, attr::PORTAL)?,
        subscription_type: get_s(item, attr::SUBSCRIPTION_TYPE)?.to_owned(),
        received_at_ms: get_n(item, attr::RECEIVED_AT)?,
        queued_at_ms: get_n(item, attr::QUEUED_AT).filter(|_| completed),
        log_until_ms: get_n(item, attr::UNTIL)?,
    })
}

fn delivery_item(entry: &DeliveryEntry) -> Item {
    let mut item = HashMap::from([
        (
            attr::PK.to_owned(),
            s(&format!("{DELIVERY_PREFIX}{}", entry.key)),
        ),
        (attr::EVENT_KEY.to_owned(), s(&entry.key)),
        (attr::PORTAL.to_owned(), n(entry.portal_id)),
        (
            attr::SORT.to_owned(),
            s(&sort_key(entry.received_at_ms, &entry.key)),
        ),
        (
            attr::SUBSCRIPTION_TYPE.to_owned(),
            s(&entry.subscription_type),
        ),
        (attr::RECEIVED_AT.to_owned(), n(entry.received_at_ms)),
        (attr::OUTCOME.to_owned(), s(entry.outcome.as_str())),
        (attr::AT.to_owned(), n(entry.at_ms)),
        (attr::ATTEMPTS.to_owned(), n(u64::from(entry.attempts))),
        (attr::UNTIL.to_owned(), n(entry.log_until_ms)),
        (attr::TTL.to_owned(), n(ttl_seconds(entry.log_until_ms))),
    ]);
    if let Some(status) = entry.api_status {
        item.insert(attr::API_STATUS.to_owned(), n(u64::from(status)));
    }
    if let Some(class) = &entry.error_class {
        item.insert(attr::ERROR_CLASS.to_owned(), s(class));
    }
    if let Some(reason) = &entry.drop_reason {
        item.insert(attr::DROP_REASON.to_owned(), s(reason));
    }
    item
}

fn delivery_of(item: &Item) -> Option<DeliveryEntry> {
    if !get_s(item, attr::PK)?.starts_with(DELIVERY_PREFIX) {
        return None;
    }
    Some(DeliveryEntry {
        key: get_s(item, attr::EVENT_KEY)?.to_owned(),
        portal_id: get_n(item, attr::PORTAL)?,
        subscription_type: get_s(item, attr::SUBSCRIPTION_TYPE)?.to_owned(),
        received_at_ms: get_n(item, attr::RECEIVED_AT)?,
        outcome: Outcome::parse(get_s(item, attr::OUTCOME)?)?,
        at_ms: get_n(item, attr::AT)?,
        attempts: u32::try_from(get_n(item, attr::ATTEMPTS)?).unwrap_or(u32::MAX),
        api_status: get_n(item, attr::API_STATUS).and_then(|v| u16::try_from(v).ok()),
        error_class: get_s(item, attr::ERROR_CLASS).map(str::to_owned),
        drop_reason: get_s(item, attr::DROP_REASON).map(str::to_owned),
        log_until_ms: get_n(item, attr::UNTIL)?,
    })
}

fn entry_of(item: &Item) -> Option<Entry> {
    delivery_of(item)
        .map(Entry::Delivery)
        .or_else(|| intake_of(item).map(Entry::Intake))
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> EventLogError {
    EventLogError::Unavailable(Box::new(e))
}

/// AWS adapter: the dedupe table and its `by_portal` index.
#[derive(Debug, Clone)]
pub struct DynamoEventLog {
    client: Client,
    table: String,
}

impl DynamoEventLog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn write_chunk(&self, chunk: &[DeliveryEntry]) -> Result<usize, EventLogError> {
        let requests = chunk
            .iter()
            .map(|entry| {
                let put = PutRequest::builder()
                    .set_item(Some(delivery_item(entry)))
                    .build()
                    .map_err(unavailable)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, EventLogError>>()?;
        crate::dynamo::write_chunk(&self.client, &self.table, requests)
            .await
            .map_err(unavailable)
    }

    /// Reads `by_portal` (one portal) or the table (every portal) until the page is complete.
    async fn read_range(
        &self,
        filter: &ListFilter,
        now_ms: u64,
    ) -> Result<(Vec<Entry>, bool, ReadReport), EventLogError> {
        let (low, high) = filter.sort_range();
        let mut values = HashMap::from([
            (":lo".to_owned(), s(&low)),
            (":hi".to_owned(), s(&high)),
            (":now".to_owned(), n(now_ms)),
        ]);
        let mut names = HashMap::from([
            ("#sort".to_owned(), attr::SORT.to_owned()),
            ("#until".to_owned(), attr::UNTIL.to_owned()),
        ]);
        let mut conditions = vec!["#until >= :now".to_owned()];
        if let Some(t) = &filter.subscription_type {
            values.insert(":t".to_owned(), s(t));
            names.insert("#type".to_owned(), attr::SUBSCRIPTION_TYPE.to_owned());
            conditions.push("#type = :t".to_owned());
        }
        let mut report = ReadReport {
            operation: match filter.portal {
                Some(p) => format!("Query {}.{INDEX} (portal {p}), newest first", self.table),
                None => format!(
                    "Scan {} (no --portal: every portal's events are read and sorted here)",
                    self.table
                ),
            },
            ..ReadReport::default()
        };
        let mut entries = Vec::new();
        let mut start: Option<Item> = None;
        // Events seen complete so far that pass the filter: stop once the page and one more.
        loop {
            let (items, last) = match filter.portal {
                Some(portal) => {
                    values.insert(":p".to_owned(), n(portal));
                    names.insert("#portal".to_owned(), attr::PORTAL.to_owned());
                    let out = self
                        .client
                        .query()
                        .table_name(&self.table)
                        .index_name(INDEX)
                        .key_condition_expression("#portal = :p AND #sort BETWEEN :lo AND :hi")
                        .filter_expression(conditions.join(" AND "))
                        .set_expression_attribute_names(Some(names.clone()))
                        .set_expression_attribute_values(Some(values.clone()))
                        .scan_index_forward(false)
                        // Two records per event, and one more event to know the page is whole.
                        .limit(
                            i32::try_from(filter.limit.saturating_mul(2).saturating_add(2))
                                .unwrap_or(READ_PAGE)
                                .min(READ_PAGE),
                        )
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(unavailable)?;
                    (
                        out.items().to_vec(),
                        out.last_evaluated_key().cloned().filter(|k| !k.is_empty()),
                    )
                }
                None => {
                    let mut all = conditions.clone();
                    all.push("#sort BETWEEN :lo AND :hi".to_owned());
                    let out = self
                        .client
                        .scan()
                        .table_name(&self.table)
                        .filter_expression(all.join(" AND "))
                        .set_expression_attribute_names(Some(names.clone()))
                        .set_expression_attribute_values(Some(values.clone()))
                        .limit(READ_PAGE)
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(unavailable)?;
                    (
                        out.items().to_vec(),
                        out.last_evaluated_key().cloned().filter(|k| !k.is_empty()),
                    )
                }
            };
            report.calls += 1;
            report.items += items.len();
            entries.extend(items.iter().filter_map(entry_of).filter(|e| e.live(now_ms)));
            let Some(last) = last else {
                return Ok((entries, true, report));
            };
            if filter.portal.is_some() && enough(&entries, filter) {
                return Ok((entries, false, report));
            }
            if filter.portal.is_some() && report.calls >= MAX_READ_CALLS {
                return Ok((entries, false, report));
            }
            if report.calls >= MAX_SCAN_CALLS {
                return Err(EventLogError::Unexpected(format!(
                    "the log holds more than {} items in that time range; give --portal (a Query) or a shorter range",
                    report.items
                )));
            }
            start = Some(last);
        }
    }
}

/// Whether the entries read so far (newest first) hold the page and the start of one more
/// event: every event before that one is then complete.
fn enough(entries: &[Entry], filter: &ListFilter) -> bool {
    let paths = assemble(entries.iter().cloned());
    // The oldest path may still lack its other record: it does not count.
    let complete = paths.len().saturating_sub(1);
    paths
        .iter()
        .take(complete)
        .filter(|p| filter.admits(p))
        .count()
        > filter.limit
}

#[async_trait]
impl DeliveryLog for DynamoEventLog {
    async fn record(&self, entries: &[DeliveryEntry]) -> Result<usize, EventLogError> {
        let writes = entries
            .chunks(BATCH_WRITES)
            .map(|chunk| self.write_chunk(chunk));
        let mut unwritten = 0;
        for result in futures_util::future::join_all(writes).await {
            unwritten += result?;
        }
        Ok(unwritten)
    }
}

#[async_trait]
impl EventLogReader for DynamoEventLog {
    /// Both records in one strongly consistent `BatchGetItem`.
    async fn show(
        &self,
        key: &str,
        now_ms: u64,
    ) -> Result<(Option<EventPath>, ReadReport), EventLogError> {
        let keys = [key.to_owned(), format!("{DELIVERY_PREFIX}{key}")]
            .into_iter()
            .map(|k| HashMap::from([(attr::PK.to_owned(), s(&k))]))
            .collect();
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(unavailable)?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
            .map_err(unavailable)?;
        if out
            .unprocessed_keys()
            .and_then(|u| u.get(&self.table))
            .is_some_and(|k| !k.keys().is_empty())
        {
            return Err(EventLogError::Unexpected(
                "DynamoDB left the read unprocessed; try again".to_owned(),
            ));
        }
        let items: Vec<Item> = out
            .responses()
            .and_then(|r| r.get(&self.table))
            .cloned()
            .unwrap_or_default();
        let report = ReadReport {
            operation: format!("BatchGetItem {} (the event's two records)", self.table),
            calls: 1,
            items: items.len(),
        };
        let entries = items
            .iter()
            .filter_map(entry_of)
            .filter(|e| e.live(now_ms) && e.key() == key);
        Ok((assemble(entries).into_iter().next(), report))
    }

    async fn list(&self, filter: &ListFilter, now_ms: u64) -> Result<Page, EventLogError> {
        let (entries, exhausted, read) = self.read_range(filter, now_ms).await?;
        let mut paths = assemble(entries);
        // Unless everything was read, the oldest may lack its other record: the next page
        // starts with it.
        let held_back = if exhausted { None } else { paths.pop() };
        let (events, more) = page_of(paths.clone(), filter);
        let next = if more {
            events.last().map(EventPath::sort_key)
        } else {
            // Everything newer than the held-back event was examined.
            held_back.map(|held| {
                paths
                    .last()
                    .map_or_else(|| format!("{}~", held.sort_key()), EventPath::sort_key)
            })
        };
        Ok(Page { events, next, read })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_delivery_record_reads_back_as_written_and_is_never_taken_for_a_dedupe_record() {
        let entry = DeliveryEntry {
            key: "62515#2#3#4".into(),
            portal_id: 62515,
            subscription_type: "contact.creation".into(),
            received_at_ms: 1_700_000_000_000,
            outcome: Outcome::Failed,
            at_ms: 1_700_000_000_500,
            attempts: 3,
            api_status: Some(503),
            error_class: Some("protected_api".into()),
            drop_reason: None,
            log_until_ms: 1_700_600_000_000,
        };
        let item = delivery_item(&entry);
        assert_eq!(delivery_of(&item), Some(entry));
        assert_eq!(intake_of(&item), None);
        assert_eq!(get_s(&item, attr::PK), Some("delivery#62515#2#3#4"));
    }

    #[test]
    fn a_claimed_record_is_not_queued_even_with_a_queued_time() {
        let entry = IntakeEntry {
            key: "1#2#3#4".into(),
            portal_id: 1,
            subscription_type: "deal.creation".into(),
            received_at_ms: 10,
            queued_at_ms: Some(11),
            log_until_ms: 100,
        };
        let mut item = intake_attributes(&entry);
        item.insert(attr::PK.into(), s("1#2#3#4"));
        item.insert(attr::DEDUPE_STATUS.into(), s("IN_PROGRESS"));
        assert_eq!(intake_of(&item).unwrap().queued_at_ms, None);
        item.insert(attr::DEDUPE_STATUS.into(), s("COMPLETED"));
        assert_eq!(intake_of(&item), Some(entry));
    }
}
