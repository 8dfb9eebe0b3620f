//! Calls `wasi:http` and `fermyon:spin` imports with bad arguments, chosen by
//! the request path. Each bad call must trap this request only (a 500); `/ok`
//! answers 200 so tests can see the server is unharmed.

use std::alloc::{Layout, alloc, realloc};

#[link(wasm_import_module = "wasi:http/types@0.2.0")]
unsafe extern "C" {
    #[link_name = "[method]incoming-request.path-with-query"]
    fn path_with_query(request: i32, ret: *mut u8);
    #[link_name = "[method]incoming-request.method"]
    fn method(request: i32, ret: *mut u8);
    #[link_name = "[method]fields.entries"]
    fn fields_entries(fields: i32, ret: *mut u8);
    #[link_name = "[method]fields.get"]
    fn fields_get(fields: i32, name: *const u8, len: usize, ret: *mut u8);
    #[link_name = "[constructor]fields"]
    fn fields_new() -> i32;
    #[link_name = "[static]fields.from-list"]
    fn fields_from_list(entries: *const u8, len: usize, ret: *mut u8);
    #[link_name = "[constructor]outgoing-response"]
    fn outgoing_response_new(headers: i32) -> i32;
    #[link_name = "[static]response-outparam.set"]
    fn outparam_set(param: i32, disc: i32, a: i32, b: i32, c: i64, d: i32, e: i32, f: i32, g: i32);
}

#[link(wasm_import_module = "fermyon:spin/key-value@2.0.0")]
unsafe extern "C" {
    #[link_name = "[static]store.open"]
    fn store_open(label: *const u8, len: usize, ret: *mut u8);
}

/// Allocations made by the host when it returns lists and strings.
///
/// # Safety
/// The canonical ABI's contract: `old` was returned by this function with
/// `old_size` and `align`, or `old_size` is 0; `align` is a power of two.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_size: usize,
    align: usize,
    new_size: usize,
) -> *mut u8 {
    unsafe {
        if old_size == 0 {
            alloc(Layout::from_size_align_unchecked(new_size, align))
        } else {
            realloc(
                old,
                Layout::from_size_align_unchecked(old_size, align),
                new_size,
            )
        }
    }
}

#[repr(C, align(8))]
struct RetArea([u8; 64]);

fn respond_ok(outparam: i32) {
    unsafe {
        let response = outgoing_response_new(fields_new());
        outparam_set(outparam, 0, response, 0, 0, 0, 0, 0, 0);
    }
}

#[unsafe(export_name = "wasi:http/incoming-handler@0.2.0#handle")]
pub extern "C" fn handle(request: i32, outparam: i32) {
    let mut ret = RetArea([0; 64]);
    let path = unsafe {
        path_with_query(request, ret.0.as_mut_ptr());
        let ptr = u32::from_le_bytes(ret.0[4..8].try_into().unwrap()) as *const u8;
        let len = u32::from_le_bytes(ret.0[8..12].try_into().unwrap()) as usize;
        String::from_utf8_lossy(std::slice::from_raw_parts(ptr, len)).into_owned()
    };
    let r = ret.0.as_mut_ptr();
    unsafe {
        match path.as_str() {
            "/forged-handle" => fields_entries(999_999, r),
            // An incoming-request handle used as a fields handle.
            "/wrong-type" => fields_entries(request, r),
            "/bad-pointer" => fields_from_list(0x7fff_fff0 as *const u8, 1000, r),
            "/bad-retptr" => method(request, 0xffff_fff0usize as *mut u8),
            "/huge-list" => fields_from_list(r, 0x1000_0000, r),
            "/bad-utf8" => fields_get(fields_new(), [0xff, 0xfe].as_ptr(), 2, r),
            "/kv-bad-pointer" => store_open(0xffff_fff0usize as *const u8, 16, r),
            "/double-set" => {
                respond_ok(outparam);
                respond_ok(outparam);
            }
            "/no-response" => {}
            _ => respond_ok(outparam),
        }
    }
}
