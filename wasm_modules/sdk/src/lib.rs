//! Guest SDK for WasmKernel WebAssembly modules (no external dependencies).
//!
//! * [`abi`] — the allocation ABI shared by every non-WASI module
//!   (`alloc(size: i32) -> i32`, `dealloc(ptr: i32, size: i32)`), exported by
//!   [`export_alloc!`].
//! * [`Request`] / [`Response`] and [`export_handler!`] — the HTTP handler ABI
//!   (`handle(req_ptr: i32, req_len: i32) -> i64`).
//! * [`host`] — the host API (log, variables, key-value, outbound HTTP).
//! * [`filter`] and [`export_filter!`] — filter modules (`on_request`, `on_response`).
//! * [`json`], [`url`] — tiny helpers (JSON string escaping, percent-decoding).
//!
//! Wire format (all integers u32 little-endian, `field(x)` = u32 length + bytes):
//!
//! ```text
//! REQUEST  (written by the host into a buffer it obtained from `alloc`):
//!   field(method) field(path) field(query)
//!   u32 nparams  { field(name) field(value) } * nparams
//!   u32 nheaders { field(name) field(value) } * nheaders   (names lower-case)
//!   field(body)
//! RESPONSE (allocated by the guest with its own `alloc`):
//!   u32 status
//!   u32 nheaders { field(name) field(value) } * nheaders
//!   field(body)
//! ```
//!
//! `handle` returns `((ptr as u64) << 32) | len`. Ownership: the host frees the
//! request buffer (`dealloc(req_ptr, req_len)`) after `handle` returns, and
//! frees the response buffer with `dealloc(ptr, len)` after reading it. The
//! guest never frees either. Malformed request bytes produce a 400 response.

pub mod filter;
pub mod host;

pub mod abi {
    //! Allocation ABI: 8-byte aligned buffers from the Rust global allocator.
    use std::alloc::{alloc as raw_alloc, dealloc as raw_dealloc, Layout};

    /// Alignment of every buffer handed to the host.
    pub const ALIGN: usize = 8;

    /// `alloc(size)`: returns an 8-aligned pointer to `size` bytes, or 0 when
    /// the allocation fails (or `size` is negative). `alloc(0)` returns a
    /// non-null dangling pointer (8) that must not be read or written.
    pub fn alloc_impl(size: i32) -> i32 {
        if size < 0 {
            return 0;
        }
        if size == 0 {
            return ALIGN as i32;
        }
        match Layout::from_size_align(size as usize, ALIGN) {
            Ok(layout) => unsafe { raw_alloc(layout) as usize as i32 },
            Err(_) => 0,
        }
    }

    /// `dealloc(ptr, size)`: frees a buffer from `alloc_impl` with the same
    /// size. `ptr == 0` or `size <= 0` is a no-op.
    ///
    /// # Safety
    /// `ptr`/`size` must come from a previous `alloc_impl` call.
    pub unsafe fn dealloc_impl(ptr: i32, size: i32) {
        if ptr == 0 || size <= 0 {
            return;
        }
        if let Ok(layout) = Layout::from_size_align(size as usize, ALIGN) {
            raw_dealloc(ptr as u32 as usize as *mut u8, layout);
        }
    }

    /// Copies `bytes` into a fresh `alloc_impl` buffer; returns (ptr, len)
    /// packed as `(ptr << 32) | len`, or 0 if the allocation failed.
    pub fn export_bytes(bytes: &[u8]) -> i64 {
        let len = bytes.len() as i32;
        let ptr = alloc_impl(len);
        if ptr == 0 {
            return 0;
        }
        if len > 0 {
            unsafe {
                core::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    ptr as u32 as usize as *mut u8,
                    bytes.len(),
                );
            }
        }
        (((ptr as u32 as u64) << 32) | (len as u32 as u64)) as i64
    }
}

/// Exports `alloc(size: i32) -> i32` and `dealloc(ptr: i32, size: i32)` from
/// the calling crate (use once, at crate root, in compute-only modules).
#[macro_export]
macro_rules! export_alloc {
    () => {
        #[no_mangle]
        pub extern "C" fn alloc(size: i32) -> i32 {
            $crate::abi::alloc_impl(size)
        }

        /// # Safety
        /// `ptr`/`size` must come from `alloc`.
        #[no_mangle]
        pub unsafe extern "C" fn dealloc(ptr: i32, size: i32) {
            $crate::abi::dealloc_impl(ptr, size)
        }
    };
}

/// Exports `alloc`, `dealloc` and `handle(req_ptr: i32, req_len: i32) -> i64`
/// for a handler `fn(Request) -> Response`.
#[macro_export]
macro_rules! export_handler {
    ($handler:path) => {
        $crate::export_alloc!();

        /// # Safety
        /// `req_ptr`/`req_len` must describe readable guest memory.
        #[no_mangle]
        pub unsafe extern "C" fn handle(req_ptr: i32, req_len: i32) -> i64 {
            $crate::handle_raw(req_ptr, req_len, $handler)
        }
    };
}

/// Implementation behind [`export_handler!`]: decodes the request, calls the
/// handler (or builds a 400 for malformed input), encodes the response.
///
/// # Safety
/// `req_ptr`/`req_len` must describe readable guest memory.
pub unsafe fn handle_raw(req_ptr: i32, req_len: i32, handler: fn(Request) -> Response) -> i64 {
    let resp = if req_len < 0 || (req_ptr == 0 && req_len != 0) {
        Response::text(400, "bad request: invalid request buffer\n")
    } else {
        let bytes: &[u8] = if req_len == 0 {
            &[]
        } else {
            core::slice::from_raw_parts(req_ptr as u32 as usize as *const u8, req_len as usize)
        };
        match Request::decode(bytes) {
            Ok(req) => handler(req),
            Err(e) => Response::text(400, &format!("bad request: {}\n", e)),
        }
    };
    abi::export_bytes(&resp.encode())
}

/// An HTTP request as delivered by the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Raw query string without the leading `?` (still percent-encoded).
    pub query: String,
    /// Route parameters bound by the host (e.g. `{name}` in `/hello/{name}`).
    pub params: Vec<(String, String)>,
    /// Headers; names are lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Error produced while decoding the request wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}

pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let end = self.pos.checked_add(4).ok_or(DecodeError("truncated"))?;
        let b = self.buf.get(self.pos..end).ok_or(DecodeError("truncated integer"))?;
        self.pos = end;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        let end = self.pos.checked_add(len).ok_or(DecodeError("truncated"))?;
        let b = self.buf.get(self.pos..end).ok_or(DecodeError("truncated field"))?;
        self.pos = end;
        Ok(b)
    }
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.bytes()?;
        core::str::from_utf8(b)
            .map(|s| s.to_string())
            .map_err(|_| DecodeError("field is not valid UTF-8"))
    }
    pub(crate) fn pairs(&mut self) -> Result<Vec<(String, String)>, DecodeError> {
        let n = self.u32()? as usize;
        // Every pair needs at least 8 bytes: reject absurd counts up front.
        if n > (self.buf.len() - self.pos) / 8 {
            return Err(DecodeError("pair count exceeds request size"));
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.string()?;
            let val = self.string()?;
            v.push((k, val));
        }
        Ok(v)
    }
}

impl Request {
    /// Decodes the request wire format.
    pub fn decode(buf: &[u8]) -> Result<Request, DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        let method = r.string()?;
        let path = r.string()?;
        let query = r.string()?;
        let params = r.pairs()?;
        let headers = r.pairs()?;
        let body = r.bytes()?.to_vec();
        if r.pos != buf.len() {
            return Err(DecodeError("trailing bytes after body"));
        }
        Ok(Request { method, path, query, params, headers, body })
    }

    /// Encodes the request wire format (the host side; useful for tests).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_field(&mut out, self.method.as_bytes());
        put_field(&mut out, self.path.as_bytes());
        put_field(&mut out, self.query.as_bytes());
        put_pairs(&mut out, &self.params);
        put_pairs(&mut out, &self.headers);
        put_field(&mut out, &self.body);
        out
    }

    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Route parameter bound by the host.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// First query parameter with this name, percent-decoded (`+` = space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::query_pairs(&self.query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Body as UTF-8 text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An HTTP response returned to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("content-type".to_string(), content_type.to_string())],
            body: body.into(),
        }
    }
    /// `text/plain; charset=utf-8` response.
    pub fn text(status: u16, s: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", s.as_bytes())
    }
    /// `application/json` response; `s` must already be JSON.
    pub fn json(status: u16, s: &str) -> Response {
        Response::new(status, "application/json", s.as_bytes())
    }
    /// Adds a header (name lower-cased).
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Encodes the response wire format.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.body.len());
        out.extend_from_slice(&(self.status as u32).to_le_bytes());
        put_pairs(&mut out, &self.headers);
        put_field(&mut out, &self.body);
        out
    }
}

pub(crate) fn put_field(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

pub(crate) fn put_pairs(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        put_field(out, k.as_bytes());
        put_field(out, v.as_bytes());
    }
}

pub mod url {
    //! Percent-decoding and query-string splitting.

    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }

    /// Percent-decodes `s` (`%XX`; `+` → space when `plus_is_space`).
    /// Invalid escapes are kept literally; invalid UTF-8 is replaced lossily.
    pub fn decode(s: &str, plus_is_space: bool) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'%' if i + 2 < b.len() => {
                    match (hex(b[i + 1]), hex(b[i + 2])) {
                        (Some(h), Some(l)) => {
                            out.push(h * 16 + l);
                            i += 3;
                            continue;
                        }
                        _ => out.push(b'%'),
                    }
                }
                b'+' if plus_is_space => out.push(b' '),
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Splits a query string into decoded `(name, value)` pairs.
    pub fn query_pairs(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k, true), decode(v, true)),
                None => (decode(p, true), String::new()),
            })
            .collect()
    }
}

pub mod json {
    //! JSON string escaping.

    /// Returns `s` as a quoted JSON string literal.
    pub fn string(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let req = Request {
            method: "GET".into(),
            path: "/hello/x".into(),
            query: "a=1&b=h%C3%A9+llo".into(),
            params: vec![("name".into(), "x".into())],
            headers: vec![("x-foo".into(), "bar".into())],
            body: b"hi".to_vec(),
        };
        let enc = req.encode();
        assert_eq!(Request::decode(&enc).unwrap(), req);
        assert_eq!(req.query_param("b").as_deref(), Some("hé llo"));
        assert_eq!(req.header("X-Foo"), Some("bar"));
        for cut in 0..enc.len() {
            assert!(Request::decode(&enc[..cut]).is_err());
        }
    }

    #[test]
    fn percent() {
        assert_eq!(url::decode("%41%zz%4", false), "A%zz%4");
        assert_eq!(url::decode("a+b%20c%", true), "a b c%");
        assert_eq!(json::string("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\u0001\"");
    }
}
