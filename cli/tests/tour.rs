//! The README's five-minute tour, run as written.
//!
//! Every command between `<!-- tour:start` and `<!-- tour:end -->` in README.md runs in one bash
//! session in a scratch directory, in order, with three substitutions only: `cargo run -p hsbridge
//! --` becomes this build's `hsbridge` binary (the same program, without a nested cargo), and the
//! ports 3000 and 3001 become free ones (the first block gets the matching `--addr` and
//! `--protected-addr`). Each command must succeed and print the lines its `# →` comments show,
//! in order. The browser step (open the install URL, click "Connect app") is taken over HTTP the
//! way a browser takes it; `tests/browser` takes it in a real Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hsbridge_integration_tests::cli::install_like_a_browser;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const README: &str = include_str!("../../README.md");

/// One command of the tour and the lines it must print.
#[derive(Debug)]
struct Step {
    command: String,
    expect: Vec<String>,
}

/// The tour's ```sh blocks, in order.
fn tour_blocks() -> Vec<Vec<Step>> {
    let start = README
        .find("<!-- tour:start")
        .expect("README has a tour:start marker");
    let end = README
        .find("<!-- tour:end -->")
        .expect("README has a tour:end marker");
    let tour = &README[start..end];
    let mut blocks = Vec::new();
    let mut lines = tour.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```sh" {
            continue;
        }
        let mut steps: Vec<Step> = Vec::new();
        for line in lines.by_ref() {
            let line = line.trim();
            if line == "```" {
                break;
            }
            if let Some(expected) = line.strip_prefix("# →") {
                steps
                    .last_mut()
                    .expect("an expectation follows a command")
                    .expect
                    .push(expected.trim().to_owned());
            } else if !line.is_empty() && !line.starts_with('#') {
                steps.push(Step {
                    command: line.to_owned(),
                    expect: Vec::new(),
                });
            }
        }
        blocks.push(steps);
    }
    blocks
}

/// Where a process's logs (stderr) are kept for `scripts/check-log-hygiene`:
/// `$HSBRIDGE_TEST_LOG_DIR/<name>.log`, by default `target/test-logs/`.
fn test_log(name: &str) -> PathBuf {
    let dir = std::env::var_os("HSBRIDGE_TEST_LOG_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-logs"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.log"))
}

/// The log level of the processes the tour starts: hsbridge's own crates at debug.
fn rust_log() -> String {
    std::env::var("RUST_LOG").unwrap_or_else(|_| "info,hsbridge=debug".to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hsbridge-tour-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Dev {
    child: Child,
    log: PathBuf,
}

impl Dev {
    fn output(&self) -> String {
        let mut s = String::new();
        std::fs::File::open(&self.log)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    fn wait_for(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.output();
            if out.matches(needle).count() >= count {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "`hsbridge dev` did not print {needle:?} {count} time(s):\n{out}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn substitute(command: &str, bin: &Path, p1: u16, p2: u16) -> String {
    command
        .replace("cargo run -p hsbridge --", &format!("'{}'", bin.display()))
        .replace("127.0.0.1:3000", &format!("127.0.0.1:{p1}"))
        .replace("127.0.0.1:3001", &format!("127.0.0.1:{p2}"))
}

#[tokio::test]
async fn the_readme_tour_runs_as_written() {
    let blocks = tour_blocks();
    assert!(
        blocks.len() >= 4,
        "the tour has its command blocks: {blocks:?}"
    );
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_hsbridge"));
    let (p1, p2) = (free_port(), free_port());
    let dir = scratch();

    // Terminal 1.
    let first = &blocks[0];
    assert_eq!(first.len(), 1, "the first block starts the stack");
    assert!(first[0].command.contains("dev --hubspot-sim"));
    let log = dir.join("dev.out");
    let dev = Dev {
        child: Command::new("bash")
            .arg("-c")
            .arg(format!(
                "exec {} --addr 127.0.0.1:{p1} --protected-addr 127.0.0.1:{p2}",
                substitute(&first[0].command, &bin, p1, p2)
            ))
            .current_dir(&dir)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", rust_log())
            .env_remove("HUBSPOT_CLIENT_SECRET")
            .env_remove("HUBSPOT_CLIENT_ID")
            .env_remove("HUBSPOT_PREVIOUS_CLIENT_SECRET")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(test_log("tour-dev")).unwrap())
            .spawn()
            .unwrap(),
        log,
    };
    let banner = dev.wait_for("Next:", 1);
    assert!(banner.contains(&format!("http://127.0.0.1:{p1}/oauth/install")));

    // The browser.
    let (_, page) =
        install_like_a_browser(&format!("http://127.0.0.1:{p1}"), "/hubspot-sim/").await;
    assert!(page.contains("The app is installed"), "{page}");

    // Terminal 2: every later block, in one bash session.
    let steps: Vec<&Step> = blocks[1..].iter().flatten().collect();
    let mut script = String::new();
    for (i, step) in steps.iter().enumerate() {
        script.push_str(&format!(
            "printf '\\n@@begin {i}\\n'\n{}\nprintf '\\n@@end {i} %s\\n' \"$?\"\n",
            substitute(&step.command, &bin, p1, p2)
        ));
    }
    // The shell's own AWS configuration, which sourcing the env file must leave alone.
    script.push_str(
        "printf '\\n@@aws %s|%s|%s|%s\\n' \"$AWS_PROFILE\" \"$AWS_ACCESS_KEY_ID\" \"$AWS_SECRET_ACCESS_KEY\" \"$AWS_REGION\"\n",
    );
    let run = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&dir)
        .env_remove("HUBSPOT_CLIENT_SECRET")
        .env("AWS_PROFILE", "users-own-profile")
        .env("AWS_ACCESS_KEY_ID", "AKIAUSERSOWNKEY")
        .env("AWS_SECRET_ACCESS_KEY", "users-own-secret")
        .env("AWS_REGION", "eu-west-2")
        .env_remove("AWS_ENDPOINT_URL")
        .env("RUST_LOG", rust_log())
        .output()
        .unwrap();
    std::fs::write(test_log("tour-commands"), &run.stderr).unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    let err = String::from_utf8_lossy(&run.stderr);
    for (i, step) in steps.iter().enumerate() {
        let begin = format!("@@begin {i}\n");
        let section = out
            .split(&begin)
            .nth(1)
            .and_then(|rest| rest.split(&format!("@@end {i} ")).next().map(str::to_owned))
            .unwrap_or_else(|| panic!("no output for `{}`:\n{out}\n{err}", step.command));
        let status = out
            .split(&format!("@@end {i} "))
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .unwrap_or("?");
        assert_eq!(status, "0", "`{}` failed:\n{section}\n{err}", step.command);
        let mut at = 0;
        for expected in &step.expect {
            match section[at..].find(expected.as_str()) {
                Some(pos) => at += pos + expected.len(),
                None => panic!(
                    "`{}` did not print {expected:?} (in order):\n{section}",
                    step.command
                ),
            }
        }
    }

    assert!(
        out.contains("@@aws users-own-profile|AKIAUSERSOWNKEY|users-own-secret|eu-west-2\n"),
        "sourcing .hsbridge-dev/env changed the shell's own AWS configuration:\n{out}"
    );

    // What terminal 1 showed: one delivery, signed with SigV4, despite the replay and the
    // tampered copy; the relay's and `sign`'s calls verified too.
    dev.wait_for("GET /hello  SigV4 verified", 1);
    let shown = dev.wait_for("refused 1 request(s)", 1);
    assert_eq!(
        shown
            .matches("POST /hubspot/events  SigV4 verified")
            .count(),
        1,
        "{shown}"
    );
    assert_eq!(
        shown.matches("api-caller     handled").count(),
        1,
        "{shown}"
    );
    assert!(
        shown.contains("GET /hubspot/relay/contacts/123  SigV4 verified"),
        "{shown}"
    );
    assert!(
        shown.contains("refused 1 request(s)"),
        "the unsigned curl: {shown}"
    );
    drop(dev);
    std::fs::remove_dir_all(&dir).ok();
}
