//! HTTP handler bound by the host as `/hello/{name}`.
//!
//! * 200 `text/plain; charset=utf-8` body `Hello, <name>!\n`
//! * `?format=json` → 200 `application/json` body `{"message": "Hello, <name>!"}`
//!
//! `name` comes from the route parameter `name`; if absent, the last path
//! segment (percent-decoded); if that is empty, `world`.

use wasmkernel_guest::{json, url, Request, Response};

fn hello(req: Request) -> Response {
    let name = match req.param("name") {
        Some(n) => n.to_string(),
        None => url::decode(req.path.rsplit('/').next().unwrap_or(""), false),
    };
    let name = if name.is_empty() { "world".to_string() } else { name };
    let message = format!("Hello, {}!", name);
    if req.query_param("format").as_deref() == Some("json") {
        Response::json(200, &format!("{{\"message\": {}}}", json::string(&message)))
    } else {
        Response::text(200, &format!("{}\n", message))
    }
}

wasmkernel_guest::export_handler!(hello);
