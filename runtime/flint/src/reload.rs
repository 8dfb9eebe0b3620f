//! Switching a running Flint to another version of its app directory
//! without dropping a request: the new version is loaded beside the serving
//! one (same engine, same stores and outbox), must pass the health check on
//! a listener of its own, and only then replaces the route table. A version
//! that fails is recorded as failed and `current` goes back to the version
//! that kept serving. Reloads come from SIGHUP, from a change of `current`,
//! and from `flint deploy` through the control socket.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use flint_config::DeployConfig;
use flint_deploy::{AppDir, DeployOptions, Limits as BundleLimits, Trust};
use flint_engine::InstanceLimits;
use flint_engine::pool::WorkerPool;
use flint_trigger_http as http;
use flint_trigger_http::router::Router;

use crate::app::{self, LoadedApp, Reuse};

/// The control socket's name in the app directory.
pub const CONTROL_SOCKET: &str = "control.sock";

/// How often `current` is looked at for a change made by another process.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// A running app served from an app directory.
pub struct Reloader {
    pub dir: AppDir,
    /// The version serving now.
    serving: Mutex<String>,
    pub http: Arc<http::service::HttpApp>,
    reuse: Reuse,
    /// How the serving version was started: `-e`, `--variable`, the board.
    env: Vec<(String, String)>,
    variables: Vec<(String, String)>,
    board: Option<String>,
    state_dir: PathBuf,
    deploy: DeployConfig,
    trust: Trust,
    limits: flint_config::Limits,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reloaded {
    Unchanged(String),
    Switched { from: String, to: String },
}

pub struct ReloaderParts {
    pub dir: AppDir,
    pub serving: String,
    pub http: Arc<http::service::HttpApp>,
    pub reuse: Reuse,
    pub env: Vec<(String, String)>,
    pub variables: Vec<(String, String)>,
    pub board: Option<String>,
    pub state_dir: PathBuf,
    pub deploy: DeployConfig,
    pub trust: Trust,
    pub limits: flint_config::Limits,
}

impl Reloader {
    pub fn new(parts: ReloaderParts) -> Arc<Self> {
        Arc::new(Self {
            dir: parts.dir,
            serving: Mutex::new(parts.serving),
            http: parts.http,
            reuse: parts.reuse,
            env: parts.env,
            variables: parts.variables,
            board: parts.board,
            state_dir: parts.state_dir,
            deploy: parts.deploy,
            trust: parts.trust,
            limits: parts.limits,
        })
    }

    pub fn serving(&self) -> String {
        self.serving
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Serves the version `current` names, if it is not the one serving.
    /// A version that does not load or fails its health check is marked
    /// failed and `current` is switched back.
    pub fn reload(&self, why: &str) -> anyhow::Result<Reloaded> {
        let mut serving = self.serving.lock().unwrap_or_else(|e| e.into_inner());
        let Some(id) = self.dir.current()? else {
            bail!("the app directory has no current version");
        };
        if id == *serving {
            return Ok(Reloaded::Unchanged(id));
        }
        tracing::info!(version = %id, serving = %*serving, why, "loading a new version beside the serving one");
        let candidate = self.load(&id).and_then(|mut loaded| {
            let router = std::mem::replace(&mut loaded.router, Router::new(Vec::new()));
            // The new version's own `[deploy]` says how it is checked.
            health_check(router, &loaded.engine, &self.limits, &loaded.deploy)
        });
        match candidate {
            Ok(router) => {
                self.http.router.replace(router);
                let from = std::mem::replace(&mut *serving, id.clone());
                tracing::info!(from = %from, to = %id, "switched to the new version");
                Ok(Reloaded::Switched { from, to: id })
            }
            Err(e) => {
                let reason = format!("{e:#}");
                tracing::error!(version = %id, "version failed, rolling back to {}: {reason}", *serving);
                self.dir.mark_failed(&id)?;
                self.dir.switch_to(&serving)?;
                Err(e.context(format!("version {id} was rolled back to {}", *serving)))
            }
        }
    }

    fn load(&self, id: &str) -> anyhow::Result<LoadedApp> {
        let version = self.dir.version_dir(id);
        let args = crate::deploy::version_args(&version, self.board.clone());
        app::load(
            &args,
            Some(app::ServeOptions {
                state_dir: Some(&self.state_dir),
                env: &self.env,
                variables: &self.variables,
                reuse: Some(&self.reuse),
            }),
        )
    }

    /// `flint deploy` through the control socket: the same verified deploy
    /// as the offline one, then a reload.
    pub fn deploy_bundle(&self, bundle: &Path) -> anyhow::Result<Reloaded> {
        let mut check =
            |version: &Path| crate::deploy::check_version(version).map_err(|e| format!("{e:#}"));
        let mut on_step = |_| {};
        self.dir.deploy(
            bundle,
            DeployOptions {
                trust: &self.trust,
                keep_versions: self.deploy.keep_versions,
                limits: BundleLimits::default(),
                check: &mut check,
                on_step: &mut on_step,
            },
        )?;
        self.reload("deploy")
    }

    /// Reloads whenever `current` is changed by another process.
    pub fn watch(self: &Arc<Self>) -> std::io::Result<()> {
        let me = self.clone();
        std::thread::Builder::new()
            .name("flint-app-dir".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(WATCH_INTERVAL);
                    match me.dir.current() {
                        Ok(Some(id)) if id != me.serving() => {
                            if let Err(e) = me.reload("`current` changed") {
                                tracing::error!("{e:#}");
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!("reading the app directory: {e}"),
                    }
                }
            })
            .map(drop)
    }

    /// Serves the control socket: `deploy <bundle path>` and `reload`, one
    /// command per connection, answered `ok <text>` or `error <text>`.
    pub fn serve_control(self: &Arc<Self>) -> anyhow::Result<()> {
        let path = self.dir.root().join(CONTROL_SOCKET);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("binding the control socket {}", path.display()))?;
        // Owner only: whoever can connect can replace the app.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
        let me = self.clone();
        std::thread::Builder::new()
            .name("flint-control".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    me.answer(conn);
                }
            })?;
        Ok(())
    }

    fn answer(&self, conn: UnixStream) {
        let mut line = String::new();
        let mut reader = BufReader::new(&conn).take(64 * 1024);
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let line = line.trim_end();
        let result = match line.split_once(' ') {
            Some(("deploy", path)) => self.deploy_bundle(Path::new(path)),
            None if line == "reload" => self.reload("control socket"),
            _ => Err(anyhow::anyhow!("unknown command `{line}`")),
        };
        let reply = match result {
            Ok(Reloaded::Unchanged(id)) => format!("ok version {id} is current\n"),
            Ok(Reloaded::Switched { from, to }) => {
                format!("ok switched from version {from} to version {to}\n")
            }
            Err(e) => format!("error {}\n", format!("{e:#}").replace('\n', "; ")),
        };
        let _ = (&conn).write_all(reply.as_bytes());
    }
}

/// Sends `command` to the Flint serving from `app_dir`, if one is; `None`
/// when nothing listens there.
pub fn send(app_dir: &Path, command: &str) -> Option<anyhow::Result<String>> {
    let socket = app_dir.join(CONTROL_SOCKET);
    let mut attempts = 0;
    let mut conn = loop {
        match UnixStream::connect(&socket) {
            Ok(conn) => break conn,
            // No Flint serves the directory (none started, or one died and
            // left its socket): the caller does the work itself.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                return None;
            }
            // A busy listener: worth another try before giving up on it.
            Err(e)
                if attempts < 10
                    && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => {
                return Some(Err(anyhow::anyhow!(
                    "cannot reach the Flint serving {} through {}: {e}",
                    app_dir.display(),
                    socket.display()
                )));
            }
        }
    };
    Some((|| {
        conn.write_all(format!("{command}\n").as_bytes())?;
        conn.shutdown(std::net::Shutdown::Write)?;
        let mut reply = String::new();
        conn.read_to_string(&mut reply)?;
        match reply.trim_end().split_once(' ') {
            Some(("ok", text)) => Ok(text.to_owned()),
            Some(("error", text)) => bail!("{text}"),
            _ => bail!("the running Flint gave no answer"),
        }
    })())
}

/// A new version's health: every HTTP route's component instantiates, and
/// on a listener of its own (so nothing reaches the app's clients yet)
/// `/.well-known/spin/health` and the app's `health_route` answer 2xx within
/// `health_timeout_ms`. Returns the version's route table, to serve.
pub fn health_check(
    router: Router,
    engine: &Arc<flint_host::Engine>,
    limits: &flint_config::Limits,
    deploy: &DeployConfig,
) -> anyhow::Result<Arc<Router>> {
    let instance_limits = InstanceLimits::from_limits(limits);
    for entry in router.entries() {
        if let Some(component) = entry.target.component() {
            flint_executor::probe(engine, component, &instance_limits).map_err(|e| {
                anyhow::anyhow!(
                    "route `{}`: component `{}` {e}",
                    entry.pattern.raw(),
                    component.id
                )
            })?;
        }
    }
    let timeout = Duration::from_millis(deploy.health_timeout_ms);
    let app = Arc::new(http::service::HttpApp {
        router: http::router::RouterSlot::new(router),
        engine: engine.clone(),
        pool: WorkerPool::new(1, 16).context("starting the health check's worker")?,
        instance_limits,
        write_timeout: timeout,
        read_timeout: timeout,
        operator: Arc::new(NoOperator),
        max_instances_per_component: 16,
        metrics: Default::default(),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let role = http::service::Role {
        app_routes: true,
        operator_routes: false,
    };
    let server = http::server::start(app.clone(), listener, limits, role)?;
    let mut routes = vec!["/.well-known/spin/health".to_owned()];
    routes.extend(deploy.health_route.clone());
    let result = routes
        .iter()
        .try_for_each(|route| match get(addr, route, timeout) {
            Ok(status) if (200..300).contains(&status) => Ok(()),
            Ok(status) => bail!("health check `{route}` answered {status}"),
            Err(e) => bail!("health check `{route}`: {e}"),
        });
    server.stop();
    result?;
    Ok(app.router.replace(Arc::new(Router::new(Vec::new()))))
}

/// The health check's listener serves no operator routes.
struct NoOperator;

impl http::service::Operator for NoOperator {
    fn status(&self, _: &http::service::HttpApp, _: http::service::StatusFormat) -> String {
        String::new()
    }
    fn write_metrics(
        &self,
        _: &http::service::HttpApp,
        _: &mut flint_engine::metrics::MetricsWriter,
    ) {
    }
}

/// `GET path` on `addr`: the response's status code.
fn get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<u16> {
    let mut conn = TcpStream::connect_timeout(&addr, timeout)?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line)?;
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an HTTP response: {line:?}"),
            )
        })
}
