//! Turning a manifest into a runnable app: limits from the board profile and
//! runtime config, every module compiled and checked, the route table built.
//! `flint check` and `flint up` share this, so they reject the same inputs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use flint_config::{
    Component, Executor, Limits, Manifest, Route, load_manifest, load_runtime_config,
};

use crate::cli::AppArgs;
use crate::engine::Engine;
use crate::files;
use crate::guest::WagiComponent;
use crate::http::is_valid_header;
use crate::http::router::{RouteEntry, Router, StaticReply, Target};

pub struct LoadedApp {
    pub manifest_path: PathBuf,
    pub component_count: usize,
    pub router: Router,
    pub engine: Arc<Engine>,
    pub limits: Limits,
    pub board: String,
}

/// What only `flint up` has: where state lives and the `-e` variables.
pub struct ServeOptions<'a> {
    pub state_dir: Option<&'a Path>,
    pub env: &'a [(String, String)],
}

pub fn load(args: &AppArgs, serve: Option<ServeOptions<'_>>) -> anyhow::Result<LoadedApp> {
    let manifest_path = args.manifest_path();
    let manifest = load_manifest(&manifest_path)?;
    let board = crate::board::select(args.board.as_deref())?;
    let mut limits = board.limits.clone();
    if let Some(path) = &args.runtime_config_file {
        limits.apply(&load_runtime_config(path)?.limits);
    }
    let engine = Arc::new(Engine::new()?);
    let staging = match &serve {
        Some(opts) => Some(state_dir(&manifest, opts.state_dir)?.join("files")),
        None => None,
    };
    let env = serve.as_ref().map_or(&[][..], |s| s.env);

    let mut loader = ComponentLoader {
        engine: &engine,
        manifest_dir: &manifest.dir,
        extra_env: env,
        staging: staging.as_deref(),
        memory_limit: limits.instance_memory_bytes,
        modules: BTreeMap::new(),
        components: BTreeMap::new(),
    };
    let mut entries = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for trigger in &manifest.http_triggers {
        // Private routes are not served (only service chaining reaches them),
        // but their components are still checked.
        let (pattern, route_name) = match &trigger.route {
            Route::Pattern(p) => (Some(p), p.raw().to_owned()),
            Route::Private => (None, format!("(private, trigger `{}`)", trigger.id)),
        };
        let target = if let Some(response) = &trigger.static_response {
            match static_reply(response) {
                Ok(reply) => Target::Static(reply),
                Err(e) => {
                    errors.push(format!("route `{route_name}`: {e}"));
                    continue;
                }
            }
        } else {
            let Some(component) = trigger
                .component
                .as_deref()
                .and_then(|id| manifest.components.get(id))
            else {
                continue; // Reported by manifest validation.
            };
            let Executor::Wagi { argv, .. } = &trigger.executor else {
                errors.push(format!(
                    "{}:{}:{}: route `{route_name}` runs component `{}` with the Spin executor; this Flint \
                     runs WAGI modules: add `executor = {{ type = \"wagi\" }}` to the trigger",
                    manifest.path.display(),
                    trigger.route_location.line,
                    trigger.route_location.column,
                    component.id
                ));
                continue;
            };
            let compiled = match loader.component(component) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(format!("{e:#}"));
                    continue;
                }
            };
            Target::Wagi {
                component: compiled,
                argv: argv.clone(),
            }
        };
        if let Some(pattern) = pattern {
            entries.push(RouteEntry {
                pattern: pattern.clone(),
                target,
            });
        }
    }
    if !errors.is_empty() {
        bail!(
            "{} problem(s) in {}:\n{}",
            errors.len(),
            manifest.path.display(),
            errors.join("\n")
        );
    }
    Ok(LoadedApp {
        manifest_path,
        component_count: loader.components.len(),
        router: Router::new(entries),
        engine,
        limits,
        board: board.name,
    })
}

/// `--state-dir`, or `.flint` beside the manifest; created so that a
/// read-only location fails at startup rather than on first use.
fn state_dir(manifest: &Manifest, given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = given.map_or_else(|| manifest.dir.join(".flint"), Path::to_path_buf);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create state directory {}", dir.display()))?;
    Ok(dir)
}

/// Loads each component once, however many routes name it, and each module
/// once, however many components share it (one binary behind several routes),
/// which keeps startup time and idle memory flat.
struct ComponentLoader<'a> {
    engine: &'a Engine,
    manifest_dir: &'a Path,
    extra_env: &'a [(String, String)],
    staging: Option<&'a Path>,
    memory_limit: usize,
    modules: BTreeMap<PathBuf, wasmi::Module>,
    components: BTreeMap<String, Arc<WagiComponent>>,
}

impl ComponentLoader<'_> {
    fn component(&mut self, component: &Component) -> anyhow::Result<Arc<WagiComponent>> {
        if let Some(loaded) = self.components.get(&component.id) {
            return Ok(loaded.clone());
        }
        let module = match self.modules.get(&component.source) {
            Some(module) => module.clone(),
            None => {
                let module = self.engine.load_wagi_module(
                    &component.id,
                    &component.source,
                    self.memory_limit,
                )?;
                self.modules
                    .insert(component.source.clone(), module.clone());
                module
            }
        };
        let mut environment: Vec<(String, String)> = component
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // `flint up -e` overrides the manifest's value for the same name.
        environment.retain(|(k, _)| !self.extra_env.iter().any(|(e, _)| e == k));
        environment.extend(self.extra_env.iter().cloned());
        if let Some((key, _)) = environment
            .iter()
            .find(|(k, v)| k.is_empty() || k.contains(['=', '\0']) || v.contains('\0'))
        {
            bail!(
                "component `{}`: environment variable `{key}` cannot be passed to a guest",
                component.id
            );
        }
        let preopens = files::preopens(self.manifest_dir, component, self.staging)
            .with_context(|| format!("component `{}`: files", component.id))?;
        let loaded = Arc::new(WagiComponent {
            id: component.id.as_str().into(),
            module,
            environment,
            preopens,
        });
        self.components.insert(component.id.clone(), loaded.clone());
        Ok(loaded)
    }
}

fn static_reply(response: &flint_config::StaticResponse) -> anyhow::Result<StaticReply> {
    if response.status_code < 200 {
        bail!(
            "static_response status_code {} is an interim (1xx) status",
            response.status_code
        );
    }
    let mut headers = Vec::new();
    for (name, value) in &response.headers {
        if !is_valid_header(name, value) {
            bail!("static_response header `{name}` is not a valid HTTP header");
        }
        headers.push((name.clone(), value.clone()));
    }
    Ok(StaticReply {
        status: response.status_code,
        headers,
        body: response.body.clone().unwrap_or_default().into_bytes(),
    })
}

impl LoadedApp {
    /// One line per route for the startup banner, as `spin up` prints them.
    pub fn route_summaries(&self, addr: SocketAddr) -> Vec<String> {
        self.router
            .entries()
            .iter()
            .map(|e| {
                let name = match &e.target {
                    Target::Static(_) => "(static response)",
                    Target::Wagi { component, .. } => &component.id,
                };
                let wildcard = if e.pattern.is_wildcard() {
                    " (wildcard)"
                } else {
                    ""
                };
                format!(
                    "{name}: http://{addr}{}{wildcard}",
                    e.pattern.component_route()
                )
            })
            .collect()
    }
}

/// `flint up --build`: each component's `build.command`, run in its `workdir`.
pub fn build_components(manifest_path: &Path) -> anyhow::Result<()> {
    let manifest = load_manifest(manifest_path)?;
    for component in manifest.components.values() {
        let Some(build) = &component.build else {
            continue;
        };
        let workdir = manifest.dir.join(build.workdir.as_deref().unwrap_or("."));
        for command in &build.commands {
            tracing::info!(component = %component.id, workdir = %workdir.display(), "building: {command}");
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&workdir)
                .status()
                .with_context(|| {
                    format!(
                        "component `{}`: cannot run build command `{command}`",
                        component.id
                    )
                })?;
            if !status.success() {
                bail!(
                    "component `{}`: build command `{command}` failed ({status})",
                    component.id
                );
            }
        }
    }
    Ok(())
}
