//! `--stack NAME` (with `--region`, `--profile`) against moto's CloudFormation: the operator
//! commands read the tables, queues, key and secret from the stack's outputs, name what they
//! read, and say in one sentence when no region is known. The built binary, run as an operator
//! runs it, with the AWS configuration from the environment (`./scripts/test` starts moto and
//! sets AWS_ENDPOINT_URL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_config::SdkConfig;
use hsbridge_integration_tests::aws::{sdk_with, unique};
use hsbridge_integration_tests::cli::keep_log;
use hsbridge_platform::aws::AwsTimeouts;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

async fn sdk() -> SdkConfig {
    // Creating a stack on a shared moto takes longer than the functions' hot-path budget.
    sdk_with(AwsTimeouts {
        connect: Duration::from_secs(3),
        attempt: Duration::from_secs(20),
        operation: Duration::from_secs(40),
        max_attempts: 2,
    })
    .await
}

/// The binary with the test's AWS environment minus every hsbridge variable a command could
/// fall back to, and `env` changes applied (`None` removes the variable).
fn hsbridge_with(args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hsbridge"));
    command
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("HSBRIDGE_ACCOUNTS_TABLE")
        .env_remove("HSBRIDGE_HUBSPOT_SECRET_ID")
        .env_remove("HSBRIDGE_KMS_KEY_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        match value {
            Some(v) => command.env(name, v),
            None => command.env_remove(name),
        };
    }
    let out = command.output().unwrap();
    keep_log("stack", args, &out.stderr);
    out
}

fn hsbridge(args: &[&str]) -> Output {
    hsbridge_with(args, &[])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A stack with the outputs of template.yaml that the commands read: real tables and queues
/// (moto resolves their `Ref`s), and the secret and key as literal values (moto 5.2.5 resolves
/// a Secret's `Ref` to nothing). Returns the stack's name and the accounts table's.
async fn deployed(sdk: &SdkConfig) -> (String, String) {
    let stack = unique("ops-stack");
    let accounts = format!("{stack}-accounts");
    let table = |name: &str, key: &str| {
        serde_json::json!({"Type": "AWS::DynamoDB::Table", "Properties": {
            "TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}]}})
    };
    let template = serde_json::json!({
        "Parameters": {"HubSpotApiVersion": {"Type": "String", "Default": "2026-03"}},
        "Resources": {
            "AccountsTable": table(&accounts, "hub_id"),
            "DedupeTable": table(&format!("{stack}-dedupe"), "pk"),
            "RateTable": table(&format!("{stack}-rate"), "pk"),
            "EventsDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
            "EventsQueue": {"Type": "AWS::SQS::Queue"}
        },
        "Outputs": {
            "AccountsTableName": {"Value": {"Ref": "AccountsTable"}},
            "DedupeTableName": {"Value": {"Ref": "DedupeTable"}},
            "RateTableName": {"Value": {"Ref": "RateTable"}},
            "EventsQueueUrl": {"Value": {"Ref": "EventsQueue"}},
            "EventsQueueArn": {"Value": {"Fn::GetAtt": ["EventsQueue", "Arn"]}},
            "EventsDeadLetterQueueUrl": {"Value": {"Ref": "EventsDeadLetterQueue"}},
            "EventsDeadLetterQueueArn": {"Value": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}},
            "HubSpotAppSecretArn": {"Value": format!("{stack}/hubspot-app")},
            "TokenKeyArn": {"Value": "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"},
            "WebhookUrl": {"Value": "https://hooks.example.com/webhooks/hubspot"},
            "HubSpotApiVersion": {"Value": {"Ref": "HubSpotApiVersion"}}
        }
    });
    aws_sdk_cloudformation::Client::new(sdk)
        .create_stack()
        .stack_name(&stack)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    (stack, accounts)
}

#[tokio::test]
async fn the_stacks_outputs_resolve_to_every_value_the_commands_read() {
    let sdk = sdk().await;
    let (stack, accounts) = deployed(&sdk).await;
    let out = hsbridge(&["stack", "env", "--stack", &stack]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let value = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap_or_else(|| panic!("no {name} in {printed}"))
            .trim_matches('\'')
            .to_owned()
    };
    assert_eq!(value("HSBRIDGE_ACCOUNTS_TABLE"), accounts);
    assert_eq!(value("HSBRIDGE_DEDUPE_TABLE"), format!("{stack}-dedupe"));
    assert_eq!(
        value("HSBRIDGE_HUBSPOT_SECRET_ID"),
        format!("{stack}/hubspot-app")
    );
    assert_eq!(value("HSBRIDGE_HUBSPOT_API_VERSION"), "2026-03");
    // The queue URLs are the queues moto made: they answer.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for name in ["HSBRIDGE_EVENTS_QUEUE_URL", "HSBRIDGE_DLQ_URL"] {
        sqs.get_queue_attributes()
            .queue_url(value(name))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(stderr(&out).contains(&format!("reading the outputs of stack {stack}")));
}

#[tokio::test]
async fn account_commands_find_the_accounts_table_through_the_stack_and_say_which() {
    let sdk = sdk().await;
    let (stack, accounts) = deployed(&sdk).await;
    let added = hsbridge(&["accounts", "add", "4242", "--stack", &stack]);
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(
        stderr(&added).contains(&format!("AccountsTableName of stack {stack}: {accounts}")),
        "{}",
        stderr(&added)
    );
    // --stack wins over a table given by flag or environment.
    let listed = hsbridge_with(
        &[
            "accounts",
            "list",
            "--stack",
            &stack,
            "--table",
            "not-this-table",
        ],
        &[("HSBRIDGE_ACCOUNTS_TABLE", Some("nor-this-one"))],
    );
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(stdout(&listed).contains("4242"), "{}", stdout(&listed));
    let shown = hsbridge(&[
        "accounts",
        "show",
        "4242",
        "--stack",
        &stack,
        "--region",
        "us-east-1",
    ]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(stdout(&shown).contains("active"), "{}", stdout(&shown));
}

#[tokio::test]
async fn events_commands_find_the_log_and_both_queues_through_the_stack_and_say_which() {
    let sdk = sdk().await;
    let (stack, _) = deployed(&sdk).await;
    let dedupe = format!("{stack}-dedupe");
    // --stack wins over a table given by flag or environment.
    let shown = hsbridge_with(
        &[
            "events",
            "show",
            "62515#1#2#3",
            "--stack",
            &stack,
            "--events-table",
            "not-this-table",
        ],
        &[("HSBRIDGE_EVENT_LOG_TABLE", Some("nor-this-one"))],
    );
    let err = stderr(&shown);
    assert!(
        err.contains(&format!("DedupeTableName of stack {stack}: {dedupe}")),
        "{err}"
    );
    // The table was read: the key is simply not in it.
    assert!(!shown.status.success());
    assert!(
        err.contains("the event log has no record of 62515#1#2#3"),
        "{err}"
    );
    // replay reads the dead-letter queue the stack names: empty, so nothing to move.
    let planned = hsbridge(&["events", "replay", "--stack", &stack]);
    let err = stderr(&planned);
    assert!(
        err.contains(&format!("EventsDeadLetterQueueUrl of stack {stack}:")),
        "{err}"
    );
    assert!(planned.status.success(), "{err}\n{}", stdout(&planned));
}

#[tokio::test]
async fn without_a_region_every_stack_command_says_so_in_one_sentence() {
    let sdk = sdk().await;
    let (stack, _) = deployed(&sdk).await;
    // A home without ~/.aws, so no profile names a region either.
    let home = std::env::temp_dir().join(unique("no-aws-home"));
    std::fs::create_dir_all(&home).unwrap();
    let no_region: &[(&str, Option<&str>)] = &[
        ("AWS_REGION", None),
        ("AWS_DEFAULT_REGION", None),
        ("AWS_PROFILE", None),
        ("AWS_CONFIG_FILE", None),
        ("AWS_SHARED_CREDENTIALS_FILE", None),
        ("HOME", Some(home.to_str().unwrap())),
        // The instance metadata service is never asked for a region.
        ("AWS_EC2_METADATA_DISABLED", None),
    ];
    for args in [
        &["stack", "env", "--stack", stack.as_str()][..],
        &["accounts", "list", "--stack", &stack],
        &["teardown", "check", "--stack", &stack],
        &["events", "show", "1#2#3#4", "--stack", &stack],
        &["events", "replay", "--stack", &stack],
        &[
            "hubspot-project",
            "--stack",
            &stack,
            "--dir",
            "/nonexistent/project",
        ],
    ] {
        let out = hsbridge_with(args, no_region);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("no AWS region: pass --region"),
            "{args:?}: {err}"
        );
    }
    // With --region the same command runs.
    let mut env = no_region.to_vec();
    env.retain(|(n, _)| *n != "AWS_EC2_METADATA_DISABLED");
    let out = hsbridge_with(
        &["stack", "env", "--stack", &stack, "--region", "us-east-1"],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn an_unknown_stack_and_a_missing_output_are_named() {
    let sdk = sdk().await;
    let unknown = unique("no-such-stack");
    let out = hsbridge(&["accounts", "list", "--stack", &unknown]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("knows no stack \"{unknown}\" in us-east-1")),
        "{}",
        stderr(&out)
    );

    let partial = unique("partial-stack");
    aws_sdk_cloudformation::Client::new(&sdk)
        .create_stack()
        .stack_name(&partial)
        .template_body(
            serde_json::json!({
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"AccountsTableName": {"Value": "t"}}
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let out = hsbridge(&["stack", "env", "--stack", &partial]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "the stack {partial} has no DedupeTableName output"
        )),
        "{}",
        stderr(&out)
    );
    let out = hsbridge(&["accounts", "disconnect", "1", "--stack", &partial]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("has no TokenKeyArn output"),
        "{}",
        stderr(&out)
    );
}

// Two threads: the receiving server runs while the test waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_webhook_goes_to_the_stacks_url_signed_with_its_secret() {
    use axum::extract::State;
    use std::sync::{Arc, Mutex};
    let sdk = sdk().await;
    type Seen = Arc<Mutex<Vec<(http::HeaderMap, Vec<u8>)>>>;
    let seen: Seen = Arc::default();
    let router =
        axum::Router::new()
            .route(
                "/webhooks/hubspot",
                axum::routing::post(
                    |State(seen): State<Seen>,
                     headers: http::HeaderMap,
                     body: axum::body::Bytes| async move {
                        seen.lock().unwrap().push((headers, body.to_vec()));
                        axum::Json(serde_json::json!({"accepted": 1}))
                    },
                ),
            )
            .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/hubspot", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let stack = unique("send-stack");
    let client_secret = "send-by-stack-client-secret-5d1e";
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(format!("{stack}/hubspot-app"))
        .secret_string(
            serde_json::json!({"client_id": "id", "client_secret": client_secret}).to_string(),
        )
        .send()
        .await
        .unwrap();
    aws_sdk_cloudformation::Client::new(&sdk)
        .create_stack()
        .stack_name(&stack)
        .template_body(
            serde_json::json!({
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {
                    "WebhookUrl": {"Value": url},
                    "HubSpotAppSecretArn": {"Value": format!("{stack}/hubspot-app")}
                }
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();

    let out = hsbridge_with(
        &["webhook", "send", "--stack", &stack],
        &[("HUBSPOT_CLIENT_SECRET", None)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains(client_secret) && !stderr(&out).contains(client_secret));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    let ts = headers["x-hubspot-request-timestamp"].to_str().unwrap();
    assert_eq!(
        headers["x-hubspot-signature-v3"].to_str().unwrap(),
        hsbridge_verify::sign_v3(
            &hsbridge_verify::Secret::new(client_secret),
            "POST",
            &url,
            body,
            ts
        )
    );
}
