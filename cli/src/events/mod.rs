//! `hsbridge events show | list | replay`: where an event went, and putting failed ones back.
//!
//! `show` and `list` read the event log (`hsbridge_platform::event_log`: the dedupe table and its
//! `by_portal` index, or with `--dev` the local stack's embedded log); `replay` moves selected
//! messages from the dead-letter queue back to the events queue. Every command first says what
//! it read. None prints a token or an event body; `replay --with-body` prints the bodies of the
//! dead-letter messages it selected, and only then.

pub(crate) mod dev;
mod replay;
mod resources;
mod time;

pub use resources::EventsResources;

use anyhow::{Context, Result, bail};
use hsbridge_platform::event_log::{EventPath, ListFilter, Outcome, Status};
use hsbridge_platform::{Clock, SystemClock};
use time::{format_ms, parse_time};

/// `hsbridge events ...`
#[derive(Debug, clap::Subcommand)]
pub enum EventsCommand {
    /// The whole path of one event: received, queued, delivered / dropped / failed, with times.
    Show {
        /// The event's dedupe key (`portal#subscription#event#occurredAt`), as the protected
        /// API receives it in `x-hsbridge-dedupe-key`.
        key: String,
        #[command(flatten)]
        resources: EventsResources,
    },
    /// Events newest first, filtered; one page at a time.
    List {
        /// Only this portal's events (a Query of the index; without it the table is scanned).
        #[arg(long)]
        portal: Option<u64>,
        /// Only this subscription type (`contact.creation`, ...).
        #[arg(long = "type")]
        subscription_type: Option<String>,
        /// Only events in this state: received, queued, delivered, dropped, failed.
        #[arg(long, value_parser = parse_status)]
        status: Option<Status>,
        /// Received at or after: `2h` (ago), `2026-12-02T04:00:00Z`, or milliseconds since 1970.
        #[arg(long, default_value = "7d")]
        since: String,
        /// Received at or before (same forms); default now.
        #[arg(long)]
        until: Option<String>,
        /// Events per page.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// The next page: the cursor the previous page printed.
        #[arg(long)]
        before: Option<String>,
        #[command(flatten)]
        resources: EventsResources,
    },
    /// Put failed events from the dead-letter queue back on the events queue.
    ///
    /// Prints the plan first (how many, per portal and type, which the log shows delivered and
    /// will be skipped); moves the selected messages only with --yes. The rest stay in the
    /// dead-letter queue, visible again at once.
    Replay(replay::ReplayArgs),
}

fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        format!("unknown status {s:?}: expected received, queued, delivered, dropped or failed")
    })
}

pub async fn run(command: EventsCommand) -> Result<()> {
    match command {
        EventsCommand::Show { key, resources } => show(&key, &resources.resolved().await?).await,
        EventsCommand::List {
            portal,
            subscription_type,
            status,
            since,
            until,
            limit,
            before,
            resources,
        } => {
            let now = SystemClock.now_ms();
            if limit == 0 {
                bail!("--limit must be at least 1");
            }
            let filter = ListFilter {
                portal,
                subscription_type,
                status,
                from_ms: parse_time(&since, now).context("--since")?,
                to_ms: until
                    .as_deref()
                    .map(|u| parse_time(u, now))
                    .transpose()
                    .context("--until")?
                    .unwrap_or(now),
                before,
                limit,
            };
            list(&filter, &resources.resolved().await?).await
        }
        EventsCommand::Replay(args) => replay::run(args).await,
    }
}

async fn show(key: &str, resources: &EventsResources) -> Result<()> {
    let reader = resources.reader().await?;
    let (found, read) = reader
        .show(key, SystemClock.now_ms())
        .await
        .context("could not read the event log")?;
    println!(
        "read: {}: {} call(s), {} item(s)",
        read.operation, read.calls, read.items
    );
    let Some(path) = found else {
        bail!(
            "the event log has no record of {key}: not received by this stack, ignored (its account is not installed), older than the log's retention, or the key is mistyped"
        );
    };
    print!("{}", describe(&path));
    Ok(())
}

/// One event's path, a line per step.
fn describe(path: &EventPath) -> String {
    let mut out = format!(
        "event {}\n  portal {}  type {}\n",
        path.key, path.portal_id, path.subscription_type
    );
    out += &format!(
        "  received   {}  (intake)\n",
        format_ms(path.received_at_ms)
    );
    match path.intake.as_ref().map(|i| i.queued_at_ms) {
        Some(Some(queued)) => out += &format!("  queued     {}  (intake)\n", format_ms(queued)),
        Some(None) => {
            out += "  queued     not yet: claimed by a request that had not queued it (in flight, or failed and left to HubSpot's retry)\n";
        }
        None => out += "  queued     (the intake's record has expired)\n",
    }
    match &path.delivery {
        None => out += "  delivery   no attempt recorded yet\n",
        Some(d) => {
            let api = d
                .api_status
                .map_or_else(String::new, |s| format!(", protected API answered {s}"));
            let line = match d.outcome {
                Outcome::Delivered => format!(
                    "  delivered  {}  attempt {}{api}\n",
                    format_ms(d.at_ms),
                    d.attempts
                ),
                Outcome::Dropped => format!(
                    "  dropped    {}  attempt {}: the account is {}\n",
                    format_ms(d.at_ms),
                    d.attempts,
                    d.drop_reason.as_deref().unwrap_or("not installed")
                ),
                Outcome::Failed => format!(
                    "  failed     {}  attempt {}: {}{api}\n",
                    format_ms(d.at_ms),
                    d.attempts,
                    d.error_class.as_deref().unwrap_or("unknown")
                ),
            };
            out += &line;
        }
    }
    out += &format!("status: {}\n", path.status().as_str());
    out
}

async fn list(filter: &ListFilter, resources: &EventsResources) -> Result<()> {
    let reader = resources.reader().await?;
    let page = reader
        .list(filter, SystemClock.now_ms())
        .await
        .context("could not read the event log")?;
    println!(
        "read: {}: {} call(s), {} item(s)",
        page.read.operation, page.read.calls, page.read.items
    );
    if page.events.is_empty() {
        println!("no event matches");
    } else {
        println!(
            "{:<24}  {:<9}  {:>8}  {:>3}  {:<28}  KEY",
            "RECEIVED", "STATUS", "ATTEMPTS", "API", "TYPE"
        );
    }
    for e in &page.events {
        let (attempts, api) = e
            .delivery
            .as_ref()
            .map_or((String::new(), String::new()), |d| {
                (
                    d.attempts.to_string(),
                    d.api_status.map(|s| s.to_string()).unwrap_or_default(),
                )
            });
        println!(
            "{:<24}  {:<9}  {:>8}  {:>3}  {:<28}  {}",
            format_ms(e.received_at_ms),
            e.status().as_str(),
            attempts,
            api,
            e.subscription_type,
            e.key
        );
    }
    if let Some(next) = &page.next {
        println!("next page: --before '{next}'");
    }
    Ok(())
}
