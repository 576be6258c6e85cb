//! The local stack's event log, read over its loopback port (`hsbridge dev` serves it).

use anyhow::{Result, bail};
use async_trait::async_trait;
use hsbridge_platform::event_log::{
    EventLogError, EventLogReader, EventPath, ListFilter, Page, ReadReport,
};
use std::time::Duration;

#[derive(Debug)]
pub struct DevEventLog {
    base: url::Url,
    client: reqwest::Client,
}

impl DevEventLog {
    pub fn new(base: &str) -> Result<Self> {
        let base = url::Url::parse(base)?;
        let loopback = match base.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        if base.scheme() != "http" || !loopback {
            bail!("{base} is not a loopback http:// URL");
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self { base, client })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, EventLogError> {
        let mut url = self.base.clone();
        url.set_path(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let answer = self.client.get(url).send().await.map_err(|e| {
            EventLogError::Unexpected(format!(
                "the local stack did not answer at {} (is `hsbridge dev` running?): {e}",
                self.base
            ))
        })?;
        if !answer.status().is_success() {
            return Err(EventLogError::Unexpected(format!(
                "the local stack answered {}",
                answer.status()
            )));
        }
        answer
            .json()
            .await
            .map_err(|e| EventLogError::Unexpected(format!("the local stack's answer: {e}")))
    }
}

#[async_trait]
impl EventLogReader for DevEventLog {
    async fn show(
        &self,
        key: &str,
        _now_ms: u64,
    ) -> Result<(Option<EventPath>, ReadReport), EventLogError> {
        let encoded =
            percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC);
        self.get(&format!("{}/{encoded}", crate::dev::EVENTS_PATH), &[])
            .await
    }

    async fn list(&self, filter: &ListFilter, _now_ms: u64) -> Result<Page, EventLogError> {
        let filter =
            serde_json::to_string(filter).map_err(|e| EventLogError::Unexpected(e.to_string()))?;
        self.get(crate::dev::EVENTS_PATH, &[("filter", filter)])
            .await
    }
}
