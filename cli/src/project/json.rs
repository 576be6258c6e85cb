//! JSON that keeps its keys in the order the file had them, so that rewriting an hsmeta file
//! changes only the values the generator owns and leaves a user's layout of the rest alone.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// A JSON value whose objects keep their key order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Object(Vec<(String, Json)>),
    Array(Vec<Json>),
    Scalar(serde_json::Value),
}

impl Json {
    pub fn str(s: &str) -> Self {
        Self::Scalar(serde_json::Value::String(s.to_owned()))
    }

    pub fn strings(items: &[String]) -> Self {
        Self::Array(items.iter().map(|s| Self::str(s)).collect())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Scalar(serde_json::Value::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Self::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value at a path of keys.
    pub fn at(&self, path: &[&str]) -> Option<&Json> {
        path.iter().try_fold(self, |v, k| v.get(k))
    }

    /// Sets `key` (keeping its place if it exists, appending it otherwise); `None` if `self` is
    /// not an object.
    pub fn set(&mut self, key: &str, value: Json) -> Option<()> {
        let Self::Object(fields) = self else {
            return None;
        };
        match fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => fields.push((key.to_owned(), value)),
        }
        Some(())
    }

    /// The object at `key`, created empty if missing; `None` if `self` or it is not an object.
    pub fn object_mut(&mut self, key: &str) -> Option<&mut Json> {
        let Self::Object(fields) = self else {
            return None;
        };
        let index = match fields.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                fields.push((key.to_owned(), Self::Object(Vec::new())));
                fields.len() - 1
            }
        };
        let value = &mut fields[index].1;
        matches!(value, Self::Object(_)).then_some(value)
    }

    pub fn to_pretty(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Scalar(v) => v.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Scalar(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Scalar(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Scalar(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
                Ok(Json::Scalar(
                    serde_json::Number::from_f64(v)
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null),
                ))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
                Ok(Json::str(v))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
                Ok(Json::Scalar(serde_json::Value::String(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
                Ok(Json::Scalar(serde_json::Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Json, E> {
                Ok(Json::Scalar(serde_json::Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut fields: Vec<(String, Json)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Json>()? {
                    if fields.iter().any(|(existing, _)| *existing == k) {
                        return Err(de::Error::custom(format!("the key {k:?} appears twice")));
                    }
                    fields.push((k, v));
                }
                Ok(Json::Object(fields))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_read_and_written_back_keeps_its_key_order() {
        let text = "{\n  \"uid\": \"a\",\n  \"type\": \"app\",\n  \"config\": {\n    \"z\": 1,\n    \"a\": [\n      true,\n      null\n    ]\n  }\n}\n";
        let json: Json = serde_json::from_str(text).unwrap();
        assert_eq!(json.to_pretty(), text);
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        assert!(serde_json::from_str::<Json>(r#"{"a":1,"a":2}"#).is_err());
    }
}
