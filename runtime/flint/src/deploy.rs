//! `flint bundle`, `flint bundle verify`, `flint keygen`, `flint deploy` and
//! `flint up --app-dir`: the CLI over `flint-deploy`, with this crate's app
//! loader as the deploy's check (the same code `flint check` runs).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use flint_deploy::{
    AppDir, BundleSpec, DeployOptions, Limits, PublicKey, SigningKey, Step, Trust, paths,
};

use crate::app;
use crate::cli::{AppArgs, BundleAction, BundleArgs, DeployArgs, KeygenArgs, UpArgs, VerifyArgs};

/// Makes `flint deploy` stop at a step, print `paused at <step>` to stderr
/// and sleep until killed: how tests kill a deploy at each step.
pub const PAUSE_VAR: &str = "FLINT_DEPLOY_PAUSE_AT";

pub fn bundle(args: BundleArgs) -> anyhow::Result<()> {
    if let Some(BundleAction::Verify(verify_args)) = &args.action {
        return verify(verify_args);
    }
    let manifest = args.manifest_path();
    let output = args.output.clone().context("missing -o FILE")?;
    let key = match &args.sign {
        Some(path) => Some(SigningKey::load(path)?),
        None => None,
    };
    let packed = flint_deploy::bundle(&BundleSpec {
        manifest: &manifest,
        runtime_config: args.runtime_config_file.as_deref(),
        signing_key: key.as_ref(),
        output: &output,
        limits: Limits::default(),
    })
    .with_context(|| format!("bundling {}", manifest.display()))?;
    for warning in &packed.warnings {
        eprintln!("warning: {warning}");
    }
    let signed = packed.signed_by.as_ref().map_or_else(
        || "unsigned".to_owned(),
        |key| format!("signed by key {key}"),
    );
    println!(
        "{}: version {}, {} files, {} bytes, {signed}",
        output.display(),
        packed.id,
        packed.files,
        packed.bytes
    );
    Ok(())
}

fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let mut keys = Vec::new();
    for path in &args.trusted_key {
        keys.push(PublicKey::load(path)?);
    }
    if let Some(dir) = &args.trusted_keys {
        keys.extend(flint_deploy::load_trusted_dir(dir)?);
    }
    let trust = Trust::from_keys(keys);
    let (head, signer, verified) = flint_deploy::verify(&args.bundle, &trust, &Limits::default())?;
    println!(
        "{}: ok: version {}, {} files, {} bytes, every digest matches, {signer}",
        args.bundle.display(),
        head.id,
        verified.files,
        verified.bytes
    );
    Ok(())
}

pub fn keygen(args: &KeygenArgs) -> anyhow::Result<()> {
    let (private, public, key) = flint_deploy::keygen(&args.output)?;
    println!(
        "wrote {} (private: keep it secret) and {} (public key {})",
        private.display(),
        public.display(),
        key.id()
    );
    Ok(())
}

pub fn deploy(args: &DeployArgs) -> anyhow::Result<()> {
    if let Some(reference) = &args.from {
        return crate::registry::deploy_from(args, reference);
    }
    let bundle = args
        .bundle
        .as_deref()
        .context("give the BUNDLE to deploy (or --from REFERENCE)")?;
    deploy_bundle(args, bundle)
}

/// `flint deploy` of `bundle` (a file, or the one `--from` packed). When a
/// Flint is serving from the app directory, it does the deploy (with its
/// own trusted keys) and switches to the new version without a restart.
pub fn deploy_bundle(args: &DeployArgs, bundle: &Path) -> anyhow::Result<()> {
    let absolute =
        std::path::absolute(bundle).with_context(|| format!("resolving {}", bundle.display()))?;
    let command = format!("deploy {}", absolute.display());
    if let Some(reply) = crate::reload::send(&args.app_dir, &command) {
        let reply = reply.with_context(|| {
            format!(
                "the Flint serving {} refused the deploy",
                args.app_dir.display()
            )
        })?;
        println!("{}: {reply}", args.app_dir.display());
        return Ok(());
    }
    let trust = match &args.trusted_keys {
        Some(dir) => Trust::Keys(flint_deploy::load_trusted_dir(dir)?),
        None => Trust::Any,
    };
    let pause = match std::env::var(PAUSE_VAR) {
        Ok(name) => match Step::parse(&name) {
            Some(step) => Some(step),
            None => bail!(
                "{PAUSE_VAR}=`{name}` is not a deploy step (one of: {})",
                Step::ALL.map(Step::name).join(", ")
            ),
        },
        Err(_) => None,
    };
    let dir = AppDir::open(&args.app_dir)?;
    let mut on_step = |step: Step| {
        tracing::debug!(step = step.name(), "deploy step done");
        if pause == Some(step) {
            eprintln!("paused at {step}");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    };
    let mut check = |version: &Path| check_version(version).map_err(|e| format!("{e:#}"));
    let deployed = dir.deploy(
        bundle,
        DeployOptions {
            trust: &trust,
            keep_versions: args.keep_versions,
            limits: Limits::default(),
            check: &mut check,
            on_step: &mut on_step,
        },
    )?;
    if deployed.already_current {
        println!(
            "{}: version {} is already current ({})",
            args.app_dir.display(),
            deployed.id,
            deployed.signer
        );
        return Ok(());
    }
    let previous = deployed.previous.as_deref().unwrap_or("none");
    println!(
        "{}: version {} is current (previous: {previous}; {})",
        args.app_dir.display(),
        deployed.id,
        deployed.signer
    );
    if !deployed.pruned.is_empty() {
        println!("removed old versions: {}", deployed.pruned.join(", "));
    }
    Ok(())
}

/// The checks `flint check` runs, on an unpacked version: its spin.toml and
/// its runtime config, if it has one.
pub(crate) fn check_version(version: &Path) -> anyhow::Result<()> {
    app::load(&version_args(version, None), None).map(drop)
}

/// How an unpacked version is loaded: its spin.toml and its bundled
/// runtime config, on `board` (or the config's, or the default).
pub(crate) fn version_args(version: &Path, board: Option<String>) -> AppArgs {
    AppArgs {
        app: None,
        from: Some(version.join(paths::MANIFEST)),
        runtime_config_file: bundled_runtime_config(version),
        board,
    }
}

fn bundled_runtime_config(version: &Path) -> Option<PathBuf> {
    let path = version.join(paths::RUNTIME_CONFIG);
    path.is_file().then_some(path)
}

/// `flint up --app-dir DIR`: the current version's manifest, its bundled
/// runtime config unless one is given, and DIR/state unless a state
/// directory is given. `current` is resolved once, here. Returns the id.
pub fn resolve_app_dir(args: &mut UpArgs, root: &Path) -> anyhow::Result<String> {
    let dir = AppDir::existing(root)?;
    // Leftovers of an interrupted deploy, unless one is running now. Serving
    // does not depend on it (the directory may be read-only to this process).
    if let Err(e) = dir.recover() {
        tracing::warn!(app_dir = %root.display(), "not cleaning up after an interrupted deploy: {e}");
    }
    let id = dir.current()?.with_context(|| {
        format!(
            "app directory `{}` has no current version (deploy one with `flint deploy BUNDLE --app-dir {}`)",
            root.display(),
            root.display()
        )
    })?;
    let version = dir.version_dir(&id);
    args.app.from = Some(version.join(paths::MANIFEST));
    if args.app.runtime_config_file.is_none() {
        args.app.runtime_config_file = bundled_runtime_config(&version);
    }
    if args.state_dir.is_none() {
        args.state_dir = Some(dir.state_dir());
    }
    tracing::info!(app_dir = %root.display(), version = %id, "serving the current version");
    Ok(id)
}
