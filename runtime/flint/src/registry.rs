//! `flint registry push|pull|login`, and apps given as registry references
//! to `flint up --from REF` and `flint deploy --from REF`: the glue between
//! the CLI and `flint_deploy::oci`.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use flint_deploy::oci::{self, Connect, Limits, Materialized, PushOptions, Reference};

use crate::cli::{
    AppArgs, DeployArgs, RegistryLoginArgs, RegistryPullArgs, RegistryPushArgs, UpArgs,
};

/// The state directory `flint up --from REF` uses without `--state-dir`.
pub const DEFAULT_STATE_DIR: &str = ".flint";

/// The registry reference `-f`/`APP` names, if it is one: not an existing
/// path, and `registry[:port]/repo[:tag|@sha256:…]` (Spin's `spin up -f`
/// tells them apart the same way).
pub fn reference_of(app: &AppArgs) -> Option<Reference> {
    let given = app.from.as_ref().or(app.app.as_ref())?;
    let text = given.to_str()?;
    oci::is_reference(text)
        .then(|| Reference::parse_explicit(text).ok())
        .flatten()
}

/// `flint up --from REF`: pulls the app (or takes it from the cache when
/// the registry is unreachable), materializes it under the state directory
/// and points `args` at it.
pub fn resolve_up(args: &mut UpArgs, reference: &Reference) -> anyhow::Result<()> {
    if args.build {
        bail!("--build needs a local app; {reference} is a registry reference");
    }
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    let made = materialize(reference, &state_dir, args.insecure)?;
    args.app.app = None;
    args.app.from = Some(made.dir.join("spin.toml"));
    args.state_dir = Some(state_dir);
    Ok(())
}

/// Pulls and materializes `reference` into `state_dir`, logging where it came from.
pub fn materialize(
    reference: &Reference,
    state_dir: &Path,
    insecure: bool,
) -> anyhow::Result<Materialized> {
    let made = oci::materialize(
        reference,
        state_dir,
        Connect { insecure },
        &Limits::default(),
    )
    .with_context(|| format!("cannot pull {reference}"))?;
    match &made.from_cache {
        Some(why) => tracing::warn!(
            target: "flint::oci",
            reference = %reference,
            digest = %made.manifest_digest,
            "{why}; using the cached manifest {} for {reference}",
            made.manifest_digest
        ),
        None => tracing::info!(
            target: "flint::oci",
            reference = %reference,
            digest = %made.manifest_digest,
            downloaded = made.downloaded,
            "pulled {reference}"
        ),
    }
    Ok(made)
}

/// `flint registry push REF [APP | -f MANIFEST]`.
pub fn push(args: &RegistryPushArgs) -> anyhow::Result<()> {
    let reference = Reference::parse(&args.reference).map_err(anyhow::Error::msg)?;
    let app = AppArgs {
        app: args.app.clone(),
        from: args.from.clone(),
        runtime_config_file: None,
        board: None,
    };
    let manifest = app.manifest_path();
    if args.build {
        crate::app::build_components(&manifest)?;
    }
    let pushed = oci::push(
        &manifest,
        &reference,
        &PushOptions {
            connect: Connect {
                insecure: args.insecure,
            },
            annotations: args.annotations.clone(),
        },
    )
    .with_context(|| format!("cannot push {} to {reference}", manifest.display()))?;
    tracing::info!(
        target: "flint::oci",
        layers = pushed.layers,
        uploaded = pushed.uploaded,
        bytes = pushed.bytes,
        "pushed {reference}"
    );
    println!("Pushed with digest {}", pushed.digest);
    Ok(())
}

/// `flint registry pull REF`: fills the cache of a state directory, so that
/// `flint up --from REF --state-dir DIR` starts without an uplink.
pub fn pull(args: &RegistryPullArgs) -> anyhow::Result<()> {
    let reference = Reference::parse(&args.reference).map_err(anyhow::Error::msg)?;
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    let made = materialize(&reference, &state_dir, args.insecure)?;
    println!(
        "Pulled {reference} ({}) into {}",
        made.manifest_digest,
        made.dir.display()
    );
    Ok(())
}

/// `flint registry login REGISTRY -u USER (-p PASS | --password-stdin)`.
pub fn login(args: &RegistryLoginArgs) -> anyhow::Result<()> {
    let password = if args.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the password from stdin")?;
        // `echo "$TOKEN" | … --password-stdin` adds a newline, as with `docker login`.
        let trimmed = text.strip_suffix('\n').unwrap_or(&text);
        trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned()
    } else {
        args.password
            .clone()
            .context("give the password with -p PASSWORD or --password-stdin")?
    };
    let file = oci::login(
        &args.server,
        &args.username,
        &password,
        Connect {
            insecure: args.insecure,
        },
    )
    .with_context(|| format!("cannot log in to {}", args.server))?;
    println!(
        "Successfully logged in as {} to registry {} (credentials in {})",
        args.username,
        args.server,
        file.display()
    );
    Ok(())
}

/// `flint deploy --from REF --app-dir DIR`: pulls the app into the cache of
/// the app directory's state (`DIR/state/oci`, so `flint up --app-dir DIR`
/// finds the same cache), packs the materialized app (with
/// `--runtime-config-file`, if given) into a bundle, and deploys that bundle
/// as `flint deploy BUNDLE` does: checked, then made current atomically.
pub fn deploy_from(args: &DeployArgs, reference: &str) -> anyhow::Result<()> {
    let reference = Reference::parse(reference).map_err(anyhow::Error::msg)?;
    let dir = flint_deploy::AppDir::open(&args.app_dir)?;
    let made = materialize(&reference, &dir.state_dir(), args.insecure)?;
    let bundles = dir.state_dir().join("oci").join("bundles");
    std::fs::create_dir_all(&bundles).with_context(|| format!("creating {}", bundles.display()))?;
    let bundle = bundles.join(format!(
        "{}-{}.flint",
        made.manifest_digest.hex(),
        std::process::id()
    ));
    let packed = flint_deploy::bundle(&flint_deploy::BundleSpec {
        manifest: &made.dir.join("spin.toml"),
        runtime_config: args.runtime_config_file.as_deref(),
        signing_key: None,
        output: &bundle,
        limits: flint_deploy::Limits::default(),
    })
    .with_context(|| format!("bundling {reference} ({})", made.dir.display()));
    let result = packed.and_then(|packed| {
        for warning in &packed.warnings {
            eprintln!("warning: {warning}");
        }
        println!(
            "{reference}: {} as version {}",
            made.manifest_digest, packed.id
        );
        crate::deploy::deploy_bundle(args, &bundle)
    });
    let _ = std::fs::remove_file(&bundle);
    result
}
