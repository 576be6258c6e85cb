//! `hsbridge events replay`: failed events from the dead-letter queue back to the events queue.
//!
//! 1. **Read** the dead-letter queue (`ReceiveMessage`, up to `--max-messages`), each message
//!    hidden from other readers for `--visibility` seconds while the plan is made.
//! 2. **Select** by portal, subscription type and reception time (from the message's envelope),
//!    and look each selected event up in the event log: one the log shows delivered is skipped.
//! 3. **Plan**: printed before anything moves.
//! 4. With `--yes`, **move** each chunk of ten: `SendMessageBatch` to the events queue (the body
//!    unchanged, so the event keeps its dedupe key and the protected API can drop a repeat),
//!    then a marker per sent message in the event log's table (`replay#<message id>`), then
//!    `DeleteMessageBatch` from the dead-letter queue. A run that stops between the send and the
//!    delete leaves the message in both queues, and its marker: the next run recognises it and
//!    only deletes it, so the tool never sends it twice. (Only a stop between the send's answer
//!    and the marker's write, a few milliseconds, leaves no marker; the next run then sends the
//!    event again, with its dedupe key.)
//! 5. **Release** everything read and not moved (`ChangeMessageVisibilityBatch` to 0): it is
//!    visible in the dead-letter queue again at once, untouched, whatever happened before.

use super::EventsResources;
use super::resources::required;
use super::time::{check_range, format_ms, parse_time};
use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    SendMessageBatchRequestEntry,
};
use hsbridge_platform::event_log::{DELIVERY_PREFIX, attr};
use hsbridge_platform::{Clock, SystemClock};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The prefix of a replay marker's key in the event log's table.
pub const MARKER_PREFIX: &str = "replay#";
/// A marker outlives any message it marks: SQS keeps a message at most 14 days.
const MARKER_DAYS: u64 = 15;
/// SQS's batch limit.
const SQS_BATCH: usize = 10;
/// `BatchGetItem`'s limit.
const GET_BATCH: usize = 100;
/// Calls per chunk of keys: the first and up to two for keys left unprocessed.
const GET_ROUNDS: usize = 3;
/// Consecutive empty receives after which the dead-letter queue counts as read.
const EMPTY_RECEIVES: usize = 2;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Only this portal's events.
    #[arg(long)]
    portal: Option<u64>,
    /// Only this subscription type.
    #[arg(long = "type")]
    subscription_type: Option<String>,
    /// Received at or after (`2h` ago, `2026-12-02T04:00:00Z`, or milliseconds since 1970).
    #[arg(long)]
    since: Option<String>,
    /// Received at or before (same forms).
    #[arg(long)]
    until: Option<String>,
    /// Move the selected messages; without it only the plan is printed and nothing moves.
    #[arg(long)]
    yes: bool,
    /// Also print the selected messages' bodies: the events as HubSpot sent them.
    #[arg(long)]
    with_body: bool,
    /// Read at most this many messages from the dead-letter queue.
    #[arg(long, default_value_t = 1_000)]
    max_messages: usize,
    /// Seconds the messages read stay hidden from other readers while the plan is made (they
    /// are released as soon as the command ends).
    #[arg(long, default_value_t = 300)]
    visibility: i32,
    #[command(flatten)]
    resources: EventsResources,
}

/// The fields of the intake's envelope the selection reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    dedupe_key: String,
    portal_id: u64,
    subscription_type: String,
    received_at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Not an envelope: left alone.
    Unreadable,
    /// Outside the filters: left alone.
    NotSelected,
    /// The log shows it delivered: skipped, left alone.
    Delivered,
    /// An earlier, interrupted replay sent it: only deleted.
    SentBefore,
    ToSend,
}

#[derive(Debug)]
struct Held {
    message: Message,
    envelope: Option<Envelope>,
    fate: Fate,
    /// Deleted from the dead-letter queue: no longer ours to release.
    deleted: bool,
}

impl Held {
    fn id(&self) -> &str {
        self.message.message_id().unwrap_or_default()
    }
}

struct Clients {
    sqs: aws_sdk_sqs::Client,
    dynamo: aws_sdk_dynamodb::Client,
    table: String,
    dlq: String,
}

pub async fn run(mut args: ReplayArgs) -> Result<()> {
    if args.resources.dev.is_some() {
        bail!(
            "the local stack has no dead-letter queue: it prints the events it gave up on; replay needs a deployed stack's --dlq-url"
        );
    }
    let now = SystemClock.now_ms();
    let from = args
        .since
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()
        .context("--since")?
        .unwrap_or(0);
    let to = args
        .until
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()
        .context("--until")?
        .unwrap_or(u64::MAX);
    check_range(from, to)?;
    if !(1..=43_200).contains(&args.visibility) {
        bail!("--visibility must be between 1 and 43200 seconds (SQS's limit)");
    }
    args.resources = args.resources.resolved().await?;
    let r = &args.resources;
    let dlq = required(
        r.dlq_url.as_ref(),
        "--dlq-url",
        "HSBRIDGE_EVENTS_DLQ_URL",
        "EventsDeadLetterQueueUrl",
    )?
    .to_owned();
    let queue = if args.yes {
        Some(
            required(
                r.queue_url.as_ref(),
                "--queue-url",
                "HSBRIDGE_EVENTS_QUEUE_URL",
                "EventsQueueUrl",
            )?
            .to_owned(),
        )
    } else {
        None
    };
    let table = r.table()?.to_owned();
    let sdk = r.sdk().await?;
    let clients = Clients {
        sqs: aws_sdk_sqs::Client::new(&sdk),
        dynamo: aws_sdk_dynamodb::Client::new(&sdk),
        table,
        dlq,
    };

    let mut held = Vec::new();
    let outcome = replay(&args, &clients, queue.as_deref(), (from, to), &mut held).await;
    // Whatever happened, what was read and not moved is visible again at once.
    let released = release(&clients, &held).await;
    match (&outcome, released) {
        (_, Ok(n)) if n > 0 => {
            println!("released: {n} message(s) visible in the dead-letter queue again, untouched")
        }
        (_, Ok(_)) => {}
        (_, Err(e)) => eprintln!(
            "warning: some messages could not be released ({e:#}); they become visible again after --visibility ({}s)",
            args.visibility
        ),
    }
    outcome
}

async fn replay(
    args: &ReplayArgs,
    c: &Clients,
    queue: Option<&str>,
    (from, to): (u64, u64),
    held: &mut Vec<Held>,
) -> Result<()> {
    read(args, c, held).await?;
    println!(
        "read: {} message(s) from the dead-letter queue {} (ReceiveMessage, hidden for {}s while planning)",
        held.len(),
        c.dlq,
        args.visibility
    );
    if held.len() >= args.max_messages {
        println!(
            "  (--max-messages {} reached: more may be waiting; run again after this one)",
            args.max_messages
        );
    }
    for h in held.iter_mut() {
        h.fate = match &h.envelope {
            None => Fate::Unreadable,
            Some(e)
                if args.portal.is_some_and(|p| p != e.portal_id)
                    || args
                        .subscription_type
                        .as_deref()
                        .is_some_and(|t| t != e.subscription_type)
                    || !(from..=to).contains(&e.received_at_ms) =>
            {
                Fate::NotSelected
            }
            Some(_) => Fate::ToSend,
        };
    }
    let (delivered, markers, calls) = look_up(c, held).await?;
    println!(
        "read: the event log {} (BatchGetItem: {calls} call(s)) for the selected events' deliveries and earlier replays",
        c.table
    );
    for h in held.iter_mut() {
        if h.fate != Fate::ToSend {
            continue;
        }
        if markers.contains(h.id()) {
            h.fate = Fate::SentBefore;
        } else if h
            .envelope
            .as_ref()
            .is_some_and(|e| delivered.contains(&e.dedupe_key))
        {
            h.fate = Fate::Delivered;
        }
    }
    print_plan(held, args.with_body);
    let Some(queue) = queue else {
        let n = held
            .iter()
            .filter(|h| matches!(h.fate, Fate::ToSend | Fate::SentBefore))
            .count();
        println!("nothing moved: run again with --yes to move {n} message(s)");
        return Ok(());
    };
    let (sent, removed) = move_selected(c, queue, held).await?;
    println!(
        "moved: {sent} message(s) sent to the events queue and deleted from the dead-letter queue; {removed} sent by an earlier replay deleted without sending again"
    );
    Ok(())
}

async fn read(args: &ReplayArgs, c: &Clients, held: &mut Vec<Held>) -> Result<()> {
    let mut ids = HashSet::new();
    let mut empty = 0;
    while held.len() < args.max_messages && empty < EMPTY_RECEIVES {
        let want = (args.max_messages - held.len()).min(SQS_BATCH);
        let out = c
            .sqs
            .receive_message()
            .queue_url(&c.dlq)
            .max_number_of_messages(i32::try_from(want).unwrap_or(10))
            .visibility_timeout(args.visibility)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .context("could not read the dead-letter queue")?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        for message in messages {
            let Some(id) = message.message_id().map(str::to_owned) else {
                continue;
            };
            if !ids.insert(id.clone()) {
                // Seen again (its visibility ran out): keep the newest receipt handle.
                if let Some(h) = held.iter_mut().find(|h| h.id() == id) {
                    h.message = message;
                }
                continue;
            }
            let envelope = message
                .body()
                .and_then(|b| serde_json::from_str::<Envelope>(b).ok());
            held.push(Held {
                message,
                envelope,
                fate: Fate::Unreadable,
                deleted: false,
            });
        }
    }
    Ok(())
}

/// The selected events' delivery records and the markers of earlier replays, in
/// `BatchGetItem`s of 100 keys.
async fn look_up(c: &Clients, held: &[Held]) -> Result<(HashSet<String>, HashSet<String>, usize)> {
    let mut keys: Vec<String> = Vec::new();
    for h in held.iter().filter(|h| h.fate == Fate::ToSend) {
        if let Some(e) = &h.envelope {
            keys.push(format!("{DELIVERY_PREFIX}{}", e.dedupe_key));
        }
        keys.push(format!("{MARKER_PREFIX}{}", h.id()));
    }
    keys.sort();
    keys.dedup();
    let (mut delivered, mut markers, mut calls) = (HashSet::new(), HashSet::new(), 0);
    for chunk in keys.chunks(GET_BATCH) {
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(
                    chunk
                        .iter()
                        .map(|k| {
                            HashMap::from([(attr::PK.to_owned(), AttributeValue::S(k.clone()))])
                        })
                        .collect(),
                ))
                .consistent_read(true)
                .build()?,
        );
        for round in 0.. {
            let Some(keys) = request.take() else { break };
            if round == GET_ROUNDS {
                bail!("the event log kept leaving keys unprocessed; try again");
            }
            calls += 1;
            let out = c
                .dynamo
                .batch_get_item()
                .request_items(&c.table, keys)
                .send()
                .await
                .context("could not read the event log")?;
            for item in out
                .responses()
                .and_then(|r| r.get(&c.table))
                .into_iter()
                .flatten()
            {
                let Some(pk) = item.get(attr::PK).and_then(|v| v.as_s().ok()) else {
                    continue;
                };
                if let Some(id) = pk.strip_prefix(MARKER_PREFIX) {
                    markers.insert(id.to_owned());
                } else if let Some(key) = pk.strip_prefix(DELIVERY_PREFIX)
                    && item.get(attr::OUTCOME).and_then(|v| v.as_s().ok())
                        == Some(&"DELIVERED".to_owned())
                    && item
                        .get(attr::UNTIL)
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .is_some_and(|until| until >= SystemClock.now_ms())
                {
                    delivered.insert(key.to_owned());
                }
            }
            request = out
                .unprocessed_keys()
                .and_then(|u| u.get(&c.table))
                .filter(|k| !k.keys().is_empty())
                .cloned();
        }
    }
    Ok((delivered, markers, calls))
}

fn print_plan(held: &[Held], with_body: bool) {
    let count = |fate: Fate| held.iter().filter(|h| h.fate == fate).count();
    let selected = count(Fate::ToSend) + count(Fate::Delivered) + count(Fate::SentBefore);
    println!(
        "plan: {selected} of {} message(s) selected; {} outside the filters and {} unreadable stay in the dead-letter queue",
        held.len(),
        count(Fate::NotSelected),
        count(Fate::Unreadable)
    );
    let mut groups: BTreeMap<(u64, &str), (usize, usize, usize)> = BTreeMap::new();
    for h in held {
        let Some(e) = &h.envelope else { continue };
        let g = groups
            .entry((e.portal_id, e.subscription_type.as_str()))
            .or_default();
        match h.fate {
            Fate::ToSend => g.0 += 1,
            Fate::Delivered => g.1 += 1,
            Fate::SentBefore => g.2 += 1,
            Fate::NotSelected | Fate::Unreadable => {}
        }
    }
    for ((portal, kind), (send, delivered, before)) in groups {
        if send + delivered + before == 0 {
            continue;
        }
        println!(
            "  portal {portal}  {kind}: {send} to send, {delivered} already delivered per the event log (skipped, stay in the dead-letter queue), {before} sent by an earlier replay (deleted, not sent again)"
        );
    }
    for h in held.iter().filter(|h| h.fate == Fate::Delivered) {
        if let Some(e) = &h.envelope {
            println!(
                "  skipped {} (received {}): delivered per the event log",
                e.dedupe_key,
                format_ms(e.received_at_ms)
            );
        }
    }
    if with_body {
        for h in held
            .iter()
            .filter(|h| matches!(h.fate, Fate::ToSend | Fate::Delivered | Fate::SentBefore))
        {
            println!("body {}: {}", h.id(), h.message.body().unwrap_or_default());
        }
    }
}

/// Sends, marks and deletes, chunk by chunk; answers (sent, deleted without sending).
async fn move_selected(c: &Clients, queue: &str, held: &mut [Held]) -> Result<(usize, usize)> {
    let (mut sent, mut removed) = (0, 0);
    // Sent by an interrupted replay: only deleted.
    let before: Vec<usize> = (0..held.len())
        .filter(|&i| held[i].fate == Fate::SentBefore)
        .collect();
    for chunk in before.chunks(SQS_BATCH) {
        removed += delete(c, held, chunk).await?;
    }
    let to_send: Vec<usize> = (0..held.len())
        .filter(|&i| held[i].fate == Fate::ToSend)
        .collect();
    for chunk in to_send.chunks(SQS_BATCH) {
        let entries = chunk
            .iter()
            .map(|&i| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(held[i].message.body().unwrap_or_default())
                    .set_message_attributes(held[i].message.message_attributes().cloned())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = c
            .sqs
            .send_message_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
            .with_context(|| interrupted(sent, removed, "the events queue refused a send"))?;
        let ok: Vec<usize> = out
            .successful()
            .iter()
            .filter_map(|s| s.id().parse().ok())
            .collect();
        if let Err(e) = mark(c, held, &ok).await {
            // The marker only matters if the delete below fails too.
            eprintln!("warning: replay markers not written ({e:#})");
        }
        sent += delete(c, held, &ok).await.with_context(|| {
            interrupted(sent, removed, "a delete from the dead-letter queue failed")
        })?;
        if ok.len() < chunk.len() {
            bail!(interrupted(
                sent,
                removed,
                &format!(
                    "the events queue refused {} message(s) of a batch",
                    chunk.len() - ok.len()
                )
            ));
        }
    }
    Ok((sent, removed))
}

fn interrupted(sent: usize, removed: usize, what: &str) -> String {
    format!(
        "replay interrupted: {what}. {sent} message(s) were moved and {removed} deleted before it; run the same command again: messages already sent are recognised and not sent twice"
    )
}

/// Markers for the sent messages (`replay#<message id>`), one `BatchWriteItem`.
async fn mark(c: &Clients, held: &[Held], sent: &[usize]) -> Result<()> {
    if sent.is_empty() {
        return Ok(());
    }
    let until_s = SystemClock.now_ms() / 1000 + MARKER_DAYS * 86_400;
    let writes = sent
        .iter()
        .map(|&i| {
            let put = PutRequest::builder()
                .item(
                    attr::PK,
                    AttributeValue::S(format!("{MARKER_PREFIX}{}", held[i].id())),
                )
                .item(attr::TTL, AttributeValue::N(until_s.to_string()))
                .build()?;
            Ok(WriteRequest::builder().put_request(put).build())
        })
        .collect::<Result<Vec<_>>>()?;
    let out = c
        .dynamo
        .batch_write_item()
        .request_items(&c.table, writes)
        .send()
        .await?;
    if out
        .unprocessed_items()
        .and_then(|u| u.get(&c.table))
        .is_some_and(|w| !w.is_empty())
    {
        bail!("DynamoDB left some unprocessed");
    }
    Ok(())
}

/// Deletes the messages from the dead-letter queue; answers how many are gone.
async fn delete(c: &Clients, held: &mut [Held], which: &[usize]) -> Result<usize> {
    if which.is_empty() {
        return Ok(0);
    }
    let entries = which
        .iter()
        .map(|&i| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(held[i].message.receipt_handle().unwrap_or_default())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let out = c
        .sqs
        .delete_message_batch()
        .queue_url(&c.dlq)
        .set_entries(Some(entries))
        .send()
        .await?;
    let mut gone = 0;
    for s in out.successful() {
        if let Ok(i) = s.id().parse::<usize>()
            && let Some(h) = held.get_mut(i)
        {
            h.deleted = true;
            gone += 1;
        }
    }
    if gone < which.len() {
        bail!("{} message(s) were not deleted", which.len() - gone);
    }
    Ok(gone)
}

/// Everything read and not deleted becomes visible again at once; answers how many.
async fn release(c: &Clients, held: &[Held]) -> Result<usize> {
    let left: Vec<&Held> = held.iter().filter(|h| !h.deleted).collect();
    let mut released = 0;
    for chunk in left.chunks(SQS_BATCH) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, h)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(h.message.receipt_handle().unwrap_or_default())
                    .visibility_timeout(0)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = c
            .sqs
            .change_message_visibility_batch()
            .queue_url(&c.dlq)
            .set_entries(Some(entries))
            .send()
            .await?;
        released += out.successful().len();
    }
    Ok(released)
}
