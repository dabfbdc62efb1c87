//! Exercises the host API (`wasmkernel` imports) for the loader test suite.
//!
//! Routes (`/h/{op}` and `/h/{op}/{arg}`):
//! * `GET /h/version` → the ABI version
//! * `GET|POST /h/headers` → the request headers the module sees, one `name: value` line each
//! * `POST /h/log?k=v` → logs the body at info with the query's fields
//! * `GET /h/var/{name}` → the variable, 404 if absent
//! * `GET|PUT|DELETE /h/kv/{key}` → get (404 if absent) / set the body (507 over quota) / delete
//! * `POST /h/incr/{key}?by=n` → the counter's new value (507 over quota)
//! * `GET /h/list?prefix=p` → matching keys, one per line
//! * `GET /h/fetch?url=u&method=m` → the outbound response's status and body (502 on failure)
//!
//! `raw_*` exports forward their arguments to the imports unchanged (the host
//! must trap on out-of-bounds buffers) and return the host's result.

use wasmkernel_guest::host::{self, http, kv, raw, Error, Level};
use wasmkernel_guest::{Request, Response};

fn failed(e: Error) -> Response {
    match e {
        Error::Quota(m) => Response::text(507, &format!("quota: {}\n", m)),
        Error::NotFound => Response::text(404, "not found\n"),
        e => Response::text(502, &format!("{}\n", e)),
    }
}

fn route(req: Request) -> Response {
    let arg = req.param("arg").unwrap_or("").to_string();
    match (req.method.as_str(), req.param("op").unwrap_or("")) {
        (_, "headers") => {
            let lines: Vec<String> = req.headers.iter().map(|(k, v)| format!("{}: {}\n", k, v)).collect();
            Response::text(200, &lines.concat())
        }
        ("GET", "version") => Response::text(200, &format!("{}\n", host::version())),
        ("POST", "log") => {
            let pairs = wasmkernel_guest::url::query_pairs(&req.query);
            let fields: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            host::log_with(Level::Info, &req.body_text(), &fields);
            Response::text(200, "logged\n")
        }
        ("GET", "var") => match host::var(&arg) {
            Some(v) => Response::text(200, &v),
            None => Response::text(404, "no such variable\n"),
        },
        ("GET", "kv") => match kv::get(arg.as_bytes()) {
            Ok(Some(v)) => Response::new(200, "application/octet-stream", v),
            Ok(None) => Response::text(404, "no such key\n"),
            Err(e) => failed(e),
        },
        ("PUT", "kv") => match kv::set(arg.as_bytes(), &req.body) {
            Ok(()) => Response::text(204, ""),
            Err(e) => failed(e),
        },
        ("DELETE", "kv") => match kv::delete(arg.as_bytes()) {
            Ok(true) => Response::text(200, "deleted\n"),
            Ok(false) => Response::text(404, "no such key\n"),
            Err(e) => failed(e),
        },
        ("POST", "incr") => match kv::incr(arg.as_bytes(), req.query_param("by").and_then(|s| s.parse().ok()).unwrap_or(1)) {
            Ok(v) => Response::text(200, &format!("{}\n", v)),
            Err(e) => failed(e),
        },
        ("GET", "list") => match kv::list(req.query_param("prefix").unwrap_or_default().as_bytes()) {
            Ok(keys) => {
                let mut out = String::new();
                for k in keys {
                    out.push_str(&String::from_utf8_lossy(&k));
                    out.push('\n');
                }
                Response::text(200, &out)
            }
            Err(e) => failed(e),
        },
        ("GET", "fetch") => {
            let url = req.query_param("url").unwrap_or_default();
            let method = req.query_param("method").unwrap_or_else(|| "GET".to_string());
            match http::request(&method, &url, &[("x-from", "hostcalls")], &req.body, 0) {
                Ok(r) => Response::text(200, &format!("{} {}", r.status, String::from_utf8_lossy(&r.body))),
                Err(e) => failed(e),
            }
        }
        _ => Response::text(404, "unknown operation\n"),
    }
}

wasmkernel_guest::export_handler!(route);

#[no_mangle]
pub extern "C" fn raw_log(level: i32, a: i32, b: i32, c: i32, d: i32) -> i64 {
    unsafe { raw::log(level, a, b, c, d) }
}
#[no_mangle]
pub extern "C" fn raw_var_get(a: i32, b: i32) -> i64 {
    unsafe { raw::var_get(a, b) }
}
#[no_mangle]
pub extern "C" fn raw_kv_get(a: i32, b: i32) -> i64 {
    unsafe { raw::kv_get(a, b) }
}
#[no_mangle]
pub extern "C" fn raw_kv_set(a: i32, b: i32, c: i32, d: i32) -> i64 {
    unsafe { raw::kv_set(a, b, c, d) }
}
#[no_mangle]
pub extern "C" fn raw_kv_delete(a: i32, b: i32) -> i64 {
    unsafe { raw::kv_delete(a, b) }
}
#[no_mangle]
pub extern "C" fn raw_kv_list(a: i32, b: i32) -> i64 {
    unsafe { raw::kv_list(a, b) }
}
#[no_mangle]
pub extern "C" fn raw_http_request(a: i32, b: i32) -> i64 {
    unsafe { raw::http_request(a, b) }
}
#[no_mangle]
pub extern "C" fn raw_kv_incr(a: i32, b: i32, c: i32) -> i64 {
    unsafe { raw::kv_incr(a, b, c) }
}
#[no_mangle]
pub extern "C" fn raw_result_read(a: i32, b: i32) -> i64 {
    unsafe { raw::result_read(a, b) }
}
/// A loop of `n` `var_get` calls (for measuring host-call cost inside one guest call).
#[no_mangle]
pub extern "C" fn bench_var(n: i32) -> i64 {
    let mut total = 0i64;
    for _ in 0..n {
        total += host::var("greeting").map(|v| v.len() as i64).unwrap_or(-1);
    }
    total
}
/// `n` kv set+get pairs on key "bench".
#[no_mangle]
pub extern "C" fn bench_kv(n: i32) -> i64 {
    let mut total = 0i64;
    for i in 0..n {
        let v = (i as u32).to_le_bytes();
        if kv::set(b"bench", &v).is_err() {
            return -1;
        }
        total += kv::get(b"bench").ok().flatten().map(|v| v.len() as i64).unwrap_or(-1);
    }
    total
}
/// `n` log calls.
#[no_mangle]
pub extern "C" fn bench_log(n: i32) -> i64 {
    for _ in 0..n {
        host::log_with(Level::Debug, "bench", &[("k", "v")]);
    }
    n as i64
}
