//! Embedded adapter: the log in memory, for the local stack and unit tests. The embedded
//! deduper writes the intake's records here as the DynamoDB one writes them into its items.

use super::{
    DeliveryEntry, DeliveryLog, Entry, EventLogError, EventLogReader, EventPath, IntakeEntry,
    ListFilter, Page, ReadReport, assemble, page_of,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
struct Records {
    intake: HashMap<String, IntakeEntry>,
    delivery: HashMap<String, DeliveryEntry>,
}

#[derive(Debug, Default)]
pub struct InMemoryEventLog {
    records: Mutex<Records>,
}

impl InMemoryEventLog {
    fn with<T>(&self, f: impl FnOnce(&mut Records) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of plain maps.
        let mut guard = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// The intake's record of an event (claimed, or queued when `queued_at_ms` is set).
    pub fn put_intake(&self, entry: IntakeEntry) {
        self.with(|r| r.intake.insert(entry.key.clone(), entry));
    }

    /// A released claim: the event was not queued and its record is gone.
    pub fn remove_intake(&self, key: &str) {
        self.with(|r| r.intake.remove(key));
    }

    fn live(&self, now_ms: u64) -> Vec<Entry> {
        self.with(|r| {
            r.intake
                .values()
                .cloned()
                .map(Entry::Intake)
                .chain(r.delivery.values().cloned().map(Entry::Delivery))
                .filter(|e| e.live(now_ms))
                .collect()
        })
    }
}

#[async_trait]
impl DeliveryLog for InMemoryEventLog {
    async fn record(&self, entries: &[DeliveryEntry]) -> Result<usize, EventLogError> {
        self.with(|r| {
            for e in entries {
                r.delivery.insert(e.key.clone(), e.clone());
            }
        });
        Ok(0)
    }
}

#[async_trait]
impl EventLogReader for InMemoryEventLog {
    async fn show(
        &self,
        key: &str,
        now_ms: u64,
    ) -> Result<(Option<EventPath>, ReadReport), EventLogError> {
        let entries: Vec<Entry> = self
            .live(now_ms)
            .into_iter()
            .filter(|e| e.key() == key)
            .collect();
        let report = ReadReport {
            operation: "the local stack's embedded event log".to_owned(),
            calls: 1,
            items: entries.len(),
        };
        Ok((assemble(entries).into_iter().next(), report))
    }

    async fn list(&self, filter: &ListFilter, now_ms: u64) -> Result<Page, EventLogError> {
        let entries = self.live(now_ms);
        let read = ReadReport {
            operation: "the local stack's embedded event log".to_owned(),
            calls: 1,
            items: entries.len(),
        };
        let (events, more) = page_of(assemble(entries), filter);
        let next = more
            .then(|| events.last().map(EventPath::sort_key))
            .flatten();
        Ok(Page { events, next, read })
    }
}
