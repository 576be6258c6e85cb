//! `hsbridge teardown check --stack NAME`: what would block `sam delete` or outlive it, and what
//! to do with each. It reads the stack's resources and their state and deletes nothing.
//!
//! What CloudFormation does on delete, per resource type, is from its resource schemas and
//! template reference (cited in infra/README.md, "Tearing down"):
//! - a DynamoDB table with deletion protection "cannot be deleted by any user or process", so
//!   `sam delete` fails on it (the rollback of a failed create too);
//! - `RetainExceptOnCreate` keeps the accounts table and both keys through a stack delete;
//! - a KMS key removed from a stack is scheduled for deletion after `PendingWindowInDays` (7–30,
//!   default 30) and cannot be used meanwhile: whatever it encrypts is unreadable after that;
//! - the IAM user's delete handler deletes its access keys (`iam:DeleteAccessKey`), so a key
//!   made with `aws iam create-access-key` goes with it, and the HubSpot function stops working.

use anyhow::{Context, Result};
use aws_sdk_cloudformation::types::StackResource;

/// `hsbridge teardown ...`
#[derive(Debug, clap::Subcommand)]
pub enum TeardownCommand {
    /// Say what would block or outlive `sam delete` of a stack, and what to do with each.
    /// Reads only; deletes nothing. Exit status 1 when something would block the delete.
    Check {
        /// --stack (required): the stack's name (samconfig.toml's stack_name).
        #[command(flatten)]
        aws: crate::stack::StackArgs,
    },
}

/// The resources the template keeps through a stack delete (`DeletionPolicy:
/// RetainExceptOnCreate`), by logical id.
const RETAINED: [&str; 3] = ["AccountsTable", "DataKey", "TokenKey"];

/// One finding of the check.
#[derive(Debug, PartialEq, Eq)]
enum Finding {
    /// `sam delete` fails until this is dealt with.
    Blocks(String),
    /// Stays after `sam delete` (and may keep costing) until removed by hand.
    Outlives(String),
    /// Goes with the stack; said so nobody is surprised.
    Goes(String),
}

pub async fn run(command: TeardownCommand) -> Result<()> {
    let TeardownCommand::Check { aws } = command;
    let stack = aws
        .stack
        .clone()
        .context("which stack? pass --stack NAME (samconfig.toml's stack_name)")?;
    let sdk = aws.sdk(crate::ops::OPERATOR_TIMEOUTS).await?;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    crate::ops::step(&format!(
        "reading stack {stack} (nothing is changed or deleted)"
    ));
    let described = cfn
        .describe_stacks()
        .stack_name(&stack)
        .send()
        .await
        .map_err(|e| crate::ops::aws_hint(&format!("describing stack {stack}"), &e))?;
    let stack_info = described
        .stacks()
        .first()
        .with_context(|| format!("stack {stack} was not found; check --stack and AWS_REGION"))?;
    let mut findings = Vec::new();
    if stack_info.enable_termination_protection() == Some(true) {
        findings.push(Finding::Blocks(format!(
            "stack {stack} has termination protection: `aws cloudformation update-termination-protection --stack-name {stack} --no-enable-termination-protection`"
        )));
    }
    let resources = cfn
        .describe_stack_resources()
        .stack_name(&stack)
        .send()
        .await
        .map_err(|e| crate::ops::aws_hint("listing the stack's resources", &e))?;
    for resource in resources.stack_resources() {
        findings.extend(check_resource(&sdk, resource).await?);
    }
    findings.push(Finding::Outlives(
        "the deployment artifacts in SAM's bucket (stack aws-sam-cli-managed-default, shared by every SAM stack of this account and region): `sam delete` removes this stack's, the bucket stays".to_owned(),
    ));

    let blocking = findings
        .iter()
        .filter(|f| matches!(f, Finding::Blocks(_)))
        .count();
    for (label, want) in [
        ("blocks `sam delete`", 0),
        ("outlives `sam delete`", 1),
        ("goes with the stack", 2),
    ] {
        let lines: Vec<&String> = findings
            .iter()
            .filter_map(|f| match (f, want) {
                (Finding::Blocks(t), 0) | (Finding::Outlives(t), 1) | (Finding::Goes(t), 2) => {
                    Some(t)
                }
                _ => None,
            })
            .collect();
        if lines.is_empty() {
            continue;
        }
        println!("{label}:");
        for line in lines {
            println!("  - {line}");
        }
    }
    if blocking > 0 {
        anyhow::bail!(
            "{blocking} thing(s) would block `sam delete --stack-name {stack}`; deal with them first (this check changed nothing)"
        );
    }
    println!("nothing blocks `sam delete --stack-name {stack}`");
    Ok(())
}

async fn check_resource(sdk: &aws_config::SdkConfig, r: &StackResource) -> Result<Vec<Finding>> {
    let logical = r.logical_resource_id().unwrap_or_default();
    let Some(id) = r.physical_resource_id() else {
        return Ok(Vec::new());
    };
    let retained = RETAINED.contains(&logical);
    let mut out = Vec::new();
    match r.resource_type().unwrap_or_default() {
        "AWS::DynamoDB::Table" => {
            let table = aws_sdk_dynamodb::Client::new(sdk)
                .describe_table()
                .table_name(id)
                .send()
                .await
                .map_err(|e| crate::ops::aws_hint(&format!("describing table {id}"), &e))?;
            let table = table.table().context("DescribeTable returned no table")?;
            let items = table.item_count().unwrap_or(0);
            let protected = table.deletion_protection_enabled() == Some(true);
            // A retained table is never deleted by CloudFormation, so its protection blocks nothing.
            if protected && !retained {
                out.push(Finding::Blocks(format!(
                    "table {logical} ({id}) has deletion protection: deploy with TableDeletionProtection=false, or `aws dynamodb update-table --table-name {id} --no-deletion-protection-enabled`"
                )));
            }
            if retained {
                let unprotect = if protected {
                    format!(
                        "`aws dynamodb update-table --table-name {id} --no-deletion-protection-enabled` and "
                    )
                } else {
                    String::new()
                };
                out.push(Finding::Outlives(format!(
                    "table {logical} ({id}, about {items} items: installed accounts and their sealed tokens) is kept (RetainExceptOnCreate); its items are readable only while DataKey and TokenKey exist. Disconnect the accounts first (`hsbridge accounts disconnect`), then {unprotect}`aws dynamodb delete-table --table-name {id}`"
                )));
            } else {
                out.push(Finding::Goes(format!(
                    "table {logical} ({id}, about {items} items) is deleted with the stack (point-in-time recovery backups go with it)"
                )));
            }
        }
        "AWS::KMS::Key" => {
            let key = aws_sdk_kms::Client::new(sdk)
                .describe_key()
                .key_id(id)
                .send()
                .await
                .map_err(|e| crate::ops::aws_hint(&format!("describing key {id}"), &e))?;
            let state = key
                .key_metadata()
                .and_then(|m| m.key_state())
                .map_or_else(|| "unknown".to_owned(), |s| s.as_str().to_owned());
            if retained {
                out.push(Finding::Outlives(format!(
                    "KMS key {logical} ({id}, {state}) is kept (RetainExceptOnCreate) and costs USD 1 a month: once the accounts table is gone, `aws kms schedule-key-deletion --key-id {id} --pending-window-in-days 7` (7 to 30 days; `aws kms cancel-key-deletion` within them undoes it)"
                )));
            } else {
                out.push(Finding::Outlives(format!(
                    "KMS key {logical} ({id}, {state}) is scheduled for deletion with the stack and deleted after its waiting period (PendingWindowInDays, 30 days by default)"
                )));
            }
        }
        "AWS::IAM::User" => {
            let keys = aws_sdk_iam::Client::new(sdk)
                .list_access_keys()
                .user_name(id)
                .send()
                .await
                .map_err(|e| {
                    crate::ops::aws_hint(&format!("listing the access keys of {id}"), &e)
                })?;
            let n = keys.access_key_metadata().len();
            if n > 0 {
                out.push(Finding::Goes(format!(
                    "IAM user {logical} ({id}) has {n} access key(s) made outside the stack: CloudFormation deletes them with the user, and the HubSpot project's function then fails to sign. Remove HSBRIDGE_CALLER_ACCESS_KEY_ID and HSBRIDGE_CALLER_SECRET_ACCESS_KEY from the HubSpot account's secrets (`hs secret delete`)"
                )));
            } else {
                out.push(Finding::Goes(format!(
                    "IAM user {logical} ({id}) has no access key; it is deleted with the stack"
                )));
            }
        }
        "AWS::SecretsManager::Secret" => {
            out.push(Finding::Goes(format!(
                "secret {logical} ({id}) is deleted with the stack. Keep the app's client secret in HubSpot's app settings; if a new stack with the same HubSpotSecretName says the name is taken, the old secret is still in its recovery window: `aws secretsmanager restore-secret` or another name"
            )));
        }
        "AWS::Logs::LogGroup" => {
            out.push(Finding::Goes(format!(
                "log group {id} is deleted with the stack, its events too: export what you must keep first (`aws logs create-export-task`). The functions log only to these groups (LoggingConfig), so no log group is left behind"
            )));
        }
        _ => {}
    }
    Ok(out)
}
