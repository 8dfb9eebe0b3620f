//! Application variables (`[variables]`) and the component variables built
//! from them. Values come, highest priority first, from `flint up
//! --variable`, then `SPIN_VARIABLE_<NAME>` in the environment, then the
//! manifest's default. Nothing here logs a value: some are secrets.

use std::collections::BTreeMap;

use anyhow::bail;
use flint_config::{Manifest, expand_template};

/// Spin's rule: lower-case ASCII letters, digits and `_`, starting with a letter.
pub fn is_valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The environment variable that provides `name`.
pub fn env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

/// Resolves every application variable that has a value; a required one
/// without a value is an error that names it and how to give it.
pub fn resolve_app(
    manifest: &Manifest,
    given: &[(String, String)],
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    let mut missing = Vec::new();
    for (name, variable) in &manifest.variables {
        let value = given
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .or_else(|| env(&env_name(name)))
            .or_else(|| variable.default.clone());
        match value {
            Some(value) => {
                values.insert(name.clone(), value);
            }
            None if variable.required => missing.push(format!(
                "variable `{name}` is required but has no value: pass `--variable {name}=...` or set {}",
                env_name(name)
            )),
            None => {}
        }
    }
    for (name, _) in given {
        // `device_id` is also Flint's own: the device's name in the deploy
        // topic (`[deploy] mqtt_topic`), which the app need not declare.
        if !manifest.variables.contains_key(name)
            && name != flint_config::runtime_config::DEVICE_ID_VARIABLE
        {
            missing.push(format!(
                "--variable {name}: the manifest declares no variable `{name}` in [variables]"
            ));
        }
    }
    if !missing.is_empty() {
        bail!("{}: {}", manifest.path.display(), missing.join("; "));
    }
    Ok(values)
}

/// Expands one template against the resolved application variables.
pub fn expand(
    template: &str,
    app: &BTreeMap<String, String>,
) -> Result<String, flint_config::TemplateError> {
    expand_template(template, |name| app.get(name).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_spins_rule() {
        assert!(is_valid_name("api_key2"));
        for bad in ["", "Api", "2x", "a-b", "a.b"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert_eq!(env_name("api_key"), "SPIN_VARIABLE_API_KEY");
    }

    #[test]
    fn flag_beats_environment_beats_default_and_required_ones_are_named() {
        let text = r#"
spin_manifest_version = 2
[application]
name = "v"
[variables]
a = { default = "from-default" }
b = { default = "from-default" }
c = { default = "from-default" }
token = { required = true, secret = true }
[[trigger.http]]
route = "/"
static_response = { status_code = 200 }
"#;
        let manifest = flint_config::parse_manifest(text, std::path::Path::new("/app/spin.toml"))
            .expect("manifest");
        let env = |name: &str| {
            (name == "SPIN_VARIABLE_B" || name == "SPIN_VARIABLE_A").then(|| "from-env".to_owned())
        };
        let given = vec![
            ("a".to_owned(), "from-flag".to_owned()),
            ("token".to_owned(), "t".to_owned()),
        ];
        let values = resolve_app(&manifest, &given, env).expect("resolves");
        assert_eq!(values["a"], "from-flag");
        assert_eq!(values["b"], "from-env");
        assert_eq!(values["c"], "from-default");
        let device = vec![
            ("token".to_owned(), "t".to_owned()),
            ("device_id".to_owned(), "gw-7".to_owned()),
        ];
        let values = resolve_app(&manifest, &device, |_| None).expect("device_id is Flint's own");
        assert!(
            !values.contains_key("device_id"),
            "undeclared, so not the app's"
        );
        let err = resolve_app(&manifest, &[("nope".to_owned(), "x".to_owned())], |_| None)
            .expect_err("undeclared");
        assert!(err.to_string().contains("--variable nope"), "{err}");
        let err = resolve_app(&manifest, &[], |_| None).expect_err("token is required");
        assert!(err.to_string().contains("`token` is required"), "{err}");
        assert!(err.to_string().contains("SPIN_VARIABLE_TOKEN"), "{err}");
    }
}
