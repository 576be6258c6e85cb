//! Creating a translated template's data-plane resources in moto from their declared
//! properties: each `AWS::DynamoDB::Table` (keys, billing, encryption, TTL, point-in-time
//! recovery), `AWS::SQS::Queue` (attributes, redrive policy), `AWS::KMS::Key` (its key policy,
//! rotation), `AWS::KMS::Alias` and `AWS::SecretsManager::Secret`. A property a creator does not
//! know fails the creation with its name: nothing declared is silently left out.

use super::intrinsics::{Physical, Scope};
use crate::template::{ACCOUNT_ID, REGION};
use anyhow::{Context, Result, bail};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, Projection, ProjectionType, ScalarAttributeType,
    SseSpecification, SseType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

/// The resource types created in moto.
pub const CREATED: &[&str] = &[
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
    "AWS::SecretsManager::Secret",
];

/// The resolved properties of one resource, handed out by name; `finish` fails on any not taken.
struct Properties {
    logical_id: String,
    kind: String,
    map: serde_json::Map<String, Value>,
}

impl Properties {
    fn new(logical_id: &str, kind: &str, scope: &Scope<'_>, resource: &Value) -> Result<Self> {
        let declared = resource
            .get("Properties")
            .cloned()
            .unwrap_or(Value::Object(serde_json::Map::new()));
        let resolved = scope
            .value(&declared)
            .map_err(|e| anyhow::anyhow!("{logical_id} ({kind}): {e}"))?;
        let map = match resolved {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        Ok(Self {
            logical_id: logical_id.to_owned(),
            kind: kind.to_owned(),
            map,
        })
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name)
    }

    fn string(&mut self, name: &str) -> Result<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => bail!("{}.{name} is not a string: {other}", self.logical_id),
        }
    }

    fn flag(&mut self, name: &str) -> Result<Option<bool>> {
        Ok(match self.string(name)?.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => bail!("{}.{name} is not true or false: {other}", self.logical_id),
        })
    }

    fn finish(self) -> Result<()> {
        if let Some(name) = self.map.keys().next() {
            bail!(
                "{} ({}): the stand does not create the property {name}; teach tests/src/stack/create.rs what it means",
                self.logical_id,
                self.kind
            );
        }
        Ok(())
    }
}

/// Creates `logical_id` in moto; returns what `Ref` and `Fn::GetAtt` give for it.
pub async fn create(
    sdk: &SdkConfig,
    scope: &Scope<'_>,
    logical_id: &str,
    resource: &Value,
) -> Result<Physical> {
    let kind = resource
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut props = Properties::new(logical_id, kind, scope, resource)?;
    let stack = &scope.translated.stack_name;
    let physical = match kind {
        "AWS::DynamoDB::Table" => table(sdk, &mut props, &format!("{stack}-{logical_id}")).await?,
        "AWS::SQS::Queue" => queue(sdk, &mut props, &format!("{stack}-{logical_id}")).await?,
        "AWS::KMS::Key" => key(sdk, logical_id, &mut props).await?,
        "AWS::KMS::Alias" => alias(sdk, &mut props).await?,
        "AWS::SecretsManager::Secret" => secret(sdk, &mut props, stack).await?,
        other => bail!("{logical_id}: the stand does not create a {other}"),
    };
    props.finish()?;
    Ok(physical)
}

fn physical(kind: &str, reference: String, attributes: &[(&str, String)]) -> Physical {
    Physical {
        kind: kind.to_owned(),
        reference,
        attributes: attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    }
}

fn list(props: &mut Properties, name: &str) -> Vec<Value> {
    match props.take(name) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name).and_then(Value::as_str).unwrap_or_default()
}

async fn table(sdk: &SdkConfig, props: &mut Properties, default_name: &str) -> Result<Physical> {
    let name = props
        .string("TableName")?
        .unwrap_or_else(|| default_name.to_owned());
    let mut create = aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(&name);
    for a in list(props, "AttributeDefinitions") {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(field(&a, "AttributeName"))
                .attribute_type(ScalarAttributeType::from(field(&a, "AttributeType")))
                .build()?,
        );
    }
    for k in list(props, "KeySchema") {
        create = create.key_schema(
            KeySchemaElement::builder()
                .attribute_name(field(&k, "AttributeName"))
                .key_type(KeyType::from(field(&k, "KeyType")))
                .build()?,
        );
    }
    for index in list(props, "GlobalSecondaryIndexes") {
        let mut gsi = GlobalSecondaryIndex::builder().index_name(field(&index, "IndexName"));
        for k in index
            .get("KeySchema")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            gsi = gsi.key_schema(
                KeySchemaElement::builder()
                    .attribute_name(field(k, "AttributeName"))
                    .key_type(KeyType::from(field(k, "KeyType")))
                    .build()?,
            );
        }
        let projection = index.get("Projection").cloned().unwrap_or(Value::Null);
        let mut p = Projection::builder();
        if let Some(t) = projection.get("ProjectionType").and_then(Value::as_str) {
            p = p.projection_type(ProjectionType::from(t));
        }
        for a in projection
            .get("NonKeyAttributes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            p = p.non_key_attributes(a);
        }
        create = create.global_secondary_indexes(gsi.projection(p.build()).build()?);
    }
    if let Some(mode) = props.string("BillingMode")? {
        create = create.billing_mode(BillingMode::from(mode.as_str()));
    }
    if let Some(protected) = props.flag("DeletionProtectionEnabled")? {
        create = create.deletion_protection_enabled(protected);
    }
    if let Some(sse) = props.take("SSESpecification") {
        let mut spec = SseSpecification::builder().enabled(
            sse.get("SSEEnabled")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        );
        if let Some(t) = sse.get("SSEType").and_then(Value::as_str) {
            spec = spec.sse_type(SseType::from(t));
        }
        if let Some(k) = sse.get("KMSMasterKeyId").and_then(Value::as_str) {
            spec = spec.kms_master_key_id(k);
        }
        create = create.sse_specification(spec.build());
    }
    let ttl = props.take("TimeToLiveSpecification");
    let pitr = props.take("PointInTimeRecoverySpecification");
    let out = create
        .send()
        .await
        .with_context(|| format!("creating the table {name}"))?;
    let arn = out
        .table_description
        .and_then(|d| d.table_arn)
        .context("moto returned no table ARN")?;
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    if let Some(ttl) = ttl {
        ddb.update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(field(&ttl, "AttributeName"))
                    .enabled(ttl.get("Enabled").and_then(Value::as_bool).unwrap_or(false))
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("setting the TTL of {name}"))?;
    }
    if let Some(pitr) = pitr {
        let enabled = pitr
            .get("PointInTimeRecoveryEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        ddb.update_continuous_backups()
            .table_name(&name)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(enabled)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("setting point-in-time recovery of {name}"))?;
    }
    Ok(physical("AWS::DynamoDB::Table", name, &[("Arn", arn)]))
}

async fn queue(sdk: &SdkConfig, props: &mut Properties, default_name: &str) -> Result<Physical> {
    let name = props
        .string("QueueName")?
        .unwrap_or_else(|| default_name.to_owned());
    let mut create = aws_sdk_sqs::Client::new(sdk)
        .create_queue()
        .queue_name(&name);
    for attribute in [
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "DelaySeconds",
        "MaximumMessageSize",
        "ReceiveMessageWaitTimeSeconds",
        "FifoQueue",
        "ContentBasedDeduplication",
        "SqsManagedSseEnabled",
    ] {
        if let Some(v) = props.string(attribute)? {
            create = create.attributes(QueueAttributeName::from(attribute), v);
        }
    }
    for attribute in ["RedrivePolicy", "RedriveAllowPolicy"] {
        if let Some(policy) = props.take(attribute) {
            create = create.attributes(QueueAttributeName::from(attribute), policy.to_string());
        }
    }
    let url = create
        .send()
        .await
        .with_context(|| format!("creating the queue {name}"))?
        .queue_url
        .context("moto returned no queue URL")?;
    let attributes = aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("reading the ARN of {name}"))?;
    let arn = attributes
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("moto returned no queue ARN")?;
    Ok(physical(
        "AWS::SQS::Queue",
        url.clone(),
        &[("Arn", arn), ("QueueName", name), ("QueueUrl", url)],
    ))
}

async fn key(sdk: &SdkConfig, logical_id: &str, props: &mut Properties) -> Result<Physical> {
    let kms = aws_sdk_kms::Client::new(sdk);
    // A key has no name: the tag tells the IAM evaluation which of the template's keys it is,
    // as CloudFormation's own `aws:cloudformation:logical-id` tag would.
    let mut create = kms.create_key().tags(
        aws_sdk_kms::types::Tag::builder()
            .tag_key("hsbridge:logical-id")
            .tag_value(logical_id)
            .build()
            .context("building the key's logical-id tag")?,
    );
    if let Some(d) = props.string("Description")? {
        create = create.description(d);
    }
    if let Some(policy) = props.take("KeyPolicy") {
        create = create.policy(policy.to_string());
    }
    if let Some(usage) = props.string("KeyUsage")? {
        create = create.key_usage(usage.as_str().into());
    }
    if let Some(spec) = props.string("KeySpec")? {
        create = create.key_spec(spec.as_str().into());
    }
    let rotation = props.flag("EnableKeyRotation")?;
    let metadata = create
        .send()
        .await
        .context("creating a KMS key")?
        .key_metadata
        .context("moto returned no key metadata")?;
    if rotation == Some(true) {
        kms.enable_key_rotation()
            .key_id(&metadata.key_id)
            .send()
            .await
            .context("enabling key rotation")?;
    }
    let arn = metadata
        .arn
        .clone()
        .unwrap_or_else(|| format!("arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{}", metadata.key_id));
    Ok(physical(
        "AWS::KMS::Key",
        metadata.key_id.clone(),
        &[("Arn", arn), ("KeyId", metadata.key_id)],
    ))
}

async fn alias(sdk: &SdkConfig, props: &mut Properties) -> Result<Physical> {
    let name = props
        .string("AliasName")?
        .context("an alias needs AliasName")?;
    let target = props
        .string("TargetKeyId")?
        .context("an alias needs TargetKeyId")?;
    aws_sdk_kms::Client::new(sdk)
        .create_alias()
        .alias_name(&name)
        .target_key_id(target)
        .send()
        .await
        .with_context(|| format!("creating the alias {name}"))?;
    Ok(physical("AWS::KMS::Alias", name, &[]))
}

async fn secret(sdk: &SdkConfig, props: &mut Properties, stack: &str) -> Result<Physical> {
    // One moto serves every test of a run: a declared name is kept below the stack's own,
    // unique one so that two stacks (or parameter sets) never share a secret.
    let name = match props.string("Name")? {
        Some(n) => format!("{stack}/{n}"),
        None => format!("{stack}-secret"),
    };
    let mut create = aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(&name);
    if let Some(d) = props.string("Description")? {
        create = create.description(d);
    }
    if let Some(k) = props.string("KmsKeyId")? {
        create = create.kms_key_id(k);
    }
    if let Some(s) = props.string("SecretString")? {
        create = create.secret_string(s);
    }
    let arn = create
        .send()
        .await
        .with_context(|| format!("creating the secret {name}"))?
        .arn
        .context("moto returned no secret ARN")?;
    Ok(physical(
        "AWS::SecretsManager::Secret",
        arn.clone(),
        &[("Id", arn)],
    ))
}

/// What `Ref` and `Fn::GetAtt` give for a resource the stand does not create in moto (moto's
/// API Gateway is control plane only, and no function calls IAM, Logs or Lambda at run time):
/// the values CloudFormation would give, with made-up physical ids. `None` for types none of
/// the stand's values refer to.
pub fn synthesized(
    stack: &str,
    logical_id: &str,
    kind: &str,
    scope: &Scope<'_>,
    resource: &Value,
) -> Result<Option<Physical>> {
    let generated = format!("{stack}-{logical_id}");
    let id = api_id(stack, logical_id);
    Ok(Some(match kind {
        "AWS::IAM::Role" => physical(
            kind,
            generated.clone(),
            &[
                ("Arn", format!("arn:aws:iam::{ACCOUNT_ID}:role/{generated}")),
                ("RoleId", format!("AROA{}", id.to_ascii_uppercase())),
            ],
        ),
        "AWS::IAM::User" => {
            let path = resource
                .pointer("/Properties/Path")
                .and_then(Value::as_str)
                .unwrap_or("/");
            physical(
                kind,
                generated.clone(),
                &[(
                    "Arn",
                    format!("arn:aws:iam::{ACCOUNT_ID}:user{path}{generated}"),
                )],
            )
        }
        "AWS::Logs::LogGroup" => {
            let name = match resource.pointer("/Properties/LogGroupName") {
                Some(v) => scope
                    .string(v)
                    .map_err(|e| anyhow::anyhow!("{logical_id}.LogGroupName: {e}"))?
                    .unwrap_or_else(|| generated.clone()),
                None => generated.clone(),
            };
            physical(
                kind,
                name.clone(),
                &[(
                    "Arn",
                    format!("arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"),
                )],
            )
        }
        "AWS::ApiGatewayV2::Api" => physical(
            kind,
            id.clone(),
            &[
                ("ApiId", id.clone()),
                (
                    "ApiEndpoint",
                    format!("https://{id}.execute-api.{REGION}.amazonaws.com"),
                ),
            ],
        ),
        "AWS::ApiGateway::RestApi" => physical(
            kind,
            id.clone(),
            &[
                ("RestApiId", id),
                ("RootResourceId", "rootid0001".to_owned()),
            ],
        ),
        "AWS::Lambda::Function" => physical(
            kind,
            generated.clone(),
            &[(
                "Arn",
                format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{generated}"),
            )],
        ),
        _ => return Ok(None),
    }))
}

/// A 10-character API id, stable for a stack and logical id.
fn api_id(stack: &str, logical_id: &str) -> String {
    // FNV-1a: stable across runs and platforms, unlike the standard library's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stack.bytes().chain(logical_id.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..10)
        .map(|i| {
            let n = usize::try_from((hash >> (i * 6)) & 0x3f).unwrap_or(0) % ALPHABET.len();
            char::from(ALPHABET[n])
        })
        .collect()
}
