//! A hostile Spin SDK 5 HTTP component (wasm32-wasip2). Each route abuses the
//! component model or the host the way a buggy or malicious guest would; a
//! correct host traps just that invocation (500, or 504 where a CPU limit is
//! what stops it) and keeps serving the next request. One wildcard route,
//! dispatched on the path:
//!
//! - `/forge-handle`: `[resource-drop]fields` on a handle never handed out
//! - `/stale-handle`: a `fields` created and dropped, then dropped again
//! - `/oob-list`: `[static]fields.from-list` with a list pointer past the end
//!   of linear memory
//! - `/bad-utf8`: `fermyon:spin/variables.get` with a name that is not UTF-8
//! - `/bad-retptr`: `[static]fields.from-list` with a return area past the end
//!   of linear memory
//! - `/deep-recursion`: unbounded recursion (the shadow stack and the wasm
//!   call stack overflow)
//! - `/handle-flood`: `fields` created and leaked until the host refuses more
//! - `/memory-bomb`: 1 MiB allocations kept until memory runs out
//! - `/isolation`: looks for what an earlier request left behind (a secret in
//!   a static, a leaked `fields` in the host's handle table), then leaves both
//!   (tests/tests/isolation.rs)
//! - `/ok`: 200 `still serving\n`
//!
//! The abuse goes through raw lowered imports declared here, with the same
//! core module names and signatures as the SDK's own bindings (wit-bindgen
//! imports `wasi:http/types@0.2.0`, which wasm-component-ld maps onto the
//! component's `wasi:http/types@0.2.6` import). When a host does not trap,
//! the route answers 200 `survived ...` so a test sees what got through.

use std::hint::black_box;

use spin_sdk::http::{Fields, Request, Response};
use spin_sdk::http_component;

/// Raw canonical-ABI imports: pointers and handles are plain `i32`s so that
/// forged values can be passed.
mod raw {
    #[link(wasm_import_module = "wasi:http/types@0.2.0")]
    unsafe extern "C" {
        /// `resource-drop fields`: (handle) -> ().
        #[link_name = "[resource-drop]fields"]
        pub fn drop_fields(handle: i32);
        /// `from-list: static func(entries: list<tuple<field-key, field-value>>)
        /// -> result<fields, header-error>`: (list ptr, list len, return area) -> ().
        #[link_name = "[static]fields.from-list"]
        pub fn fields_from_list(ptr: i32, len: i32, retptr: i32);
    }

    #[link(wasm_import_module = "fermyon:spin/variables@2.0.0")]
    unsafe extern "C" {
        /// `get: func(name: string) -> result<string, error>`:
        /// (name ptr, name len, return area) -> ().
        #[link_name = "get"]
        pub fn variables_get(ptr: i32, len: i32, retptr: i32);
    }
}

/// An address 16 bytes short of 4 GiB: past the end of any memory this
/// component can have, and close enough to wrap when a length is added.
const OUT_OF_BOUNDS: u32 = 0xffff_fff0;
/// A handle no table ever handed out.
const FORGED_HANDLE: u32 = 0x7fff_0000;

/// A return area big and aligned enough for every call here (the largest,
/// `result<string, error>`, is 16 bytes with 4-byte alignment).
#[repr(C, align(8))]
struct RetArea([u8; 32]);

impl RetArea {
    fn new() -> Self {
        RetArea([0; 32])
    }

    fn ptr(&mut self) -> i32 {
        black_box(self.0.as_mut_ptr() as i32)
    }
}

#[http_component]
fn handle(req: Request) -> Response {
    let path = req.path().to_owned();
    match path.as_str() {
        "/ok" => text(200, "still serving\n"),
        "/forge-handle" => forge_handle(),
        "/stale-handle" => stale_handle(),
        "/oob-list" => oob_list(),
        "/bad-utf8" => bad_utf8(),
        "/bad-retptr" => bad_retptr(),
        "/deep-recursion" => deep_recursion(),
        "/handle-flood" => handle_flood(),
        "/memory-bomb" => memory_bomb(),
        "/isolation" => isolation(),
        _ => text(404, format!("no route for {path}\n")),
    }
}

fn text(status: u16, body: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body.into())
        .build()
}

/// What a route answers when the host let its abuse through.
fn survived(what: &str) -> Response {
    text(200, format!("survived {what}: the host did not trap\n"))
}

fn forge_handle() -> Response {
    unsafe { raw::drop_fields(black_box(FORGED_HANDLE as i32)) };
    survived("dropping forged handle 0x7fff0000")
}

fn stale_handle() -> Response {
    let fields = Fields::new();
    let handle = black_box(fields.handle() as i32);
    // The SDK's drop: `[resource-drop]fields` on the live handle.
    drop(fields);
    // Again, on the handle that is now gone.
    unsafe { raw::drop_fields(handle) };
    survived(&format!("dropping handle {handle} twice"))
}

fn oob_list() -> Response {
    let mut ret = RetArea::new();
    unsafe { raw::fields_from_list(black_box(OUT_OF_BOUNDS as i32), black_box(1000), ret.ptr()) };
    black_box(&ret);
    survived("fields.from-list of 1000 entries at 0xfffffff0")
}

/// Bytes that cannot start (or be) a UTF-8 sequence.
static NOT_UTF8: [u8; 2] = [0xff, 0xfe];

fn bad_utf8() -> Response {
    let mut ret = RetArea::new();
    let name = black_box(NOT_UTF8.as_ptr() as i32);
    unsafe { raw::variables_get(name, black_box(NOT_UTF8.len() as i32), ret.ptr()) };
    black_box(&ret);
    survived("variables.get with a name of bytes ff fe")
}

fn bad_retptr() -> Response {
    // An empty, valid list: the host creates a `fields` and then must store
    // `result::ok(handle)` at the return pointer.
    let empty = RetArea::new();
    let list = black_box(empty.0.as_ptr() as i32);
    unsafe { raw::fields_from_list(list, 0, black_box(OUT_OF_BOUNDS as i32)) };
    survived("fields.from-list returning to 0xfffffff0")
}

/// Recurses forever: each frame keeps a buffer on the shadow stack (in linear
/// memory) and a wasm call frame, so one of the two overflows and traps.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth as u8; 256]);
    let below = recurse(black_box(depth + 1));
    // Using `frame` after the call keeps it live, and the addition keeps the
    // call from being a tail call.
    black_box(below.wrapping_add(u64::from(frame[(depth % 256) as usize])))
}

fn deep_recursion() -> Response {
    let depth = recurse(black_box(0));
    survived(&format!("unbounded recursion ({depth})"))
}

fn handle_flood() -> Response {
    let mut created: u64 = 0;
    loop {
        // Never dropped: each one holds a slot in the host's handle table.
        std::mem::forget(Fields::new());
        created = black_box(created + 1);
    }
}

/// What `/isolation` leaves in linear memory.
static mut SECRET: u64 = 0;
const PLANTED: u64 = 0x5ec2_e75e_c2e7;

/// `memory=M handle=H after=M`: whether the static holds the secret before
/// and after this request sets it, and the handle a new `fields` gets (the
/// same in every fresh instance; higher if an earlier one's leaked `fields`
/// were still in the table).
fn isolation() -> Response {
    let seen = || unsafe { std::ptr::read_volatile(&raw const SECRET) } == PLANTED;
    let before = seen();
    let probe = Fields::new();
    let handle = probe.handle();
    drop(probe);
    unsafe { std::ptr::write_volatile(&raw mut SECRET, PLANTED) };
    // Never dropped: it stays in this instance's handle table.
    std::mem::forget(Fields::new());
    let after = seen();
    text(
        200,
        format!(
            "memory={} handle={handle} after={}\n",
            u8::from(before),
            u8::from(after)
        ),
    )
}

fn memory_bomb() -> Response {
    const CHUNK: usize = 1 << 20;
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Filled with a non-zero byte so every page is really written.
        hoard.push(black_box(vec![0xa5; CHUNK]));
        black_box(&mut hoard);
    }
}
