//! Hostile-output fixture for reliability tests (HTTP-handler ABI).
//!
//! `handle` returns the request *body* verbatim as its response bytes, so a
//! test decides every byte the host must parse: status (any u32), header
//! names and values (any bytes), body, truncation and trailing garbage.
//! A request without a body answers 200 with the request headers the host
//! passed, one `name: value` line each (what the module was allowed to see).
//! A request that cannot be decoded answers 400.

use wasmkernel_guest::{abi, Request, Response};

wasmkernel_guest::export_alloc!();

/// # Safety
/// `req_ptr`/`req_len` must describe readable guest memory.
#[no_mangle]
pub unsafe extern "C" fn handle(req_ptr: i32, req_len: i32) -> i64 {
    let bytes: &[u8] = if req_len <= 0 {
        &[]
    } else {
        core::slice::from_raw_parts(req_ptr as u32 as usize as *const u8, req_len as usize)
    };
    match Request::decode(bytes) {
        Ok(req) if req.body.is_empty() => {
            let lines: Vec<String> = req.headers.iter().map(|(n, v)| format!("{}: {}\n", n, v)).collect();
            abi::export_bytes(&Response::text(200, &lines.concat()).encode())
        }
        Ok(req) => abi::export_bytes(&req.body),
        Err(_) => abi::export_bytes(b"\x90\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    }
}
