//! `hsbridge secret rotate`, `hsbridge accounts ...` and `hsbridge hubspot-project --stack` against moto (real AWS wire protocols
//! over HTTP; `./scripts/test` starts moto and sets AWS_ENDPOINT_URL), run as the operator runs
//! them: the built binary, with the AWS configuration from the environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_config::SdkConfig;
use hsbridge_integration_tests::aws::{
    create_app_secret_for, create_kms_key, create_table, sdk, unique,
};
use hsbridge_integration_tests::cli::{keep_log, text};
use hsbridge_integration_tests::hubspot::{Answer, Endpoint, HubSpot};
use hsbridge_platform::aws::{self, AwsTimeouts};
use hsbridge_platform::secrets::{
    SecretCachePolicy, SecretSource, SecretsManagerSource, StaticSecretSource,
};
use hsbridge_platform::{Clock, SystemClock};
use hsbridge_vault::{
    DynamoAccountStore, KmsKeyWrapper, ReqwestHubSpotOAuth, Vault, VaultSettings,
};
use hsbridge_verify::Secret;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

const ACCESS: &str = "operator-test-access-token-7f3a";
const REFRESH: &str = "operator-test-refresh-token-91c2";

fn hsbridge(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hsbridge"))
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info,hsbridge=debug".to_owned()),
        )
        .env_remove("HSBRIDGE_ACCOUNTS_TABLE")
        .env_remove("HSBRIDGE_HUBSPOT_SECRET_ID")
        .env_remove("HSBRIDGE_KMS_KEY_ID")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    keep_log("operator", args, &output.stderr);
    output
}

/// A new app secret of client `operator-client`; returns its name.
async fn app_secret(sdk: &SdkConfig, client_secret: &str) -> String {
    let name = unique("operator-app");
    create_app_secret_for(sdk, &name, "operator-client", client_secret).await;
    name
}

#[tokio::test]
async fn rotating_the_client_secret_keeps_the_previous_one_valid_and_prints_neither() {
    let sdk = sdk().await;
    let name = app_secret(&sdk, "old-client-secret-5d1e").await;

    let out = hsbridge(
        &["secret", "rotate", "--secret-id", &name],
        "new-client-secret-8b2f\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("rotated"), "{shown}");
    assert!(!shown.contains("new-client-secret-8b2f") && !shown.contains("old-client-secret-5d1e"));

    // What the functions now read: the new secret current, the old one still accepted.
    let source = SecretsManagerSource::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        &name,
        SecretCachePolicy::default(),
        Arc::new(SystemClock),
    );
    let app = source.hubspot_app().await.unwrap();
    assert_eq!(app.client_id, "operator-client");
    assert_eq!(
        app.secrets.current(),
        &Secret::new("new-client-secret-8b2f")
    );
    assert_eq!(
        app.secrets.previous(),
        Some(&Secret::new("old-client-secret-5d1e"))
    );

    // The same secret again is refused, as is an empty input.
    let again = hsbridge(
        &["secret", "rotate", "--secret-id", &name],
        "new-client-secret-8b2f",
    );
    assert!(!again.status.success());
    assert!(
        text(&again).contains("already the current one"),
        "{}",
        text(&again)
    );
    let empty = hsbridge(&["secret", "rotate", "--secret-id", &name], "\n");
    assert!(!empty.status.success());
    assert!(text(&empty).contains("standard input"), "{}", text(&empty));
}

#[tokio::test]
async fn rotating_a_secret_that_does_not_exist_says_so() {
    sdk().await;
    let out = hsbridge(
        &["secret", "rotate", "--secret-id", &unique("missing")],
        "whatever\n",
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("was not found"), "{}", text(&out));
    let none = hsbridge(&["secret", "rotate"], "whatever\n");
    assert!(
        text(&none).contains("HSBRIDGE_HUBSPOT_SECRET_ID"),
        "{}",
        text(&none)
    );
}

/// An access token HubSpot refuses to uninstall with (as if granted without `oauth`).
const NO_OAUTH_SCOPE_ACCESS: &str = "access-without-oauth-scope-77";

/// HubSpot, refusing the uninstall for [`NO_OAUTH_SCOPE_ACCESS`] with 403 `MISSING_SCOPES`.
async fn fake_hubspot() -> HubSpot {
    let hubspot = HubSpot::start().await;
    hubspot.answer_with(Endpoint::Uninstall, |call| {
        (call.bearer.as_deref() == Some(NO_OAUTH_SCOPE_ACCESS)).then(|| {
            Answer::json(
                http::StatusCode::FORBIDDEN,
                serde_json::json!({"category": "MISSING_SCOPES"}),
            )
        })
    });
    hubspot
}

/// What each revoke and uninstall call was, in order: `revoke:<token>` or `uninstall:<bearer>`.
fn revokes_and_uninstalls(hubspot: &HubSpot) -> Vec<String> {
    hubspot
        .calls()
        .into_iter()
        .filter_map(|call| match call.endpoint {
            Endpoint::Revoke => Some(format!(
                "revoke:{}",
                call.form.get("token").cloned().unwrap_or_default()
            )),
            Endpoint::Uninstall => Some(format!("uninstall:{}", call.bearer.unwrap_or_default())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_listed_shown_and_disconnected_without_printing_a_token() {
    let sdk = sdk().await;
    let table = unique("operator-accounts");
    create_table(&sdk, &table, "hub_id").await;
    let key_id = create_kms_key(&sdk).await;
    let secret_id = app_secret(&sdk, "operator-secret-c0de").await;

    // An installed account, written by the vault as the callback writes it.
    let simulator = fake_hubspot().await;
    let hubspot = simulator.base().to_owned();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let vault = Vault::new(
        Arc::new(DynamoAccountStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &table,
        )),
        Arc::new(KmsKeyWrapper::new(aws_sdk_kms::Client::new(&sdk), &key_id)),
        Arc::new(ReqwestHubSpotOAuth::new(&hubspot, Duration::from_secs(3)).unwrap()),
        Arc::new(StaticSecretSource(hsbridge_platform::secrets::HubSpotApp {
            client_id: "operator-client".into(),
            secrets: hsbridge_verify::SecretSet::new(Secret::new("operator-secret-c0de")).unwrap(),
        })),
        clock,
        VaultSettings::default(),
    );
    let grant: hsbridge_vault::TokenGrant = serde_json::from_value(serde_json::json!({
        "access_token": ACCESS, "refresh_token": REFRESH, "expires_in": 1800,
        "token_type": "bearer", "hub_id": 4242, "scopes": "oauth crm.objects.contacts.read"
    }))
    .unwrap();
    let scopes = vec!["oauth".to_owned(), "crm.objects.contacts.read".to_owned()];
    vault.install(4242, &grant, &scopes).await.unwrap();

    let list = hsbridge(&["accounts", "list", "--table", &table], "");
    assert!(list.status.success(), "{}", text(&list));
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        listed.contains("4242") && listed.contains("active"),
        "{listed}"
    );
    assert!(listed.contains("crm.objects.contacts.read"), "{listed}");

    let show = hsbridge(&["accounts", "show", "4242", "--table", &table], "");
    assert!(show.status.success(), "{}", text(&show));
    let shown = String::from_utf8_lossy(&show.stdout).into_owned();
    assert!(shown.contains("sealed; expires in"), "{shown}");

    let missing = hsbridge(&["accounts", "show", "7", "--table", &table], "");
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("account 7 is not in"),
        "{}",
        text(&missing)
    );

    // A static-auth app's account: registered active without tokens, so the intake queues its
    // events; an OAuth-installed account is not overwritten.
    let refused = hsbridge(&["accounts", "add", "4242", "--table", &table], "");
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("installed with OAuth"),
        "{}",
        text(&refused)
    );
    let added = hsbridge(&["accounts", "add", "5151", "--table", &table], "");
    assert!(added.status.success(), "{}", text(&added));
    let directory = hsbridge_platform::accounts::DynamoAccountDirectory::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &table,
    );
    use hsbridge_platform::accounts::AccountDirectory as _;
    assert_eq!(
        directory.status(5151).await.unwrap(),
        Some(hsbridge_platform::accounts::AccountStatus::Active)
    );
    let again = hsbridge(&["accounts", "add", "5151", "--table", &table], "");
    assert!(again.status.success());
    assert!(
        text(&again).contains("already registered"),
        "{}",
        text(&again)
    );
    let shown_static = hsbridge(&["accounts", "show", "5151", "--table", &table], "");
    assert!(
        text(&shown_static).contains("registered for webhooks"),
        "{}",
        text(&shown_static)
    );

    let disconnect = hsbridge(
        &[
            "accounts",
            "disconnect",
            "4242",
            "--table",
            &table,
            "--kms-key-id",
            &key_id,
            "--secret-id",
            &secret_id,
            "--api-base",
            &hubspot,
        ],
        "",
    );
    assert!(disconnect.status.success(), "{}", text(&disconnect));
    assert_eq!(
        revokes_and_uninstalls(&simulator),
        vec![format!("uninstall:{ACCESS}"), format!("revoke:{REFRESH}")],
        "{}",
        text(&disconnect)
    );
    assert!(
        text(&disconnect).contains("the app is uninstalled from HubSpot account 4242"),
        "{}",
        text(&disconnect)
    );
    let after = hsbridge(&["accounts", "show", "4242", "--table", &table], "");
    let after = String::from_utf8_lossy(&after.stdout).into_owned();
    assert!(
        after.contains("disconnected") && after.contains("none (disconnected)"),
        "{after}"
    );

    // An uninstall HubSpot refuses: reported, the command fails, the tokens are erased anyway.
    let refused: hsbridge_vault::TokenGrant = serde_json::from_value(serde_json::json!({
        "access_token": NO_OAUTH_SCOPE_ACCESS, "refresh_token": "refresh-4343", "expires_in": 1800,
        "token_type": "bearer", "hub_id": 4343, "scopes": "crm.objects.contacts.read"
    }))
    .unwrap();
    vault.install(4343, &refused, &scopes).await.unwrap();
    // And one kept installed.
    vault.install(4444, &grant, &scopes).await.unwrap();
    simulator.clear_calls();
    let disconnect_args = |hub: &'static str| {
        vec![
            "accounts".to_owned(),
            "disconnect".to_owned(),
            hub.to_owned(),
            "--table".to_owned(),
            table.clone(),
            "--kms-key-id".to_owned(),
            key_id.clone(),
            "--secret-id".to_owned(),
            secret_id.clone(),
            "--api-base".to_owned(),
            hubspot.clone(),
        ]
    };
    let args = disconnect_args("4343");
    let failed = hsbridge(&args.iter().map(String::as_str).collect::<Vec<_>>(), "");
    assert!(!failed.status.success(), "{}", text(&failed));
    assert!(
        text(&failed).contains("could not be uninstalled from HubSpot account 4343")
            && text(&failed).contains("403"),
        "{}",
        text(&failed)
    );
    let after = hsbridge(&["accounts", "show", "4343", "--table", &table], "");
    assert!(
        String::from_utf8_lossy(&after.stdout).contains("none (disconnected)"),
        "{}",
        text(&after)
    );
    simulator.clear_calls();
    let mut args = disconnect_args("4444");
    args.push("--keep-install".to_owned());
    let kept = hsbridge(&args.iter().map(String::as_str).collect::<Vec<_>>(), "");
    assert!(kept.status.success(), "{}", text(&kept));
    assert_eq!(
        revokes_and_uninstalls(&simulator),
        vec![format!("revoke:{REFRESH}")]
    );
    assert!(text(&kept).contains("stays installed"), "{}", text(&kept));

    for output in [&list, &show, &disconnect, &failed, &kept] {
        let all = text(output);
        assert!(
            !all.contains(ACCESS) && !all.contains(REFRESH),
            "a token was printed: {all}"
        );
    }
}

/// A CloudFormation template with an hsbridge stack's outputs and scope parameters (moto
/// creates the stack; the values are fixed strings).
const STACK_TEMPLATE: &str = r#"{
  "Parameters": {
    "OAuthScopes": {"Type": "String", "Default": "oauth crm.objects.contacts.read"},
    "OAuthOptionalScopes": {"Type": "String", "Default": "crm.objects.deals.read"}
  },
  "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
  "Outputs": {
    "WebhookUrl": {"Value": "https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/hubspot"},
    "OAuthRedirectUrl": {"Value": "https://abc123.execute-api.eu-west-1.amazonaws.com/oauth/callback"},
    "RelayUrl": {"Value": "https://abc123.execute-api.eu-west-1.amazonaws.com/hubspot/relay"}
  }
}"#;

async fn create_stack(template: &str) -> String {
    let sdk = sdk().await;
    let name = unique("hsbridge-project");
    aws_sdk_cloudformation::Client::new(&sdk)
        .create_stack()
        .stack_name(&name)
        .template_body(template)
        .send()
        .await
        .unwrap();
    name
}

fn project_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("hsbridge-project-dir"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_hubspot_project_is_generated_from_a_deployed_stacks_outputs() {
    let stack = create_stack(STACK_TEMPLATE).await;
    let dir = project_dir();
    let dir_arg = dir.to_str().unwrap();
    let out = hsbridge(
        &["hubspot-project", "--stack", &stack, "--dir", dir_arg],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    let read = |rel: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(rel)).unwrap()).unwrap()
    };
    let app = read("connector/src/app/app-hsmeta.json");
    assert_eq!(
        app["config"]["auth"]["redirectUrls"][0],
        "https://abc123.execute-api.eu-west-1.amazonaws.com/oauth/callback"
    );
    assert_eq!(
        app["config"]["auth"]["requiredScopes"],
        serde_json::json!(["oauth", "crm.objects.contacts.read"])
    );
    assert_eq!(
        app["config"]["auth"]["optionalScopes"],
        serde_json::json!(["crm.objects.deals.read"])
    );
    assert_eq!(
        app["config"]["permittedUrls"]["fetch"][0],
        "https://abc123.execute-api.eu-west-1.amazonaws.com/hubspot/relay/"
    );
    assert_eq!(
        read("connector/src/app/webhooks/webhooks-hsmeta.json")["config"]["settings"]["targetUrl"],
        "https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/hubspot"
    );
    assert!(
        dir.join("functions/src/app/functions/CallProtectedApi.js")
            .exists()
    );

    // Scopes that differ from the stack's are refused by name.
    let out = hsbridge(
        &[
            "hubspot-project",
            "--stack",
            &stack,
            "--dir",
            dir_arg,
            "--scopes",
            "oauth",
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("does not match the stack"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn a_stack_without_the_outputs_an_unknown_stack_and_an_unreachable_endpoint_are_named() {
    let incomplete = create_stack(
        r#"{"Parameters": {"OAuthScopes": {"Type": "String", "Default": "oauth"}},
            "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {"WebhookUrl": {"Value": "https://x.example/webhooks/hubspot"}}}"#,
    )
    .await;
    let dir = project_dir();
    let dir_arg = dir.to_str().unwrap();
    let out = hsbridge(
        &["hubspot-project", "--stack", &incomplete, "--dir", dir_arg],
        "",
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("has no OAuthRedirectUrl output"),
        "{}",
        text(&out)
    );

    let out = hsbridge(
        &[
            "hubspot-project",
            "--stack",
            "no-such-stack-7f3a",
            "--dir",
            dir_arg,
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("no-such-stack-7f3a"), "{}", text(&out));

    let out = Command::new(env!("CARGO_BIN_EXE_hsbridge"))
        .args(["hubspot-project", "--stack", "any", "--dir", dir_arg])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("could not be reached"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing is written when the stack cannot be read"
    );
}

/// What template.yaml creates the app secret with.
const PLACEHOLDER_DOC: &str = r#"{"client_id":"REPLACE_ME","client_secret":"REPLACE_ME"}"#;

#[tokio::test]
async fn the_first_fill_reads_both_credentials_from_stdin_and_the_placeholder_is_never_accepted() {
    let sdk = sdk().await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let name = unique("first-fill");
    sm.create_secret()
        .name(&name)
        .secret_string(PLACEHOLDER_DOC)
        .send()
        .await
        .unwrap();
    let source = || {
        SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            &name,
            SecretCachePolicy::default(),
            Arc::new(SystemClock),
        )
    };
    // Before the fill the functions refuse the published placeholder.
    let before = source().hubspot_app().await.unwrap_err().to_string();
    assert!(before.contains("hsbridge secret set"), "{before}");

    // Bad input is refused with a sentence, and nothing is written.
    for (input, says) in [
        ("only-one-line\n", "two lines"),
        ("app-id\nsecret with space\n", "spaces"),
        ("app-id\nREPLACE_ME\n", "placeholder"),
        ("same-value\nsame-value\n", "the same"),
    ] {
        let out = hsbridge(&["secret", "set", "--secret-id", &name], input);
        assert!(!out.status.success(), "{input:?} was accepted");
        assert!(text(&out).contains(says), "{input:?}: {}", text(&out));
    }
    let none = hsbridge(&["secret", "set"], "a\nb\n");
    assert!(text(&none).contains("--stack"), "{}", text(&none));

    let out = hsbridge(
        &["secret", "set", "--secret-id", &name],
        "first-app-client-id\nfirst-app-client-secret-4c1d\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("filled"), "{}", text(&out));
    assert!(!text(&out).contains("first-app-client-secret-4c1d"));

    // The functions read the new credentials, with no previous secret (the placeholder is not one).
    let app = source().hubspot_app().await.unwrap();
    assert_eq!(app.client_id, "first-app-client-id");
    assert_eq!(
        app.secrets.current(),
        &Secret::new("first-app-client-secret-4c1d")
    );
    assert_eq!(app.secrets.previous(), None);

    // Filled credentials are not overwritten without --replace; the same ones change nothing.
    let again = hsbridge(
        &["secret", "set", "--secret-id", &name],
        "other-client-id\nother-client-secret-77aa\n",
    );
    assert!(!again.status.success());
    assert!(
        text(&again).contains("secret rotate") && text(&again).contains("--replace"),
        "{}",
        text(&again)
    );
    let same = hsbridge(
        &["secret", "set", "--secret-id", &name],
        "first-app-client-id\nfirst-app-client-secret-4c1d\n",
    );
    assert!(same.status.success() && text(&same).contains("nothing changed"));
    let replaced = hsbridge(
        &["secret", "set", "--secret-id", &name, "--replace"],
        "other-client-id\nother-client-secret-77aa\n",
    );
    assert!(replaced.status.success(), "{}", text(&replaced));
    assert!(!text(&replaced).contains("other-client-secret-77aa"));
    let app = source().hubspot_app().await.unwrap();
    assert_eq!(app.client_id, "other-client-id");
    assert_eq!(
        app.secrets.previous(),
        Some(&Secret::new("first-app-client-secret-4c1d"))
    );
}

/// For the teardown test's own set-up calls: moto creates a stack's every resource inside
/// CreateStack, slowly when the suite runs in parallel, and a retry after a timed-out attempt
/// would repeat a call that did happen (a second access key, a stack already there).
async fn unhurried_sdk() -> SdkConfig {
    sdk().await;
    aws::load(AwsTimeouts {
        attempt: Duration::from_secs(30),
        operation: Duration::from_secs(30),
        max_attempts: 1,
        ..AwsTimeouts::default()
    })
    .await
}

/// A stack in moto with the resource types teardown cares about, under the template's logical ids.
async fn teardown_stack() -> String {
    let name = unique("teardown");
    let template = serde_json::json!({
        "Resources": {
            "AccountsTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "hub_id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "hub_id", "KeyType": "HASH"}]}},
            "DedupeTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}},
            // The key policy as a JSON string (CloudFormation takes either form): moto 5.2.5
            // keeps an object as given and then fails DescribeKey on it.
            "TokenKey": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]}).to_string()}},
            "HubSpotCallerUser": {"Type": "AWS::IAM::User", "Properties": {"Path": "/hsbridge/"}},
            "HubSpotAppSecret": {"Type": "AWS::SecretsManager::Secret", "Properties": {
                "Name": format!("{name}/app"), "SecretString": "{\"client_id\":\"c\",\"client_secret\":\"teardown-secret-9e0f\"}"}}
        }
    });
    let cfn = aws_sdk_cloudformation::Client::new(&unhurried_sdk().await);
    cfn.create_stack()
        .stack_name(&name)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    name
}

async fn physical_id(sdk: &SdkConfig, stack: &str, logical: &str) -> String {
    let out = aws_sdk_cloudformation::Client::new(sdk)
        .describe_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    out.stack_resources()
        .iter()
        .find(|r| r.logical_resource_id() == Some(logical))
        .and_then(|r| r.physical_resource_id())
        .unwrap_or_else(|| panic!("{logical} is not in {stack}"))
        .to_owned()
}

#[tokio::test]
async fn the_teardown_check_names_what_blocks_or_outlives_a_delete_and_deletes_nothing() {
    let sdk = unhurried_sdk().await;
    let stack = teardown_stack().await;
    let dedupe = physical_id(&sdk, &stack, "DedupeTable").await;
    let accounts = physical_id(&sdk, &stack, "AccountsTable").await;
    let key = physical_id(&sdk, &stack, "TokenKey").await;
    let user = physical_id(&sdk, &stack, "HubSpotCallerUser").await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    dynamo
        .update_table()
        .table_name(&dedupe)
        .deletion_protection_enabled(true)
        .send()
        .await
        .unwrap();
    let access_key = aws_sdk_iam::Client::new(&sdk)
        .create_access_key()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    let key_secret = access_key
        .access_key()
        .unwrap()
        .secret_access_key()
        .to_owned();

    let out = hsbridge(&["teardown", "check", "--stack", &stack], "");
    let shown = text(&out);
    // A protected table that CloudFormation would delete blocks it: exit status 1.
    assert!(!out.status.success(), "{shown}");
    assert!(
        shown.contains("blocks `sam delete`")
            && shown.contains(&dedupe)
            && shown.contains("--no-deletion-protection-enabled"),
        "{shown}"
    );
    // The retained table and key outlive it, with what to do; the user's key goes with it.
    assert!(
        shown.contains("outlives `sam delete`") && shown.contains(&accounts),
        "{shown}"
    );
    assert!(
        shown.contains(&key) && shown.contains("schedule-key-deletion"),
        "{shown}"
    );
    assert!(
        shown.contains("1 access key(s)") && shown.contains("hs secret delete"),
        "{shown}"
    );
    assert!(!shown.contains("teardown-secret-9e0f") && !shown.contains(&key_secret));

    // Nothing was changed: the table is still protected, the key enabled, the secret there.
    let table = dynamo
        .describe_table()
        .table_name(&dedupe)
        .send()
        .await
        .unwrap();
    assert_eq!(
        table.table().unwrap().deletion_protection_enabled(),
        Some(true)
    );
    let state = aws_sdk_kms::Client::new(&sdk)
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        state.key_metadata().unwrap().key_state().unwrap().as_str(),
        "Enabled"
    );

    // Once the protection is off, nothing blocks.
    dynamo
        .update_table()
        .table_name(&dedupe)
        .deletion_protection_enabled(false)
        .send()
        .await
        .unwrap();
    let out = hsbridge(&["teardown", "check", "--stack", &stack], "");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing blocks"), "{}", text(&out));

    let missing = hsbridge(&["teardown", "check", "--stack", &unique("no-stack")], "");
    assert!(!missing.status.success());
}

#[tokio::test]
async fn the_first_fill_finds_the_secret_through_the_stacks_output() {
    let sdk = unhurried_sdk().await;
    let stack = unique("fill-by-stack");
    // The secret is made directly and the stack only carries the output: moto 5.2.5 resolves a
    // Secret resource's Ref to nothing and drops the output. Secrets Manager takes the name
    // where the template's output gives the ARN.
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(format!("{stack}/hubspot-app"))
        .secret_string(PLACEHOLDER_DOC)
        .send()
        .await
        .unwrap();
    let template = serde_json::json!({
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"HubSpotAppSecretArn": {"Value": format!("{stack}/hubspot-app")}}
    });
    aws_sdk_cloudformation::Client::new(&sdk)
        .create_stack()
        .stack_name(&stack)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();

    let out = hsbridge(
        &["secret", "set", "--stack", &stack],
        "stack-app-client-id\nstack-app-client-secret-31b7\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("stack-app-client-secret-31b7"));
    let app = SecretsManagerSource::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        format!("{stack}/hubspot-app"),
        SecretCachePolicy::default(),
        Arc::new(SystemClock),
    )
    .hubspot_app()
    .await
    .unwrap();
    assert_eq!(app.client_id, "stack-app-client-id");

    let missing = hsbridge(&["secret", "set", "--stack", &unique("no-stack")], "a\nb\n");
    assert!(!missing.status.success());
}
