//! `hsbridge secret rotate` and `hsbridge accounts ...` against moto (real AWS wire protocols
//! over HTTP; `./scripts/test` starts moto and sets AWS_ENDPOINT_URL), run as the operator runs
//! them: the built binary, with the AWS configuration from the environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
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
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ACCESS: &str = "operator-test-access-token-7f3a";
const REFRESH: &str = "operator-test-refresh-token-91c2";

async fn sdk() -> SdkConfig {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: run ./scripts/test, which starts moto and sets it"
    );
    aws::load(AwsTimeouts::default()).await
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Appends a run's stderr (its logs) to `$HSBRIDGE_TEST_LOG_DIR/operator.log` (by default
/// `target/test-logs/`), which `scripts/check-log-hygiene` scans for tokens and secrets.
fn keep_log(args: &[&str], stderr: &[u8]) {
    let dir = std::env::var_os("HSBRIDGE_TEST_LOG_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-logs"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("operator.log"))
        .unwrap();
    let mut entry = format!("== hsbridge {}\n", args.join(" ")).into_bytes();
    entry.extend_from_slice(stderr);
    log.write_all(&entry).unwrap();
}

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
    keep_log(args, &output.stderr);
    output
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn app_secret(sdk: &SdkConfig, client_secret: &str) -> String {
    let name = unique("operator-app");
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(&name)
        .secret_string(
            serde_json::json!({"client_id": "operator-client", "client_secret": client_secret})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
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

/// HubSpot's revoke and uninstall endpoints, recording what each call was `revoke:<token>` or
/// `uninstall:<bearer>`, in order.
async fn fake_hubspot() -> (String, Arc<Mutex<Vec<String>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&calls);
    let seen_uninstall = Arc::clone(&calls);
    let app = Router::new()
        .route(
            "/oauth/2026-03/token/revoke",
            post(move |body: Bytes| {
                let seen = Arc::clone(&seen);
                async move {
                    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap();
                    if let Some((_, token)) = form.iter().find(|(k, _)| k == "token") {
                        seen.lock().unwrap().push(format!("revoke:{token}"));
                    }
                    ""
                }
            }),
        )
        .route(
            "/appinstalls/2026-03/external-install",
            axum::routing::delete(move |headers: http::HeaderMap| {
                let seen = Arc::clone(&seen_uninstall);
                async move {
                    let bearer = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .unwrap_or_default()
                        .to_owned();
                    seen.lock().unwrap().push(format!("uninstall:{bearer}"));
                    if bearer == NO_OAUTH_SCOPE_ACCESS {
                        (
                            http::StatusCode::FORBIDDEN,
                            r#"{"category":"MISSING_SCOPES"}"#,
                        )
                    } else {
                        (http::StatusCode::NO_CONTENT, "")
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_listed_shown_and_disconnected_without_printing_a_token() {
    let sdk = sdk().await;
    let table = unique("operator-accounts");
    let created = aws_sdk_dynamodb::Client::new(&sdk)
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("hub_id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("hub_id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await;
    // The name is this test's own: "already exists" means the SDK retried a create that had
    // gone through (a slow moto on a busy machine).
    if let Err(e) = created {
        assert!(
            e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()),
            "{e:?}"
        );
    }
    let key_id = aws_sdk_kms::Client::new(&sdk)
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned();
    let secret_id = app_secret(&sdk, "operator-secret-c0de").await;

    // An installed account, written by the vault as the callback writes it.
    let (hubspot, calls) = fake_hubspot().await;
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
        *calls.lock().unwrap(),
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
    calls.lock().unwrap().clear();
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
    calls.lock().unwrap().clear();
    let mut args = disconnect_args("4444");
    args.push("--keep-install".to_owned());
    let kept = hsbridge(&args.iter().map(String::as_str).collect::<Vec<_>>(), "");
    assert!(kept.status.success(), "{}", text(&kept));
    assert_eq!(*calls.lock().unwrap(), vec![format!("revoke:{REFRESH}")]);
    assert!(text(&kept).contains("stays installed"), "{}", text(&kept));

    for output in [&list, &show, &disconnect, &failed, &kept] {
        let all = text(output);
        assert!(
            !all.contains(ACCESS) && !all.contains(REFRESH),
            "a token was printed: {all}"
        );
    }
}
