//! A link shortener written as a module (see wasm_modules/links/README.md).
//!
//! * `POST /links` with `{"url": "https://…"}` → 201 `{"code": "…", "url": "…"}`
//! * `GET /l/{code}` → 302 to the URL (one log line per redirect, the hit counted)
//! * `GET /links/{code}/stats` → `{"code": "…", "url": "…", "hits": n}`
//!
//! Host API: key-value (`url:<code>` → URL, `hits:<code>` → a counter),
//! variables (`schemes`: allowed URL schemes, comma-separated, default
//! "https"), log. Codes are 8 base-62 characters drawn from WASI's
//! `random_get` (about 47 bits): nobody can tell from a code which URL it
//! names or test whether a URL was shortened; a collision draws again.
//!
//! The body is parsed as JSON (RFC 8259, a complete parser): it must be one
//! object whose top-level `"url"` is a string, and no object in it may
//! repeat a key — so the module, a standard parser and the HMAC filter in
//! front of it agree on which URL was signed. A URL is stored only if it can
//! be sent back as a `Location` header: ASCII host (an IDN must come as
//! punycode), no whitespace or control characters; any other non-ASCII
//! character (in the path, query or fragment) is percent-encoded.

use wasmkernel_guest::host::{self, kv, Error, Level};
use wasmkernel_guest::{json, Request, Response};

const MAX_URL: usize = 2048;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn problem(status: u16, title: &str, detail: &str) -> Response {
    let body = format!(
        "{{\"type\":\"about:blank\",\"title\":{},\"status\":{},\"detail\":{}}}",
        json::string(title),
        status,
        json::string(detail)
    );
    Response::new(status, "application/problem+json", body.into_bytes())
}

fn store_failed(e: Error) -> Response {
    match e {
        Error::Quota(m) => problem(507, "Insufficient Storage", &m),
        Error::Unavailable(m) => problem(503, "Service Unavailable", &m),
        e => problem(500, "Internal Server Error", &e.to_string()),
    }
}

/// A JSON value, as far as this API needs one.
enum Json {
    Str(String),
    Other,
    Object(Vec<(String, Json)>),
}

/// A complete JSON parser (RFC 8259) refusing duplicate keys in any object.
struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), &'static str> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err("the body is not valid JSON")
        }
    }

    fn value(&mut self) -> Result<Json, &'static str> {
        self.ws();
        self.depth += 1;
        if self.depth > 64 {
            return Err("the JSON body is nested too deeply");
        }
        let v = match self.b.get(self.i) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.word(b"true"),
            Some(b'f') => self.word(b"false"),
            Some(b'n') => self.word(b"null"),
            Some(b'-') | Some(b'0'..=b'9') => self.number(),
            _ => Err("the body is not valid JSON"),
        };
        self.depth -= 1;
        v
    }

    fn word(&mut self, w: &[u8]) -> Result<Json, &'static str> {
        if self.b[self.i..].starts_with(w) {
            self.i += w.len();
            Ok(Json::Other)
        } else {
            Err("the body is not valid JSON")
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.i < self.b.len() && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Json, &'static str> {
        let bad = "the body is not valid JSON (a number)";
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(bad),
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(bad);
            }
        }
        if matches!(self.b.get(self.i), Some(b'e') | Some(b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+') | Some(b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(bad);
            }
        }
        Ok(Json::Other)
    }

    fn array(&mut self) -> Result<Json, &'static str> {
        self.i += 1;
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Json::Other);
        }
        loop {
            self.value()?;
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Json::Other);
                }
                _ => return Err("the body is not valid JSON"),
            }
        }
    }

    fn object(&mut self) -> Result<Json, &'static str> {
        self.i += 1;
        let mut members: Vec<(String, Json)> = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Json::Object(members));
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return Err("the body is not valid JSON");
            }
            let key = self.string()?;
            if members.iter().any(|(k, _)| *k == key) {
                return Err("the JSON body repeats a key in one object");
            }
            self.eat(b':')?;
            let value = self.value()?;
            members.push((key, value));
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Json::Object(members));
                }
                _ => return Err("the body is not valid JSON"),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, &'static str> {
        let hex = self.b.get(self.i..self.i + 4).ok_or("bad \\u escape")?;
        let text = core::str::from_utf8(hex).map_err(|_| "bad \\u escape")?;
        if !text.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err("bad \\u escape");
        }
        self.i += 4;
        u32::from_str_radix(text, 16).map_err(|_| "bad \\u escape")
    }

    fn string(&mut self) -> Result<String, &'static str> {
        self.i += 1; // the opening quote
        let mut out = String::new();
        loop {
            let c = *self.b.get(self.i).ok_or("unterminated JSON string")?;
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    let e = *self.b.get(self.i + 1).ok_or("unterminated JSON string")?;
                    self.i += 2;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code) {
                                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err("a lone surrogate in a JSON string");
                                }
                                self.i += 2;
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return Err("a lone surrogate in a JSON string");
                                }
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            }
                            out.push(char::from_u32(code).ok_or("a lone surrogate in a JSON string")?);
                        }
                        _ => return Err("bad escape in a JSON string"),
                    }
                }
                0..=0x1F => return Err("a control character in a JSON string"),
                _ => {
                    let len = utf8_len(c);
                    let s = core::str::from_utf8(self.b.get(self.i..self.i + len).ok_or("truncated UTF-8")?).map_err(|_| "invalid UTF-8")?;
                    out.push_str(s);
                    self.i += len;
                }
            }
        }
    }
}

/// The top-level `"url"` string of a JSON object body.
fn json_url(body: &[u8]) -> Result<String, &'static str> {
    let mut p = Parser { b: body, i: 0, depth: 0 };
    let value = p.value()?;
    p.ws();
    if p.i != body.len() {
        return Err("the body is not valid JSON (trailing data)");
    }
    match value {
        Json::Object(members) => match members.into_iter().find(|(k, _)| k == "url") {
            Some((_, Json::Str(url))) => Ok(url),
            _ => Err("the JSON object has no string field \"url\""),
        },
        _ => Err("the body must be a JSON object like {\"url\": \"https://example.com\"}"),
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// `url` as it may be stored and sent back in `Location`: non-ASCII characters percent-encoded.
fn encoded(url: &str) -> String {
    let mut out = String::new();
    for b in url.bytes() {
        if b.is_ascii() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{:02X}", b));
        }
    }
    out
}

/// Checks `url` against the allowed schemes; the reason if it is refused.
fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL {
        return Err(format!("the URL is longer than {} bytes", MAX_URL));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')) {
        return Err("the URL contains whitespace, control or invisible characters".to_string());
    }
    let allowed: Vec<String> = host::var("schemes")
        .unwrap_or_else(|| "https".to_string())
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    let (scheme, rest) = url.split_once("://").ok_or("the URL must be absolute (scheme://host/...)")?;
    if !allowed.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Err(format!("URL scheme {:?} is not allowed (allowed: {})", scheme, allowed.join(", ")));
    }
    let host = rest.split(|c| c == '/' || c == '?' || c == '#').next().unwrap_or("");
    if host.is_empty() {
        return Err("the URL has no host".to_string());
    }
    if !host.is_ascii() {
        return Err("the URL's host must be ASCII (write an internationalised name in punycode, xn--…)".to_string());
    }
    Ok(())
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn random_get(buf: *mut u8, len: usize) -> u16;
}

/// A fresh random code (WASI `random_get`), or None if the host has no randomness.
fn random_code() -> Option<String> {
    let mut bytes = [0u8; 8];
    if unsafe { random_get(bytes.as_mut_ptr(), bytes.len()) } != 0 {
        return None;
    }
    let mut n = u64::from_le_bytes(bytes);
    let mut out = String::new();
    for _ in 0..8 {
        out.push(ALPHABET[(n % 62) as usize] as char);
        n /= 62;
    }
    Some(out)
}

fn create(req: &Request) -> Response {
    let url = match json_url(&req.body) {
        Ok(url) => url,
        Err(why) => return problem(400, "Bad Request", why),
    };
    if let Err(why) = check_url(&url) {
        return problem(422, "Unprocessable Content", &why);
    }
    let url = encoded(&url);
    if url.len() > MAX_URL {
        return problem(422, "Unprocessable Content", &format!("the URL is longer than {} bytes once encoded", MAX_URL));
    }
    for _ in 0..5 {
        let code = match random_code() {
            Some(code) => code,
            None => return problem(503, "Service Unavailable", "no randomness for a code; retry"),
        };
        let key = format!("url:{}", code);
        match kv::get(key.as_bytes()) {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => return store_failed(e),
        }
        if let Err(e) = kv::set(key.as_bytes(), url.as_bytes()) {
            return store_failed(e);
        }
        host::log_with(Level::Info, "link created", &[("code", &code)]);
        let body = format!("{{\"code\":{},\"url\":{}}}", json::string(&code), json::string(&url));
        return Response::json(201, &body).with_header("location", &format!("/l/{}", code));
    }
    problem(503, "Service Unavailable", "no free code; retry")
}

fn lookup(code: &str) -> Result<String, Response> {
    if code.is_empty() || code.len() > 16 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(problem(404, "Not Found", "no such link"));
    }
    match kv::get(format!("url:{}", code).as_bytes()) {
        Ok(Some(url)) => Ok(String::from_utf8_lossy(&url).into_owned()),
        Ok(None) => Err(problem(404, "Not Found", "no such link")),
        Err(e) => Err(store_failed(e)),
    }
}

fn redirect(code: &str) -> Response {
    let url = match lookup(code) {
        Ok(url) => url,
        Err(resp) => return resp,
    };
    let hits = match kv::incr(format!("hits:{}", code).as_bytes(), 1) {
        Ok(n) => n,
        Err(e) => return store_failed(e),
    };
    host::log_with(Level::Info, "redirect", &[("code", code), ("to", &url), ("hits", &hits.to_string())]);
    Response::text(302, "").with_header("location", &url)
}

fn stats(code: &str) -> Response {
    let url = match lookup(code) {
        Ok(url) => url,
        Err(resp) => return resp,
    };
    let hits = match kv::get(format!("hits:{}", code).as_bytes()) {
        Ok(v) => v.and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0),
        Err(e) => return store_failed(e),
    };
    Response::json(200, &format!("{{\"code\":{},\"url\":{},\"hits\":{}}}", json::string(code), json::string(&url), hits))
}

fn route(req: Request) -> Response {
    let code = req.param("code").unwrap_or("").to_string();
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/links") => create(&req),
        ("GET", p) if p.starts_with("/l/") => redirect(&code),
        ("GET", p) if p.starts_with("/links/") && p.ends_with("/stats") => stats(&code),
        _ => problem(404, "Not Found", "no such links route"),
    }
}

wasmkernel_guest::export_handler!(route);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_top_level_url_only() {
        assert_eq!(json_url(br#"{"url": "https://a.example/x?y=\"z\""}"#).unwrap(), "https://a.example/x?y=\"z\"");
        assert_eq!(json_url(br#"{"note": "url", "url":"https://b"}"#).unwrap(), "https://b");
        assert!(json_url(br#"{"x": {"url": "https://nested"}}"#).is_err());
        assert!(json_url(br#"{"url": "https://a", "url": "https://b"}"#).is_err());
        assert!(json_url(br#"{"url": 5}"#).is_err());
        assert!(json_url(b"url").is_err());
    }
}
