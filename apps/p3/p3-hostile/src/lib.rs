//! A hostile Spin SDK 7 HTTP component (a WASI 0.3 async component). Each
//! route misuses the async canonical built-ins the way a buggy or malicious
//! guest would; the spec makes each a trap, and a correct host traps just
//! that invocation (500) and keeps serving the next request. Mounted on
//! `/hostile/...` (see ../spin.toml), dispatched on the rest of the path:
//!
//! - `/ok`: 200 `still serving\n`
//! - `/double-drop`: `stream.drop-readable` twice on the same handle
//! - `/write-after-drop`: `stream.write` to a stream whose readable end was
//!   dropped (answers DROPPED, which moves the writable end to its DONE
//!   state), then a second `stream.write` on that DONE end
//! - `/double-return`: `task.return` twice for the same call of `handle`
//! - `/forge-waitable`: `waitable.join` of a handle no table handed out
//!
//! The misuse goes through raw core imports declared here with the same
//! module names, field names and signatures wit-bindgen 0.57 emits for the
//! SDK's own bindings (the `stream<u8>` built-ins are named after the first
//! function whose type has a `stream<u8>`, `wasi:cli/stdin@0.3.0`
//! `read-via-stream`; wasm-component-ld maps them onto the component's one
//! `stream<u8>` type), so the linker merges them with the SDK's. When a host
//! does not trap, the route answers 200 `survived ...` so a test sees what got
//! through.

use std::hint::black_box;
use std::mem::MaybeUninit;

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

mod raw {
    use std::mem::MaybeUninit;

    #[link(wasm_import_module = "wasi:cli/stdin@0.3.0")]
    unsafe extern "C" {
        /// `stream.new stream<u8>`: () -> readable | writable << 32.
        #[link_name = "[stream-new-0]read-via-stream"]
        pub fn stream_new() -> u64;
        /// `stream.drop-readable stream<u8>`: (readable) -> ().
        #[link_name = "[stream-drop-readable-0]read-via-stream"]
        pub fn stream_drop_readable(readable: u32);
        /// `stream.write stream<u8> async`: (writable, ptr, len) -> status
        /// (low 4 bits: 0 completed, 1 dropped, 2 cancelled; the count above;
        /// all ones: blocked).
        #[link_name = "[async-lower][stream-write-0]read-via-stream"]
        pub fn stream_write(writable: u32, ptr: *const u8, len: usize) -> u32;
    }

    #[link(wasm_import_module = "[export]wasi:http/handler@0.3.0")]
    unsafe extern "C" {
        /// `task.return` of `handle: async func(request) -> result<response,
        /// error-code>`, the flattened result as the SDK's binding passes it.
        #[link_name = "[task-return]handle"]
        pub fn task_return(
            is_err: i32,
            case: i32,
            payload0: i32,
            payload1: MaybeUninit<u64>,
            payload2: *mut u8,
            payload3: *mut u8,
            payload4: usize,
            payload5: i32,
        );
    }

    #[link(wasm_import_module = "$root")]
    unsafe extern "C" {
        /// `waitable.join`: (waitable, waitable-set) -> ().
        #[link_name = "[waitable-join]"]
        pub fn waitable_join(waitable: u32, set: u32);
    }
}

/// `stream.write`'s status for "the other end was dropped".
const DROPPED: u32 = 1;
/// The case of `error-code` that is `internal-error(option<string>)`.
const INTERNAL_ERROR: i32 = 38;
/// A handle no table ever handed out.
const FORGED_HANDLE: u32 = 0x7fff_0000;

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let path = req.uri().path();
    let route = path.strip_prefix("/hostile").unwrap_or(path);
    match route {
        "/ok" => (http::StatusCode::OK, "still serving\n".to_owned()),
        "/double-drop" => double_drop(),
        "/write-after-drop" => write_after_drop(),
        "/double-return" => double_return(),
        "/forge-waitable" => forge_waitable(),
        _ => (
            http::StatusCode::NOT_FOUND,
            format!("no route for {path}\n"),
        ),
    }
}

type Reply = (http::StatusCode, String);

fn survived(what: String) -> Reply {
    (http::StatusCode::OK, format!("survived {what}\n"))
}

/// A fresh `stream<u8>`: (readable, writable).
fn new_stream() -> (u32, u32) {
    let handles = unsafe { raw::stream_new() };
    (handles as u32, (handles >> 32) as u32)
}

fn double_drop() -> Reply {
    let (readable, _writable) = new_stream();
    unsafe {
        raw::stream_drop_readable(black_box(readable));
        raw::stream_drop_readable(black_box(readable));
    }
    survived(format!("dropping readable end {readable} twice"))
}

fn write_after_drop() -> Reply {
    let (readable, writable) = new_stream();
    let bytes = *b"data";
    unsafe { raw::stream_drop_readable(readable) };
    let first = unsafe { raw::stream_write(writable, bytes.as_ptr(), bytes.len()) };
    if first & 0xf != DROPPED {
        return survived(format!(
            "a write to a stream without reader: status {first:#x}, not DROPPED"
        ));
    }
    let second = unsafe { raw::stream_write(black_box(writable), bytes.as_ptr(), bytes.len()) };
    survived(format!("a second write after DROPPED: status {second:#x}"))
}

fn double_return() -> Reply {
    for _ in 0..2 {
        // err(internal-error(none)); the other payload slots are unused.
        unsafe {
            raw::task_return(
                1,
                INTERNAL_ERROR,
                0,
                MaybeUninit::zeroed(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
                0,
            )
        };
    }
    survived("task.return twice".to_owned())
}

fn forge_waitable() -> Reply {
    unsafe { raw::waitable_join(black_box(FORGED_HANDLE), 0) };
    survived(format!("waitable.join of forged handle {FORGED_HANDLE:#x}"))
}
