//! The Spin host interfaces a guest may import (`wasi:http@0.2.0`,
//! `wasi:io@0.2.0`, `fermyon:spin/*@2.0.0`), written as function tables for
//! the canonical ABI layer in [`crate::canon`]. Each interface module holds
//! its table and the code behind it; the state they share lives here.

mod http_types;
mod io;
mod key_value;
mod mqtt;
mod outgoing_handler;
mod variables;

use std::sync::Arc;

use wasmi::{Error, Linker};

use crate::canon::{self, HandleTable, TableEntry};
use crate::capabilities::Capabilities;
use crate::engine::GuestState;

pub use http_types::{ErrorCode, IncomingRequest, ResponseOutparam};
pub use io::BodyError;

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

use http_types::{
    Fields, FutureIncomingResponse, FutureTrailers, IncomingBody, IncomingResponse, OutgoingBody,
    OutgoingRequest, OutgoingResponse, RequestOptions, ResponseHead,
};
use io::{InputStream, IoError, OutputStream, Pollable};
use key_value::Store;
use mqtt::Connection;

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
    InputStream => "input-stream",
    OutputStream => "output-stream",
    Pollable => "pollable",
    IoError => "error",
    Store => "store",
    Connection => "connection",
}

/// What one instance's host calls work on.
pub struct HostState {
    pub resources: HandleTable<Resource>,
    /// Bodies being written through output streams, by body id.
    pub bodies: io::Bodies,
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
            resources: HandleTable::new(MAX_HANDLES),
            bodies: io::Bodies::new(body_limit),
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

/// Adds every interface to the linker.
pub fn add_to_linker(linker: &mut Linker<GuestState>) -> anyhow::Result<()> {
    let interfaces: [(&str, &'static [canon::HostFn<GuestState>]); 8] = [
        ("wasi:http/types@0.2.0", http_types::FUNCTIONS),
        (
            "wasi:http/outgoing-handler@0.2.0",
            outgoing_handler::FUNCTIONS,
        ),
        ("wasi:io/streams@0.2.0", io::STREAMS),
        ("wasi:io/poll@0.2.0", io::POLL),
        ("wasi:io/error@0.2.0", io::ERROR),
        ("fermyon:spin/key-value@2.0.0", key_value::FUNCTIONS),
        ("fermyon:spin/variables@2.0.0", variables::FUNCTIONS),
        ("fermyon:spin/mqtt@2.0.0", mqtt::FUNCTIONS),
    ];
    for (module, functions) in interfaces {
        canon::register(linker, module, functions)?;
    }
    Ok(())
}

/// `[resource-drop]<name>` for a resource with nothing to release but memory.
fn drop_resource<K: TableEntry<Resource>>(
    state: &mut GuestState,
    mut args: canon::Args,
) -> Result<canon::Value, Error> {
    state.host.resources.take::<K>(args.handle()?)?;
    Ok(canon::Value::unit())
}

/// Shorthand for a table entry.
macro_rules! host_fn {
    ($name:literal, [$($param:expr),*] -> $result:expr, $call:expr) => {
        $crate::canon::HostFn {
            name: $name,
            params: &[$($param),*],
            result: Some($result),
            call: $call,
        }
    };
    ($name:literal, [$($param:expr),*], $call:expr) => {
        $crate::canon::HostFn {
            name: $name,
            params: &[$($param),*],
            result: None,
            call: $call,
        }
    };
}
pub(crate) use host_fn;

/// `[resource-drop]<name>` entries.
macro_rules! drop_fn {
    ($name:literal, $kind:ty) => {
        $crate::canon::HostFn {
            name: concat!("[resource-drop]", $name),
            params: &[$crate::canon::Ty::Handle],
            result: None,
            call: $crate::host::drop_resource::<$kind>,
        }
    };
}
pub(crate) use drop_fn;
