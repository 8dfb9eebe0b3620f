//! WAGI guest using `fermyon:spin/key-value@2.0.0` and
//! `fermyon:spin/variables@2.0.0` directly, with the canonical ABI by hand.
//!
//! - `GET /wagi-kv/<key>`: the value in the default store (404 if absent);
//!   `PUT /wagi-kv/<key>`: stores the request body.
//! - `GET /wagi-var/<name>`: the component variable.
//! - `PUT /wagi-redis3/<key>`: through `spin:redis/redis@3.0.0` (whose
//!   functions are `async` in WIT, called here with the synchronous ABI),
//!   sets the key to the body on the server named by the `redis_address`
//!   variable, reads it back and answers it.
//! - As an MQTT handler (`MQTT_TOPIC` set): stores the payload (stdin) under
//!   `wagi/<topic>`; topics under `fail/` exit with status 1. As a Redis
//!   handler (`REDIS_CHANNEL` set), the same with the channel.

use std::alloc::{Layout, alloc};
use std::io::{Read, Write};

#[link(wasm_import_module = "fermyon:spin/key-value@2.0.0")]
unsafe extern "C" {
    #[link_name = "[static]store.open"]
    fn store_open(label: *const u8, len: usize, ret: *mut u8);
    #[link_name = "[method]store.get"]
    fn store_get(store: i32, key: *const u8, len: usize, ret: *mut u8);
    #[link_name = "[method]store.set"]
    fn store_set(
        store: i32,
        key: *const u8,
        len: usize,
        value: *const u8,
        vlen: usize,
        ret: *mut u8,
    );
}

#[link(wasm_import_module = "fermyon:spin/variables@2.0.0")]
unsafe extern "C" {
    #[link_name = "get"]
    fn variable_get(name: *const u8, len: usize, ret: *mut u8);
}

#[link(wasm_import_module = "spin:redis/redis@3.0.0")]
unsafe extern "C" {
    #[link_name = "[static]connection.open"]
    fn redis_open(address: *const u8, len: usize, ret: *mut u8);
    #[link_name = "[method]connection.set"]
    fn redis_set(
        conn: i32,
        key: *const u8,
        len: usize,
        value: *const u8,
        vlen: usize,
        ret: *mut u8,
    );
    #[link_name = "[method]connection.get"]
    fn redis_get(conn: i32, key: *const u8, len: usize, ret: *mut u8);
}

/// The host allocates returned strings and lists with this; they are leaked,
/// which is fine for an instance that lives for one request.
///
/// # Safety
/// Called by the host with `old_size == 0` and a power-of-two `align`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    _old: *mut u8,
    _old_size: usize,
    align: usize,
    size: usize,
) -> *mut u8 {
    unsafe { alloc(Layout::from_size_align_unchecked(size, align)) }
}

#[repr(C, align(8))]
struct RetArea([u8; 32]);

impl RetArea {
    fn u32_at(&self, offset: usize) -> u32 {
        u32::from_le_bytes(self.0[offset..offset + 4].try_into().unwrap())
    }
    /// A (pointer, length) pair at `offset`, as bytes.
    fn bytes_at(&self, offset: usize) -> Vec<u8> {
        let (ptr, len) = (
            self.u32_at(offset) as *const u8,
            self.u32_at(offset + 4) as usize,
        );
        unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
    }
}

fn respond(status: u16, body: &[u8]) {
    let mut out = std::io::stdout();
    let _ = write!(out, "Content-Type: text/plain\nStatus: {status}\n\n");
    let _ = out.write_all(body);
}

fn open_default() -> Option<i32> {
    let mut ret = RetArea([0; 32]);
    let label = "default";
    unsafe { store_open(label.as_ptr(), label.len(), ret.0.as_mut_ptr()) };
    (ret.0[0] == 0).then(|| ret.u32_at(4) as i32)
}

fn set(store: i32, key: &str, value: &[u8]) -> bool {
    let mut ret = RetArea([0; 32]);
    unsafe {
        store_set(
            store,
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
            ret.0.as_mut_ptr(),
        )
    };
    ret.0[0] == 0
}

/// An MQTT topic's or a Redis channel's message.
fn message(topic: &str) {
    if topic.starts_with("fail/") {
        eprintln!("wagi-spin: failing {topic} on purpose");
        std::process::exit(1);
    }
    let mut payload = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut payload);
    let stored = open_default().is_some_and(|store| set(store, &format!("wagi/{topic}"), &payload));
    if !stored {
        std::process::exit(2);
    }
}

fn main() {
    if let Ok(topic) = std::env::var("MQTT_TOPIC").or_else(|_| std::env::var("REDIS_CHANNEL")) {
        return message(&topic);
    }
    let path = std::env::var("X_MATCHED_ROUTE").unwrap_or_default();
    let name = std::env::var("PATH_INFO").unwrap_or_default();
    let name = name.trim_start_matches('/');
    let mut ret = RetArea([0; 32]);
    if path.starts_with("/wagi-var") {
        unsafe { variable_get(name.as_ptr(), name.len(), ret.0.as_mut_ptr()) };
        match ret.0[0] {
            0 => respond(200, &ret.bytes_at(4)),
            _ => respond(
                404,
                format!("variables error case {}\n", ret.0[4]).as_bytes(),
            ),
        }
        return;
    }
    if path.starts_with("/wagi-redis3") {
        return redis3(name);
    }
    let label = "default";
    unsafe { store_open(label.as_ptr(), label.len(), ret.0.as_mut_ptr()) };
    if ret.0[0] != 0 {
        return respond(
            500,
            format!("open failed: error case {}\n", ret.0[4]).as_bytes(),
        );
    }
    let store = ret.u32_at(4) as i32;
    if std::env::var("REQUEST_METHOD").as_deref() == Ok("PUT") {
        let mut value = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut value);
        unsafe {
            store_set(
                store,
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
                ret.0.as_mut_ptr(),
            )
        };
        match ret.0[0] {
            0 => respond(200, b"stored\n"),
            _ => respond(500, b"set failed\n"),
        }
        return;
    }
    unsafe { store_get(store, name.as_ptr(), name.len(), ret.0.as_mut_ptr()) };
    match (ret.0[0], ret.0[4]) {
        (0, 1) => respond(200, &ret.bytes_at(8)),
        (0, _) => respond(404, b"no such key\n"),
        _ => respond(500, b"get failed\n"),
    }
}

/// `PUT /wagi-redis3/<key>`; a failed call answers 500 with the WIT `error`
/// case number.
fn redis3(key: &str) {
    let mut ret = RetArea([0; 32]);
    let name = "redis_address";
    unsafe { variable_get(name.as_ptr(), name.len(), ret.0.as_mut_ptr()) };
    if ret.0[0] != 0 {
        return respond(500, b"no redis_address variable\n");
    }
    let address = ret.bytes_at(4);
    unsafe { redis_open(address.as_ptr(), address.len(), ret.0.as_mut_ptr()) };
    if ret.0[0] != 0 {
        return respond(500, format!("open: error case {}\n", ret.0[4]).as_bytes());
    }
    let conn = ret.u32_at(4) as i32;
    let mut value = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut value);
    unsafe {
        redis_set(
            conn,
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
            ret.0.as_mut_ptr(),
        )
    };
    if ret.0[0] != 0 {
        return respond(500, format!("set: error case {}\n", ret.0[4]).as_bytes());
    }
    unsafe { redis_get(conn, key.as_ptr(), key.len(), ret.0.as_mut_ptr()) };
    match (ret.0[0], ret.0[4]) {
        (0, 1) => respond(200, &ret.bytes_at(8)),
        (0, _) => respond(404, b"no such key\n"),
        _ => respond(500, format!("get: error case {}\n", ret.0[4]).as_bytes()),
    }
}
