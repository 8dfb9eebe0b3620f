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
    /// Pack an app (manifest, modules, files, runtime config) into one bundle file,
    /// optionally signed; `flint bundle verify` checks one
    Bundle(BundleArgs),
    /// Write an Ed25519 key pair for signing bundles: NAME.key (private, mode 0600) and NAME.pub
    Keygen(KeygenArgs),
    /// Verify a bundle, unpack it as a new version of an app directory, check it and
    /// make it current
    Deploy(DeployArgs),
    /// Push apps to an OCI registry in Spin's format (`spin up --from REF` runs
    /// them), pull them into a state directory's cache, log in to a registry
    Registry(RegistryArgs),
}

#[derive(Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    pub action: RegistryAction,
}

#[derive(Subcommand)]
pub enum RegistryAction {
    /// Push an app to a registry as `spin registry push` does (its locked app,
    /// Wasm and file layers); prints the manifest digest
    Push(RegistryPushArgs),
    /// Pull an app into a state directory's cache, so `flint up --from REF
    /// --state-dir DIR` starts from it even without an uplink
    Pull(RegistryPullArgs),
    /// Check credentials against a registry and store them in
    /// $XDG_CONFIG_HOME/flint/registry-auth.json (Docker's config.json is read too)
    Login(RegistryLoginArgs),
}

#[derive(Args)]
pub struct RegistryPushArgs {
    /// Where to push: registry[:port]/repository[:tag], e.g. ghcr.io/me/app:1.0
    #[arg(value_name = "REFERENCE")]
    pub reference: String,

    /// The app: a spin.toml file or the directory that holds it
    #[arg(value_name = "APP", conflicts_with = "from")]
    pub app: Option<PathBuf>,

    /// The app: a spin.toml file or the directory that holds it [default: ./spin.toml]
    #[arg(short = 'f', long = "from", value_name = "MANIFEST")]
    pub from: Option<PathBuf>,

    /// Talk to the registry over plain HTTP instead of HTTPS (Spin's --insecure)
    #[arg(short = 'k', long)]
    pub insecure: bool,

    /// An annotation for the image manifest, KEY=VALUE (repeatable); beats the
    /// inferred org.opencontainers.image.* ones
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub annotations: Vec<(String, String)>,

    /// Run each component's `build.command` before pushing
    #[arg(long)]
    pub build: bool,
}

#[derive(Args)]
pub struct RegistryPullArgs {
    /// What to pull: registry[:port]/repository[:tag|@sha256:DIGEST]
    #[arg(value_name = "REFERENCE")]
    pub reference: String,

    /// The state directory whose cache (DIR/oci) to fill [default: .flint]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Talk to the registry over plain HTTP instead of HTTPS (Spin's --insecure)
    #[arg(short = 'k', long)]
    pub insecure: bool,
}

#[derive(Args)]
pub struct RegistryLoginArgs {
    /// The registry, e.g. ghcr.io or 127.0.0.1:5000
    #[arg(value_name = "REGISTRY")]
    pub server: String,

    /// User name
    #[arg(short = 'u', long = "username", value_name = "USER")]
    pub username: String,

    /// Password (or token)
    #[arg(
        short = 'p',
        long = "password",
        value_name = "PASSWORD",
        conflicts_with = "password_stdin",
        required_unless_present = "password_stdin"
    )]
    pub password: Option<String>,

    /// Read the password from stdin (one trailing newline is dropped)
    #[arg(long)]
    pub password_stdin: bool,

    /// Check the credentials over plain HTTP instead of HTTPS
    #[arg(short = 'k', long)]
    pub insecure: bool,
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BundleArgs {
    #[command(subcommand)]
    pub action: Option<BundleAction>,

    /// The app: a spin.toml file or the directory that holds it
    #[arg(value_name = "APP", conflicts_with = "from")]
    pub app: Option<PathBuf>,

    /// The app: a spin.toml file or the directory that holds it [default: ./spin.toml]
    #[arg(short = 'f', long = "from", value_name = "MANIFEST")]
    pub from: Option<PathBuf>,

    /// The bundle file to write
    #[arg(short = 'o', long = "output", value_name = "FILE", required = true)]
    pub output: Option<PathBuf>,

    /// A runtime-config file to pack with the app (`flint up --app-dir` uses it)
    #[arg(long, value_name = "FILE")]
    pub runtime_config_file: Option<PathBuf>,

    /// Sign the bundle with this private key (NAME.key, from `flint keygen`)
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum BundleAction {
    /// Check a bundle: its signature, every file's digest, every archive entry
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The bundle file
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,

    /// A public key (NAME.pub) the bundle must be signed by; repeatable. Without
    /// any, an unsigned bundle passes and a signature is checked only against
    /// the key it names
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_key: Vec<PathBuf>,

    /// A directory whose `*.pub` files are trusted keys
    #[arg(long = "trusted-keys", value_name = "DIR")]
    pub trusted_keys: Option<PathBuf>,
}

#[derive(Args)]
pub struct KeygenArgs {
    /// Writes NAME.key and NAME.pub (refusing to replace either)
    #[arg(short = 'o', long = "output", value_name = "NAME")]
    pub output: PathBuf,
}

#[derive(Args)]
pub struct DeployArgs {
    /// The bundle file (from `flint bundle`)
    #[arg(value_name = "BUNDLE", required_unless_present = "from")]
    pub bundle: Option<PathBuf>,

    /// Deploy an app from a registry instead of a bundle:
    /// registry[:port]/repo[:tag|@sha256:…], pulled (or taken from the cache in
    /// DIR/state/oci when the registry is unreachable), every blob checked
    /// against its digest
    #[arg(
        long,
        value_name = "REFERENCE",
        conflicts_with_all = ["bundle", "trusted_keys"]
    )]
    pub from: Option<String>,

    /// With --from: a runtime-config file to deploy with the app
    #[arg(long, value_name = "FILE", requires = "from")]
    pub runtime_config_file: Option<PathBuf>,

    /// With --from: pull over plain HTTP instead of HTTPS (Spin's --insecure)
    #[arg(short = 'k', long, requires = "from")]
    pub insecure: bool,

    /// The app directory: versions under DIR/versions, DIR/current the one served
    #[arg(long, value_name = "DIR")]
    pub app_dir: PathBuf,

    /// Accept only bundles signed by one of the keys in DIR/*.pub (an unsigned
    /// bundle is refused) [default: any bundle, a signature checked against its own key]
    #[arg(long, value_name = "KEYDIR")]
    pub trusted_keys: Option<PathBuf>,

    /// How many versions to keep (the current and previous ones are always kept)
    #[arg(long, value_name = "N", default_value_t = flint_deploy::app_dir::DEFAULT_KEEP_VERSIONS)]
    pub keep_versions: usize,
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

    /// The app: a spin.toml file or the directory that holds it [default: ./spin.toml];
    /// for `flint up`, also a registry reference (registry[:port]/repo[:tag|@sha256:…])
    /// when no such path exists
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
        manifest_path(self.app.as_ref(), self.from.as_ref())
    }
}

impl BundleArgs {
    pub fn manifest_path(&self) -> PathBuf {
        manifest_path(self.app.as_ref(), self.from.as_ref())
    }
}

/// `-f`, else `APP`, else `./spin.toml`; a directory means its `spin.toml`.
fn manifest_path(app: Option<&PathBuf>, from: Option<&PathBuf>) -> PathBuf {
    let given = from
        .or(app)
        .cloned()
        .unwrap_or_else(|| PathBuf::from("spin.toml"));
    if given.is_dir() {
        given.join("spin.toml")
    } else {
        given
    }
}

#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub app: AppArgs,

    /// Address to listen on; port 0 picks a free port (printed on startup)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3000", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// Directory for the app's state [default: .flint next to the manifest; for a
    /// registry reference, ./.flint, which also caches what was pulled]
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

    /// SQL to run against the `default` SQLite database before serving, such
    /// as a migration; `@FILE` runs a file's statements, `@FILE:LABEL` against
    /// the database LABEL (repeatable, run in order), as with `spin up --sqlite`
    #[arg(long = "sqlite", value_name = "SQL|@FILE[:LABEL]")]
    pub sqlite: Vec<String>,

    /// Serve the current version of this app directory (see `flint deploy`):
    /// its spin.toml, and its bundled runtime config unless
    /// --runtime-config-file is given; --state-dir defaults to DIR/state
    #[arg(long, value_name = "DIR", conflicts_with_all = ["app", "from", "build"])]
    pub app_dir: Option<PathBuf>,

    /// With --app-dir: the public keys (`*.pub`) a bundle deployed to this
    /// running Flint must be signed by; unsigned bundles are then refused
    #[arg(long, value_name = "DIR", requires = "app_dir")]
    pub trusted_keys: Option<PathBuf>,

    /// Serve the metrics, the status document and the status page on this address
    /// instead of the app's listener (which then answers them with 404)
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub metrics_listen: Option<SocketAddr>,

    /// Pull a registry reference over plain HTTP instead of HTTPS (Spin's --insecure)
    #[arg(short = 'k', long)]
    pub insecure: bool,
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
    fn bundle_takes_an_app_or_the_verify_subcommand() {
        let cli =
            Cli::try_parse_from(["flint", "bundle", "apps/x", "-o", "x.flint"]).expect("bundle");
        let Command::Bundle(args) = cli.command else {
            panic!("not bundle")
        };
        assert!(args.action.is_none());
        assert_eq!(args.app, Some(PathBuf::from("apps/x")));
        let cli = Cli::try_parse_from([
            "flint",
            "bundle",
            "verify",
            "x.flint",
            "--trusted-key",
            "k.pub",
        ])
        .expect("verify");
        let Command::Bundle(BundleArgs {
            action: Some(BundleAction::Verify(verify)),
            ..
        }) = cli.command
        else {
            panic!("not verify")
        };
        assert_eq!(verify.bundle, PathBuf::from("x.flint"));
        assert_eq!(verify.trusted_key, [PathBuf::from("k.pub")]);
        assert!(
            Cli::try_parse_from(["flint", "bundle", "apps/x"]).is_err(),
            "-o is required"
        );
        assert!(
            Cli::try_parse_from(["flint", "up", "--app-dir", "d", "-f", "x"]).is_err(),
            "--app-dir conflicts with -f"
        );
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
