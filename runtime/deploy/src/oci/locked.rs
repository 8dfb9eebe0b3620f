//! Spin's locked app (`crates/locked-app/src/locked.rs`): the resolved form
//! of a manifest that a registry artifact carries. Fields are declared in
//! Spin's order, so what Flint pushes serialises as Spin's would.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

pub(crate) type ValuesMap = Map<String, Value>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LockedApp {
    /// 0 when nothing must be understood, else 1 (Spin reads both).
    pub spin_lock_version: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_understand: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: ValuesMap,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub host_requirements: ValuesMap,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, Variable>,
    pub triggers: Vec<LockedTrigger>,
    pub components: Vec<LockedComponent>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LockedComponent {
    pub id: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: ValuesMap,
    pub source: LockedComponentSource,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ContentPath>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub dependencies: ValuesMap,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub trigger_dependencies: ValuesMap,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub host_requirements: ValuesMap,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LockedComponentSource {
    pub content_type: String,
    #[serde(flatten)]
    pub content: ContentRef,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ContentPath {
    #[serde(flatten)]
    pub content: ContentRef,
    pub path: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ContentRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Base64 without padding (Spin's `spin_serde::base64`); padded input
    /// is accepted too.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "inline_out",
        deserialize_with = "inline_in"
    )]
    pub inline: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LockedTrigger {
    pub id: String,
    pub trigger_type: String,
    pub trigger_config: Value,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub trigger_dependencies: ValuesMap,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Variable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

fn inline_out<S: Serializer>(bytes: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(bytes) => serializer.serialize_str(&super::auth::base64_encode(bytes, false)),
        None => serializer.serialize_none(),
    }
}

fn inline_in<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        Some(text) => super::auth::base64_decode(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("`inline` is not base64")),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spins_json_round_trips() {
        let json = r#"{"spin_lock_version":1,"metadata":{"name":"a"},"triggers":[{"id":"t","trigger_type":"http","trigger_config":{"route":"/..","component":"c"}}],"components":[{"id":"c","source":{"content_type":"application/wasm","digest":"sha256:00"},"files":[{"inline":"aGk","path":"x.txt"}],"unknown":1}]}"#;
        let app: LockedApp = serde_json::from_str(json).expect("parses");
        assert_eq!(
            app.components[0].files[0].content.inline.as_deref(),
            Some(&b"hi"[..])
        );
        let out = serde_json::to_string(&app).expect("serialises");
        assert!(
            out.starts_with(r#"{"spin_lock_version":1,"metadata":{"name":"a"},"triggers""#),
            "{out}"
        );
        assert!(out.contains(r#"{"inline":"aGk","path":"x.txt"}"#), "{out}");
        assert!(
            out.contains(r#""source":{"content_type":"application/wasm","digest":"sha256:00"}"#),
            "{out}"
        );
    }
}
