use super::*;

fn tmp(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "hsbridge-project-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn example() -> Values {
    Values {
        webhook_url: "https://hooks.example.com/webhooks/hubspot".to_owned(),
        redirect_url: "https://hooks.example.com/oauth/callback".to_owned(),
        relay_url: "https://hooks.example.com/hubspot/relay".to_owned(),
        scopes: vec!["oauth".to_owned(), "crm.objects.contacts.read".to_owned()],
        optional_scopes: Vec::new(),
    }
}

fn stack() -> Values {
    Values {
        webhook_url: "https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/hubspot"
            .to_owned(),
        redirect_url: "https://abc123.execute-api.eu-west-1.amazonaws.com/oauth/callback"
            .to_owned(),
        relay_url: "https://abc123.execute-api.eu-west-1.amazonaws.com/hubspot/relay".to_owned(),
        scopes: vec!["oauth".to_owned(), "crm.objects.contacts.read".to_owned()],
        optional_scopes: vec!["crm.objects.deals.read".to_owned()],
    }
}

fn json(dir: &Path, rel: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(rel)).unwrap()).unwrap()
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_checked_in_project_is_what_the_generator_writes_for_the_example_values() {
    let dir = tmp("example");
    plan(&dir, &example(), Target::Deployed)
        .unwrap()
        .write()
        .unwrap();
    for (rel, default) in DEFAULTS {
        assert_eq!(
            std::fs::read_to_string(dir.join(rel)).unwrap(),
            *default,
            "{rel} differs from the checked-in file"
        );
    }
    assert!(
        plan(&dir, &example(), Target::Deployed)
            .unwrap()
            .writes
            .is_empty()
    );
}

#[test]
fn a_project_generated_from_the_stack_carries_its_urls_and_scopes_everywhere() {
    let dir = tmp("stack");
    plan(&dir, &stack(), Target::Deployed)
        .unwrap()
        .write()
        .unwrap();
    let app = json(&dir, APP);
    assert_eq!(
        app["config"]["auth"]["redirectUrls"],
        serde_json::json!(["https://abc123.execute-api.eu-west-1.amazonaws.com/oauth/callback"])
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
        app["config"]["permittedUrls"]["fetch"],
        serde_json::json!(["https://abc123.execute-api.eu-west-1.amazonaws.com/hubspot/relay/"])
    );
    assert_eq!(
        json(&dir, WEBHOOKS)["config"]["settings"]["targetUrl"],
        "https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/hubspot"
    );
    let card = std::fs::read_to_string(dir.join(RELAY_URL_JS)).unwrap();
    assert!(
        card.contains(
            "RELAY_URL = 'https://abc123.execute-api.eu-west-1.amazonaws.com/hubspot/relay/'"
        ),
        "{card}"
    );
    // No secret or key anywhere in the project.
    for (path, bytes) in snapshot(&dir) {
        let text = String::from_utf8_lossy(&bytes);
        for needle in ["client_secret", "AKIA", "SECRET_ACCESS_KEY='", "aws_secret"] {
            assert!(!text.contains(needle), "{} holds {needle}", path.display());
        }
    }
}

#[test]
fn a_users_edits_are_kept_and_only_the_owned_values_change() {
    let dir = tmp("edits");
    plan(&dir, &example(), Target::Deployed)
        .unwrap()
        .write()
        .unwrap();
    let edited_app = std::fs::read_to_string(dir.join(APP))
        .unwrap()
        .replace("\"name\": \"hsbridge connector\"", "\"name\": \"Acme sync\"")
        .replace(
            "\"fetch\": [\n        \"https://hooks.example.com/hubspot/relay/\"\n      ]",
            "\"fetch\": [\n        \"https://hooks.example.com/hubspot/relay/\",\n        \"https://api.acme.example/\"\n      ]",
        );
    assert!(edited_app.contains("api.acme.example"), "{edited_app}");
    std::fs::write(dir.join(APP), &edited_app).unwrap();
    let edited_hooks = std::fs::read_to_string(dir.join(WEBHOOKS))
        .unwrap()
        .replace(
            "\"maxConcurrentRequests\": 10",
            "\"maxConcurrentRequests\": 4",
        );
    std::fs::write(dir.join(WEBHOOKS), &edited_hooks).unwrap();

    plan(&dir, &stack(), Target::Deployed)
        .unwrap()
        .write()
        .unwrap();
    let app = json(&dir, APP);
    assert_eq!(app["config"]["name"], "Acme sync");
    assert_eq!(
        app["config"]["permittedUrls"]["fetch"],
        serde_json::json!([
            "https://abc123.execute-api.eu-west-1.amazonaws.com/hubspot/relay/",
            "https://api.acme.example/"
        ]),
        "the old relay URL is replaced, the user's own entry kept"
    );
    let hooks_text = std::fs::read_to_string(dir.join(WEBHOOKS)).unwrap();
    assert!(hooks_text.contains("\"maxConcurrentRequests\": 4"));
    // Key order as the user had it: uid, type, config.
    assert!(hooks_text.find("\"uid\"").unwrap() < hooks_text.find("\"config\"").unwrap());
}

fn refused(dir: &Path, values: &Values) -> String {
    let before = snapshot(dir);
    let err = plan(dir, values, Target::Deployed)
        .map(|p| p.write())
        .unwrap_err()
        .to_string();
    assert_eq!(snapshot(dir), before, "nothing may be written: {err}");
    err
}

#[test]
fn urls_hubspot_would_refuse_are_refused_by_name_and_nothing_is_written() {
    let dir = tmp("urls");
    plan(&dir, &example(), Target::Deployed)
        .unwrap()
        .write()
        .unwrap();
    let mut v = stack();
    v.webhook_url = "http://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/hubspot".into();
    assert!(refused(&dir, &v).contains("the webhook target URL"));
    let mut v = stack();
    v.relay_url = "https://localhost:3000/hubspot/relay".into();
    assert!(refused(&dir, &v).contains("the relay URL \"https://localhost:3000/hubspot/relay\""));
    let mut v = stack();
    v.redirect_url = "https://127.0.0.1/oauth/callback".into();
    assert!(refused(&dir, &v).contains("the OAuth redirect URL"));
}

#[test]
fn a_subscription_whose_read_scope_the_app_does_not_request_is_refused() {
    let dir = tmp("scopes");
    plan(&dir, &example(), Target::Deployed)
        .unwrap()
        .write()
        .unwrap();
    let text = std::fs::read_to_string(dir.join(WEBHOOKS))
        .unwrap()
        .replace(
            "\"objectType\": \"contact\",\n          \"active\": true\n        },",
            "\"objectType\": \"deal\",\n          \"active\": true\n        },",
        );
    assert!(text.contains("\"deal\""));
    std::fs::write(dir.join(WEBHOOKS), text).unwrap();
    let err = refused(&dir, &example());
    assert!(
        err.contains("crm.objects.deals.read") && err.contains("object.creation on deal"),
        "{err}"
    );
    // Requested as an optional scope, it is accepted.
    assert!(plan(&dir, &stack(), Target::Deployed).is_ok());
    // And the stack's scopes without the contacts read refuse the example subscriptions.
    let mut v = example();
    v.scopes = vec!["oauth".into()];
    std::fs::remove_file(dir.join(WEBHOOKS)).unwrap();
    assert!(refused(&dir, &v).contains("crm.objects.contacts.read"));
}

#[test]
fn a_malformed_or_hand_broken_hsmeta_file_is_named_and_nothing_is_written() {
    let dir = tmp("broken");
    plan(&dir, &example(), Target::Deployed)
        .unwrap()
        .write()
        .unwrap();
    std::fs::write(dir.join(WEBHOOKS), "{ \"uid\": \"x\", ").unwrap();
    let err = refused(&dir, &stack());
    assert!(
        err.contains("webhooks-hsmeta.json is not valid JSON"),
        "{err}"
    );

    std::fs::write(
        dir.join(WEBHOOKS),
        r#"{"uid":"x","type":"webhooks","config":{"settings":{"targetUrl":"x","maxConcurrentRequests":0}}}"#,
    )
    .unwrap();
    assert!(refused(&dir, &stack()).contains("maxConcurrentRequests"));

    std::fs::write(
        dir.join(WEBHOOKS),
        r#"{"uid":"x","type":"webhooks","config":{"settings":{},"subscriptions":{"crmObjects":[{"subscriptionType":"contact.creation"}]}}}"#,
    )
    .unwrap();
    assert!(refused(&dir, &stack()).contains("legacyCrmObjects"));

    std::fs::remove_file(dir.join(WEBHOOKS)).unwrap();
    let app = std::fs::read_to_string(dir.join(APP))
        .unwrap()
        .replace("\"type\": \"oauth\"", "\"type\": \"static\"");
    std::fs::write(dir.join(APP), app).unwrap();
    assert!(refused(&dir, &stack()).contains("must be \"oauth\""));

    std::fs::write(
        dir.join(APP),
        r#"{"uid":"bad uid!","type":"app","config":{}}"#,
    )
    .unwrap();
    assert!(refused(&dir, &stack()).contains("the uid \"bad uid!\""));
}

#[test]
fn a_local_rendering_points_at_the_local_stack_and_is_marked() {
    let dir = tmp("local");
    let v = Values {
        webhook_url: "http://127.0.0.1:3000/webhooks/hubspot".into(),
        redirect_url: "http://127.0.0.1:3000/oauth/callback".into(),
        relay_url: "http://127.0.0.1:3000/hubspot/relay/".into(),
        ..example()
    };
    assert!(plan(&dir, &v, Target::Deployed).is_err());
    plan(&dir, &v, Target::Local).unwrap().write().unwrap();
    assert!(dir.join(LOCAL_MARKER).exists());
    assert!(
        std::fs::read_to_string(dir.join(RELAY_URL_JS))
            .unwrap()
            .contains("LOCAL")
    );
    assert_eq!(
        json(&dir, WEBHOOKS)["config"]["settings"]["targetUrl"],
        "http://127.0.0.1:3000/webhooks/hubspot"
    );
}
