//! Finding a deployed stack's resources: every operator command takes `--stack NAME` (with
//! `--region` and `--profile`) and reads the names, ARNs and URLs it needs from the stack's
//! outputs (CloudFormation `DescribeStacks`), instead of making the operator copy each one.
//!
//! [`StackArgs`] is the flag group a command flattens in; [`StackArgs::sdk`] loads the AWS
//! configuration for it (refusing, in one sentence, to go on without a region); [`Stack::read`]
//! describes the stack; [`Stack::values`] names what the template's outputs hold. A value given
//! explicitly (`--table`, `--secret-id`, ... or their environment variables) is used when no
//! stack is named; with `--stack`, the stack's output is used and the command says which.

use anyhow::{Context, Result, bail};
use aws_config::SdkConfig;
use hsbridge_platform::aws::{self, AwsTimeouts};
use std::collections::BTreeMap;

/// `--stack`, `--region`, `--profile`: which deployed stack, where, as whom.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StackArgs {
    /// The deployed stack's name (samconfig.toml's stack_name): its outputs name the tables,
    /// queues, key and secret, so none has to be passed by hand.
    #[arg(long)]
    pub stack: Option<String>,
    /// The AWS region (else AWS_REGION, or the profile's region).
    #[arg(long)]
    pub region: Option<String>,
    /// The AWS profile (else AWS_PROFILE, or the default credential chain).
    #[arg(long)]
    pub profile: Option<String>,
}

/// The sentence for a missing region.
pub const NO_REGION: &str = "no AWS region: pass --region (e.g. --region eu-west-1), set AWS_REGION, or give your AWS profile a region";

impl StackArgs {
    /// The AWS configuration for these flags, with `timeouts`; an error when no region is
    /// known, before any call is made.
    ///
    /// The region is `--region`, else `AWS_REGION` / `AWS_DEFAULT_REGION`, else the profile's;
    /// never the EC2 instance metadata service, whose failure on a laptop is a page of
    /// warnings.
    pub async fn sdk(&self, timeouts: AwsTimeouts) -> Result<SdkConfig> {
        use aws_config::meta::region::RegionProviderChain;
        let mut profile_region = aws_config::profile::ProfileFileRegionProvider::builder();
        if let Some(profile) = &self.profile {
            profile_region = profile_region.profile_name(profile);
        }
        let region =
            RegionProviderChain::first_try(self.region.clone().map(aws_config::Region::new))
                .or_else(aws_config::environment::EnvironmentVariableRegionProvider::new())
                .or_else(profile_region.build())
                .region()
                .await
                .context(NO_REGION)?;
        let mut loader = aws::loader(timeouts).region(region);
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        Ok(loader.load().await)
    }

    /// The named stack, read; `None` when no `--stack` was given.
    pub async fn read(&self, sdk: &SdkConfig) -> Result<Option<Stack>> {
        match &self.stack {
            None => Ok(None),
            Some(name) => Stack::read(sdk, name).await.map(Some),
        }
    }
}

/// A deployed stack's outputs and parameters.
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub region: String,
    pub status: String,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
}

/// What the template's outputs name, by what the commands call them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackValues {
    pub accounts_table: String,
    pub dedupe_table: String,
    pub rate_table: String,
    pub events_queue_url: String,
    pub events_queue_arn: Option<String>,
    pub dead_letter_queue_url: String,
    pub dead_letter_queue_arn: Option<String>,
    /// The app secret's ARN.
    pub secret_id: String,
    pub token_key_arn: String,
    pub webhook_url: String,
    /// HubSpot's dated API version (output, else parameter `HubSpotApiVersion`).
    pub hubspot_api_version: Option<String>,
}

impl Stack {
    /// `DescribeStacks` of `name`, with a sentence for a stack that does not exist.
    pub async fn read(sdk: &SdkConfig, name: &str) -> Result<Self> {
        let region = sdk
            .region()
            .map_or_else(String::new, |r| r.as_ref().to_owned());
        crate::ops::step(&format!("reading the outputs of stack {name} in {region}"));
        let answer = aws_sdk_cloudformation::Client::new(sdk)
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| {
                let text = crate::ops::error_text(&e);
                if text.contains("does not exist") {
                    anyhow::anyhow!(
                        "CloudFormation knows no stack {name:?} in {region}; check --stack and --region"
                    )
                } else {
                    crate::ops::aws_hint(&format!("reading the stack {name}"), &e)
                }
            })?;
        let Some(found) = answer.stacks().first() else {
            bail!("CloudFormation knows no stack {name:?} in {region}; check --stack and --region");
        };
        let outputs = found
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect();
        let parameters = found
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_owned(),
                    p.parameter_value()?.to_owned(),
                ))
            })
            .collect();
        Ok(Self {
            name: name.to_owned(),
            region,
            status: found
                .stack_status()
                .map_or("unknown", |s| s.as_str())
                .to_owned(),
            outputs,
            parameters,
        })
    }

    /// An output's value, or a sentence naming the output and the stack.
    pub fn output(&self, key: &str) -> Result<&str> {
        self.outputs
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .with_context(|| {
                format!(
                    "the stack {} has no {key} output; is it an hsbridge stack, deployed from this version's template, and is its deployment finished (status {})?",
                    self.name, self.status
                )
            })
    }

    pub fn parameter(&self, key: &str) -> Option<&str> {
        self.parameters.get(key).map(String::as_str)
    }

    /// Every value the commands read, or a sentence naming the first output missing.
    pub fn values(&self) -> Result<StackValues> {
        let owned = |key: &str| self.output(key).map(str::to_owned);
        let optional = |key: &str| self.outputs.get(key).filter(|v| !v.is_empty()).cloned();
        Ok(StackValues {
            accounts_table: owned("AccountsTableName")?,
            dedupe_table: owned("DedupeTableName")?,
            rate_table: owned("RateTableName")?,
            events_queue_url: owned("EventsQueueUrl")?,
            events_queue_arn: optional("EventsQueueArn"),
            dead_letter_queue_url: owned("EventsDeadLetterQueueUrl")?,
            dead_letter_queue_arn: optional("EventsDeadLetterQueueArn"),
            secret_id: owned("HubSpotAppSecretArn")?,
            token_key_arn: owned("TokenKeyArn")?,
            webhook_url: owned("WebhookUrl")?,
            hubspot_api_version: optional("HubSpotApiVersion")
                .or_else(|| self.parameter("HubSpotApiVersion").map(str::to_owned)),
        })
    }
}

/// `hsbridge stack ...`
#[derive(Debug, clap::Subcommand)]
pub enum StackCommand {
    /// Print the stack's values as the environment variables the commands (and the functions)
    /// read, as `export NAME='value'` lines: `eval "$(hsbridge stack env --stack NAME)"`.
    Env {
        #[command(flatten)]
        aws: StackArgs,
    },
}

/// Single-quoted for a POSIX shell.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

impl StackValues {
    /// Each value under the environment variable that carries it.
    pub fn variables(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("HSBRIDGE_ACCOUNTS_TABLE", self.accounts_table.as_str()),
            ("HSBRIDGE_DEDUPE_TABLE", self.dedupe_table.as_str()),
            ("HSBRIDGE_RATE_TABLE", self.rate_table.as_str()),
            ("HSBRIDGE_EVENTS_QUEUE_URL", self.events_queue_url.as_str()),
            ("HSBRIDGE_DLQ_URL", self.dead_letter_queue_url.as_str()),
            ("HSBRIDGE_HUBSPOT_SECRET_ID", self.secret_id.as_str()),
            ("HSBRIDGE_KMS_KEY_ID", self.token_key_arn.as_str()),
            ("HSBRIDGE_WEBHOOK_URL", self.webhook_url.as_str()),
        ];
        if let Some(version) = &self.hubspot_api_version {
            out.push(("HSBRIDGE_HUBSPOT_API_VERSION", version));
        }
        out
    }
}

pub async fn run(command: StackCommand) -> Result<()> {
    let StackCommand::Env { aws } = command;
    if aws.stack.is_none() {
        bail!("which stack? pass --stack NAME (samconfig.toml's stack_name)");
    }
    let sdk = aws.sdk(crate::ops::OPERATOR_TIMEOUTS).await?;
    let Some(stack) = aws.read(&sdk).await? else {
        bail!("which stack? pass --stack NAME");
    };
    let values = stack.values()?;
    println!(
        "# stack {} in {} ({})",
        stack.name, stack.region, stack.status
    );
    for (name, value) in values.variables() {
        println!("export {name}={}", shell_quote(value));
    }
    Ok(())
}

/// One value a command needs: the stack's output when a stack is named (and says so), else the
/// explicit flag or its environment variable, else `missing` as the error.
pub fn pick(
    stack: Option<&Stack>,
    output: &str,
    explicit: Option<String>,
    missing: &str,
) -> Result<String> {
    match stack {
        Some(stack) => {
            let value = stack.output(output)?.to_owned();
            crate::ops::step(&format!("{output} of stack {}: {value}", stack.name));
            Ok(value)
        }
        None => explicit.filter(|v| !v.is_empty()).with_context(|| {
            format!("{missing}; or pass --stack NAME to read the stack's {output} output")
        }),
    }
}
