//! The values the HubSpot project takes from a deployed stack: its outputs and its scope
//! parameters, read with CloudFormation `DescribeStacks` (the default credential chain and
//! region; `AWS_ENDPOINT_URL` works for moto).

use super::Values;
use super::checks::split_scopes;
use anyhow::{Context, Result, bail};
use hsbridge_platform::aws::{self, AwsTimeouts};

pub async fn values(stack: &str) -> Result<Values> {
    let sdk = aws::load(AwsTimeouts::default()).await;
    let client = aws_sdk_cloudformation::Client::new(&sdk);
    let answer = client
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| crate::ops::aws_hint(&format!("reading the stack {stack}"), &e))?;
    let Some(found) = answer.stacks().first() else {
        bail!("CloudFormation knows no stack {stack:?} in this region (AWS_REGION)");
    };
    let output = |key: &str| -> Result<String> {
        found
            .outputs()
            .iter()
            .find(|o| o.output_key() == Some(key))
            .and_then(|o| o.output_value())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .with_context(|| {
                format!(
                    "the stack {stack} has no {key} output; is it an hsbridge stack, and is its deployment finished (status {})?",
                    found
                        .stack_status()
                        .map_or("unknown", |s| s.as_str())
                )
            })
    };
    let parameter = |key: &str| -> Option<String> {
        found
            .parameters()
            .iter()
            .find(|p| p.parameter_key() == Some(key))
            .and_then(|p| p.parameter_value())
            .map(str::to_owned)
    };
    let scopes = parameter("OAuthScopes").with_context(|| {
        format!("the stack {stack} has no OAuthScopes parameter; is it an hsbridge stack?")
    })?;
    Ok(Values {
        webhook_url: output("WebhookUrl")?,
        redirect_url: output("OAuthRedirectUrl")?,
        relay_url: output("RelayUrl")?,
        scopes: split_scopes(&scopes),
        optional_scopes: split_scopes(&parameter("OAuthOptionalScopes").unwrap_or_default()),
    })
}
