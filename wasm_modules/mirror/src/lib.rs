//! Hostile-output fixture for reliability tests (HTTP-handler ABI).
//!
//! `handle` returns the request *body* verbatim as its response bytes, so a
//! test decides every byte the host must parse: status (any u32), header
//! names and values (any bytes), body, truncation and trailing garbage.
//! A request that cannot be decoded answers 400.

use wasmkernel_guest::{abi, Request};

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
        Ok(req) => abi::export_bytes(&req.body),
        Err(_) => abi::export_bytes(b"\x90\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    }
}
