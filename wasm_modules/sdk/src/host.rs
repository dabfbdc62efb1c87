//! Guest side of the WasmKernel host API (import module `wasmkernel`, ABI v1;
//! see docs/wasm-abi.md). Each capability must be granted to the module in
//! the registry; an ungranted call traps (the request fails with a 500 and
//! the server logs which registry key grants it).
//!
//! Every host function takes `(ptr, len)` pairs of guest memory and returns
//! an `i64`: `>= 0` is the length of a result the host holds until the guest
//! copies it with `result_read`; `< 0` is `-code` (see [`Error`]), the
//! error's message being the pending result.

#[link(wasm_import_module = "wasmkernel")]
extern "C" {
    fn abi_version() -> i64;
    fn log(level: i32, msg_ptr: i32, msg_len: i32, fields_ptr: i32, fields_len: i32) -> i64;
    fn var_get(name_ptr: i32, name_len: i32) -> i64;
    fn kv_get(key_ptr: i32, key_len: i32) -> i64;
    fn kv_set(key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32) -> i64;
    fn kv_delete(key_ptr: i32, key_len: i32) -> i64;
    fn kv_list(prefix_ptr: i32, prefix_len: i32) -> i64;
    fn kv_incr(key_ptr: i32, key_len: i32, delta: i32) -> i64;
    fn http_request(req_ptr: i32, req_len: i32) -> i64;
    fn result_read(ptr: i32, len: i32) -> i64;
}

/// Raw imports, for tests that pass arbitrary pointers (the host must trap).
pub mod raw {
    pub unsafe fn log(level: i32, a: i32, b: i32, c: i32, d: i32) -> i64 { super::log(level, a, b, c, d) }
    pub unsafe fn var_get(a: i32, b: i32) -> i64 { super::var_get(a, b) }
    pub unsafe fn kv_get(a: i32, b: i32) -> i64 { super::kv_get(a, b) }
    pub unsafe fn kv_set(a: i32, b: i32, c: i32, d: i32) -> i64 { super::kv_set(a, b, c, d) }
    pub unsafe fn kv_delete(a: i32, b: i32) -> i64 { super::kv_delete(a, b) }
    pub unsafe fn kv_list(a: i32, b: i32) -> i64 { super::kv_list(a, b) }
    pub unsafe fn kv_incr(a: i32, b: i32, c: i32) -> i64 { super::kv_incr(a, b, c) }
    pub unsafe fn http_request(a: i32, b: i32) -> i64 { super::http_request(a, b) }
    pub unsafe fn result_read(a: i32, b: i32) -> i64 { super::result_read(a, b) }
}

/// A host call that failed cleanly (the code is the ABI's error code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// 1: no such key or variable.
    NotFound,
    /// 2: a key-value quota (key size, value size, total bytes) would be exceeded.
    Quota(String),
    /// 3: malformed input (empty key, bad URL, ...).
    Invalid(String),
    /// 4: the outbound request failed (network, timeout, too large, redirect refused).
    Http(String),
    /// 5: the key-value store is unavailable (Redis down); retry later.
    Unavailable(String),
    /// Any other code.
    Other(i64, String),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::NotFound => f.write_str("not found"),
            Error::Quota(m) | Error::Invalid(m) | Error::Http(m) | Error::Unavailable(m) => f.write_str(m),
            Error::Other(c, m) => write!(f, "error {}: {}", c, m),
        }
    }
}

fn ptr(b: &[u8]) -> i32 {
    b.as_ptr() as usize as i32
}

fn take(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    if len > 0 {
        unsafe { result_read(out.as_mut_ptr() as usize as i32, len as i32) };
    }
    out
}

fn result(code: i64) -> Result<Vec<u8>, Error> {
    if code >= 0 {
        return Ok(take(code as usize));
    }
    // The error message is pending; its length is unknown: read up to 4 KiB.
    let mut msg = vec![0u8; 4096];
    let n = unsafe { result_read(msg.as_mut_ptr() as usize as i32, msg.len() as i32) };
    msg.truncate(n.max(0) as usize);
    let msg = String::from_utf8_lossy(&msg).into_owned();
    Err(match -code {
        1 => Error::NotFound,
        2 => Error::Quota(msg),
        3 => Error::Invalid(msg),
        4 => Error::Http(msg),
        5 => Error::Unavailable(msg),
        c => Error::Other(c, msg),
    })
}

/// The host's ABI version (1).
pub fn version() -> i64 {
    unsafe { abi_version() }
}

/// Log levels of [`log_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warning = 2,
    Error = 3,
}

/// One log line (grant: `log = true`), with key-value fields.
pub fn log_with(level: Level, message: &str, fields: &[(&str, &str)]) {
    let mut enc = Vec::new();
    enc.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    for (k, v) in fields {
        enc.extend_from_slice(&(k.len() as u32).to_le_bytes());
        enc.extend_from_slice(k.as_bytes());
        enc.extend_from_slice(&(v.len() as u32).to_le_bytes());
        enc.extend_from_slice(v.as_bytes());
    }
    unsafe { log(level as i32, ptr(message.as_bytes()), message.len() as i32, ptr(&enc), enc.len() as i32) };
}

/// An info log line without fields.
pub fn info(message: &str) {
    log_with(Level::Info, message, &[]);
}

/// A variable from the module's `vars` table (grant: `vars = {...}`); None if absent.
pub fn var(name: &str) -> Option<String> {
    let code = unsafe { var_get(ptr(name.as_bytes()), name.len() as i32) };
    result(code).ok().map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Key-value store (grant: `kv = {...}`), in the module's namespace.
pub mod kv {
    use super::*;

    /// The value of `key`, or None.
    pub fn get(key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        match result(unsafe { kv_get(ptr(key), key.len() as i32) }) {
            Ok(v) => Ok(Some(v)),
            Err(Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores `value` under `key` (fails with `Error::Quota` over a quota).
    pub fn set(key: &[u8], value: &[u8]) -> Result<(), Error> {
        result(unsafe { kv_set(ptr(key), key.len() as i32, ptr(value), value.len() as i32) }).map(|_| ())
    }

    /// Adds `delta` to the counter `key` (absent: 0; stored as a decimal
    /// string) atomically, whichever worker or instance runs the call; the new value.
    pub fn incr(key: &[u8], delta: i32) -> Result<i64, Error> {
        let v = result(unsafe { kv_incr(ptr(key), key.len() as i32, delta) })?;
        core::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()).ok_or_else(|| Error::Invalid("bad counter".to_string()))
    }

    /// Deletes `key`; true if it existed.
    pub fn delete(key: &[u8]) -> Result<bool, Error> {
        result(unsafe { kv_delete(ptr(key), key.len() as i32) }).map(|v| v.first() == Some(&1))
    }

    /// Keys starting with `prefix` (at most 1000, sorted).
    pub fn list(prefix: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
        let data = result(unsafe { kv_list(ptr(prefix), prefix.len() as i32) })?;
        let mut keys = Vec::new();
        let mut pos = 4;
        if data.len() < 4 {
            return Ok(keys);
        }
        let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        for _ in 0..n {
            if pos + 4 > data.len() {
                break;
            }
            let len = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
            pos += 4;
            if pos + len > data.len() {
                break;
            }
            keys.push(data[pos..pos + len].to_vec());
            pos += len;
        }
        Ok(keys)
    }
}

/// Outbound HTTP (grant: `http = { allow = [...] }`), performed by the host.
pub mod http {
    use super::*;

    /// A response from an allowed origin.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Response {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    /// Sends a request; `timeout_ms = 0` uses the grant's timeout.
    pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8], timeout_ms: u32) -> Result<Response, Error> {
        let mut enc = Vec::new();
        for f in [method.as_bytes(), url.as_bytes()] {
            enc.extend_from_slice(&(f.len() as u32).to_le_bytes());
            enc.extend_from_slice(f);
        }
        enc.extend_from_slice(&(headers.len() as u32).to_le_bytes());
        for (k, v) in headers {
            for f in [k.as_bytes(), v.as_bytes()] {
                enc.extend_from_slice(&(f.len() as u32).to_le_bytes());
                enc.extend_from_slice(f);
            }
        }
        enc.extend_from_slice(&(body.len() as u32).to_le_bytes());
        enc.extend_from_slice(body);
        enc.extend_from_slice(&timeout_ms.to_le_bytes());
        let data = result(unsafe { http_request(ptr(&enc), enc.len() as i32) })?;
        // Same layout as a handler's response: u32 status, pairs, field(body).
        let mut r = crate::Reader { buf: &data, pos: 0 };
        let decoded = (|| -> Result<Response, crate::DecodeError> {
            let status = r.u32()? as u16;
            let headers = r.pairs()?;
            let body = r.bytes()?.to_vec();
            Ok(Response { status, headers, body })
        })();
        decoded.map_err(|e| Error::Invalid(e.to_string()))
    }

    /// `GET url`.
    pub fn get(url: &str) -> Result<Response, Error> {
        request("GET", url, &[], &[], 0)
    }
}
