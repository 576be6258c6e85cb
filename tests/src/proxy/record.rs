//! What the proxy records of each AWS call passing through it, for the IAM evaluation
//! (`tests/iam/evaluate.mjs`, run by `scripts/test`).
//!
//! One request becomes one [`Call`] per (IAM action, resource) it needs: a `BatchGetItem` over two
//! tables is two calls, a `TransactWriteItems` is one `PutItem`, `UpdateItem`, `DeleteItem` or
//! `ConditionCheckItem` per table it touches (IAM authorises a transaction per action:
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html>),
//! and SQS's batch operations are authorised by their single forms
//! (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-permissions-reference.html>).
//!
//! - the caller is the access key id of the SigV4 `Authorization` header's credential scope
//!   (`Credential=AKID/date/region/service/aws4_request`): the suites give each function's SDK
//!   configuration a key id naming its role (`hsbridge_integration_tests::aws::sdk_as`);
//! - the operation comes from `X-Amz-Target` (the JSON protocols: DynamoDB, KMS, Secrets
//!   Manager, and SQS, whose SDK speaks AWS JSON 1.0 with `AmazonSQS.*` targets) or from a
//!   query-protocol `Action=` parameter (CloudFormation, STS, IAM);
//! - the resource's ARN comes from the request (`TableName`, `QueueUrl`, `KeyId`, `SecretId`)
//!   or, where the request may not name it fully, from the answer (KMS `Decrypt` of a symmetric
//!   ciphertext names no key; a secret named without its random ARN suffix);
//! - the KMS encryption context is the request's `EncryptionContext`;
//! - the tags a create call gives its resource are kept, so the evaluation can tell which
//!   template resource a key plays (keys have no names).
//!
//! Nothing of a request's or an answer's payload is recorded beyond these names: no item, no
//! message body, no secret value, no plaintext or ciphertext.

use serde_json::{Value, json};
use std::collections::BTreeMap;

/// moto's default account, which is also the account of the template's fixed pseudo parameters
/// (`scripts/sam_translate.py`).
pub const ACCOUNT: &str = "123456789012";

/// One AWS call as IAM sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The SigV4 signing name (`dynamodb`, `sqs`, `kms`, `secretsmanager`, ...).
    pub service: String,
    /// The API operation as sent (`TransactWriteItems`).
    pub operation: String,
    /// The IAM action it needs (`dynamodb:PutItem`).
    pub action: String,
    /// The resource's ARN; `None` for an operation on no resource (`ListQueues`).
    pub resource: Option<String>,
    /// The KMS encryption context of the request.
    pub encryption_context: BTreeMap<String, String>,
    /// Tags a create call gives the resource.
    pub tags: BTreeMap<String, String>,
    /// The partition keys a `BatchWriteItem` writes to the resource's table, which IAM sees as
    /// `dynamodb:LeadingKeys` (every table of the template has the partition key `pk`).
    pub leading_keys: Vec<String>,
    /// The access key id that signed the request.
    pub caller: String,
    pub region: String,
    /// The status of the answer (0 when none came).
    pub status: u16,
}

impl Call {
    /// The call as one line of the call log (JSON Lines, the format `docs/testing-stand.md`
    /// describes).
    pub fn to_json(&self) -> Value {
        let mut line = json!({
            "service": self.service,
            "operation": self.operation,
            "action": self.action,
            "resource": self.resource,
            "caller": self.caller,
            "region": self.region,
            "status": self.status,
        });
        if !self.encryption_context.is_empty() {
            line["encryptionContext"] = json!(self.encryption_context);
        }
        if !self.tags.is_empty() {
            line["tags"] = json!(self.tags);
        }
        if !self.leading_keys.is_empty() {
            line["leadingKeys"] = json!(self.leading_keys);
        }
        line
    }
}

/// The SigV4 credential scope of a request: who signed it, for which region and service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
}

impl Scope {
    /// From an `Authorization` header value.
    pub fn parse(authorization: &str) -> Option<Self> {
        let credential = authorization.split("Credential=").nth(1)?;
        let credential = credential.split([',', ' ']).next()?;
        let mut parts = credential.split('/');
        let access_key_id = parts.next()?.to_owned();
        let _date = parts.next()?;
        let region = parts.next()?.to_owned();
        let service = parts.next()?.to_owned();
        Some(Self {
            access_key_id,
            region,
            service,
        })
    }
}

/// The operation of a request: the `X-Amz-Target` suffix, or the query protocol's `Action`.
pub fn operation(target: Option<&str>, query: Option<&str>, body: &[u8]) -> Option<String> {
    if let Some(target) = target {
        return target.rsplit('.').next().map(str::to_owned);
    }
    // Operation names are plain letters: no percent-decoding needed.
    let from_form = |form: &str| {
        form.split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .map(str::to_owned)
    };
    query
        .and_then(from_form)
        .or_else(|| std::str::from_utf8(body).ok().and_then(from_form))
}

/// The calls one request stands for.
pub fn calls(
    scope: &Scope,
    operation: &str,
    request: &[u8],
    answer: &[u8],
    status: u16,
) -> Vec<Call> {
    let known = ["dynamodb", "sqs", "kms", "secretsmanager"].contains(&scope.service.as_str());
    let request: Value = if known {
        serde_json::from_slice(request).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    // Only KMS and Secrets Manager answers can name the resource better than the request (a
    // scan's or a batch read's answer is never parsed).
    let answer: Value = if ["kms", "secretsmanager"].contains(&scope.service.as_str()) {
        serde_json::from_slice(answer).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let arn = Arns {
        region: &scope.region,
    };
    let one = |action: &str, resource: Option<String>| (action.to_owned(), resource);
    let mut wanted: Vec<(String, Option<String>)> = match scope.service.as_str() {
        "dynamodb" => dynamodb(operation, &request, &arn),
        "sqs" => {
            let action = match operation {
                "SendMessageBatch" => "SendMessage",
                "DeleteMessageBatch" => "DeleteMessage",
                "ChangeMessageVisibilityBatch" => "ChangeMessageVisibility",
                other => other,
            };
            let queue = str_field(&request, "QueueUrl")
                .and_then(|url| arn.queue_from_url(url))
                .or_else(|| str_field(&request, "QueueName").map(|name| arn.queue(ACCOUNT, name)));
            vec![one(action, queue)]
        }
        "kms" => {
            let key = str_field(&request, "KeyId")
                .map(|id| arn.key(id))
                .or_else(|| str_field(&answer, "KeyId").map(|id| arn.key(id)))
                .or_else(|| {
                    answer
                        .get("KeyMetadata")
                        .and_then(|m| str_field(m, "Arn"))
                        .map(str::to_owned)
                });
            vec![one(operation, key)]
        }
        "secretsmanager" => {
            let secret = str_field(&answer, "ARN")
                .map(str::to_owned)
                .or_else(|| str_field(&request, "SecretId").map(|id| arn.secret(id)));
            vec![one(operation, secret)]
        }
        _ => vec![one(operation, None)],
    };
    let mut seen = std::collections::BTreeSet::new();
    wanted.retain(|w| seen.insert(w.clone()));
    let context = string_map(request.get("EncryptionContext"));
    let tags = tags(&request);
    wanted
        .into_iter()
        .map(|(action, resource)| {
            let leading_keys = match (operation, resource.as_deref()) {
                ("BatchWriteItem", Some(arn)) => batch_write_keys(&request, arn),
                _ => Vec::new(),
            };
            Call {
                service: scope.service.clone(),
                operation: operation.to_owned(),
                action: format!("{}:{action}", scope.service),
                resource,
                encryption_context: context.clone(),
                tags: tags.clone(),
                leading_keys,
                caller: scope.access_key_id.clone(),
                region: scope.region.clone(),
                status,
            }
        })
        .collect()
}

/// The partition keys (`pk`) of the puts and deletes a `BatchWriteItem` sends to the table
/// whose ARN is `table_arn`.
fn batch_write_keys(request: &Value, table_arn: &str) -> Vec<String> {
    let Some(items) = request.get("RequestItems").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = items
        .iter()
        .filter(|(name, _)| table_arn.ends_with(&format!(":table/{name}")))
        .flat_map(|(_, writes)| writes.as_array().into_iter().flatten())
        .filter_map(|write| {
            write
                .pointer("/PutRequest/Item/pk/S")
                .or_else(|| write.pointer("/DeleteRequest/Key/pk/S"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn dynamodb(operation: &str, request: &Value, arn: &Arns<'_>) -> Vec<(String, Option<String>)> {
    let table = |name: &str| Some(arn.table(name));
    match operation {
        "BatchGetItem" | "BatchWriteItem" => request
            .get("RequestItems")
            .and_then(Value::as_object)
            .map(|items| {
                items
                    .keys()
                    .map(|name| (operation.to_owned(), table(name)))
                    .collect()
            })
            .unwrap_or_default(),
        "TransactWriteItems" | "TransactGetItems" => request
            .get("TransactItems")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .flat_map(|item| item.iter())
            .map(|(kind, spec)| {
                let action = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    "Get" => "GetItem",
                    other => other,
                };
                (
                    action.to_owned(),
                    str_field(spec, "TableName").and_then(table),
                )
            })
            .collect(),
        _ => {
            let resource = str_field(request, "TableName").map(|name| {
                let table = arn.table(name);
                match str_field(request, "IndexName") {
                    Some(index) => format!("{table}/index/{index}"),
                    None => table,
                }
            });
            vec![(operation.to_owned(), resource)]
        }
    }
}

/// ARNs in the request's region and moto's account.
struct Arns<'a> {
    region: &'a str,
}

impl Arns<'_> {
    fn table(&self, name: &str) -> String {
        if name.starts_with("arn:") {
            return name.to_owned();
        }
        format!("arn:aws:dynamodb:{}:{ACCOUNT}:table/{name}", self.region)
    }

    fn queue(&self, account: &str, name: &str) -> String {
        format!("arn:aws:sqs:{}:{account}:{name}", self.region)
    }

    /// `https://host/ACCOUNT/NAME` (moto's and AWS's queue URLs).
    fn queue_from_url(&self, url: &str) -> Option<String> {
        let mut segments = url.trim_end_matches('/').rsplit('/');
        let name = segments.next()?;
        let account = segments.next()?;
        Some(self.queue(account, name))
    }

    fn key(&self, id: &str) -> String {
        if id.starts_with("arn:") {
            id.to_owned()
        } else if id.starts_with("alias/") {
            format!("arn:aws:kms:{}:{ACCOUNT}:{id}", self.region)
        } else {
            format!("arn:aws:kms:{}:{ACCOUNT}:key/{id}", self.region)
        }
    }

    /// A secret named without its ARN (the answer, when there is one, names it fully).
    fn secret(&self, id: &str) -> String {
        if id.starts_with("arn:") {
            return id.to_owned();
        }
        format!(
            "arn:aws:secretsmanager:{}:{ACCOUNT}:secret:{id}",
            self.region
        )
    }
}

fn str_field<'v>(value: &'v Value, name: &str) -> Option<&'v str> {
    value.get(name).and_then(Value::as_str)
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The tags of a create call: KMS `Tags: [{TagKey, TagValue}]`, DynamoDB and Secrets Manager
/// `Tags: [{Key, Value}]`, SQS `tags: {k: v}`.
fn tags(request: &Value) -> BTreeMap<String, String> {
    let mut tags = string_map(request.get("tags"));
    for tag in request
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
    {
        let field = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| tag.get(*n).and_then(Value::as_str))
                .map(str::to_owned)
        };
        if let (Some(k), Some(v)) = (field(["TagKey", "Key"]), field(["TagValue", "Value"])) {
            tags.insert(k, v);
        }
    }
    tags
}

/// The JSON line of a call, as a string.
pub fn line(call: &Call) -> String {
    call.to_json().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(service: &str) -> Scope {
        Scope::parse(&format!(
            "AWS4-HMAC-SHA256 Credential=WebhookIntakeRole/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
        ))
        .unwrap()
    }

    #[test]
    fn the_caller_is_the_access_key_id_of_the_credential_scope() {
        let s = scope("dynamodb");
        assert_eq!(s.access_key_id, "WebhookIntakeRole");
        assert_eq!(s.region, "us-east-1");
        assert_eq!(s.service, "dynamodb");
    }

    #[test]
    fn a_transaction_is_one_call_per_action_and_table() {
        let body = json!({"TransactItems": [
            {"Put": {"TableName": "dedupe-1", "Item": {}}},
            {"Put": {"TableName": "dedupe-1", "Item": {}}},
            {"ConditionCheck": {"TableName": "accounts-1", "Key": {}}},
            {"Delete": {"TableName": "dedupe-1", "Key": {}}},
        ]});
        let calls = calls(
            &scope("dynamodb"),
            "TransactWriteItems",
            body.to_string().as_bytes(),
            b"{}",
            200,
        );
        let got: Vec<(&str, &str)> = calls
            .iter()
            .map(|c| (c.action.as_str(), c.resource.as_deref().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "dynamodb:PutItem",
                    "arn:aws:dynamodb:us-east-1:123456789012:table/dedupe-1"
                ),
                (
                    "dynamodb:ConditionCheckItem",
                    "arn:aws:dynamodb:us-east-1:123456789012:table/accounts-1"
                ),
                (
                    "dynamodb:DeleteItem",
                    "arn:aws:dynamodb:us-east-1:123456789012:table/dedupe-1"
                ),
            ]
        );
    }

    #[test]
    fn a_batch_send_is_authorised_as_a_send_to_the_queue_of_its_url() {
        let body =
            json!({"QueueUrl": "http://127.0.0.1:5000/123456789012/events-7", "Entries": []});
        let calls = calls(
            &scope("sqs"),
            "SendMessageBatch",
            body.to_string().as_bytes(),
            b"{}",
            200,
        );
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].action, "sqs:SendMessage");
        assert_eq!(
            calls[0].resource.as_deref(),
            Some("arn:aws:sqs:us-east-1:123456789012:events-7")
        );
    }

    #[test]
    fn a_decrypt_names_the_key_of_the_answer_and_keeps_the_encryption_context() {
        let request = json!({"CiphertextBlob": "AAAA", "EncryptionContext": {"hub_id": "62515"}});
        let answer =
            json!({"KeyId": "arn:aws:kms:us-east-1:123456789012:key/abc", "Plaintext": "AAAA"});
        let calls = calls(
            &scope("kms"),
            "Decrypt",
            request.to_string().as_bytes(),
            answer.to_string().as_bytes(),
            200,
        );
        assert_eq!(
            calls[0].resource.as_deref(),
            Some("arn:aws:kms:us-east-1:123456789012:key/abc")
        );
        assert_eq!(calls[0].encryption_context["hub_id"], "62515");
        let line = line(&calls[0]);
        assert!(!line.contains("AAAA"), "no payload in the log: {line}");
    }

    #[test]
    fn a_secret_named_by_its_name_is_recorded_by_the_full_arn_of_the_answer() {
        let request = json!({"SecretId": "hubspot-app-1", "VersionStage": "AWSCURRENT"});
        let answer = json!({"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hubspot-app-1-AbCdEf", "SecretString": "s3cr3t"});
        let calls = calls(
            &scope("secretsmanager"),
            "GetSecretValue",
            request.to_string().as_bytes(),
            answer.to_string().as_bytes(),
            200,
        );
        assert_eq!(
            calls[0].resource.as_deref(),
            Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:hubspot-app-1-AbCdEf")
        );
        assert!(!line(&calls[0]).contains("s3cr3t"));
    }

    #[test]
    fn the_query_protocol_names_its_operation_in_the_action_parameter() {
        assert_eq!(
            operation(None, None, b"Action=DescribeStacks&Version=2010-05-15").as_deref(),
            Some("DescribeStacks")
        );
        assert_eq!(
            operation(Some("DynamoDB_20120810.PutItem"), None, b"").as_deref(),
            Some("PutItem")
        );
    }

    #[test]
    fn a_batch_write_carries_the_partition_keys_of_each_table_it_writes() {
        let request = json!({"RequestItems": {
            "dedupe": [
                {"PutRequest": {"Item": {"pk": {"S": "delivery#a"}, "x": {"S": "1"}}}},
                {"DeleteRequest": {"Key": {"pk": {"S": "delivery#b"}}}}
            ],
            "other": [{"PutRequest": {"Item": {"pk": {"S": "c"}}}}]
        }});
        let calls = calls(
            &scope("dynamodb"),
            "BatchWriteItem",
            request.to_string().as_bytes(),
            b"{}",
            200,
        );
        let dedupe = calls
            .iter()
            .find(|c| {
                c.resource
                    .as_deref()
                    .is_some_and(|r| r.ends_with(":table/dedupe"))
            })
            .unwrap();
        assert_eq!(dedupe.leading_keys, ["delivery#a", "delivery#b"]);
        assert_eq!(
            dedupe.to_json()["leadingKeys"],
            json!(["delivery#a", "delivery#b"])
        );
        let other = calls
            .iter()
            .find(|c| {
                c.resource
                    .as_deref()
                    .is_some_and(|r| r.ends_with(":table/other"))
            })
            .unwrap();
        assert_eq!(other.leading_keys, ["c"]);
    }

    #[test]
    fn a_created_keys_tags_are_kept() {
        let request = json!({"Tags": [{"TagKey": "hsbridge:logical-id", "TagValue": "TokenKey"}]});
        let answer = json!({"KeyMetadata": {"Arn": "arn:aws:kms:us-east-1:123456789012:key/k1", "KeyId": "k1"}});
        let calls = calls(
            &scope("kms"),
            "CreateKey",
            request.to_string().as_bytes(),
            answer.to_string().as_bytes(),
            200,
        );
        assert_eq!(calls[0].tags["hsbridge:logical-id"], "TokenKey");
        assert_eq!(
            calls[0].resource.as_deref(),
            Some("arn:aws:kms:us-east-1:123456789012:key/k1")
        );
    }
}
