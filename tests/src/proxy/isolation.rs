//! The isolation DynamoDB gives a transaction and moto does not.
//!
//! moto (5.2.5, `transact_write_items`) copies each table a `TransactWriteItems` names before
//! it runs the actions, and when the transaction is cancelled it puts those copies back: any
//! write another request made to one of those tables in the meantime is erased. DynamoDB
//! isolates a transaction from every other write to its items (serializable), so a test that
//! sends two concurrent batches could see moto lose a claim or a completion that DynamoDB would
//! keep, and then queue an event twice. The proxy restores the isolation: a
//! `TransactWriteItems` holds its tables exclusively while moto runs it, and every other
//! DynamoDB request holds the tables it names shared. Locks are taken in name order, so two
//! requests naming the same tables can never wait on each other in a cycle. (`scripts/moto-server`
//! also applies moto's DynamoDB requests one at a time; this keeps the isolation for a moto
//! started without it.)

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// One lock per table name.
#[derive(Debug, Default)]
pub struct Tables {
    locks: Mutex<HashMap<String, Arc<RwLock<()>>>>,
}

/// Held while a request is at moto; dropping it lets the waiting requests go.
#[derive(Debug, Default)]
pub struct Held {
    _shared: Vec<OwnedRwLockReadGuard<()>>,
    _exclusive: Vec<OwnedRwLockWriteGuard<()>>,
}

impl Tables {
    fn lock_of(&self, table: &str) -> Arc<RwLock<()>> {
        let mut locks = self.locks.lock().unwrap();
        Arc::clone(locks.entry(table.to_owned()).or_default())
    }

    /// Holds the tables a DynamoDB request (`operation`, JSON `body`) names.
    pub async fn hold(&self, operation: &str, body: &[u8]) -> Held {
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let tables = named_tables(operation, &request);
        if operation == "TransactWriteItems" {
            let mut held = Held::default();
            for table in &tables {
                held._exclusive
                    .push(self.lock_of(table).write_owned().await);
            }
            held
        } else {
            let mut held = Held::default();
            for table in &tables {
                held._shared.push(self.lock_of(table).read_owned().await);
            }
            held
        }
    }
}

/// The tables a request names, in name order.
fn named_tables(operation: &str, request: &Value) -> BTreeSet<String> {
    let mut tables = BTreeSet::new();
    match operation {
        "TransactWriteItems" | "TransactGetItems" => {
            for item in request["TransactItems"].as_array().into_iter().flatten() {
                if let Some(action) = item.as_object().and_then(|o| o.values().next()) {
                    tables.extend(action["TableName"].as_str().map(str::to_owned));
                }
            }
        }
        "BatchGetItem" | "BatchWriteItem" => {
            if let Some(items) = request["RequestItems"].as_object() {
                tables.extend(items.keys().cloned());
            }
        }
        _ => tables.extend(request["TableName"].as_str().map(str::to_owned)),
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn every_shape_of_request_names_its_tables() {
        let transaction = json!({"TransactItems": [
            {"Put": {"TableName": "b"}}, {"Delete": {"TableName": "a"}}, {"ConditionCheck": {"TableName": "b"}}
        ]});
        assert_eq!(
            named_tables("TransactWriteItems", &transaction),
            BTreeSet::from(["a".to_owned(), "b".to_owned()])
        );
        let batch = json!({"RequestItems": {"x": [], "y": []}});
        assert_eq!(named_tables("BatchGetItem", &batch).len(), 2);
        assert_eq!(
            named_tables("PutItem", &json!({"TableName": "t"})),
            BTreeSet::from(["t".to_owned()])
        );
        assert!(named_tables("ListTables", &json!({})).is_empty());
    }

    #[tokio::test]
    async fn a_write_to_a_table_waits_for_a_transaction_on_it_and_other_tables_do_not() {
        let tables = Arc::new(Tables::default());
        let transaction = br#"{"TransactItems": [{"Put": {"TableName": "dedupe"}}]}"#;
        let held = tables.hold("TransactWriteItems", transaction).await;
        let same = tokio::time::timeout(
            Duration::from_millis(50),
            tables.hold("PutItem", br#"{"TableName": "dedupe"}"#),
        )
        .await;
        assert!(
            same.is_err(),
            "a write to the transaction's table went ahead"
        );
        let other = tokio::time::timeout(
            Duration::from_millis(50),
            tables.hold("PutItem", br#"{"TableName": "accounts"}"#),
        )
        .await;
        assert!(other.is_ok(), "a write to another table waited");
        drop(held);
        let after = tokio::time::timeout(
            Duration::from_millis(50),
            tables.hold("PutItem", br#"{"TableName": "dedupe"}"#),
        )
        .await;
        assert!(after.is_ok(), "the table stayed held after the transaction");
    }
}
