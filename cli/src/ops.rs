//! Operator commands against a deployed stack, through the AWS configuration (the default
//! credential chain and region, or `--region` and `--profile`; `AWS_ENDPOINT_URL` works for
//! moto): `hsbridge secret rotate` and `hsbridge accounts list | add | show | disconnect`. Each
//! takes `--stack NAME` and then reads the table, key and secret from the stack's outputs
//! ([`crate::stack`]).
//!
//! Nothing here prints a token or a client secret: accounts are shown by status, scopes,
//! expiry and counters; the secret is read from standard input.

use crate::stack::{StackArgs, pick};
use anyhow::{Context, Result, bail};
use aws_sdk_secretsmanager::operation::get_secret_value::{
    GetSecretValueError, GetSecretValueOutput,
};
use hsbridge_platform::accounts::AccountStatus;
use hsbridge_platform::aws::{self, AwsTimeouts};
use hsbridge_platform::secrets::{SecretCachePolicy, SecretsManagerSource};
use hsbridge_platform::{Clock, SystemClock};
use hsbridge_vault::{
    AccountRecord, AccountStore, ApiVersion, DisconnectReport, DynamoAccountStore, HubSpotStep,
    KmsKeyWrapper, ReqwestHubSpotOAuth, Vault, VaultError, VaultSettings,
};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

const SECRET_ID_HELP: &str = "the app's Secrets Manager secret: pass --secret-id or set HSBRIDGE_HUBSPOT_SECRET_ID (the stack's HubSpotAppSecretArn output)";
const TABLE_HELP: &str = "the accounts table: pass --table or set HSBRIDGE_ACCOUNTS_TABLE (the stack's AccountsTableName output)";

/// `hsbridge secret ...`
#[derive(Debug, clap::Subcommand)]
pub enum SecretCommand {
    /// Make a new client secret current; the previous one stays valid for the grace period.
    ///
    /// Reads the new secret from standard input (one line), so it never appears in the shell's
    /// history or the process list.
    Rotate {
        #[arg(long, env = "HSBRIDGE_HUBSPOT_SECRET_ID")]
        secret_id: Option<String>,
        #[command(flatten)]
        aws: StackArgs,
    },
    /// The first fill: store the app's client id and client secret in the stack's secret.
    ///
    /// Reads them from standard input (two lines: the client id, then the client secret) or,
    /// on a terminal, asks for them (the secret is not echoed), so neither appears in the
    /// shell's history or the process list. Refuses to overwrite real credentials unless
    /// --replace is given; to change only the client secret, use `secret rotate`.
    Set {
        /// The secret's ARN or name (the stack's HubSpotAppSecretArn output).
        #[arg(long, env = "HSBRIDGE_HUBSPOT_SECRET_ID")]
        secret_id: Option<String>,
        /// With --stack, its HubSpotAppSecretArn output is used (--stack wins over --secret-id
        /// and HSBRIDGE_HUBSPOT_SECRET_ID).
        #[command(flatten)]
        aws: StackArgs,
        /// Overwrite credentials that are already filled in (another app's, say).
        #[arg(long)]
        replace: bool,
    },
}

/// `hsbridge accounts ...`
#[derive(Debug, clap::Subcommand)]
pub enum AccountsCommand {
    /// Every installed account: hub id, status, scopes, token expiry, counters.
    List {
        #[arg(long, env = "HSBRIDGE_ACCOUNTS_TABLE")]
        table: Option<String>,
        #[command(flatten)]
        aws: StackArgs,
    },
    /// Register the account of a privately distributed static-auth app, which has webhooks but
    /// no OAuth install, so that its events are delivered (recorded active, without tokens).
    Add {
        hub_id: u64,
        #[arg(long, env = "HSBRIDGE_ACCOUNTS_TABLE")]
        table: Option<String>,
        #[command(flatten)]
        aws: StackArgs,
    },
    /// One account in detail.
    Show {
        hub_id: u64,
        #[arg(long, env = "HSBRIDGE_ACCOUNTS_TABLE")]
        table: Option<String>,
        #[command(flatten)]
        aws: StackArgs,
    },
    /// Revoke the account's refresh token at HubSpot, delete its tokens, mark it disconnected.
    Disconnect {
        hub_id: u64,
        #[arg(long, env = "HSBRIDGE_ACCOUNTS_TABLE")]
        table: Option<String>,
        /// The KMS key the tokens are sealed with (to open them for the revocation).
        #[arg(long, env = "HSBRIDGE_KMS_KEY_ID")]
        kms_key_id: Option<String>,
        #[arg(long, env = "HSBRIDGE_HUBSPOT_SECRET_ID")]
        secret_id: Option<String>,
        /// HubSpot's API base (for the revocation call).
        #[arg(
            long,
            env = "HSBRIDGE_HUBSPOT_API_BASE",
            default_value = "https://api.hubapi.com"
        )]
        api_base: String,
        /// HubSpot's dated API version whose revoke and uninstall paths are called.
        #[arg(
            long,
            env = "HSBRIDGE_HUBSPOT_API_VERSION",
            default_value = "2026-03",
            value_parser = ApiVersion::parse
        )]
        api_version: ApiVersion,
        /// Revoke and erase, but leave the app installed in the customer's HubSpot account.
        #[arg(long)]
        keep_install: bool,
        /// With --stack, the table, key and secret are its outputs, and the API version its
        /// HubSpotApiVersion.
        #[command(flatten)]
        aws: StackArgs,
    },
}

/// Prints what HubSpot answered to each call of a disconnect; an error when one failed (the
/// local tokens are deleted either way).
fn disconnect_outcome(hub_id: u64, report: &DisconnectReport) -> anyhow::Result<()> {
    match &report.uninstall {
        HubSpotStep::Done => {
            println!(
                "the app is uninstalled from HubSpot account {hub_id} (its admins are e-mailed)"
            );
        }
        HubSpotStep::Skipped => {
            println!("the app stays installed in HubSpot account {hub_id} (--keep-install)")
        }
        HubSpotStep::Failed(why) => eprintln!(
            "error: the app could not be uninstalled from HubSpot account {hub_id}: {why}. Uninstall it in HubSpot (Connected apps) or ask an admin of the account to."
        ),
    }
    match &report.revoke {
        HubSpotStep::Done => println!("the refresh token is revoked at HubSpot"),
        HubSpotStep::Skipped => {}
        HubSpotStep::Failed(why) => eprintln!(
            "error: the refresh token could not be revoked at HubSpot: {why}. It can no longer be used from here (it is deleted); uninstalling the app in HubSpot ends it there."
        ),
    }
    if report.uninstall.is_failed() || report.revoke.is_failed() {
        bail!(
            "account {hub_id} is disconnected here, but HubSpot did not confirm every step (above)"
        );
    }
    Ok(())
}

pub(crate) fn step(text: &str) {
    eprintln!("==> {text}");
}

/// An error and its sources, as one line.
pub(crate) fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Turns an SDK error into a sentence that says what to do.
pub(crate) fn aws_hint(what: &str, err: &(dyn std::error::Error + 'static)) -> anyhow::Error {
    let text = error_text(err);
    let hint = if text.contains("credentials") || text.contains("Credentials") {
        "no usable AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    } else if text.contains("dispatch failure") || text.contains("connect") {
        "AWS could not be reached: check the network, AWS_REGION and AWS_ENDPOINT_URL"
    } else {
        "check the name, the region (AWS_REGION) and your IAM permissions"
    };
    anyhow::anyhow!("{what} failed ({text}); {hint}")
}

/// Timeouts of the commands run once by an operator (a first fill, a teardown check): bounded,
/// but with room for a laptop's round trips to AWS, unlike the functions' hot-path defaults.
pub(crate) const OPERATOR_TIMEOUTS: AwsTimeouts = AwsTimeouts {
    connect: Duration::from_secs(3),
    attempt: Duration::from_secs(10),
    operation: Duration::from_secs(25),
    max_attempts: 2,
};

/// The secret's `AWSCURRENT` version, with a sentence for a secret that does not exist.
pub(crate) async fn read_current(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<GetSecretValueOutput> {
    step(&format!("reading the current version of {secret_id}"));
    client
        .get_secret_value()
        .secret_id(secret_id)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(GetSecretValueError::is_resource_not_found_exception)
            {
                anyhow::anyhow!(
                    "secret {secret_id} was not found; check the secret's name or ARN (--secret-id, or the stack with --stack) and AWS_REGION"
                )
            } else {
                aws_hint("reading the secret", &e)
            }
        })
}

pub async fn secret(command: SecretCommand) -> Result<()> {
    let (secret_id, aws) = match command {
        SecretCommand::Rotate { secret_id, aws } => (secret_id, aws),
        SecretCommand::Set {
            secret_id,
            aws,
            replace,
        } => return crate::secret_set::run(secret_id, aws, replace).await,
    };
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("could not read the new client secret from standard input")?;
    let new_secret = input.trim();
    if new_secret.is_empty() {
        bail!(
            "no new client secret on standard input; pipe it in, e.g. `hsbridge secret rotate < new-secret.txt`"
        );
    }
    if new_secret.chars().any(char::is_whitespace) || new_secret.lines().count() > 1 {
        bail!("the new client secret must be one line without spaces");
    }

    let sdk = aws.sdk(AwsTimeouts::default()).await?;
    let stack = aws.read(&sdk).await?;
    let secret_id = pick(
        stack.as_ref(),
        "HubSpotAppSecretArn",
        secret_id,
        SECRET_ID_HELP,
    )?;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let current = read_current(&client, &secret_id).await?;
    let mut document: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(current.secret_string().unwrap_or_default()).map_err(|_| {
            anyhow::anyhow!(
                "secret {secret_id} is not a JSON object with client_id and client_secret; fill it as infra/README.md describes"
            )
        })?;
    if document.get("client_secret").and_then(|v| v.as_str()) == Some(new_secret) {
        bail!("that client secret is already the current one; nothing to rotate");
    }
    document.insert("client_secret".into(), new_secret.into());
    let text = serde_json::Value::Object(document).to_string();

    step("storing the new client secret as AWSCURRENT (the old one becomes AWSPREVIOUS)");
    let put = client
        .put_secret_value()
        .secret_id(&secret_id)
        .secret_string(text)
        .send()
        .await
        .map_err(|e| aws_hint("storing the new secret", &e))?;
    println!(
        "rotated: version {} is current; the previous client secret is still accepted for the grace period (HSBRIDGE_SECRET_GRACE_SECONDS, 24 h by default), counted from now.",
        put.version_id().unwrap_or("?")
    );
    println!(
        "Functions pick the new secret up within their cache time (60 s). Rotate it in HubSpot's app settings now; run this again only for the next rotation."
    );
    Ok(())
}

fn when(ms: u64, now: u64) -> String {
    if ms == 0 {
        return "-".to_owned();
    }
    let delta = i128::from(ms) - i128::from(now);
    let (abs, past) = (delta.unsigned_abs() / 1000, delta < 0);
    let span = if abs >= 86_400 {
        format!("{}d", abs / 86_400)
    } else if abs >= 3600 {
        format!("{}h{:02}m", abs / 3600, (abs % 3600) / 60)
    } else {
        format!("{}m{:02}s", abs / 60, abs % 60)
    };
    if past {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

fn describe(r: &AccountRecord, now: u64) -> String {
    format!(
        "{:<12} {:<13} expires {:<12} refreshes {:<4} failures {:<3} scopes {}",
        r.hub_id,
        r.status.as_str(),
        if r.sealed.is_some() {
            when(r.access_expires_at_ms, now)
        } else {
            "no tokens".to_owned()
        },
        r.refresh_count,
        r.consecutive_failures,
        r.scopes.join(" ")
    )
}

pub async fn accounts(command: AccountsCommand) -> Result<()> {
    let now = SystemClock.now_ms();
    let aws = match &command {
        AccountsCommand::List { aws, .. }
        | AccountsCommand::Add { aws, .. }
        | AccountsCommand::Show { aws, .. }
        | AccountsCommand::Disconnect { aws, .. } => aws.clone(),
    };
    let sdk = aws.sdk(AwsTimeouts::default()).await?;
    let stack = aws.read(&sdk).await?;
    let stack = stack.as_ref();
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    match command {
        AccountsCommand::List { table, .. } => {
            let table = pick(stack, "AccountsTableName", table, TABLE_HELP)?;
            step(&format!("reading {table}"));
            let store = DynamoAccountStore::new(dynamo, &table);
            let records = store
                .scan()
                .await
                .map_err(|e| aws_hint("reading the accounts table", &e))?;
            if records.is_empty() {
                println!("no accounts are installed");
            }
            for r in &records {
                println!("{}", describe(r, now));
            }
            Ok(())
        }
        AccountsCommand::Add { hub_id, table, .. } => {
            let table = pick(stack, "AccountsTableName", table, TABLE_HELP)?;
            if hub_id == 0 {
                bail!("0 is not a HubSpot account id (hub id)");
            }
            let store = DynamoAccountStore::new(dynamo, &table);
            let existing = store
                .get(hub_id)
                .await
                .map_err(|e| aws_hint("reading the account", &e))?;
            let expected = match &existing {
                None => None,
                Some(r) if r.sealed.is_some() => bail!(
                    "account {hub_id} is installed with OAuth ({}); its events are already delivered while it is active",
                    r.status.as_str()
                ),
                Some(r) if r.status == AccountStatus::Active => {
                    println!("account {hub_id} is already registered for webhooks");
                    return Ok(());
                }
                Some(r) => Some(r.version),
            };
            let record = AccountRecord {
                hub_id,
                status: AccountStatus::Active,
                scopes: Vec::new(),
                access_expires_at_ms: 0,
                installed_at_ms: now,
                updated_at_ms: now,
                refresh_count: 0,
                consecutive_failures: 0,
                version: expected.map_or(1, |v| v.saturating_add(1)),
                sealed: None,
                lease: None,
            };
            store
                .put(&record, expected)
                .await
                .map_err(|e| aws_hint("registering the account", &e))?;
            println!(
                "account {hub_id} is registered: its webhook events are delivered (no OAuth tokens, so no enrichment and no HubSpot API calls for it); `hsbridge accounts disconnect {hub_id}` stops them"
            );
            Ok(())
        }
        AccountsCommand::Show { hub_id, table, .. } => {
            let table = pick(stack, "AccountsTableName", table, TABLE_HELP)?;
            let store = DynamoAccountStore::new(dynamo, &table);
            let record = store
                .get(hub_id)
                .await
                .map_err(|e| aws_hint("reading the account", &e))?
                .with_context(|| format!("account {hub_id} is not in {table}"))?;
            println!("hub id              {}", record.hub_id);
            println!("status              {}", record.status.as_str());
            println!("scopes              {}", record.scopes.join(" "));
            println!(
                "access token        {}",
                if record.sealed.is_some() {
                    format!("sealed; expires {}", when(record.access_expires_at_ms, now))
                } else if record.status == AccountStatus::Active {
                    "none (registered for webhooks with `accounts add`)".to_owned()
                } else {
                    "none (disconnected)".to_owned()
                }
            );
            println!("installed           {}", when(record.installed_at_ms, now));
            println!("updated             {}", when(record.updated_at_ms, now));
            println!("refreshes           {}", record.refresh_count);
            println!("consecutive failures {}", record.consecutive_failures);
            println!("version             {}", record.version);
            if let Some(lease) = &record.lease
                && lease.expires_at_ms > now
            {
                println!(
                    "refresh lease       held, ends {}",
                    when(lease.expires_at_ms, now)
                );
            }
            Ok(())
        }
        AccountsCommand::Disconnect {
            hub_id,
            table,
            kms_key_id,
            secret_id,
            api_base,
            api_version,
            keep_install,
            ..
        } => {
            let table = pick(stack, "AccountsTableName", table, TABLE_HELP)?;
            let kms_key_id = pick(
                stack,
                "TokenKeyArn",
                kms_key_id,
                "the token key: pass --kms-key-id or set HSBRIDGE_KMS_KEY_ID (the stack's TokenKeyArn output)",
            )?;
            let secret_id = pick(stack, "HubSpotAppSecretArn", secret_id, SECRET_ID_HELP)?;
            // The version the stack's own OAuth calls use (its output, else its parameter).
            let api_version = match stack.and_then(|s| {
                s.outputs
                    .get("HubSpotApiVersion")
                    .map(String::as_str)
                    .or_else(|| s.parameter("HubSpotApiVersion"))
            }) {
                Some(v) => ApiVersion::parse(v).map_err(|e| {
                    anyhow::anyhow!("the stack's HubSpotApiVersion {v:?} is not usable: {e}")
                })?,
                None => api_version,
            };
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let hubspot_timeout = Duration::from_secs(5);
            let calls =
                hsbridge_vault::CallBounds::new(aws::operation_timeout(&sdk), hubspot_timeout)?;
            let vault = Vault::new(
                Arc::new(DynamoAccountStore::new(dynamo, &table)),
                Arc::new(KmsKeyWrapper::new(
                    aws_sdk_kms::Client::new(&sdk),
                    &kms_key_id,
                )),
                Arc::new(
                    ReqwestHubSpotOAuth::new(&api_base, hubspot_timeout)
                        .map_err(|e| anyhow::anyhow!("could not build an HTTP client: {e}"))?
                        .with_version(api_version),
                ),
                Arc::new(SecretsManagerSource::new(
                    aws_sdk_secretsmanager::Client::new(&sdk),
                    &secret_id,
                    SecretCachePolicy::default(),
                    Arc::clone(&clock),
                )),
                clock,
                VaultSettings::for_calls(calls),
            );
            step(&if keep_install {
                format!(
                    "revoking account {hub_id}'s refresh token at HubSpot (API {api_version}) and deleting its tokens; the app stays installed"
                )
            } else {
                format!(
                    "uninstalling the app from account {hub_id} and revoking its refresh token at HubSpot (API {api_version}), and deleting its tokens"
                )
            });
            match vault.disconnect(hub_id, !keep_install).await {
                Ok(report) => {
                    println!(
                        "account {hub_id} is disconnected: its tokens are deleted and its webhooks are no longer queued"
                    );
                    disconnect_outcome(hub_id, &report)
                }
                Err(VaultError::NotInstalled { .. }) => {
                    bail!("account {hub_id} is not in {table}")
                }
                Err(e) => Err(aws_hint("disconnecting", &e)),
            }
        }
    }
}
