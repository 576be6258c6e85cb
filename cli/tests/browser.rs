//! The install flow in a real browser: runs `tests/browser` (node --test, playwright-core driving
//! headless Chromium) against this build's `hsbridge dev --hubspot-sim`.
//! The suite also sends the contact card's relay call as `hubspot.fetch` does (node, no browser).
//!
//! `./scripts/test` installs what it needs first (Debian's `chromium`, `npm ci` in
//! tests/browser); run alone, this test says what is missing rather than passing.
#![allow(clippy::panic)]

use std::path::Path;
use std::process::Command;

#[test]
fn a_real_browser_installs_restarts_a_hubspot_side_install_refuses_without_the_cookie_and_the_card_reaches_the_relay()
 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser");
    let chromium =
        std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        dir.join("node_modules/playwright-core").is_dir() && Path::new(&chromium).exists(),
        "the browser test needs Chromium at {chromium} and `npm ci` in tests/browser: run ./scripts/test, which installs both"
    );
    let output = Command::new("node")
        .arg("--test")
        .current_dir(&dir)
        .env("HSBRIDGE_BIN", env!("CARGO_BIN_EXE_hsbridge"))
        .env("CHROMIUM_PATH", &chromium)
        .output()
        .unwrap_or_else(|e| panic!("could not run node: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node --test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("# pass 4"), "{stdout}");
}
