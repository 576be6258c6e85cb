//! The values the HubSpot project takes from a deployed stack: its outputs and its scope
//! parameters, read with CloudFormation `DescribeStacks` ([`crate::stack`]; the default
//! credential chain and region, or `--region` and `--profile`; `AWS_ENDPOINT_URL` works for moto).

use super::Values;
use super::checks::split_scopes;
use crate::stack::{Stack, StackArgs};
use anyhow::{Context, Result};
use hsbridge_platform::aws::AwsTimeouts;

pub async fn values(args: &StackArgs) -> Result<Values> {
    let sdk = args.sdk(AwsTimeouts::default()).await?;
    let name = args.stack.as_deref().unwrap_or_default();
    let found = Stack::read(&sdk, name).await?;
    let output = |key: &str| found.output(key).map(str::to_owned);
    let scopes = found.parameter("OAuthScopes").with_context(|| {
        format!("the stack {name} has no OAuthScopes parameter; is it an hsbridge stack?")
    })?;
    Ok(Values {
        webhook_url: output("WebhookUrl")?,
        redirect_url: output("OAuthRedirectUrl")?,
        relay_url: output("RelayUrl")?,
        scopes: split_scopes(scopes),
        optional_scopes: split_scopes(found.parameter("OAuthOptionalScopes").unwrap_or_default()),
    })
}
