//! Command-line interface, mirroring `spin up` so that users' habits carry over.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "flint",
    version,
    about = "Run Spin apps (Spin SDK components and WAGI modules, on the wasmi interpreter) on small devices",
    long_about = "Flint runs Spin manifest v2 apps on the wasmi interpreter: no JIT, one static binary, \
                  small memory. `flint up` serves an app's HTTP routes and MQTT triggers; `flint check` \
                  validates it; `flint boards` lists the device profiles that set the limits.\n\n\
                  Guests: components (WASI 0.2: Rust wasm32-wasip2, JavaScript, any wasm32-wasip2 program \
                  as a WAGI guest), Spin SDK core modules built for wasm32-wasip1 (wasi:http, key-value, \
                  variables, outbound HTTP and MQTT) and WAGI modules in any language.\n\n\
                  Logging: RUST_LOG=debug (or e.g. RUST_LOG=flint::http=debug,flint::mqtt=debug,info) sets \
                  the log level; logs go to stderr, one line per request (`--log-format json`: one JSON \
                  object per line). GET /.well-known/flint/metrics serves Prometheus metrics, \
                  /.well-known/flint/status the status as JSON, /.well-known/flint/ a status page; \
                  `flint status` prints it for a person."
)]
pub struct Cli {
    /// How log lines are written to stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines
    Text,
    /// One JSON object per line, for log shippers
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve an app's HTTP routes and MQTT triggers
    Up(UpArgs),
    /// Validate the manifest, runtime config and every module, without serving
    Check(AppArgs),
    /// List the built-in board profiles and the limits each one sets
    Boards,
    /// Print a running instance's status: app, routes, request rates, MQTT, outbox, memory
    Status(StatusArgs),
}

#[derive(Args)]
pub struct StatusArgs {
    /// The app whose running instance to ask (its state directory records where it serves)
    #[arg(value_name = "APP", conflicts_with_all = ["from", "url"])]
    pub app: Option<PathBuf>,

    /// The app: a spin.toml file or the directory that holds it [default: ./spin.toml]
    #[arg(
        short = 'f',
        long = "from",
        value_name = "MANIFEST",
        conflicts_with = "url"
    )]
    pub from: Option<PathBuf>,

    /// The instance's state directory, as given to `flint up --state-dir`
    #[arg(long, value_name = "DIR", conflicts_with = "url")]
    pub state_dir: Option<PathBuf>,

    /// Ask this address instead (`http://HOST:PORT`, the listener serving /.well-known/flint/)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Args)]
pub struct AppArgs {
    /// The app: a spin.toml file or the directory that holds it
    #[arg(value_name = "APP", conflicts_with = "from")]
    pub app: Option<PathBuf>,

    /// The app: a spin.toml file or the directory that holds it [default: ./spin.toml]
    #[arg(short = 'f', long = "from", value_name = "MANIFEST")]
    pub from: Option<PathBuf>,

    /// Runtime-config file: key-value stores (`[key_value_store.<label>]`), `board = "..."` and limits (`[limits]`)
    #[arg(long, value_name = "FILE")]
    pub runtime_config_file: Option<PathBuf>,

    /// Board profile giving the default limits (`flint boards` lists them) [default: the runtime config's `board`, else the one for this CPU]
    #[arg(long, value_name = "NAME")]
    pub board: Option<String>,
}

impl AppArgs {
    pub fn manifest_path(&self) -> PathBuf {
        let given = self
            .from
            .clone()
            .or_else(|| self.app.clone())
            .unwrap_or_else(|| PathBuf::from("spin.toml"));
        if given.is_dir() {
            given.join("spin.toml")
        } else {
            given
        }
    }
}

#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub app: AppArgs,

    /// Address to listen on; port 0 picks a free port (printed on startup)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3000", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// Directory for the app's state [default: .flint next to the manifest]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Environment variable for every component, KEY=VALUE (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub env: Vec<(String, String)>,

    /// Value for an application variable, NAME=VALUE (repeatable); beats
    /// SPIN_VARIABLE_<NAME> in the environment, which beats the manifest's default
    #[arg(long = "variable", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    pub variables: Vec<(String, String)>,

    /// Run each component's `build.command` before starting
    #[arg(long)]
    pub build: bool,

    /// Serve the metrics, the status document and the status page on this address
    /// instead of the app's listener (which then answers them with 404)
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub metrics_listen: Option<SocketAddr>,
}

/// `HOST:PORT`, where HOST may be a name such as `localhost`, as with `spin up`.
fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| format!("`{s}` is not HOST:PORT: {e}"))?
        .next()
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn listen_accepts_names_and_addresses() {
        assert_eq!(
            parse_listen("127.0.0.1:3000"),
            Ok("127.0.0.1:3000".parse().expect("addr"))
        );
        assert!(parse_listen("localhost:3000").is_ok_and(|a| a.port() == 3000));
        assert!(parse_listen("nonsense").is_err());
    }

    #[test]
    fn env_pairs_must_have_a_key() {
        assert_eq!(parse_key_value("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("novalue").is_err());
    }
}
