//! Components: `[component.<id>]` tables and inline ones alike.

use std::collections::BTreeMap;
use std::path::PathBuf;

use toml::Spanned;

use super::schema::{RawComponent, RawPlacement, StringOrTable};
use super::validate::{Context, list};
use super::{BuildConfig, Component, FilesMount};
use crate::diagnostic::Location;
use crate::ids;
use crate::source::Problems;

/// The `[component.<id>]` tables, by id.
pub(super) fn components(
    raw: BTreeMap<Spanned<String>, RawComponent>,
    context: &Context<'_>,
    problems: &mut Problems<'_>,
) -> BTreeMap<String, Component> {
    raw.into_iter()
        .map(|(id, raw)| {
            if let Err(why) = ids::check_kebab(id.get_ref()) {
                problems.report(
                    &id.span(),
                    format!("invalid component id `{}`: {why}", id.get_ref()),
                );
            }
            let location = problems.source().location(&id.span());
            let id = id.into_inner();
            // An invalid id still goes in the map, so that triggers naming
            // it are not also reported as naming a missing component.
            (id.clone(), component(id, location, raw, context, problems))
        })
        .collect()
}

/// Checks that a trigger's `component` names a defined component.
pub(super) fn check_reference(
    reference: &Spanned<String>,
    components: &BTreeMap<String, Component>,
    problems: &mut Problems<'_>,
) {
    if !components.contains_key(reference.get_ref()) {
        problems.report(
            &reference.span(),
            format!(
                "trigger names component `{}`, which is not defined; {}",
                reference.get_ref(),
                list("defined", components.keys().map(String::as_str))
            ),
        );
    }
}

/// The component a message trigger (MQTT, Redis) names: only by id, since
/// Spin's plugins take no inline components; `None` after reporting why.
pub(super) fn named_by_trigger<T>(
    kind: &str,
    component: Spanned<super::schema::StringOrTable<T>>,
    components: &BTreeMap<String, Component>,
    problems: &mut Problems<'_>,
) -> Option<String> {
    let span = component.span();
    match component.into_inner() {
        super::schema::StringOrTable::String(name) => {
            let reference = Spanned::new(span, name);
            check_reference(&reference, components, problems);
            Some(reference.into_inner())
        }
        super::schema::StringOrTable::Table(_) => {
            problems.report(
                &span,
                format!(
                    "{kind} triggers do not take inline components; define it as \
                     `[component.<id>]` and name that id here"
                ),
            );
            None
        }
    }
}

/// Validates one component.
pub(super) fn component(
    id: String,
    location: Location,
    raw: RawComponent,
    context: &Context<'_>,
    problems: &mut Problems<'_>,
) -> Component {
    let source_location = problems.source().location(&raw.source.span());
    let source = source_path(&raw.source, context, problems);

    for (name, value) in &raw.variables {
        if let Err(why) = ids::check_lower_snake(name.get_ref()) {
            problems.report(
                &name.span(),
                format!(
                    "invalid component variable name `{}`: {why}",
                    name.get_ref()
                ),
            );
        }
        context.check_template(value, problems);
    }
    for host in &raw.allowed_outbound_hosts {
        context.check_template(host, problems);
    }
    for label in raw.key_value_stores.iter().chain(&raw.sqlite_databases) {
        if let Err(why) = ids::check_label(label.get_ref()) {
            problems.report(
                &label.span(),
                format!("invalid label `{}`: {why}", label.get_ref()),
            );
        }
    }
    for model in &raw.ai_models {
        if let Err(why) = ids::check_kebab(model.get_ref()) {
            problems.report(
                &model.span(),
                format!("invalid AI model name `{}`: {why}", model.get_ref()),
            );
        }
    }

    Component {
        id,
        location,
        source,
        source_location,
        description: raw.description,
        files: raw
            .files
            .into_iter()
            .map(|mount| files_mount(mount, problems))
            .collect(),
        exclude_files: raw.exclude_files,
        environment: raw.environment,
        allowed_outbound_hosts: into_values(raw.allowed_outbound_hosts),
        allowed_http_hosts: raw.allowed_http_hosts,
        key_value_stores: into_values(raw.key_value_stores),
        sqlite_databases: into_values(raw.sqlite_databases),
        ai_models: into_values(raw.ai_models),
        variables: raw
            .variables
            .into_iter()
            .map(|(name, value)| (name.into_inner(), value.into_inner()))
            .collect(),
        build: raw.build.map(|build| BuildConfig {
            commands: build.command.0,
            workdir: build.workdir,
            watch: build.watch,
        }),
        dependencies_inherit_configuration: raw.dependencies_inherit_configuration,
        dependencies: raw.dependencies,
        targets: raw.targets,
        tool: raw.tool,
        profile: raw.profile,
    }
}

/// The Wasm file a `source` names, joined to the manifest's directory. Spin
/// can also download a component (`{ url, digest }`) or fetch it from a
/// registry; Flint runs offline, so those are errors.
fn source_path(
    source: &Spanned<StringOrTable<toml::Table>>,
    context: &Context<'_>,
    problems: &mut Problems<'_>,
) -> PathBuf {
    let message = match source.get_ref() {
        StringOrTable::String(path) if !path.is_empty() => return context.dir.join(path),
        StringOrTable::String(_) => "`source` must not be empty",
        StringOrTable::Table(table) if table.contains_key("url") => {
            "remote component sources are not supported offline; download it and use a path"
        }
        StringOrTable::Table(table) if table.contains_key("package") => {
            "registry component sources are not supported offline; fetch it and use a path"
        }
        StringOrTable::Table(_) => "`source` must be a path to a Wasm file",
    };
    problems.report(&source.span(), message);
    PathBuf::new()
}

fn files_mount(
    mount: Spanned<StringOrTable<RawPlacement>>,
    problems: &mut Problems<'_>,
) -> FilesMount {
    let location = problems.source().location(&mount.span());
    match mount.get_ref() {
        StringOrTable::String(glob) => FilesMount::Pattern {
            glob: glob.clone(),
            location,
        },
        StringOrTable::Table(placement) => {
            if !placement.destination.starts_with('/') {
                problems.report(
                    &mount.span(),
                    format!(
                        "files destination `{}` must be an absolute path (start with `/`)",
                        placement.destination
                    ),
                );
            }
            FilesMount::Placement {
                source: placement.source.clone(),
                destination: placement.destination.clone(),
                location,
            }
        }
    }
}

fn into_values(spanned: Vec<Spanned<String>>) -> Vec<String> {
    spanned.into_iter().map(Spanned::into_inner).collect()
}
