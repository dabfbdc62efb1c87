//! Filter modules (`kind = "filter"`): WebAssembly middleware (see docs/wasm-abi.md).
//!
//! A filter exports `alloc`, `dealloc`, `memory`, `on_request` and, if it
//! edits headers after seeing the response, `on_response` — all of them by
//! [`export_filter!`]. Both take `(ptr, len)` of a buffer the host wrote and
//! return `(ptr << 32) | len` of one the guest allocated, like `handle`.
//!
//! ```text
//! on_request  in : field(method) field(path) field(query) field(route)
//!                  u32 n { field(name) field(value) }        headers, names lower-case
//!                  u32 has_body field(body)                  has_body = 1 when configured (body = true)
//!             out: u32 0 (continue) edits(request) edits(response)
//!                | u32 1 (respond)  u32 status u32 n { field(name) field(value) } field(body)
//!   edits        : u32 n { field(name) field(value) }        headers added (appended)
//!                  u32 n { field(name) }                     headers removed (before the additions)
//! on_response in : field(method) field(path) u32 status u32 n { field(name) field(value) }
//!             out: edits(response)
//! ```

use crate::{put_field, put_pairs, Reader, Response};

/// The request as a filter sees it (credential headers withheld unless granted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterRequest {
    pub method: String,
    pub path: String,
    /// Raw query string (still percent-encoded).
    pub query: String,
    /// The name of the route being guarded.
    pub route: String,
    /// Names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body, when the registry's filter entry says `body = true`.
    pub body: Option<Vec<u8>>,
}

impl FilterRequest {
    pub fn decode(buf: &[u8]) -> Result<FilterRequest, crate::DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        let method = r.string()?;
        let path = r.string()?;
        let query = r.string()?;
        let route = r.string()?;
        let headers = r.pairs()?;
        let has_body = r.u32()? == 1;
        let body = r.bytes()?.to_vec();
        if r.pos != buf.len() {
            return Err(crate::DecodeError("trailing bytes after body"));
        }
        Ok(FilterRequest { method, path, query, route, headers, body: if has_body { Some(body) } else { None } })
    }

    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Header edits: `remove` first, then `add` (appended; remove + add replaces).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    pub add: Vec<(String, String)>,
    pub remove: Vec<String>,
}

impl Edits {
    pub fn none() -> Edits {
        Edits::default()
    }
    pub fn add(mut self, name: &str, value: &str) -> Edits {
        self.add.push((name.to_string(), value.to_string()));
        self
    }
    pub fn remove(mut self, name: &str) -> Edits {
        self.remove.push(name.to_string());
        self
    }
    fn encode(&self, out: &mut Vec<u8>) {
        put_pairs(out, &self.add);
        out.extend_from_slice(&(self.remove.len() as u32).to_le_bytes());
        for name in &self.remove {
            put_field(out, name.as_bytes());
        }
    }
}

/// What `on_request` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Call the next handler, with the request's and then the response's headers edited.
    Continue { request: Edits, response: Edits },
    /// Answer now; the route's handler is not called.
    Respond(Response),
}

impl Decision {
    /// Continue unchanged.
    pub fn pass() -> Decision {
        Decision::Continue { request: Edits::none(), response: Edits::none() }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Decision::Continue { request, response } => {
                out.extend_from_slice(&0u32.to_le_bytes());
                request.encode(&mut out);
                response.encode(&mut out);
            }
            Decision::Respond(resp) => {
                out.extend_from_slice(&1u32.to_le_bytes());
                out.extend_from_slice(&resp.encode());
            }
        }
        out
    }
}

/// The response as `on_response` sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterResponse {
    pub method: String,
    pub path: String,
    pub status: u32,
    pub headers: Vec<(String, String)>,
}

impl FilterResponse {
    pub fn decode(buf: &[u8]) -> Result<FilterResponse, crate::DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        let method = r.string()?;
        let path = r.string()?;
        let status = r.u32()?;
        let headers = r.pairs()?;
        if r.pos != buf.len() {
            return Err(crate::DecodeError("trailing bytes after headers"));
        }
        Ok(FilterResponse { method, path, status, headers })
    }
}

unsafe fn input<'a>(ptr: i32, len: i32) -> Option<&'a [u8]> {
    if len < 0 || (ptr == 0 && len != 0) {
        return None;
    }
    Some(if len == 0 { &[] } else { core::slice::from_raw_parts(ptr as u32 as usize as *const u8, len as usize) })
}

/// Behind [`export_filter!`]: decodes, calls `filter`, encodes (a malformed buffer: respond 400).
///
/// # Safety
/// `ptr`/`len` must describe readable guest memory.
pub unsafe fn on_request_raw(ptr: i32, len: i32, filter: fn(FilterRequest) -> Decision) -> i64 {
    let decision = match input(ptr, len).map(FilterRequest::decode) {
        Some(Ok(req)) => filter(req),
        _ => Decision::Respond(Response::text(400, "bad request: malformed filter input\n")),
    };
    crate::abi::export_bytes(&decision.encode())
}

/// Behind [`export_filter!`] with an `on_response` function (a malformed buffer: no edits).
///
/// # Safety
/// `ptr`/`len` must describe readable guest memory.
pub unsafe fn on_response_raw(ptr: i32, len: i32, filter: fn(FilterResponse) -> Edits) -> i64 {
    let edits = match input(ptr, len).map(FilterResponse::decode) {
        Some(Ok(resp)) => filter(resp),
        _ => Edits::none(),
    };
    let mut out = Vec::new();
    edits.encode(&mut out);
    crate::abi::export_bytes(&out)
}

/// Exports `alloc`, `dealloc`, `on_request` for `fn(FilterRequest) -> Decision`
/// and, given a second function `fn(FilterResponse) -> Edits`, `on_response`.
#[macro_export]
macro_rules! export_filter {
    ($on_request:path) => {
        $crate::export_alloc!();

        /// # Safety
        /// `ptr`/`len` must describe readable guest memory.
        #[no_mangle]
        pub unsafe extern "C" fn on_request(ptr: i32, len: i32) -> i64 {
            $crate::filter::on_request_raw(ptr, len, $on_request)
        }
    };
    ($on_request:path, $on_response:path) => {
        $crate::export_filter!($on_request);

        /// # Safety
        /// `ptr`/`len` must describe readable guest memory.
        #[no_mangle]
        pub unsafe extern "C" fn on_response(ptr: i32, len: i32) -> i64 {
            $crate::filter::on_response_raw(ptr, len, $on_response)
        }
    };
}
