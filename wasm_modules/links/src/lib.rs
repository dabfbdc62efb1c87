//! A link shortener written as a module (see wasm_modules/links/README.md).
//!
//! * `POST /links` with `{"url": "https://…"}` → 201 `{"code": "…", "url": "…"}`
//! * `GET /l/{code}` → 302 to the URL (one log line per redirect, the hit counted)
//! * `GET /links/{code}/stats` → `{"code": "…", "url": "…", "hits": n}`
//!
//! Host API: key-value (`url:<code>` → URL, `hits:<code>` → a counter),
//! variables (`schemes`: allowed URL schemes, comma-separated, default
//! "https"; `salt`: mixed into codes), log. Codes are 7 base-62 characters
//! of a 64-bit FNV-1a hash of the URL: the same URL always gets the same
//! code; a collision with another URL tries the next salt.

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

/// The string value of `"url"` in a flat JSON object (enough for this API).
fn json_url(body: &str) -> Result<String, &'static str> {
    let b = body.trim().as_bytes();
    if b.first() != Some(&b'{') || b.last() != Some(&b'}') {
        return Err("the body must be a JSON object like {\"url\": \"https://example.com\"}");
    }
    let mut i = 1;
    let mut strings = Vec::new();
    while i < b.len() - 1 {
        match b[i] {
            b'"' => {
                let (s, next) = json_string(b, i)?;
                strings.push((s, next));
                i = next;
            }
            _ => i += 1,
        }
    }
    // Keys and values alternate only for string values: find "url" followed by ':' and a string.
    for w in strings.windows(2) {
        let ((key, end), (value, _)) = (&w[0], &w[1]);
        if key == "url" && b[*end..].iter().find(|c| !c.is_ascii_whitespace()) == Some(&b':') {
            return Ok(value.clone());
        }
    }
    Err("the JSON object has no string field \"url\"")
}

fn json_string(b: &[u8], start: usize) -> Result<(String, usize), &'static str> {
    let mut out = String::new();
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'"' => return Ok((out, i + 1)),
            b'\\' if i + 1 < b.len() => {
                match b[i + 1] {
                    b'"' => out.push('"'),
                    b'\\' => out.push('\\'),
                    b'/' => out.push('/'),
                    b'n' => out.push('\n'),
                    b't' => out.push('\t'),
                    b'r' => out.push('\r'),
                    b'u' if i + 5 < b.len() => {
                        let hex = core::str::from_utf8(&b[i + 2..i + 6]).map_err(|_| "bad \\u escape")?;
                        let c = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32).ok_or("bad \\u escape")?;
                        out.push(c);
                        i += 4;
                    }
                    _ => return Err("bad escape in a JSON string"),
                }
                i += 2;
            }
            _ => {
                let len = utf8_len(b[i]);
                let s = core::str::from_utf8(b.get(i..i + len).ok_or("truncated UTF-8")?).map_err(|_| "invalid UTF-8")?;
                out.push_str(s);
                i += len;
            }
        }
    }
    Err("unterminated JSON string")
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Checks `url` against the allowed schemes; the reason if it is refused.
fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL {
        return Err(format!("the URL is longer than {} bytes", MAX_URL));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the URL contains whitespace or control characters".to_string());
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
    Ok(())
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    for part in parts {
        for b in *part {
            hash ^= *b as u64;
            hash = hash.wrapping_mul(0x100000001b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x100000001b3);
    }
    hash
}

fn code_for(url: &str, attempt: u8) -> String {
    let salt = host::var("salt").unwrap_or_default();
    let mut n = fnv1a(&[salt.as_bytes(), url.as_bytes(), &[attempt]]);
    let mut out = String::new();
    for _ in 0..7 {
        out.push(ALPHABET[(n % 62) as usize] as char);
        n /= 62;
    }
    out
}

fn create(req: &Request) -> Response {
    let url = match json_url(&req.body_text()) {
        Ok(url) => url,
        Err(why) => return problem(400, "Bad Request", why),
    };
    if let Err(why) = check_url(&url) {
        return problem(422, "Unprocessable Content", &why);
    }
    for attempt in 0..5u8 {
        let code = code_for(&url, attempt);
        let key = format!("url:{}", code);
        match kv::get(key.as_bytes()) {
            Ok(Some(existing)) if existing != url.as_bytes() => continue,
            Ok(_) => {}
            Err(e) => return store_failed(e),
        }
        if let Err(e) = kv::set(key.as_bytes(), url.as_bytes()) {
            return store_failed(e);
        }
        host::log_with(Level::Info, "link created", &[("code", &code)]);
        let body = format!("{{\"code\":{},\"url\":{}}}", json::string(&code), json::string(&url));
        return Response::json(201, &body).with_header("location", &format!("/l/{}", code));
    }
    problem(503, "Service Unavailable", "no free code for this URL; retry")
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
    fn finds_the_url_field() {
        assert_eq!(json_url(r#"{"url": "https://a.example/x?y=\"z\""}"#).unwrap(), "https://a.example/x?y=\"z\"");
        assert_eq!(json_url(r#"{"note": "url", "url":"https://b"}"#).unwrap(), "https://b");
        assert!(json_url(r#"{"url": 5}"#).is_err());
        assert!(json_url("url").is_err());
    }
}
