//! `hsbridge secret set`: the first fill of the stack's app secret, from standard input or a
//! prompt, never from the command line.

use anyhow::{Context, Result, bail};
use hsbridge_platform::secrets::PLACEHOLDER;
use std::io::{BufRead, IsTerminal, Write};

/// Checks one credential as HubSpot shows it in the app's settings: one token of visible ASCII.
fn check(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        bail!("the {what} is empty");
    }
    if value.len() > 256 {
        bail!("the {what} is longer than 256 characters; paste it from the app's Auth settings");
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        bail!(
            "the {what} holds spaces or characters that are not printable ASCII; paste it from the app's Auth settings"
        );
    }
    if value == PLACEHOLDER {
        bail!("the {what} is the template's placeholder {PLACEHOLDER}, not the app's");
    }
    Ok(())
}

/// The client id and client secret: two lines on standard input, or asked for on a terminal.
fn read_credentials() -> Result<(String, String)> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let client_id = prompt("HubSpot app client id: ", false)?;
        let client_secret = prompt("HubSpot app client secret (not shown): ", true)?;
        return Ok((client_id, client_secret));
    }
    let mut lines = Vec::new();
    for line in stdin.lock().lines() {
        let line = line.context("could not read standard input")?;
        let line = line.trim().to_owned();
        if !line.is_empty() {
            lines.push(line);
        }
    }
    match <[String; 2]>::try_from(lines) {
        Ok([id, secret]) => Ok((id, secret)),
        Err(lines) => bail!(
            "expected two lines on standard input, the client id then the client secret; got {} non-empty line(s)",
            lines.len()
        ),
    }
}

fn prompt(label: &str, hidden: bool) -> Result<String> {
    eprint!("{label}");
    std::io::stderr().flush().ok();
    let echo = |on: bool| -> bool {
        std::fs::File::open("/dev/tty")
            .ok()
            .and_then(|tty| {
                std::process::Command::new("stty")
                    .arg(if on { "echo" } else { "-echo" })
                    .stdin(tty)
                    .status()
                    .ok()
            })
            .is_some_and(|s| s.success())
    };
    if hidden && !echo(false) {
        bail!(
            "could not turn off the terminal's echo to read the client secret; pipe the client id and secret in on two lines instead"
        );
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if hidden {
        echo(true);
        eprintln!();
    }
    read.context("could not read from the terminal")?;
    Ok(line.trim().to_owned())
}

pub async fn run(
    secret_id: Option<String>,
    aws: crate::stack::StackArgs,
    replace: bool,
) -> Result<()> {
    let sdk = aws.sdk(crate::ops::OPERATOR_TIMEOUTS).await?;
    let stack = aws.read(&sdk).await?;
    let secret_id = crate::stack::pick(
        stack.as_ref(),
        "HubSpotAppSecretArn",
        secret_id,
        "which secret? pass --secret-id ARN or set HSBRIDGE_HUBSPOT_SECRET_ID",
    )?;
    let (client_id, client_secret) = read_credentials()?;
    check("client id", &client_id)?;
    check("client secret", &client_secret)?;
    if client_id == client_secret {
        bail!("the client id and the client secret are the same; the secret comes second");
    }

    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let current = crate::ops::read_current(&client, &secret_id).await?;
    let old: serde_json::Value =
        serde_json::from_str(current.secret_string().unwrap_or_default()).unwrap_or_default();
    let old_id = old.get("client_id").and_then(|v| v.as_str());
    let old_secret = old.get("client_secret").and_then(|v| v.as_str());
    let placeholder = matches!(old_secret, None | Some(PLACEHOLDER | ""));
    if old_id == Some(client_id.as_str()) && old_secret == Some(client_secret.as_str()) {
        println!("{secret_id} already holds these credentials; nothing changed");
        return Ok(());
    }
    if !placeholder && !replace {
        bail!(
            "{secret_id} already holds an app's credentials (client id {}); to change only the client secret use `hsbridge secret rotate`, or pass --replace to overwrite both",
            old_id.unwrap_or("?")
        );
    }

    let text = serde_json::json!({"client_id": client_id, "client_secret": client_secret});
    crate::ops::step("storing the client id and client secret as AWSCURRENT");
    let put = client
        .put_secret_value()
        .secret_id(&secret_id)
        .secret_string(text.to_string())
        .send()
        .await
        .map_err(|e| crate::ops::aws_hint("storing the credentials", &e))?;
    // The placeholder version now carries AWSPREVIOUS. The functions never accept it (it is
    // published in the template), and without the label nothing even reads it.
    if placeholder && let Some(old_version) = current.version_id() {
        client
            .update_secret_version_stage()
            .secret_id(&secret_id)
            .version_stage("AWSPREVIOUS")
            .remove_from_version_id(old_version)
            .send()
            .await
            .map_err(|e| {
                crate::ops::aws_hint("taking AWSPREVIOUS off the placeholder version", &e)
            })?;
    }
    println!(
        "filled: version {} of {secret_id} holds client id {client_id} and its client secret.",
        put.version_id().unwrap_or("?")
    );
    println!(
        "The functions pick it up within their cache time (60 s). Next: register the OAuthRedirectUrl and WebhookUrl outputs in the app's settings."
    );
    if !placeholder {
        println!(
            "The replaced client secret stays accepted for the grace period (SecretGraceSeconds, 24 h by default)."
        );
    }
    Ok(())
}
