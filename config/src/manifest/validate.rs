//! From the manifest as written to a [`Manifest`], reporting every problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::schema::{RawApplication, RawManifest, RawVariable, VersionProbe};
use super::trigger_ids::TriggerIds;
use super::{Application, Manifest, Variable, component, mqtt, redis, trigger};
use crate::diagnostic::{ConfigError, Diagnostics};
use crate::ids;
use crate::source::{Problems, Source};
use crate::template::template_names;

const VERSION: i64 = 2;

pub(super) fn validate(source: &Source<'_>) -> Result<Manifest, ConfigError> {
    check_version(source)?;
    let raw: RawManifest = source.deserialize()?;
    let mut problems = Problems::new(source);

    let variables = variables(raw.variables, &mut problems);
    let dir = match source.path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let context = Context {
        dir: &dir,
        variables: &variables,
    };
    let application = application(raw.application, &context, &mut problems);
    let mut components = component::components(raw.component, &context, &mut problems);
    for kind in &raw.trigger.unsupported {
        problems.report(
            &kind.span(),
            format!("Flint does not support trigger type `{}`", kind.get_ref()),
        );
    }
    let http_ids = raw
        .trigger
        .http
        .iter()
        .filter_map(|t| t.get_ref().id.as_ref());
    let mqtt_ids = raw
        .trigger
        .mqtt
        .iter()
        .filter_map(|t| t.get_ref().id.as_ref());
    let redis_ids = raw
        .trigger
        .redis
        .iter()
        .filter_map(|t| t.get_ref().id.as_ref());
    let mut trigger_ids = TriggerIds::new(http_ids.chain(mqtt_ids).chain(redis_ids), &mut problems);
    let http_triggers = trigger::http_triggers(
        raw.trigger.http,
        &mut trigger_ids,
        &mut components,
        &context,
        &mut problems,
    );
    // After the HTTP triggers, whose inline components MQTT triggers may name.
    let mqtt_triggers = mqtt::triggers(
        raw.trigger.mqtt,
        application.mqtt.as_ref(),
        &mut trigger_ids,
        &components,
        &context,
        &mut problems,
    );
    let redis_triggers = redis::triggers(
        raw.trigger.redis,
        application.redis.as_ref(),
        &mut trigger_ids,
        &components,
        &context,
        &mut problems,
    );

    problems.finish(Manifest {
        path: source.path.to_path_buf(),
        dir,
        application,
        variables,
        http_triggers,
        mqtt_triggers,
        redis_triggers,
        components,
    })
}

/// What validating one part of the manifest needs to know about the rest.
pub(super) struct Context<'a> {
    pub dir: &'a Path,
    pub variables: &'a BTreeMap<String, Variable>,
}

impl Context<'_> {
    /// Checks that `template` is well formed and names only declared
    /// application variables.
    pub fn check_template(&self, template: &Spanned<String>, problems: &mut Problems<'_>) {
        let names = match template_names(template.get_ref()) {
            Ok(names) => names,
            Err(error) => {
                problems.report(&template.span(), format!("invalid template: {error}"));
                return;
            }
        };
        for name in names {
            if !self.variables.contains_key(name) {
                let declared = self.variables.keys().map(String::as_str);
                problems.report(
                    &template.span(),
                    format!(
                        "`{{{{ {name} }}}}` names a variable that is not declared in \
                         [variables]; {}",
                        list("declared", declared)
                    ),
                );
            }
        }
    }
}

/// `"defined: a, b"`, or `"none are defined"`, for error messages that help
/// the user pick the name they meant.
pub(super) fn list<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.map(|name| format!("`{name}`")).collect();
    if names.is_empty() {
        format!("none are {what}")
    } else {
        format!("{what}: {}", names.join(", "))
    }
}

fn check_version(source: &Source<'_>) -> Result<(), ConfigError> {
    let probe: VersionProbe = source.deserialize()?;
    let error = match probe.spin_manifest_version {
        Some(version) if version.get_ref().as_integer() == Some(VERSION) => return Ok(()),
        Some(version) => source.diagnostic(
            &version.span(),
            format!(
                "unsupported spin_manifest_version {}: Flint reads manifest version {VERSION}",
                toml_literal(version.get_ref())
            ),
        ),
        None => source.diagnostic(
            &(0..0),
            format!("missing `spin_manifest_version = {VERSION}`"),
        ),
    };
    Err(ConfigError::Invalid(Diagnostics(vec![error])))
}

/// A value as it would be written in TOML, close enough for an error
/// message (the crate is built without toml's serializer).
fn toml_literal(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) => "(an array)".to_owned(),
        toml::Value::Table(_) => "(a table)".to_owned(),
    }
}

fn variables(
    raw: BTreeMap<Spanned<String>, Spanned<RawVariable>>,
    problems: &mut Problems<'_>,
) -> BTreeMap<String, Variable> {
    raw.into_iter()
        .map(|(name, variable)| {
            if let Err(why) = ids::check_lower_snake(name.get_ref()) {
                problems.report(
                    &name.span(),
                    format!("invalid variable name `{}`: {why}", name.get_ref()),
                );
            }
            let variable = variable.into_inner();
            match (&variable.default, variable.required) {
                (Some(default), true) => problems.report(
                    &default.span(),
                    format!(
                        "variable `{}` is required, so it cannot have a default",
                        name.get_ref()
                    ),
                ),
                (None, false) => problems.report(
                    &name.span(),
                    format!(
                        "variable `{}` needs a `default` or `required = true`",
                        name.get_ref()
                    ),
                ),
                _ => {}
            }
            let variable = Variable {
                description: variable.description,
                default: variable.default.map(Spanned::into_inner),
                required: variable.required,
                secret: variable.secret,
            };
            (name.into_inner(), variable)
        })
        .collect()
}

fn application(
    raw: RawApplication,
    context: &Context<'_>,
    problems: &mut Problems<'_>,
) -> Application {
    let base = raw.trigger.http.and_then(|http| http.base);
    if let Some(base) = &base
        && !base.get_ref().starts_with('/')
    {
        problems.report(&base.span(), "`base` must start with `/`");
    }
    Application {
        name: raw.name,
        version: raw.version,
        description: raw.description,
        authors: raw.authors,
        targets: raw.targets,
        http_base: base.map(Spanned::into_inner),
        mqtt: raw
            .trigger
            .mqtt
            .and_then(|broker| mqtt::broker(broker, context, problems)),
        redis: raw
            .trigger
            .redis
            .map(|server| redis::server(server, context, problems)),
    }
}
