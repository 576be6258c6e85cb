//! `hsbridge sign` against the SigV4-verifying stand-in: signed with the default credential
//! chain it is accepted; with a wrong key it is refused; `--print` shows the signed request and
//! sends nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hsbridge_standin::{Credential, Standin, StandinConfig};
use std::process::{Command, Output};

const KEY_ID: &str = "AKIASIGNTEST00000001";
const SECRET_KEY: &str = "sign-test-secret-access-key-0f9e8d";

fn sign(args: &[&str], secret: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hsbridge"))
        .arg("sign")
        .args(args)
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_is_accepted_by_an_iam_protected_api_and_print_sends_nothing() {
    let running = Standin::new(StandinConfig::new(
        "eu-west-1",
        vec![Credential {
            access_key_id: KEY_ID.into(),
            secret_access_key: SECRET_KEY.into(),
            session_token: None,
            principal_arn: "arn:aws:iam::123456789012:user/sign-test".into(),
        }],
    ))
    .spawn("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap();
    let url = format!("{}/prod/items?b=2&a=caf%C3%A9", running.base_url);

    let ok = sign(
        &["-X", "POST", "-d", r#"{"n":1}"#, "-H", "x-trace: 7", &url],
        SECRET_KEY,
    );
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.starts_with("200 OK"), "{out}");
    let recorded = running.standin.recorded();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].body, br#"{"n":1}"#);
    assert_eq!(
        recorded[0].caller,
        "arn:aws:iam::123456789012:user/sign-test"
    );
    assert_eq!(recorded[0].header("x-trace"), Some("7"));

    let refused = sign(&[&url], "not-the-secret");
    assert!(String::from_utf8_lossy(&refused.stdout).starts_with("403"));
    assert_eq!(running.standin.rejected(), 1);

    let printed = sign(&["--print", &url], SECRET_KEY);
    let shown = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.status.success());
    assert!(
        shown.starts_with(&format!("GET {}", running.base_url)),
        "{shown}"
    );
    assert!(shown.contains("authorization: AWS4-HMAC-SHA256 Credential=AKIASIGNTEST00000001/"));
    assert!(!shown.contains(SECRET_KEY));
    assert_eq!(running.standin.recorded().len(), 1, "--print sent nothing");
}
