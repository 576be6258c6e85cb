//! The operator CLI run as an operator runs it: what its suites (`cli/tests/`) share to keep a
//! run's logs for the hygiene scan and to read what it printed.

use std::io::Write;
use std::path::PathBuf;
use std::process::Output;

/// Where the suites keep what the binaries they run printed on stderr:
/// `$HSBRIDGE_TEST_LOG_DIR`, by default the workspace's `target/test-logs/`, which
/// `scripts/check-log-hygiene` scans for tokens and secrets.
pub fn log_dir() -> PathBuf {
    std::env::var_os("HSBRIDGE_TEST_LOG_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-logs"),
        PathBuf::from,
    )
}

/// Appends one run's stderr, under a line naming its arguments, to `log_dir()/<log>.log`.
pub fn keep_log<S: AsRef<str>>(log: &str, args: &[S], stderr: &[u8]) {
    let dir = log_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{log}.log")))
        .unwrap();
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let mut entry = format!("== hsbridge {}\n", args.join(" ")).into_bytes();
    entry.extend_from_slice(stderr);
    file.write_all(&entry).unwrap();
}

/// What a run printed, stdout then stderr, for assertions and failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// What a browser does at `hsbridge dev`'s install URL (`base/oauth/install`): follow the
/// redirect to the simulator's authorize page (another site than `base`, under
/// `sim_prefix`), click "Connect app", follow the redirect back to the callback with the state
/// cookie. Answers the callback's status and page.
pub async fn install_like_a_browser(base: &str, sim_prefix: &str) -> (reqwest::StatusCode, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let location = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_owned();
    let start = http
        .get(format!("{base}/oauth/install"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302);
    let cookie = start.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let authorize = location(&start);
    assert!(
        authorize.starts_with("http://localhost:"),
        "the simulator is another site than the callback: {authorize}"
    );
    let page = http
        .get(&authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Connect app"), "{page}");
    let href = page
        .split("id=\"approve\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let origin = authorize.split(sim_prefix).next().unwrap();
    let approved = http.get(format!("{origin}{href}")).send().await.unwrap();
    assert_eq!(approved.status(), 302);
    let callback = location(&approved);
    assert!(
        callback.starts_with(&format!("{base}/oauth/callback?code=")),
        "{callback}"
    );
    let done = http
        .get(callback)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (done.status(), done.text().await.unwrap())
}
