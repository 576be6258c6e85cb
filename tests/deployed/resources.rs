//! What the stand creates in moto is what the template declares: the tables' keys and TTL, the
//! queue's redrive policy to its dead-letter queue, the keys' policies and rotation, the
//! secret under the data key.

use crate::stand::{self, deploy};
use aws_sdk_dynamodb::types::{KeyType, TimeToLiveStatus};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

#[tokio::test]
async fn the_stack_in_moto_has_the_declared_keys_ttl_redrive_and_key_policies() {
    let sdk = stand::sdk().await;
    let deployment = deploy(&sdk, &stand::samconfig("default").unwrap())
        .await
        .unwrap();
    let physical = |id: &str| deployment.stack.physical[id].clone();
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    for (table, key, ttl) in [
        ("DedupeTable", "pk", Some("ttl")),
        ("RateTable", "pk", Some("ttl")),
        ("AccountsTable", "hub_id", None),
    ] {
        let name = physical(table).reference;
        let described = ddb
            .describe_table()
            .table_name(&name)
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let schema = described.key_schema();
        assert_eq!(schema.len(), 1, "{table}: {schema:?}");
        assert_eq!(schema[0].attribute_name(), key, "{table}");
        assert_eq!(schema[0].key_type(), &KeyType::Hash, "{table}");
        let live = ddb
            .describe_time_to_live()
            .table_name(&name)
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .unwrap();
        match ttl {
            Some(attribute) => {
                assert_eq!(live.attribute_name(), Some(attribute), "{table}");
                assert_eq!(
                    live.time_to_live_status(),
                    Some(&TimeToLiveStatus::Enabled),
                    "{table}"
                );
            }
            None => assert_ne!(
                live.time_to_live_status(),
                Some(&TimeToLiveStatus::Enabled),
                "{table} must keep its items"
            ),
        }
    }

    let attributes = aws_sdk_sqs::Client::new(&sdk)
        .get_queue_attributes()
        .queue_url(physical("EventsQueue").reference)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let redrive: Value =
        serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(
        redrive["deadLetterTargetArn"],
        physical("EventsDeadLetterQueue").attributes["Arn"].as_str()
    );
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        deployment.stack.translated.parameters["MaxReceiveCount"]
    );
    assert_eq!(attributes[&QueueAttributeName::VisibilityTimeout], "380");
    assert_eq!(
        attributes[&QueueAttributeName::KmsMasterKeyId],
        physical("DataKey").reference
    );

    let kms = aws_sdk_kms::Client::new(&sdk);
    let token_key = physical("TokenKey").reference;
    let policy: Value = serde_json::from_str(
        kms.get_key_policy()
            .key_id(&token_key)
            .policy_name("default")
            .send()
            .await
            .unwrap()
            .policy()
            .unwrap(),
    )
    .unwrap();
    let sids: Vec<&str> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["Sid"].as_str())
        .collect();
    assert_eq!(
        sids,
        [
            "AccountAdministersThroughIam",
            "NoCryptographyWithoutTheAccountContext"
        ]
    );
    assert_eq!(
        policy["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::123456789012:root"
    );
    for key in ["DataKey", "TokenKey"] {
        let rotation = kms
            .get_key_rotation_status()
            .key_id(physical(key).reference)
            .send()
            .await
            .unwrap();
        assert!(rotation.key_rotation_enabled(), "{key}");
    }

    let secret = aws_sdk_secretsmanager::Client::new(&sdk)
        .describe_secret()
        .secret_id(physical("HubSpotAppSecret").reference)
        .send()
        .await
        .unwrap();
    assert_eq!(
        secret.kms_key_id(),
        Some(physical("DataKey").reference.as_str())
    );
    assert!(
        secret
            .name()
            .unwrap()
            .ends_with(&deployment.stack.translated.parameters["HubSpotSecretName"])
    );
}
