//! `hsbridge`: the command a newcomer runs first and an operator uses every day.
//!
//! - `hsbridge dev` serves all the functions' Routers on one loopback port with embedded
//!   adapters (no AWS, no Docker), with the SigV4 stand-in as the protected API and, with
//!   `--hubspot-sim`, a HubSpot simulator.
//! - `hsbridge webhook send` signs a request exactly as HubSpot does and sends it.
//! - `hsbridge sign` is a curl-like client that signs with AWS SigV4.
//! - `hsbridge verify` checks a captured request's HubSpot signature (`--explain` says why not).
//! - `hsbridge secret set | rotate`, `hsbridge accounts ...` and `hsbridge teardown check` work
//!   on a deployed stack.
//! - `hsbridge events show | list | replay` follows an event through the event log and puts
//!   failed ones back from the dead-letter queue.
//! - `hsbridge hubspot-project` writes the HubSpot projects from a deployed stack's outputs.
//! - Every command on a deployed stack takes `--stack NAME` (`--region`, `--profile`) and reads
//!   what it needs from the stack's outputs; `hsbridge stack env` prints them.
#![allow(clippy::print_stdout)] // a command-line tool talks on stdout

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod dev;
mod events;
mod ops;
mod project;
mod secret_set;
mod send;
mod sign;
mod sim;
mod stack;
mod teardown;
mod verify;

#[derive(Debug, Parser)]
#[command(
    name = "hsbridge",
    version,
    about = "The secure boundary between HubSpot and your AWS account"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the whole stack locally with embedded adapters (no AWS, no Docker).
    Dev(dev::DevArgs),
    /// Webhook tools.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Send a request signed with AWS SigV4 (default credential chain), like curl.
    Sign(sign::SignArgs),
    /// Check a captured request's HubSpot signature; with --explain, say why it did not match.
    Verify(verify::VerifyArgs),
    /// The app's client secret in Secrets Manager.
    Secret {
        #[command(subcommand)]
        command: ops::SecretCommand,
    },
    /// Write or update the HubSpot projects (infra/hubspot-project) from a deployed stack.
    HubspotProject(project::ProjectArgs),
    /// Installed accounts (never their tokens).
    Accounts {
        #[command(subcommand)]
        command: ops::AccountsCommand,
    },
    /// Where an event went (the event log), and replaying failed ones from the dead-letter queue.
    Events {
        #[command(subcommand)]
        command: events::EventsCommand,
    },
    /// A deployed stack's resources, as the commands find them through `--stack`.
    Stack {
        #[command(subcommand)]
        command: stack::StackCommand,
    },
    /// Removing a deployed stack: what would block `sam delete` or outlive it.
    Teardown {
        #[command(subcommand)]
        command: teardown::TeardownCommand,
    },
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Sign a request as HubSpot does and send it; prints the status and the body.
    Send(send::SendArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Dev(_)
            | Command::Secret { .. }
            | Command::Accounts { .. }
            | Command::Stack { .. }
            | Command::Teardown { .. }
            | Command::Events { .. }
    ) {
        hsbridge_platform::telemetry::init();
    }
    let result = match cli.command {
        Command::Dev(args) => match dev::DevStack::start(&args).await {
            Ok(stack) => stack.serve().await,
            Err(e) => Err(e),
        },
        Command::Verify(args) => return verify::run(args).await,
        Command::Webhook {
            command: WebhookCommand::Send(args),
        } => send::run(args).await,
        Command::Sign(args) => sign::run(args).await,
        Command::Secret { command } => ops::secret(command).await,
        Command::Accounts { command } => ops::accounts(command).await,
        Command::HubspotProject(args) => project::run(args).await,
        Command::Stack { command } => stack::run(command).await,
        Command::Teardown { command } => teardown::run(command).await,
        Command::Events { command } => events::run(command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
