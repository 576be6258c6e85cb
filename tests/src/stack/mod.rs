//! A translated template deployed into moto, as far as an emulated account allows: its
//! data-plane resources created from their declared properties ([`create`]), the others given
//! the `Ref` and `Fn::GetAtt` values CloudFormation would give, and each function's
//! `Environment` evaluated from what was created ([`intrinsics`]).

pub mod create;
pub mod intrinsics;

use crate::template::Translated;
use anyhow::{Context, Result, bail};
use aws_config::SdkConfig;
use intrinsics::{Physical, Scope};
use serde_json::Value;
use std::collections::BTreeMap;

/// A stack in moto.
#[derive(Debug)]
pub struct Stack {
    pub translated: Translated,
    /// `Ref` and `Fn::GetAtt` values by logical id.
    pub physical: BTreeMap<String, Physical>,
    /// The logical ids created in moto, in creation order.
    pub created: Vec<String>,
}

/// A function of the stack, as Lambda would run it.
#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the cargo binary `sam build` packages.
    pub binary: String,
    /// The physical function name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub name: String,
    /// The logical id of its execution role.
    pub role: String,
    pub memory_mb: u64,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    /// `Environment.Variables`, evaluated.
    pub environment: BTreeMap<String, String>,
}

impl Stack {
    /// Creates every data-plane resource whose condition holds, in dependency order.
    pub async fn create(sdk: &SdkConfig, translated: Translated) -> Result<Self> {
        let mut stack = Stack {
            translated,
            physical: BTreeMap::new(),
            created: Vec::new(),
        };
        let mut pending: Vec<(String, Value)> = Vec::new();
        let resources: Vec<(String, Value)> = stack
            .translated
            .resources()
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
        for (id, resource) in resources {
            if !stack.present(&resource)? {
                continue;
            }
            let kind = resource
                .get("Type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if create::CREATED.contains(&kind) {
                pending.push((id, resource));
            } else {
                let scope = stack.scope();
                let made = create::synthesized(
                    &stack.translated.stack_name,
                    &id,
                    kind,
                    &scope,
                    &resource,
                )?;
                if let Some(p) = made {
                    stack.physical.insert(id, p);
                }
            }
        }
        while !pending.is_empty() {
            let ready = pending.iter().position(|(_, r)| {
                let mut refs = Vec::new();
                intrinsics::references(r, &stack.translated, &mut refs);
                if let Some(d) = r.get("DependsOn") {
                    match d {
                        Value::String(s) => refs.push(s.clone()),
                        Value::Array(items) => {
                            refs.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
                        }
                        _ => {}
                    }
                }
                refs.iter().all(|id| {
                    stack.physical.contains_key(id) || !pending.iter().any(|(p, _)| p == id)
                })
            });
            let Some(index) = ready else {
                let ids: Vec<&str> = pending.iter().map(|(id, _)| id.as_str()).collect();
                bail!("the resources {ids:?} depend on each other in a cycle");
            };
            let (id, resource) = pending.remove(index);
            let physical = {
                let scope = stack.scope();
                create::create(sdk, &scope, &id, &resource).await?
            };
            stack.physical.insert(id.clone(), physical);
            stack.created.push(id);
        }
        Ok(stack)
    }

    pub fn scope(&self) -> Scope<'_> {
        Scope {
            translated: &self.translated,
            physical: &self.physical,
        }
    }

    /// Whether the resource's `Condition` (if any) holds.
    fn present(&self, resource: &Value) -> Result<bool> {
        match resource.get("Condition").and_then(Value::as_str) {
            None => Ok(true),
            Some(c) => self
                .scope()
                .condition(c)
                .map_err(|e| anyhow::anyhow!("condition {c}: {e}")),
        }
    }

    /// Every `AWS::Lambda::Function` of the stack with its evaluated environment. A value the
    /// stand cannot evaluate fails naming the function, the variable and why.
    pub fn functions(&self) -> Result<Vec<Function>> {
        let scope = self.scope();
        let mut out = Vec::new();
        for id in self.translated.of_type("AWS::Lambda::Function") {
            let resource = self.translated.resource(&id).context("vanished")?;
            if !self.present(resource)? {
                continue;
            }
            let props = resource.get("Properties").cloned().unwrap_or(Value::Null);
            let binary = resource
                .pointer("/Metadata/BuildProperties/Binary")
                .and_then(Value::as_str)
                .with_context(|| format!("{id} has no Metadata.BuildProperties.Binary"))?
                .to_owned();
            let role = match props.get("Role") {
                Some(Value::Object(m)) => match m.get("Fn::GetAtt") {
                    Some(Value::String(s)) => s.split_once('.').map(|(r, _)| r.to_owned()),
                    Some(Value::Array(items)) => {
                        items.first().and_then(Value::as_str).map(str::to_owned)
                    }
                    _ => None,
                },
                _ => None,
            }
            .with_context(|| format!("{id}: Role is not Fn::GetAtt ROLE.Arn of this stack"))?;
            let mut environment = BTreeMap::new();
            let declared = props
                .pointer("/Environment/Variables")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (name, value) in declared {
                let v = scope
                    .string(&value)
                    .map_err(|e| anyhow::anyhow!("{id}: environment variable {name}: {e}"))?;
                if let Some(v) = v {
                    environment.insert(name, v);
                }
            }
            let logging = |field: &str| -> Result<Option<String>> {
                match props.pointer(&format!("/LoggingConfig/{field}")) {
                    None => Ok(None),
                    Some(v) => scope
                        .string(v)
                        .map_err(|e| anyhow::anyhow!("{id}: LoggingConfig.{field}: {e}")),
                }
            };
            let memory_mb = match props.get("MemorySize") {
                None => 128,
                Some(v) => scope
                    .string(v)
                    .map_err(|e| anyhow::anyhow!("{id}: MemorySize: {e}"))?
                    .and_then(|m| m.parse().ok())
                    .with_context(|| format!("{id}: MemorySize is not a number"))?,
            };
            out.push(Function {
                name: self
                    .physical
                    .get(&id)
                    .map(|p| p.reference.clone())
                    .unwrap_or_else(|| id.clone()),
                logical_id: id.clone(),
                binary,
                role,
                memory_mb,
                log_format: logging("LogFormat")?,
                log_level: logging("ApplicationLogLevel")?,
                environment,
            });
        }
        Ok(out)
    }
}
