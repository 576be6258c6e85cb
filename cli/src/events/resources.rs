//! Where the events commands read and write, resolved in one place: a deployed stack's outputs
//! (`--stack`), explicit flags (or their environment variables), or `--dev` for the local stack.

use super::dev::DevEventLog;
use crate::stack::{StackArgs, pick};
use anyhow::{Context, Result, bail};
use aws_config::SdkConfig;
use hsbridge_platform::event_log::{DynamoEventLog, EventLogReader};

/// The resources of a deployed stack the events commands use (the stack's outputs
/// `DedupeTableName`, `EventsQueueUrl`, `EventsDeadLetterQueueUrl`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EventsResources {
    /// The event log's table (the stack's dedupe table).
    #[arg(long, env = "HSBRIDGE_EVENT_LOG_TABLE")]
    pub events_table: Option<String>,
    /// The events queue (replay's destination).
    #[arg(long, env = "HSBRIDGE_EVENTS_QUEUE_URL")]
    pub queue_url: Option<String>,
    /// The dead-letter queue (replay's source).
    #[arg(long, env = "HSBRIDGE_EVENTS_DLQ_URL")]
    pub dlq_url: Option<String>,
    /// `--stack` (its outputs `DedupeTableName`, `EventsQueueUrl`, `EventsDeadLetterQueueUrl`
    /// take the place of the three flags above), `--region`, `--profile`.
    #[command(flatten)]
    pub aws: StackArgs,
    /// Read the local stack's embedded event log (`hsbridge dev`) instead, at this address.
    #[arg(long, num_args = 0..=1, default_missing_value = "http://127.0.0.1:3000", conflicts_with_all = ["events_table", "queue_url", "dlq_url", "stack", "region", "profile"])]
    pub dev: Option<String>,
}

pub(super) fn required<'a>(
    value: Option<&'a String>,
    flag: &str,
    env: &str,
    output: &str,
) -> Result<&'a str> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => bail!("no {flag}: pass {flag} or set {env} (the stack's {output} output)"),
    }
}

impl EventsResources {
    pub(super) fn table(&self) -> Result<&str> {
        required(
            self.events_table.as_ref(),
            "--events-table",
            "HSBRIDGE_EVENT_LOG_TABLE",
            "DedupeTableName",
        )
    }

    /// The AWS configuration for `--region` and `--profile`; one sentence when no region is
    /// known.
    pub(super) async fn sdk(&self) -> Result<SdkConfig> {
        self.aws.sdk(crate::ops::OPERATOR_TIMEOUTS).await
    }

    /// With `--stack`, the three resources from the stack's outputs (each said as it is
    /// used); otherwise as given.
    pub(super) async fn resolved(self) -> Result<Self> {
        if self.dev.is_some() || self.aws.stack.is_none() {
            return Ok(self);
        }
        let sdk = self.sdk().await?;
        let stack = self.aws.read(&sdk).await?;
        let stack = stack.as_ref();
        Ok(Self {
            events_table: Some(pick(stack, "DedupeTableName", None, "no event log table")?),
            queue_url: Some(pick(stack, "EventsQueueUrl", None, "no events queue")?),
            dlq_url: Some(pick(
                stack,
                "EventsDeadLetterQueueUrl",
                None,
                "no dead-letter queue",
            )?),
            ..self
        })
    }

    /// The log's reader: the local stack's with `--dev`, else the table's.
    pub(super) async fn reader(&self) -> Result<Box<dyn EventLogReader>> {
        if let Some(url) = &self.dev {
            return Ok(Box::new(
                DevEventLog::new(url).context("--dev must be the local stack's loopback URL")?,
            ));
        }
        let table = self.table()?.to_owned();
        let sdk = self.sdk().await?;
        Ok(Box::new(DynamoEventLog::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            table,
        )))
    }
}
