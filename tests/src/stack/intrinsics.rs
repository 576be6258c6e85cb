//! CloudFormation's intrinsic functions over a translated template, evaluated as a deploy
//! would: `Ref` (parameters with their defaults, pseudo parameters, resources), `Fn::GetAtt`
//! (list and `A.B` forms), `Fn::Sub` (both forms), `Fn::If` on the template's `Conditions`,
//! `Fn::Join`, `Fn::Split`, `Fn::Select`, `Fn::FindInMap` and `AWS::NoValue`. Anything else is
//! an error naming it: the stand never guesses a value.

use crate::template::{ACCOUNT_ID, PARTITION, REGION, Translated, URL_SUFFIX};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// What a resource of the stack answers to `Ref` and `Fn::GetAtt`.
#[derive(Debug, Clone, Default)]
pub struct Physical {
    pub kind: String,
    pub reference: String,
    pub attributes: BTreeMap<String, String>,
}

/// Why a value could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// An intrinsic function (or a form of one) the stand does not evaluate.
    UnknownIntrinsic(String),
    /// A `Ref` or `Fn::GetAtt` to something the stack does not have (or has not created yet).
    Unresolved(String),
    /// A malformed use of a known function.
    Malformed(String),
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::UnknownIntrinsic(name) => {
                write!(f, "the intrinsic {name} is not one the stand evaluates")
            }
            EvalError::Unresolved(what) => write!(f, "{what} has no value in this stack"),
            EvalError::Malformed(what) => write!(f, "malformed: {what}"),
        }
    }
}

/// Everything a value may refer to.
#[derive(Debug)]
pub struct Scope<'a> {
    pub translated: &'a Translated,
    pub physical: &'a BTreeMap<String, Physical>,
}

type Eval = Result<Option<Value>, EvalError>;

impl Scope<'_> {
    fn pseudo(&self, name: &str) -> Option<Value> {
        let s = match name {
            "AWS::Region" => REGION.to_owned(),
            "AWS::AccountId" => ACCOUNT_ID.to_owned(),
            "AWS::Partition" => PARTITION.to_owned(),
            "AWS::URLSuffix" => URL_SUFFIX.to_owned(),
            "AWS::StackName" => self.translated.stack_name.clone(),
            "AWS::StackId" => format!(
                "arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{}/00000000-0000-4000-8000-000000000000",
                self.translated.stack_name
            ),
            "AWS::NotificationARNs" => return Some(Value::Array(Vec::new())),
            _ => return None,
        };
        Some(Value::String(s))
    }

    /// `Ref name` as a string, or `None` for `AWS::NoValue`.
    fn reference(&self, name: &str) -> Eval {
        if name == "AWS::NoValue" {
            return Ok(None);
        }
        if let Some(v) = self.pseudo(name) {
            return Ok(Some(v));
        }
        if name.starts_with("AWS::") {
            return Err(EvalError::UnknownIntrinsic(format!("Ref {name}")));
        }
        if let Some(v) = self.translated.parameters.get(name) {
            return Ok(Some(Value::String(v.clone())));
        }
        match self.physical.get(name) {
            Some(p) => Ok(Some(Value::String(p.reference.clone()))),
            None => Err(EvalError::Unresolved(format!("Ref {name}"))),
        }
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Eval {
        let p = self
            .physical
            .get(resource)
            .ok_or_else(|| EvalError::Unresolved(format!("Fn::GetAtt {resource}.{attribute}")))?;
        p.attributes
            .get(attribute)
            .map(|v| Some(Value::String(v.clone())))
            .ok_or_else(|| {
                EvalError::Unresolved(format!(
                    "Fn::GetAtt {resource}.{attribute} (a {} answers only {:?})",
                    p.kind,
                    p.attributes.keys().collect::<Vec<_>>()
                ))
            })
    }

    /// The named condition of the template.
    pub fn condition(&self, name: &str) -> Result<bool, EvalError> {
        let spec = self
            .translated
            .template
            .get("Conditions")
            .and_then(|c| c.get(name))
            .ok_or_else(|| EvalError::Unresolved(format!("Condition {name}")))?;
        self.truth(spec)
    }

    fn truth(&self, v: &Value) -> Result<bool, EvalError> {
        let Some((function, arg)) = single(v) else {
            return match v {
                Value::Bool(b) => Ok(*b),
                Value::String(s) if s == "true" => Ok(true),
                Value::String(s) if s == "false" => Ok(false),
                _ => Err(EvalError::Malformed(format!("not a condition: {v}"))),
            };
        };
        let list = || {
            arg.as_array()
                .ok_or_else(|| EvalError::Malformed(format!("{function} needs a list")))
        };
        match function {
            "Fn::Equals" => {
                let items = list()?;
                let [a, b] = items.as_slice() else {
                    return Err(EvalError::Malformed("Fn::Equals needs two values".into()));
                };
                Ok(self.string(a)? == self.string(b)?)
            }
            "Fn::Not" => {
                let items = list()?;
                let [a] = items.as_slice() else {
                    return Err(EvalError::Malformed("Fn::Not needs one condition".into()));
                };
                Ok(!self.truth(a)?)
            }
            "Fn::And" => {
                for c in list()? {
                    if !self.truth(c)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            "Fn::Or" => {
                for c in list()? {
                    if self.truth(c)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            "Condition" | "Fn::Condition" => {
                let name = arg
                    .as_str()
                    .ok_or_else(|| EvalError::Malformed("Condition needs a name".into()))?;
                self.condition(name)
            }
            other => Err(EvalError::UnknownIntrinsic(other.to_owned())),
        }
    }

    /// `v` with every intrinsic evaluated; `None` where it is `AWS::NoValue`.
    pub fn value(&self, v: &Value) -> Eval {
        if let Some((function, arg)) = single(v)
            && (function == "Ref" || function.starts_with("Fn::"))
        {
            return self.intrinsic(function, arg);
        }
        Ok(Some(match v {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(x) = self.value(item)? {
                        out.push(x);
                    }
                }
                Value::Array(out)
            }
            Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, item) in map {
                    if let Some(x) = self.value(item)? {
                        out.insert(k.clone(), x);
                    }
                }
                Value::Object(out)
            }
            other => other.clone(),
        }))
    }

    /// `v` evaluated to a string (numbers and booleans as CloudFormation turns them into one).
    pub fn string(&self, v: &Value) -> Result<Option<String>, EvalError> {
        match self.value(v)? {
            None => Ok(None),
            Some(x) => scalar(&x)
                .map(Some)
                .ok_or_else(|| EvalError::Malformed(format!("not a string: {x}"))),
        }
    }

    fn intrinsic(&self, function: &str, arg: &Value) -> Eval {
        let malformed = |what: &str| EvalError::Malformed(format!("{function}: {what}"));
        match function {
            "Ref" => self.reference(arg.as_str().ok_or_else(|| malformed("needs a name"))?),
            "Fn::GetAtt" => {
                let (resource, attribute) = match arg {
                    Value::String(s) => s
                        .split_once('.')
                        .map(|(a, b)| (a.to_owned(), b.to_owned()))
                        .ok_or_else(|| malformed("needs Resource.Attribute"))?,
                    Value::Array(items) => match items.as_slice() {
                        [Value::String(a), b] => {
                            let b = self.string(b)?.ok_or_else(|| malformed("no attribute"))?;
                            (a.clone(), b)
                        }
                        _ => return Err(malformed("needs [Resource, Attribute]")),
                    },
                    _ => return Err(malformed("needs Resource.Attribute")),
                };
                self.attribute(&resource, &attribute)
            }
            "Fn::Sub" => {
                let (text, vars) = match arg {
                    Value::String(s) => (s.as_str(), None),
                    Value::Array(items) => match items.as_slice() {
                        [Value::String(s), Value::Object(vars)] => (s.as_str(), Some(vars)),
                        _ => return Err(malformed("needs a string, or [string, {variables}]")),
                    },
                    _ => return Err(malformed("needs a string")),
                };
                self.sub(text, vars).map(|s| Some(Value::String(s)))
            }
            "Fn::If" => {
                let items = arg.as_array().ok_or_else(|| malformed("needs a list"))?;
                let [Value::String(condition), then, otherwise] = items.as_slice() else {
                    return Err(malformed("needs [condition, then, else]"));
                };
                if self.condition(condition)? {
                    self.value(then)
                } else {
                    self.value(otherwise)
                }
            }
            "Fn::Join" => {
                let items = arg.as_array().ok_or_else(|| malformed("needs a list"))?;
                let [Value::String(sep), list] = items.as_slice() else {
                    return Err(malformed("needs [separator, [values]]"));
                };
                let list = self.value(list)?.unwrap_or(Value::Array(Vec::new()));
                let parts = list
                    .as_array()
                    .ok_or_else(|| malformed("needs a list of values"))?
                    .iter()
                    .map(|p| scalar(p).ok_or_else(|| malformed("joins only strings")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(Value::String(parts.join(sep))))
            }
            "Fn::Split" => {
                let items = arg.as_array().ok_or_else(|| malformed("needs a list"))?;
                let [Value::String(sep), text] = items.as_slice() else {
                    return Err(malformed("needs [separator, string]"));
                };
                let text = self.string(text)?.ok_or_else(|| malformed("no string"))?;
                Ok(Some(Value::Array(
                    text.split(sep.as_str())
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                )))
            }
            "Fn::Select" => {
                let items = arg.as_array().ok_or_else(|| malformed("needs a list"))?;
                let [index, list] = items.as_slice() else {
                    return Err(malformed("needs [index, list]"));
                };
                let index: usize = self
                    .string(index)?
                    .and_then(|i| i.parse().ok())
                    .ok_or_else(|| malformed("needs a number"))?;
                let list = self.value(list)?.unwrap_or(Value::Array(Vec::new()));
                list.as_array()
                    .and_then(|l| l.get(index).cloned())
                    .map(Some)
                    .ok_or_else(|| malformed("index out of range"))
            }
            "Fn::FindInMap" => {
                let items = arg.as_array().ok_or_else(|| malformed("needs a list"))?;
                let [map, top, second] = items.as_slice() else {
                    return Err(malformed("needs [map, key, key]"));
                };
                let (map, top, second) = (
                    self.string(map)?.unwrap_or_default(),
                    self.string(top)?.unwrap_or_default(),
                    self.string(second)?.unwrap_or_default(),
                );
                self.translated
                    .template
                    .get("Mappings")
                    .and_then(|m| m.get(&map))
                    .and_then(|m| m.get(&top))
                    .and_then(|m| m.get(&second))
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| {
                        EvalError::Unresolved(format!("Fn::FindInMap {map}.{top}.{second}"))
                    })
            }
            other => Err(EvalError::UnknownIntrinsic(other.to_owned())),
        }
    }

    /// `Fn::Sub`'s `${Name}`, `${Resource.Attribute}` and `${!Literal}`.
    fn sub(
        &self,
        text: &str,
        vars: Option<&serde_json::Map<String, Value>>,
    ) -> Result<String, EvalError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| EvalError::Malformed(format!("Fn::Sub: unclosed ${{ in {text}")))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else {
                let value = match vars.and_then(|v| v.get(name)) {
                    Some(v) => self.string(v)?,
                    None => match name.split_once('.') {
                        Some((resource, attribute)) if !name.starts_with("AWS::") => self
                            .attribute(resource, attribute)?
                            .and_then(|v| scalar(&v)),
                        _ => self.reference(name)?.and_then(|v| scalar(&v)),
                    },
                };
                out.push_str(&value.ok_or_else(|| {
                    EvalError::Malformed(format!("Fn::Sub: ${{{name}}} is AWS::NoValue"))
                })?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The one key of an object `{ "Fn::X": arg }`.
fn single(v: &Value) -> Option<(&str, &Value)> {
    let map = v.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// A string, number or boolean as the string CloudFormation makes of it.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The logical ids `v` refers to (`Ref`, `Fn::GetAtt`, `Fn::Sub`'s names), parameters and
/// pseudo parameters excluded: what must exist before a resource with `v` can be created.
pub fn references(v: &Value, translated: &Translated, out: &mut Vec<String>) {
    let is_resource = |name: &str| {
        !name.starts_with("AWS::")
            && !translated.parameters.contains_key(name)
            && translated.resource(name).is_some()
    };
    match v {
        Value::Object(map) => {
            for (k, item) in map {
                match (k.as_str(), item) {
                    ("Ref", Value::String(name)) if is_resource(name) => out.push(name.clone()),
                    ("Fn::GetAtt", Value::String(s)) => {
                        if let Some((r, _)) = s.split_once('.') {
                            out.push(r.to_owned());
                        }
                    }
                    ("Fn::GetAtt", Value::Array(items)) => {
                        if let Some(Value::String(r)) = items.first() {
                            out.push(r.clone());
                        }
                    }
                    ("Fn::Sub", sub) => {
                        let text = match sub {
                            Value::String(s) => Some(s.as_str()),
                            Value::Array(items) => items.first().and_then(Value::as_str),
                            _ => None,
                        };
                        let mut rest = text.unwrap_or_default();
                        while let Some(start) = rest.find("${") {
                            let after = &rest[start + 2..];
                            let Some(end) = after.find('}') else { break };
                            let name = &after[..end];
                            let base = name.split_once('.').map_or(name, |(r, _)| r);
                            if is_resource(base) {
                                out.push(base.to_owned());
                            }
                            rest = &after[end + 1..];
                        }
                        references(sub, translated, out);
                    }
                    _ => references(item, translated, out),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                references(item, translated, out);
            }
        }
        _ => {}
    }
}
