//! Everything a guest can import and the backends behind it: WASI preview 1
//! with read-only `files`, `wasi:http` types and the outgoing handler,
//! `wasi:io`, `fermyon:spin/{key-value,variables,mqtt,redis}`, the component's
//! capabilities, the key-value stores, the outbound HTTP client and the
//! durable MQTT outbox. Built on `flint-engine`; knows nothing of triggers.

pub mod backoff;
pub mod base64;
pub mod blocked_networks;
pub mod capabilities;
pub mod chunked;
#[cfg(feature = "embedded-svc")]
pub mod embedded;
pub mod http1;
mod interfaces;
pub mod kv_store;
pub mod mqtt_tls;
pub mod outbound_hosts;
pub mod outbound_http;
pub mod outbound_mysql;
pub mod outbound_pg;
pub mod outbound_redis;
pub mod outbound_tcp;
pub mod outbox;
pub mod sqlite_db;
pub mod tls;
pub mod variables;
pub mod wasi;

use std::sync::Arc;

use flint_engine::canon::{HandleTable, TableEntry};
use wasmi::Error;

use capabilities::Capabilities;
pub use interfaces::http_p3::{
    Contents, RESPONSE_RESULT as P3_RESPONSE_RESULT, Request as P3Request, Response as P3Response,
};
pub use interfaces::http_types::{ErrorCode, IncomingRequest, ResponseOutparam};
pub use interfaces::io::BodyError;
use wasi::WasiState;

/// The engine with Flint's host state in every store.
pub type Engine = flint_engine::Engine<HostState>;
/// What a host function receives: the engine's per-invocation state around [`HostState`].
pub type GuestState = flint_engine::GuestState<HostState>;

/// Live resource handles one instance may hold at once.
const MAX_HANDLES: usize = 4096;

/// Declares the resource types of every interface as one enum, so that one
/// handle table serves them all while each handle keeps its type.
macro_rules! resources {
    ($($kind:ident => $name:literal),+ $(,)?) => {
        pub enum Resource { $($kind($kind)),+ }
        $(
            impl TableEntry<Resource> for $kind {
                const NAME: &'static str = $name;
                fn wrap(self) -> Resource { Resource::$kind(self) }
                fn peek(entry: &mut Resource) -> Option<&mut Self> {
                    match entry { Resource::$kind(r) => Some(r), _ => None }
                }
                fn unwrap(entry: Resource) -> Option<Self> {
                    match entry { Resource::$kind(r) => Some(r), _ => None }
                }
            }
        )+
    };
}

use interfaces::http_p3::{Request, Response};
use interfaces::http_types::{
    Fields, FutureIncomingResponse, FutureTrailers, IncomingBody, IncomingResponse, OutgoingBody,
    OutgoingRequest, OutgoingResponse, RequestOptions, ResponseHead,
};
use interfaces::io::{InputStream, IoError, OutputStream, Pollable};
use interfaces::key_value::Store;
use interfaces::mqtt::Connection;
use interfaces::mysql::MysqlConnection;
use interfaces::postgres::{PgConnection, PgConnectionBuilder};
use interfaces::redis::RedisConnection;
use interfaces::sqlite::SqliteConnection;
use interfaces::wasi_cli::{TerminalInput, TerminalOutput};
use interfaces::wasi_keyvalue::{Bucket, Cas};
use interfaces::wasi_sockets::{
    IncomingDatagramStream, Network, OutgoingDatagramStream, ResolveAddressStream, TcpSocket,
    UdpSocket,
};
use wasi::fs::{Descriptor, DirectoryEntryStream};

resources! {
    Fields => "fields",
    IncomingRequest => "incoming-request",
    IncomingBody => "incoming-body",
    IncomingResponse => "incoming-response",
    FutureTrailers => "future-trailers",
    OutgoingRequest => "outgoing-request",
    OutgoingResponse => "outgoing-response",
    OutgoingBody => "outgoing-body",
    RequestOptions => "request-options",
    ResponseOutparam => "response-outparam",
    FutureIncomingResponse => "future-incoming-response",
    Request => "request",
    Response => "response",
    InputStream => "input-stream",
    OutputStream => "output-stream",
    Pollable => "pollable",
    IoError => "error",
    Store => "store",
    Connection => "connection",
    SqliteConnection => "connection",
    PgConnection => "connection",
    PgConnectionBuilder => "connection-builder",
    MysqlConnection => "connection",
    RedisConnection => "connection",
    Bucket => "bucket",
    Cas => "cas",
    TerminalInput => "terminal-input",
    TerminalOutput => "terminal-output",
    Descriptor => "descriptor",
    DirectoryEntryStream => "directory-entry-stream",
    Network => "network",
    TcpSocket => "tcp-socket",
    UdpSocket => "udp-socket",
    IncomingDatagramStream => "incoming-datagram-stream",
    OutgoingDatagramStream => "outgoing-datagram-stream",
    ResolveAddressStream => "resolve-address-stream",
}

/// What one instance's host calls work on.
pub struct HostState {
    /// What WASI works on, preview 1 and 0.2 alike: environment, arguments,
    /// stdio, preopens, the deadline. Empty but for stdout/stderr (to the
    /// log) until the executor fills it.
    pub wasi_state: WasiState,
    pub resources: HandleTable<Resource>,
    /// Bodies being written through output streams, by body id.
    pub bodies: interfaces::io::Bodies,
    /// What `response-outparam.set` delivered, if anything.
    pub response: Option<Result<ResponseHead, String>>,
    pub caps: Arc<Capabilities>,
    /// The instance's memory limit, which also bounds what one call may return.
    pub memory_limit: usize,
    /// Host memory this instance has made the host hold outside its bodies
    /// (fields, outbound responses); never decreases, bounded by `memory_limit`.
    host_bytes: usize,
}

impl HostState {
    pub fn new(caps: Arc<Capabilities>, body_limit: usize, memory_limit: usize) -> Self {
        Self {
            wasi_state: WasiState::new(caps.component.clone()),
            resources: HandleTable::new(MAX_HANDLES),
            bodies: interfaces::io::Bodies::new(body_limit),
            response: None,
            caps,
            memory_limit,
            host_bytes: 0,
        }
    }

    /// Accounts for `bytes` of host memory held for the guest; past the
    /// instance's memory limit the guest is trapped, so a loop of clones or
    /// appends cannot grow the host.
    pub fn charge(&mut self, bytes: usize) -> Result<(), Error> {
        self.host_bytes = self.host_bytes.saturating_add(bytes);
        if self.host_bytes > self.memory_limit {
            return Err(Error::new(format!(
                "the guest made the host hold more than its memory limit ({} bytes) in headers and responses",
                self.memory_limit
            )));
        }
        Ok(())
    }
}

impl flint_engine::Host for HostState {
    fn for_link_check(component: &str, memory_limit: usize) -> Self {
        HostState::new(Arc::new(Capabilities::none(component)), 0, memory_limit)
    }
}

/// Why the host interfaces could not be added to the linker (a bug in
/// Flint, such as two definitions of one import).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("linking a host interface: {0}")]
    Interface(#[from] wasmi::errors::LinkerError),
}

/// The engine with every interface a guest may import, one line each.
pub fn engine(fuel: bool) -> Result<Engine, LinkError> {
    let mut engine = Engine::new(fuel);
    wasi::preview1::add_to_linker(engine.linker_mut())?;
    engine.register("wasi:http/types@0.2.0", interfaces::http_types::FUNCTIONS)?;
    engine.register(
        "wasi:http/outgoing-handler@0.2.0",
        interfaces::outgoing_handler::FUNCTIONS,
    )?;
    // The release candidate shipping SDKs still import has the same WIT.
    for version in ["0.3.0", "0.3.0-rc-2026-03-15"] {
        engine.register(
            &format!("wasi:http/types@{version}"),
            interfaces::http_p3::TYPES,
        )?;
        engine.register(
            &format!("wasi:http/client@{version}"),
            interfaces::http_p3::CLIENT,
        )?;
    }
    engine.register("wasi:io/streams@0.2.0", interfaces::io::STREAMS)?;
    engine.register("wasi:io/poll@0.2.0", interfaces::io::POLL)?;
    engine.register("wasi:io/error@0.2.0", interfaces::io::ERROR)?;
    engine.register(
        "fermyon:spin/key-value@2.0.0",
        interfaces::key_value::FUNCTIONS,
    )?;
    engine.register(
        "fermyon:spin/variables@2.0.0",
        interfaces::variables::FUNCTIONS,
    )?;
    engine.register("fermyon:spin/mqtt@2.0.0", interfaces::mqtt::FUNCTIONS)?;
    engine.register(
        "spin:key-value/key-value@3.0.0",
        interfaces::key_value::FUNCTIONS_V3,
    )?;
    engine.register(
        "spin:variables/variables@3.0.0",
        interfaces::variables::FUNCTIONS_V3,
    )?;
    engine.register("spin:mqtt/mqtt@3.0.0", interfaces::mqtt::FUNCTIONS_V3)?;
    engine.register("fermyon:spin/sqlite@2.0.0", interfaces::sqlite::FUNCTIONS)?;
    engine.register("spin:sqlite/sqlite@3.1.0", interfaces::sqlite::FUNCTIONS_V3)?;
    engine.register(
        "fermyon:spin/postgres@2.0.0",
        interfaces::postgres::FUNCTIONS_V2,
    )?;
    engine.register(
        "spin:postgres/postgres@3.0.0",
        interfaces::postgres::FUNCTIONS_V3,
    )?;
    engine.register(
        "spin:postgres/postgres@4.2.0",
        interfaces::postgres::FUNCTIONS_V4,
    )?;
    engine.register("fermyon:spin/mysql@2.0.0", interfaces::mysql::FUNCTIONS)?;
    engine.register("spin:mysql/mysql@3.0.0", interfaces::mysql::FUNCTIONS_V3)?;
    engine.register("fermyon:spin/redis@2.0.0", interfaces::redis::FUNCTIONS)?;
    engine.register("spin:redis/redis@3.0.0", interfaces::redis::FUNCTIONS_V3)?;
    engine.register(
        "wasi:keyvalue/store@0.2.0-draft2",
        interfaces::wasi_keyvalue::STORE,
    )?;
    engine.register(
        "wasi:keyvalue/atomics@0.2.0-draft2",
        interfaces::wasi_keyvalue::ATOMICS,
    )?;
    engine.register(
        "wasi:keyvalue/batch@0.2.0-draft2",
        interfaces::wasi_keyvalue::BATCH,
    )?;
    engine.register(
        "wasi:config/store@0.2.0-draft-2024-09-27",
        interfaces::wasi_config::STORE,
    )?;
    engine.register("fermyon:spin/llm@2.0.0", interfaces::llm::FUNCTIONS)?;
    engine.register("wasi:otel/tracing@0.2.0-rc.2", interfaces::otel::TRACING)?;
    engine.register("wasi:otel/logs@0.2.0-rc.2", interfaces::otel::LOGS)?;
    engine.register("wasi:otel/metrics@0.2.0-rc.2", interfaces::otel::METRICS)?;
    register_wasi(&mut engine)?;
    register_wasi_p3(&mut engine)?;
    Ok(engine)
}

/// WASI 0.2: `wasi:cli`, `wasi:clocks`, `wasi:random`, `wasi:filesystem`,
/// `wasi:sockets` (`wasi:io` is registered with `wasi:http`). Interfaces
/// and functions marked unstable in the WIT are included, so components
/// built with those features load too.
fn register_wasi(engine: &mut Engine) -> Result<(), LinkError> {
    use interfaces::{wasi_cli, wasi_clocks, wasi_filesystem, wasi_random, wasi_sockets};
    let tables: &[(&str, &'static [flint_engine::canon::HostFn<GuestState>])] = &[
        ("wasi:cli/environment@0.2.0", wasi_cli::ENVIRONMENT),
        ("wasi:cli/exit@0.2.0", wasi_cli::EXIT),
        ("wasi:cli/stdin@0.2.0", wasi_cli::STDIN),
        ("wasi:cli/stdout@0.2.0", wasi_cli::STDOUT),
        ("wasi:cli/stderr@0.2.0", wasi_cli::STDERR),
        ("wasi:cli/terminal-input@0.2.0", wasi_cli::TERMINAL_INPUT),
        ("wasi:cli/terminal-output@0.2.0", wasi_cli::TERMINAL_OUTPUT),
        ("wasi:cli/terminal-stdin@0.2.0", wasi_cli::TERMINAL_STDIN),
        ("wasi:cli/terminal-stdout@0.2.0", wasi_cli::TERMINAL_STDOUT),
        ("wasi:cli/terminal-stderr@0.2.0", wasi_cli::TERMINAL_STDERR),
        (
            "wasi:clocks/monotonic-clock@0.2.0",
            wasi_clocks::MONOTONIC_CLOCK,
        ),
        ("wasi:clocks/wall-clock@0.2.0", wasi_clocks::WALL_CLOCK),
        ("wasi:clocks/timezone@0.2.0", wasi_clocks::TIMEZONE),
        ("wasi:random/random@0.2.0", wasi_random::RANDOM),
        ("wasi:random/insecure@0.2.0", wasi_random::INSECURE),
        (
            "wasi:random/insecure-seed@0.2.0",
            wasi_random::INSECURE_SEED,
        ),
        ("wasi:filesystem/types@0.2.0", wasi_filesystem::TYPES),
        ("wasi:filesystem/preopens@0.2.0", wasi_filesystem::PREOPENS),
        ("wasi:sockets/network@0.2.0", wasi_sockets::NETWORK),
        (
            "wasi:sockets/instance-network@0.2.0",
            wasi_sockets::INSTANCE_NETWORK,
        ),
        ("wasi:sockets/tcp@0.2.0", wasi_sockets::TCP_FUNCTIONS),
        (
            "wasi:sockets/tcp-create-socket@0.2.0",
            wasi_sockets::TCP_CREATE_SOCKET,
        ),
        ("wasi:sockets/udp@0.2.0", wasi_sockets::UDP_FUNCTIONS),
        (
            "wasi:sockets/udp-create-socket@0.2.0",
            wasi_sockets::UDP_CREATE_SOCKET,
        ),
        (
            "wasi:sockets/ip-name-lookup@0.2.0",
            wasi_sockets::IP_NAME_LOOKUP,
        ),
    ];
    for &(interface, functions) in tables {
        engine.register(interface, functions)?;
    }
    Ok(())
}

/// WASI 0.3 (but `wasi:http`) at `0.3.0` and the release candidates
/// shipping SDKs import. A pre-release version matches only itself, so
/// each is registered; `0.3.0-rc-2026-03-15`'s WIT is `0.3.0`'s, and the
/// 2026-01-06 candidate differs in the tables named for it.
fn register_wasi_p3(engine: &mut Engine) -> Result<(), LinkError> {
    use interfaces::{
        wasi_cli, wasi_filesystem, wasi_filesystem_p3 as fs, wasi_p3 as p3, wasi_random,
        wasi_sockets_p3 as sockets,
    };
    type Table = &'static [flint_engine::canon::HostFn<GuestState>];
    let rc_0106 = "0.3.0-rc-2026-01-06";
    let shared: &[(&str, Table)] = &[
        ("wasi:cli/environment", p3::ENVIRONMENT),
        ("wasi:cli/exit", wasi_cli::EXIT),
        ("wasi:cli/stdin", p3::STDIN),
        ("wasi:cli/terminal-input", wasi_cli::TERMINAL_INPUT),
        ("wasi:cli/terminal-output", wasi_cli::TERMINAL_OUTPUT),
        ("wasi:cli/terminal-stdin", wasi_cli::TERMINAL_STDIN),
        ("wasi:cli/terminal-stdout", wasi_cli::TERMINAL_STDOUT),
        ("wasi:cli/terminal-stderr", wasi_cli::TERMINAL_STDERR),
        ("wasi:clocks/monotonic-clock", p3::MONOTONIC_CLOCK),
        ("wasi:clocks/system-clock", p3::SYSTEM_CLOCK),
        ("wasi:clocks/timezone", p3::TIMEZONE),
        ("wasi:random/random", wasi_random::RANDOM),
        ("wasi:random/insecure", wasi_random::INSECURE),
        ("wasi:random/insecure-seed", p3::INSECURE_SEED),
        ("wasi:filesystem/preopens", wasi_filesystem::PREOPENS),
    ];
    let current: &[(&str, Table)] = &[
        ("wasi:cli/stdout", p3::STDOUT),
        ("wasi:cli/stderr", p3::STDERR),
        ("wasi:filesystem/types", fs::TYPES),
        ("wasi:sockets/types", sockets::TYPES),
        ("wasi:sockets/ip-name-lookup", sockets::IP_NAME_LOOKUP),
    ];
    let rc: &[(&str, Table)] = &[
        ("wasi:cli/stdout", p3::STDOUT_RC_2026_01_06),
        ("wasi:cli/stderr", p3::STDERR_RC_2026_01_06),
        ("wasi:filesystem/types", fs::TYPES_RC_2026_01_06),
        ("wasi:sockets/types", sockets::TYPES_RC_2026_01_06),
        (
            "wasi:sockets/ip-name-lookup",
            sockets::IP_NAME_LOOKUP_RC_2026_01_06,
        ),
    ];
    for version in ["0.3.0", "0.3.0-rc-2026-03-15", rc_0106] {
        let specific = if version == rc_0106 { rc } else { current };
        for &(interface, functions) in shared.iter().chain(specific) {
            engine.register(&format!("{interface}@{version}"), functions)?;
        }
    }
    Ok(())
}
