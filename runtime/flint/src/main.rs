//! `flint`: serve Spin apps on the wasmi interpreter.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use flint::cli::{Cli, Command, RegistryAction, StatusArgs, UpArgs};
use flint::{app, board, logging, status, systemd};
use flint::{deploy, registry, reload};
use flint_engine::InstanceLimits;
use flint_engine::pool::WorkerPool;
use flint_trigger_http as http;
use flint_trigger_mqtt as mqtt;
use flint_trigger_redis as redis;

/// See `dlmalloc` in Cargo.toml: musl's allocator is the bottleneck of a
/// fresh instance per request.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() -> ExitCode {
    flint::startup::begin();
    // An `anyhow` error captures a backtrace when RUST_BACKTRACE is set: 30 µs
    // (glibc) to 1.2 ms (musl) each, which once cost every request (wasi-common
    // reported `proc_exit` as one). RUST_LIB_BACKTRACE=0 turns that off for
    // error values while keeping panic backtraces.
    // SAFETY: no other thread exists yet, so nothing reads the environment concurrently.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };

    let cli = Cli::parse();
    logging::init(cli.log_format);
    flint::startup::main_line();
    flint::startup::mark("cli");
    let result = match cli.command {
        Command::Up(args) => up(args),
        Command::Status(args) => status_of(args),
        Command::Boards => board::all().map(|boards| print!("{}", board::describe(&boards))),
        Command::Bundle(args) => deploy::bundle(args),
        Command::Keygen(args) => deploy::keygen(&args),
        Command::Deploy(args) => deploy::deploy(&args),
        Command::Registry(args) => match &args.action {
            RegistryAction::Push(push) => registry::push(push),
            RegistryAction::Pull(pull) => registry::pull(pull),
            RegistryAction::Login(login) => registry::login(login),
        },
        Command::Check(args) => app::load(&args, None).map(|loaded| {
            println!(
                "{}: ok ({} components, {} routes)",
                loaded.manifest_path.display(),
                loaded.components.len(),
                loaded.router.entries().len()
            );
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("{cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Where `flint up` records the address of the listener serving
/// `/.well-known/flint/`, for `flint status`.
const STATUS_URL_FILE: &str = "status-url";

fn up(mut args: UpArgs) -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("installing signal handlers")?;
    let given_runtime_config = args.app.runtime_config_file.clone();
    let given_state_dir = args.state_dir.clone();
    let mut serving_id = None;
    if let Some(dir) = args.app_dir.clone() {
        let id = deploy::resolve_app_dir(&mut args, &dir)?;
        println!("App directory {}: version {id}", dir.display());
        serving_id = Some(id);
    }
    if let Some(reference) = registry::reference_of(&args.app) {
        registry::resolve_up(&mut args, &reference)?;
    }
    if args.build {
        app::build_components(&args.app.manifest_path())?;
    }
    // From an app directory, the current version must pass its health
    // check before it serves; one that fails is marked failed and the
    // previous version is served instead.
    let (loaded, router) = loop {
        let mut loaded = app::load(
            &args.app,
            Some(app::ServeOptions {
                state_dir: args.state_dir.as_deref(),
                env: &args.env,
                variables: &args.variables,
                reuse: None,
            }),
        )?;
        // Once, before the first health check: a migration the health route
        // may depend on, not repeated for a version rolled back to.
        app::run_sqlite_statements(&loaded.services, &std::mem::take(&mut args.sqlite))?;
        let router = std::mem::replace(&mut loaded.router, http::router::Router::new(Vec::new()));
        let (Some(dir), Some(id)) = (args.app_dir.clone(), serving_id.clone()) else {
            break (loaded, Arc::new(router));
        };
        match reload::health_check(router, &loaded.engine, &loaded.limits, &loaded.deploy) {
            Ok(router) => break (loaded, router),
            Err(e) => {
                drop(loaded);
                let app_dir = flint_deploy::AppDir::existing(&dir)?;
                app_dir.mark_failed(&id)?;
                let previous = app_dir.rollback().map_err(|r| {
                    anyhow::anyhow!("version {id} failed its health check ({e:#}), and {r}")
                })?;
                tracing::error!(version = %id, "version failed its health check, rolled back to {previous}: {e:#}");
                args.app.runtime_config_file = given_runtime_config.clone();
                args.state_dir = given_state_dir.clone();
                serving_id = Some(deploy::resolve_app_dir(&mut args, &dir)?);
            }
        }
    };
    flint::startup::mark("loaded");
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let metrics_listener = match args.metrics_listen {
        Some(at) => Some(
            std::net::TcpListener::bind(at)
                .with_context(|| format!("cannot listen on {at} (--metrics-listen)"))?,
        ),
        None => None,
    };
    let limits = loaded.limits.clone();
    let instance_limits = InstanceLimits::from_limits(&limits);
    let routes: Vec<String> = app::route_summaries(&router, addr);
    let mqtt_status = match loaded.mqtt {
        Some(plan) => {
            let topics: Vec<String> = plan
                .subscriptions
                .iter()
                .map(|s| {
                    format!(
                        "{}: {}/{}",
                        s.component.id,
                        plan.session.broker.url(),
                        s.filter
                    )
                })
                .collect();
            let status = mqtt::start(
                plan.session,
                plan.subscriptions,
                loaded.engine.clone(),
                instance_limits.clone(),
                plan.max_payload_bytes,
            )?;
            Some((status, topics))
        }
        None => None,
    };
    let redis_channels: Vec<String> = loaded
        .redis
        .iter()
        .flat_map(|server| {
            server.triggers.iter().map(|t| {
                format!(
                    "{}: {}/{}",
                    t.component.id,
                    server.address.display(),
                    t.channel
                )
            })
        })
        .collect();
    let redis_status = match loaded.redis.is_empty() {
        true => None,
        false => Some(redis::start(
            loaded.redis,
            loaded.engine.clone(),
            instance_limits.clone(),
            usize::try_from(limits.max_request_body_bytes).unwrap_or(usize::MAX),
        )?),
    };
    let mut observed = status::Observed::new(
        loaded.name.clone(),
        loaded.version.clone(),
        loaded.board.clone(),
        instance_limits.memory_budget.clone(),
        loaded.components.clone(),
        loaded.services.clone(),
        mqtt_status.as_ref().map(|(status, _)| status.clone()),
        loaded.outbox.clone(),
    );
    observed.redis = redis_status;
    let observed = Arc::new(observed);
    let app = Arc::new(http::service::HttpApp {
        router: http::router::RouterSlot::new(router),
        engine: loaded.engine,
        pool: WorkerPool::new(limits.workers, limits.max_queued_requests)
            .context("starting worker threads")?,
        instance_limits,
        write_timeout: std::time::Duration::from_millis(limits.write_timeout_ms),
        read_timeout: std::time::Duration::from_millis(limits.read_timeout_ms),
        operator: observed.clone(),
        max_instances_per_component: limits.max_instances_per_component,
        metrics: Default::default(),
    });
    observed
        .sample_forever(app.clone())
        .context("starting the status sampler")?;
    let role = http::service::Role {
        app_routes: true,
        operator_routes: metrics_listener.is_none(),
    };
    let server = http::server::start(app.clone(), listener, &limits, role)?;
    flint::startup::mark("listening");
    let (operator_addr, metrics_server) = match metrics_listener {
        Some(listener) => {
            let at = listener.local_addr()?;
            let role = http::service::Role {
                app_routes: false,
                operator_routes: true,
            };
            (
                at,
                Some(http::server::start(app.clone(), listener, &limits, role)?),
            )
        }
        None => (addr, None),
    };
    if let Some(dir) = &loaded.state_dir {
        let file = dir.join(STATUS_URL_FILE);
        std::fs::write(&file, format!("http://{operator_addr}\n"))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    let reloader = match (&args.app_dir, serving_id) {
        (Some(dir), Some(serving)) => {
            let trust = match &args.trusted_keys {
                Some(keys) => flint_deploy::Trust::Keys(flint_deploy::load_trusted_dir(keys)?),
                None => flint_deploy::Trust::Any,
            };
            let reloader = reload::Reloader::new(reload::ReloaderParts {
                dir: flint_deploy::AppDir::existing(dir)?,
                serving,
                http: app.clone(),
                reuse: app::Reuse {
                    engine: app.engine.clone(),
                    services: loaded.services.clone(),
                },
                env: args.env.clone(),
                variables: args.variables.clone(),
                board: args.app.board.clone(),
                state_dir: loaded.state_dir.clone().unwrap_or_default(),
                deploy: loaded.deploy.clone(),
                trust,
                limits: limits.clone(),
            });
            reloader.watch().context("watching the app directory")?;
            reloader.serve_control()?;
            flint::mqtt_deploy::start(
                &reloader,
                flint::mqtt_deploy::Settings {
                    deploy: &loaded.deploy,
                    manifest: &loaded.manifest_path,
                    variables: &args.variables,
                    services: loaded.services.clone(),
                    insecure: args.insecure,
                },
            )
            .context("starting deploys over MQTT (`[deploy] mqtt_topic`)")?;
            Some(reloader)
        }
        _ => {
            if loaded.deploy.mqtt_topic.is_some() {
                tracing::warn!(
                    "`[deploy] mqtt_topic` is ignored: deploys over MQTT need `flint up --app-dir`"
                );
            }
            None
        }
    };
    // Printed once everything is up, the control socket included: scripts
    // and tests take this line to mean that Flint serves and takes deploys.
    println!("Serving http://{addr}");
    println!("Available Routes:");
    for route in routes {
        println!("  {route}");
    }
    if let Some((_, topics)) = &mqtt_status {
        println!("MQTT Subscriptions:");
        for topic in topics {
            println!("  {topic}");
        }
    }
    if !redis_channels.is_empty() {
        println!("Redis Channels:");
        for channel in &redis_channels {
            println!("  {channel}");
        }
    }
    println!("Metrics: http://{operator_addr}/.well-known/flint/metrics");
    flint::startup::mark("serving");
    tracing::info!(board = %loaded.board, workers = limits.workers, "serving http://{addr}");
    systemd::notify("READY=1");
    for signal in signals.forever() {
        if signal == SIGHUP {
            match &reloader {
                Some(reloader) => match reloader.reload("SIGHUP") {
                    Ok(outcome) => tracing::info!(?outcome, "SIGHUP: reload done"),
                    Err(e) => tracing::error!("SIGHUP: {e:#}"),
                },
                None => tracing::info!("SIGHUP: nothing to reload (not serving an --app-dir)"),
            }
            continue;
        }
        tracing::info!(signal, "stopping: finishing in-flight requests");
        break;
    }
    systemd::notify("STOPPING=1");
    if let Some(metrics_server) = metrics_server {
        metrics_server.stop();
    }
    server.stop();
    tracing::info!("stopped");
    Ok(())
}

/// `flint status`: the human summary of a running instance.
fn status_of(args: StatusArgs) -> anyhow::Result<()> {
    let url = match args.url {
        Some(url) => url,
        None => {
            let dir = match args.state_dir {
                Some(dir) => dir,
                None => {
                    let app = flint::cli::AppArgs {
                        app: args.app,
                        from: args.from,
                        runtime_config_file: None,
                        board: None,
                    };
                    let manifest = app.manifest_path();
                    let parent = manifest.parent().unwrap_or(std::path::Path::new("."));
                    let parent = if parent.as_os_str().is_empty() {
                        std::path::Path::new(".")
                    } else {
                        parent
                    };
                    parent.join(".flint")
                }
            };
            let file = dir.join(STATUS_URL_FILE);
            let url = std::fs::read_to_string(&file).with_context(|| {
                format!(
                    "no running instance recorded in {} (is `flint up` running with this state directory? or pass --url)",
                    file.display()
                )
            })?;
            url.trim().to_owned()
        }
    };
    let summary = flint::status_client::fetch_text(&url)?;
    print!("{summary}");
    Ok(())
}
