//! WAGI-style echo command (wasm32-wasi).
//!
//! Input: CGI environment (REQUEST_METHOD, PATH_INFO, QUERY_STRING,
//! CONTENT_TYPE, CONTENT_LENGTH, HTTP_*) and the request body on stdin.
//! Output on stdout: CGI headers, blank line, then
//!
//! ```text
//! method=<m>
//! path=<p>
//! query=<q>
//! body=<body uppercased>
//! ```
//!
//! followed, in query order, by one line per sandbox probe in QUERY_STRING:
//! * `read=<path>`  → `read=ok <len>` | `read=denied <error>`
//! * `write=<path>` → `write=ok <len>` | `write=denied <error>`
//! * `env=<NAME>`   → `env=<value>` | `env=unset`
//! * `headers=1`    → `header.<name>=<value>` for each HTTP_* variable (sorted)
//! * `content=1`    → `content-type=<v>` and `content-length=<v>`

use std::io::{Read, Write};

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

fn main() {
    let method = var("REQUEST_METHOD");
    let path = var("PATH_INFO");
    let query = var("QUERY_STRING");

    let mut body = Vec::new();
    let stdin = std::io::stdin();
    match var("CONTENT_LENGTH").trim().parse::<u64>() {
        Ok(len) => {
            let _ = stdin.lock().take(len).read_to_end(&mut body);
        }
        Err(_) => {
            let _ = stdin.lock().read_to_end(&mut body);
        }
    }

    let mut out = String::new();
    out.push_str(&format!("method={}\n", method));
    out.push_str(&format!("path={}\n", path));
    out.push_str(&format!("query={}\n", query));
    out.push_str(&format!("body={}\n", String::from_utf8_lossy(&body).to_uppercase()));

    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        };
        match k.as_str() {
            "read" => match std::fs::read_to_string(&v) {
                Ok(s) => out.push_str(&format!("read=ok {}\n", s.len())),
                Err(e) => out.push_str(&format!("read=denied {}\n", one_line(&e.to_string()))),
            },
            "write" => {
                let data = b"written by wagi_echo\n";
                match std::fs::write(&v, data) {
                    Ok(()) => out.push_str(&format!("write=ok {}\n", data.len())),
                    Err(e) => {
                        out.push_str(&format!("write=denied {}\n", one_line(&e.to_string())))
                    }
                }
            }
            "env" => match std::env::var(&v) {
                Ok(val) => out.push_str(&format!("env={}\n", one_line(&val))),
                Err(_) => out.push_str("env=unset\n"),
            },
            "headers" => {
                let mut hs: Vec<(String, String)> = std::env::vars()
                    .filter_map(|(name, val)| {
                        name.strip_prefix("HTTP_")
                            .map(|h| (h.to_ascii_lowercase().replace('_', "-"), val))
                    })
                    .collect();
                hs.sort();
                for (h, val) in hs {
                    out.push_str(&format!("header.{}={}\n", h, one_line(&val)));
                }
            }
            "content" => {
                out.push_str(&format!("content-type={}\n", var("CONTENT_TYPE")));
                out.push_str(&format!("content-length={}\n", var("CONTENT_LENGTH")));
            }
            _ => {}
        }
    }

    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    let _ = w.write_all(b"Content-Type: text/plain; charset=utf-8\nStatus: 200\n\n");
    let _ = w.write_all(out.as_bytes());
    let _ = w.flush();
}
