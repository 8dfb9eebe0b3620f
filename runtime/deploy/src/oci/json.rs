//! The OCI documents: image manifest, descriptors, image config.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Digest, Error, Limits, Result};

/// An image manifest as read (unknown fields ignored, as the spec asks).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageManifest {
    pub schema_version: u32,
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Present on an image index.
    #[serde(default)]
    pub manifests: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A descriptor whose digest and size were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Blob {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl ImageManifest {
    /// Parses and checks a manifest against `limits`: a single image
    /// manifest, sha256 digests, sizes that fit.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<(ImageManifest, Blob, Vec<Blob>)> {
        let manifest: ImageManifest = serde_json::from_slice(bytes).map_err(|e| {
            Error::Format(format!("the manifest is not an OCI image manifest: {e}"))
        })?;
        let media_type = manifest.media_type.as_deref();
        if manifest.manifests.is_some()
            || matches!(
                media_type,
                Some(super::OCI_INDEX_MEDIA_TYPE | super::DOCKER_LIST_MEDIA_TYPE)
            )
        {
            return Err(Error::Format(
                "the reference names an image index (several platforms), not a Spin app's manifest"
                    .into(),
            ));
        }
        if manifest.schema_version != 2 {
            return Err(Error::Format(format!(
                "manifest schemaVersion {} is not 2",
                manifest.schema_version
            )));
        }
        if let Some(other) = media_type.filter(|m| {
            *m != super::OCI_MANIFEST_MEDIA_TYPE && *m != super::DOCKER_MANIFEST_MEDIA_TYPE
        }) {
            return Err(Error::Format(format!(
                "manifest media type `{}` is not an image manifest",
                super::url::printable(other)
            )));
        }
        if manifest.layers.len() > limits.max_layers {
            return Err(Error::Limit(format!(
                "the manifest lists {} layers; at most {} are accepted",
                manifest.layers.len(),
                limits.max_layers
            )));
        }
        let config = manifest.config.checked("the config", limits)?;
        let mut total = config.size;
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for (i, layer) in manifest.layers.iter().enumerate() {
            let blob = layer.checked(&format!("layer {i}"), limits)?;
            total = total.saturating_add(blob.size);
            layers.push(blob);
        }
        if total > limits.max_total_bytes {
            return Err(Error::Limit(format!(
                "the app's blobs add up to {total} bytes; at most {} are accepted",
                limits.max_total_bytes
            )));
        }
        Ok((manifest, config, layers))
    }
}

impl Descriptor {
    fn checked(&self, what: &str, limits: &Limits) -> Result<Blob> {
        let digest = Digest::parse(&self.digest).ok_or_else(|| {
            Error::Format(format!(
                "{what} has digest `{}`; only sha256 digests are accepted",
                super::url::printable(&self.digest)
            ))
        })?;
        let size = u64::try_from(self.size)
            .map_err(|_| Error::Format(format!("{what} has a negative size")))?;
        if size > limits.max_blob_bytes {
            return Err(Error::Limit(format!(
                "{what} ({digest}) is {size} bytes; at most {} are accepted per blob",
                limits.max_blob_bytes
            )));
        }
        Ok(Blob {
            media_type: self.media_type.clone(),
            digest,
            size,
        })
    }
}

/// The image config Spin writes (oci-client's `ConfigFile`, field order kept):
/// `{"architecture":"wasm","os":"Wasip1","config":{"Labels":{…}},"rootfs":{"type":"layers","diff_ids":[]}}`.
#[derive(Serialize)]
pub(crate) struct ImageConfig {
    pub architecture: &'static str,
    pub os: &'static str,
    pub config: ConfigLabels,
    pub rootfs: RootFs,
}

#[derive(Serialize)]
pub(crate) struct ConfigLabels {
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
pub(crate) struct RootFs {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub diff_ids: Vec<String>,
}

/// The manifest as pushed: canonical JSON (keys sorted, no whitespace), as
/// oci-client serialises it, and without `mediaType` in the body (the
/// `Content-Type` says it), as Spin pushes it.
pub(crate) fn manifest_json(
    config: &Descriptor,
    layers: &[Descriptor],
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut value = serde_json::json!({
        "schemaVersion": 2,
        "config": config,
        "layers": layers,
    });
    if !annotations.is_empty() {
        value["annotations"] = serde_json::json!(annotations);
    }
    // serde_json's map is ordered by key, so this is canonical.
    serde_json::to_vec(&value).expect("JSON values serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn manifests_are_checked_against_the_limits() {
        let good = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"a","digest":"{}","size":3}},
               "layers":[{{"mediaType":"b","digest":"{}","size":5}}],"extra":1}}"#,
            digest('a'),
            digest('b')
        );
        let limits = Limits::default();
        let (_, config, layers) = ImageManifest::parse(good.as_bytes(), &limits).expect("ok");
        assert_eq!((config.size, layers.len()), (3, 1));

        let tight = Limits {
            max_total_bytes: 7,
            ..limits
        };
        assert!(matches!(
            ImageManifest::parse(good.as_bytes(), &tight),
            Err(Error::Limit(_))
        ));
        let few = Limits {
            max_layers: 0,
            ..limits
        };
        assert!(matches!(
            ImageManifest::parse(good.as_bytes(), &few),
            Err(Error::Limit(_))
        ));
        for bad in [
            good.replace(&digest('b'), "sha512:00"),
            good.replace("\"size\":5", "\"size\":-5"),
            good.replace("\"schemaVersion\":2", "\"schemaVersion\":1"),
            r#"{"schemaVersion":2,"manifests":[]}"#.to_owned(),
            "[]".to_owned(),
            "{".to_owned(),
        ] {
            assert!(
                ImageManifest::parse(bad.as_bytes(), &limits).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn pushed_manifests_are_canonical() {
        let config = Descriptor {
            media_type: "application/vnd.oci.image.config.v1+json".into(),
            digest: digest('c'),
            size: 2,
            annotations: None,
        };
        let json = manifest_json(&config, &[], &BTreeMap::from([("k".into(), "v".into())]));
        assert_eq!(
            String::from_utf8(json).expect("utf-8"),
            format!(
                r#"{{"annotations":{{"k":"v"}},"config":{{"digest":"{}","mediaType":"application/vnd.oci.image.config.v1+json","size":2}},"layers":[],"schemaVersion":2}}"#,
                digest('c')
            )
        );
    }
}
