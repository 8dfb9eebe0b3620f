//! The imported interfaces as function tables for the engine's canonical ABI
//! layer ([`flint_engine::canon`]): `wasi:http@0.2.0`, `wasi:io@0.2.0`,
//! `fermyon:spin/*@2.0.0`. Each module holds its table and the code behind
//! it; the state they share is [`crate::HostState`].

pub(crate) mod http_p3;
pub(crate) mod http_types;
pub(crate) mod io;
pub(crate) mod key_value;
pub(crate) mod llm;
pub(crate) mod mqtt;
pub(crate) mod mysql;
pub(crate) mod otel;
pub(crate) mod outgoing_handler;
pub(crate) mod postgres;
pub(crate) mod rdbms;
pub(crate) mod redis;
pub(crate) mod row_stream;
pub(crate) mod sqlite;
pub(crate) mod variables;
pub(crate) mod wasi_cli;
pub(crate) mod wasi_clocks;
pub(crate) mod wasi_config;
pub(crate) mod wasi_filesystem;
pub(crate) mod wasi_filesystem_p3;
pub(crate) mod wasi_keyvalue;
pub(crate) mod wasi_p3;
pub(crate) mod wasi_random;
pub(crate) mod wasi_sockets;
pub(crate) mod wasi_sockets_p3;

use flint_engine::canon::{self, TableEntry};
use wasmi::Error;

use crate::{GuestState, Resource};

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
        flint_engine::canon::HostFn {
            name: $name,
            params: &[$($param),*],
            result: Some($result),
            call: $call,
            ready: None,
        }
    };
    ($name:literal, [$($param:expr),*] -> $result:expr, $call:expr, ready = $ready:expr) => {
        flint_engine::canon::HostFn {
            name: $name,
            params: &[$($param),*],
            result: Some($result),
            call: $call,
            ready: Some($ready),
        }
    };
    ($name:literal, [$($param:expr),*], $call:expr) => {
        flint_engine::canon::HostFn {
            name: $name,
            params: &[$($param),*],
            result: None,
            call: $call,
            ready: None,
        }
    };
}
use host_fn;

/// `[resource-drop]<name>` entries.
macro_rules! drop_fn {
    ($name:literal, $kind:ty) => {
        flint_engine::canon::HostFn {
            name: concat!("[resource-drop]", $name),
            params: &[flint_engine::canon::Ty::Handle],
            result: None,
            call: $crate::interfaces::drop_resource::<$kind>,
            ready: None,
        }
    };
}
use drop_fn;
