//! Every function of the template cold-starts with the environment the template gives it, for
//! the template's defaults, each of samconfig.toml's environments and the other branch of every
//! condition; the template sets no variable its binary does not read.

use crate::stand::{self, Artifacts, ParameterSet, deploy, unread};
use hsbridge_integration_tests::stack::Function;
use std::collections::BTreeMap;

async fn every_function_cold_starts_with(set: ParameterSet) {
    let sdk = stand::sdk().await;
    let artifacts = Artifacts::chosen().unwrap();
    println!("{}: running {}", set.label, artifacts.describe());
    let deployment = deploy(&sdk, &set).await.unwrap();
    assert!(
        !deployment.functions.is_empty(),
        "the translated template has no AWS::Lambda::Function"
    );
    let mut problems = Vec::new();
    for function in &deployment.functions {
        for name in unread(function).unwrap() {
            problems.push(format!(
                "{}: the template sets {name}, which the {} binary never reads",
                function.logical_id, function.binary
            ));
        }
        match deployment
            .start(&artifacts, function, &BTreeMap::new())
            .await
        {
            Ok(running) => {
                println!(
                    "{}: {} ({}) cold-started with {} variables of its own",
                    set.label,
                    function.logical_id,
                    function.binary,
                    function.environment.len()
                );
                drop(running);
            }
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    assert!(
        problems.is_empty(),
        "{} ({}):\n{}",
        set.label,
        artifacts.describe(),
        problems.join("\n")
    );
}

#[tokio::test]
async fn every_function_cold_starts_with_the_templates_defaults() {
    every_function_cold_starts_with(stand::template_defaults()).await;
}

#[tokio::test]
async fn every_function_cold_starts_with_samconfigs_default_environment() {
    every_function_cold_starts_with(stand::samconfig("default").unwrap()).await;
}

#[tokio::test]
async fn every_function_cold_starts_with_samconfigs_prod_environment() {
    every_function_cold_starts_with(stand::samconfig("prod").unwrap()).await;
}

#[tokio::test]
async fn every_function_cold_starts_with_the_other_branch_of_every_condition() {
    every_function_cold_starts_with(stand::every_other_branch()).await;
}

#[tokio::test]
async fn a_variable_the_code_requires_and_the_environment_lacks_fails_the_cold_start_with_its_name()
{
    let sdk = stand::sdk().await;
    let artifacts = Artifacts::chosen().unwrap();
    let deployment = deploy(&sdk, &stand::template_defaults()).await.unwrap();
    let intake = deployment.function("WebhookIntakeFunction").unwrap();
    let without = BTreeMap::from([("HSBRIDGE_EVENTS_QUEUE_URL".to_owned(), None)]);
    let err = deployment
        .start(&artifacts, intake, &without)
        .await
        .expect_err("the intake started without its queue");
    let err = format!("{err:#}");
    assert!(
        err.contains("WebhookIntakeFunction") && err.contains("HSBRIDGE_EVENTS_QUEUE_URL"),
        "{err}"
    );
}

#[test]
fn a_variable_the_template_sets_and_no_code_reads_is_named() {
    let function = Function {
        logical_id: "WebhookIntakeFunction".to_owned(),
        binary: "webhook-intake".to_owned(),
        name: "hsbridge-WebhookIntakeFunction".to_owned(),
        role: "WebhookIntakeRole".to_owned(),
        memory_mb: 128,
        log_format: None,
        log_level: None,
        environment: BTreeMap::from([
            ("HSBRIDGE_DEDUPE_TABLE".to_owned(), "t".to_owned()),
            ("HSBRIDGE_DEDUPE_TABEL".to_owned(), "t".to_owned()),
        ]),
    };
    assert_eq!(unread(&function).unwrap(), ["HSBRIDGE_DEDUPE_TABEL"]);
}

#[tokio::test]
async fn an_intrinsic_the_stand_does_not_evaluate_is_named_with_its_function_and_variable() {
    let sdk = stand::sdk().await;
    let mut deployment = deploy(&sdk, &stand::template_defaults()).await.unwrap();
    let variables = deployment
        .stack
        .translated
        .template
        .pointer_mut("/Resources/WebhookIntakeFunction/Properties/Environment/Variables")
        .and_then(serde_json::Value::as_object_mut)
        .unwrap();
    variables.insert(
        "HSBRIDGE_SOMETHING".to_owned(),
        serde_json::json!({"Fn::Base64": "x"}),
    );
    let err = format!("{:#}", deployment.stack.functions().unwrap_err());
    assert!(
        err.contains("WebhookIntakeFunction")
            && err.contains("HSBRIDGE_SOMETHING")
            && err.contains("Fn::Base64"),
        "{err}"
    );
}
