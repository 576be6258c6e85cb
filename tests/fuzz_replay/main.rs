//! Every committed fuzz corpus (`fuzz/corpus/<target>/`) replayed through its target's body
//! (`fuzz/bodies/<target>.rs`, the very file the cargo-fuzz target compiles) in the ordinary test
//! build: the same inputs and the same assertions as libFuzzer's replay of the corpus, in seconds
//! and without cargo-fuzz, libFuzzer or a second build of the dependencies. The mutation runs
//! that grow the corpora are `scripts/check-fuzz` (see docs/security-evidence.md).
//!
//! Inputs are decoded exactly as libfuzzer-sys's `fuzz_target!` decodes them: raw bytes for the
//! `&[u8]` targets; for the typed ones, inputs shorter than the type's minimum size are skipped
//! and the rest goes through `Arbitrary::arbitrary_take_rest`, with the `arbitrary` version the
//! fuzz workspace locks (checked below).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};

#[path = "../../fuzz/bodies/batch_parse.rs"]
mod batch_parse;
#[path = "../../fuzz/bodies/public_uri.rs"]
mod public_uri;
#[path = "../../fuzz/bodies/relay_headers.rs"]
mod relay_headers;
#[path = "../../fuzz/bodies/state_cookie.rs"]
mod state_cookie;
#[path = "../../fuzz/bodies/verify_signature.rs"]
mod verify_signature;

/// The targets replayed here; every corpus directory must be one of them.
const TARGETS: &[&str] = &[
    "batch_parse",
    "public_uri",
    "relay_headers",
    "state_cookie",
    "verify_signature",
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// What libfuzzer-sys does with the bytes before a typed target's body runs.
fn decode<'a, T: Arbitrary<'a>>(bytes: &'a [u8]) -> Option<T> {
    if bytes.len() < T::size_hint(0).0 {
        return None;
    }
    T::arbitrary_take_rest(Unstructured::new(bytes)).ok()
}

/// Runs `body` on every file of `dir`; returns how many inputs ran and the names of those whose
/// run panicked (the panic message itself goes to stderr).
fn replay_dir(dir: &Path, body: fn(&[u8])) -> (usize, Vec<String>) {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read the corpus directory {}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    let mut failed = Vec::new();
    for path in &files {
        let bytes = fs::read(path)
            .unwrap_or_else(|e| panic!("cannot read the corpus input {}: {e}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| body(&bytes))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    (files.len(), failed)
}

fn assert_corpus_passes(target: &str, body: fn(&[u8])) {
    let (ran, failed) = replay_dir(&fuzz_dir().join("corpus").join(target), body);
    assert!(ran > 0, "fuzz/corpus/{target} holds no input to replay");
    assert!(
        failed.is_empty(),
        "{} of {ran} committed {target} inputs failed the target's assertions \
         (reproduce one with `scripts/check-fuzz {target}` or this test): {failed:#?}",
        failed.len()
    );
    eprintln!("{target}: {ran} committed inputs replayed");
}

#[test]
fn every_committed_batch_parse_input_passes_the_targets_assertions() {
    assert_corpus_passes("batch_parse", batch_parse::run);
}

#[test]
fn every_committed_public_uri_input_passes_the_targets_assertions() {
    assert_corpus_passes("public_uri", public_uri::run);
}

#[test]
fn every_committed_relay_headers_input_passes_the_targets_assertions() {
    assert_corpus_passes("relay_headers", |bytes| {
        if let Some(input) = decode::<relay_headers::Input<'_>>(bytes) {
            relay_headers::run(input);
        }
    });
}

#[test]
fn every_committed_state_cookie_input_passes_the_targets_assertions() {
    assert_corpus_passes("state_cookie", |bytes| {
        if let Some(input) = decode::<state_cookie::Input<'_>>(bytes) {
            state_cookie::run(input);
        }
    });
}

#[test]
fn every_committed_verify_signature_input_passes_the_targets_assertions() {
    assert_corpus_passes("verify_signature", |bytes| {
        if let Some(input) = decode::<verify_signature::Input<'_>>(bytes) {
            verify_signature::run(input);
        }
    });
}

#[test]
fn every_corpus_directory_is_replayed_and_every_target_has_a_corpus() {
    let on_disk: BTreeSet<String> = fs::read_dir(fuzz_dir().join("corpus"))
        .expect("fuzz/corpus is readable")
        .map(|entry| entry.expect("a directory entry"))
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let replayed: BTreeSet<String> = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(
        on_disk, replayed,
        "fuzz/corpus and the replayed targets differ"
    );
    let fuzz_manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for target in TARGETS {
        assert!(
            fuzz_manifest.contains(&format!("path = \"fuzz_targets/{target}.rs\"")),
            "{target} is replayed but is not a target in fuzz/Cargo.toml"
        );
    }
}

#[test]
fn an_input_that_fails_the_assertions_is_reported_by_name_and_the_others_are_not() {
    let dir = std::env::temp_dir().join(format!("hsbridge-fuzz-replay-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    for (name, content) in [("a", "fine"), ("b", "finding"), ("c", "fine")] {
        fs::write(dir.join(name), content).unwrap();
    }
    let (ran, failed) = replay_dir(&dir, |bytes| assert_ne!(bytes, b"finding"));
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(ran, 3);
    assert_eq!(failed, vec![dir.join("b").display().to_string()]);
}

/// The version of `name` recorded in a Cargo.lock.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{name}\"") {
            let version = lines.next()?;
            return Some(
                version
                    .strip_prefix("version = ")?
                    .trim_matches('"')
                    .to_owned(),
            );
        }
    }
    None
}

#[test]
fn inputs_are_decoded_with_the_arbitrary_version_the_fuzz_targets_use() {
    // Another `arbitrary` release may turn the same bytes into another input.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let main = fs::read_to_string(root.join("Cargo.lock")).expect("Cargo.lock");
    let fuzz = fs::read_to_string(fuzz_dir().join("Cargo.lock")).expect("fuzz/Cargo.lock");
    let version = locked_version(&main, "arbitrary").expect("arbitrary in Cargo.lock");
    assert_eq!(
        Some(&version),
        locked_version(&fuzz, "arbitrary").as_ref(),
        "Cargo.lock and fuzz/Cargo.lock lock different versions of arbitrary"
    );
}
