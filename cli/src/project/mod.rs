//! `hsbridge hubspot-project`: writes or updates the HubSpot side of a deployment, the two
//! project-based apps in `infra/hubspot-project/`, from a deployed stack's outputs or from flags.
//!
//! HubSpot's developer platform keeps an app's redirect URL, scopes, webhook target and
//! subscriptions, cards and functions in files uploaded with `hs project upload`:
//! https://developers.hubspot.com/docs/apps/developer-platform/build-apps/app-configuration
//! An app that uses OAuth cannot contain app functions, so there are two projects:
//! `connector/` (OAuth, webhooks, the contact card calling the relay) and `functions/` (static
//! auth, private distribution, the SigV4 `call_protected_api` function).
//!
//! The command owns a few values (the redirect URL, the scopes, the webhook target, the relay
//! URL in `permittedUrls.fetch` and in the card) and keeps everything else a user edited. It
//! writes no secret or key. Every file is checked before any is written, and each is written to
//! a temporary file that is then renamed over the old one.

mod checks;
mod files;
mod json;
mod stack;

use anyhow::{Context, Result, bail};
pub use checks::Target;
use std::path::{Path, PathBuf};

/// What a project is generated from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Values {
    /// The stack's `WebhookUrl` output: the webhooks' `targetUrl`.
    pub webhook_url: String,
    /// The stack's `OAuthRedirectUrl` output: the connector app's redirect URL.
    pub redirect_url: String,
    /// The stack's `RelayUrl` output: listed (with a trailing slash) in `permittedUrls.fetch`
    /// and called by the card.
    pub relay_url: String,
    /// The stack's `OAuthScopes` parameter: the connector app's required scopes.
    pub scopes: Vec<String>,
    /// The stack's `OAuthOptionalScopes` parameter.
    pub optional_scopes: Vec<String>,
}

/// `hsbridge hubspot-project`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct ProjectArgs {
    /// Where the two projects live (`connector/` and `functions/` below it).
    #[arg(long, default_value = "infra/hubspot-project")]
    pub dir: PathBuf,
    /// With --stack, the URLs and scopes are read from the deployed CloudFormation stack
    /// (`DescribeStacks`).
    #[command(flatten)]
    pub aws: crate::stack::StackArgs,
    /// The webhooks' target URL (the stack's `WebhookUrl` output).
    #[arg(long, conflicts_with = "stack")]
    pub webhook_url: Option<String>,
    /// The OAuth redirect URL (the stack's `OAuthRedirectUrl` output).
    #[arg(long, conflicts_with = "stack")]
    pub redirect_url: Option<String>,
    /// The relay's base URL (the stack's `RelayUrl` output).
    #[arg(long, conflicts_with = "stack")]
    pub relay_url: Option<String>,
    /// Required scopes, space or comma separated (the stack's `OAuthScopes`); with --stack, must
    /// match the stack's.
    #[arg(long)]
    pub scopes: Option<String>,
    /// Optional scopes (the stack's `OAuthOptionalScopes`).
    #[arg(long)]
    pub optional_scopes: Option<String>,
}

pub async fn run(args: ProjectArgs) -> Result<()> {
    let values = match &args.aws.stack {
        Some(stack) => {
            let values = stack::values(&args.aws).await?;
            if let Some(given) = &args.scopes {
                let given = checks::split_scopes(given);
                if !same_set(&given, &values.scopes) {
                    bail!(
                        "--scopes {:?} does not match the stack {stack}'s required scopes (OAuthScopes {:?}); HubSpot refuses an install whose scopes differ from the app's. Change the stack's OAuthScopes parameter and redeploy, or drop --scopes",
                        given.join(" "),
                        values.scopes.join(" ")
                    );
                }
            }
            values
        }
        None => {
            let flag = |v: &Option<String>, name: &str, output: &str| {
                v.clone().with_context(|| {
                    format!("{name} is missing: pass --stack NAME, or {name} with the stack's {output} output")
                })
            };
            Values {
                webhook_url: flag(&args.webhook_url, "--webhook-url", "WebhookUrl")?,
                redirect_url: flag(&args.redirect_url, "--redirect-url", "OAuthRedirectUrl")?,
                relay_url: flag(&args.relay_url, "--relay-url", "RelayUrl")?,
                scopes: checks::split_scopes(&flag(
                    &args.scopes,
                    "--scopes",
                    "OAuthScopes parameter",
                )?),
                optional_scopes: checks::split_scopes(
                    args.optional_scopes.as_deref().unwrap_or(""),
                ),
            }
        }
    };
    let plan = files::plan(&args.dir, &values, Target::Deployed)?;
    for warning in &plan.warnings {
        eprintln!("warning: {warning}");
    }
    let written = plan.write()?;
    if written.is_empty() {
        println!("{}: up to date", args.dir.display());
    }
    for path in &written {
        println!("wrote {}", path.display());
    }
    println!(
        "Next: cd {} && hs project upload, then the same in {}",
        args.dir.join("connector").display(),
        args.dir.join("functions").display()
    );
    Ok(())
}

/// Renders the project for `hsbridge dev` into `dir`, pointing at the local stack, marked as
/// local (HubSpot would refuse its URLs).
pub fn render_local(dir: &Path, values: &Values) -> Result<Vec<PathBuf>> {
    files::plan(dir, values, Target::Local)?.write()
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

/// A file of the checked-in projects, as built into the command (`connector/...`,
/// `functions/...`).
#[cfg(test)]
pub fn default_file(rel: &str) -> Option<&'static str> {
    files::DEFAULTS
        .iter()
        .find(|(p, _)| *p == rel)
        .map(|(_, text)| *text)
}
