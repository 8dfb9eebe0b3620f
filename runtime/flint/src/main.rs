//! `flint`: serve Spin apps on the wasmi interpreter.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use tracing_subscriber::filter::Targets;

use flint::cli::{Cli, Command, UpArgs};
use flint::{app, board, status, systemd};
use flint_engine::InstanceLimits;
use flint_engine::pool::WorkerPool;
use flint_trigger_http as http;
use flint_trigger_mqtt as mqtt;

/// See `dlmalloc` in Cargo.toml: musl's allocator is the bottleneck of a
/// fresh instance per request.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() -> ExitCode {
    // wasi-common reports `proc_exit` and errno results as `anyhow` errors, and
    // each one captures a backtrace when RUST_BACKTRACE is set: 30 µs (glibc) to
    // 1.2 ms (musl) per request. RUST_LIB_BACKTRACE=0 turns that off for error
    // values while keeping panic backtraces.
    // SAFETY: no other thread exists yet, so nothing reads the environment concurrently.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };

    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Up(args) => up(args),
        Command::Boards => board::all().map(|boards| print!("{}", board::describe(&boards))),
        Command::Check(args) => app::load(&args, None).map(|loaded| {
            println!(
                "{}: ok ({} components, {} routes)",
                loaded.manifest_path.display(),
                loaded.component_count,
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

fn init_logging() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
}

fn up(args: UpArgs) -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    if args.build {
        app::build_components(&args.app.manifest_path())?;
    }
    let loaded = app::load(
        &args.app,
        Some(app::ServeOptions {
            state_dir: args.state_dir.as_deref(),
            env: &args.env,
            variables: &args.variables,
        }),
    )?;
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let limits = loaded.limits.clone();
    let instance_limits = InstanceLimits::from_limits(&limits);
    let routes: Vec<String> = loaded.route_summaries(addr);
    let mqtt_status = match loaded.mqtt {
        Some(plan) => {
            let status = Arc::new(mqtt::status::MqttStatus::default());
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
            mqtt::start(
                plan.session,
                plan.subscriptions,
                loaded.engine.clone(),
                instance_limits.clone(),
                plan.max_payload_bytes,
                status.clone(),
            )?;
            Some((status, topics))
        }
        None => None,
    };
    let status_report = status::report(
        instance_limits.memory_budget.clone(),
        mqtt_status.as_ref().map(|(status, _)| status.clone()),
        loaded.outbox.clone(),
    );
    let app = Arc::new(http::service::HttpApp {
        router: loaded.router,
        engine: loaded.engine,
        pool: WorkerPool::new(limits.workers, limits.max_queued_requests)
            .context("starting worker threads")?,
        instance_limits,
        write_timeout: std::time::Duration::from_millis(limits.write_timeout_ms),
        status: status_report,
        max_instances_per_component: limits.max_instances_per_component,
    });
    let server = http::server::start(app, listener, &limits)?;
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
    tracing::info!(board = %loaded.board, workers = limits.workers, "serving http://{addr}");
    systemd::notify("READY=1");
    if let Some(signal) = signals.forever().next() {
        tracing::info!(signal, "stopping: finishing in-flight requests");
    }
    systemd::notify("STOPPING=1");
    server.stop();
    tracing::info!("stopped");
    Ok(())
}
