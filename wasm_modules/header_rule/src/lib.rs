//! Filter: rejects requests by a header rule, and strips response headers.
//!
//! Variables (registry `vars`, all optional):
//! * `header` — the request header the rule reads (default `user-agent`)
//! * `required` — `"true"`: a request without that header is rejected
//! * `deny` — comma-separated substrings; a header value containing one
//!   (case-insensitive) is rejected
//! * `status` — the rejection's status (default 403)
//! * `strip_response` — comma-separated response headers removed (`on_response`)
//!
//! A rejection is a problem+json response and one log line. A request that
//! passes continues with `x-header-rule: pass` added to the response.

use wasmkernel_guest::filter::{Decision, Edits, FilterRequest, FilterResponse};
use wasmkernel_guest::host::{self, Level};
use wasmkernel_guest::{json, Response};

fn list(name: &str) -> Vec<String> {
    host::var(name)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn reject(header: &str, why: &str) -> Decision {
    let status = host::var("status").and_then(|s| s.parse::<u16>().ok()).unwrap_or(403);
    host::log_with(Level::Info, "request rejected by header rule", &[("header", header), ("rule", why)]);
    let body = format!(
        "{{\"type\":\"about:blank\",\"title\":\"Rejected\",\"status\":{},\"detail\":{}}}",
        status,
        json::string(&format!("header {} {}", header, why))
    );
    Decision::Respond(Response::new(status, "application/problem+json", body.into_bytes()))
}

fn check(req: FilterRequest) -> Decision {
    let header = host::var("header").unwrap_or_else(|| "user-agent".to_string()).to_ascii_lowercase();
    match req.header(&header) {
        None if host::var("required").as_deref() == Some("true") => return reject(&header, "is required"),
        None => {}
        Some(value) => {
            let value = value.to_ascii_lowercase();
            if let Some(word) = list("deny").into_iter().find(|word| value.contains(word.as_str())) {
                return reject(&header, &format!("contains a denied value ({})", word));
            }
        }
    }
    Decision::Continue { request: Edits::none(), response: Edits::none().add("x-header-rule", "pass") }
}

fn strip(_resp: FilterResponse) -> Edits {
    list("strip_response").iter().fold(Edits::none(), |edits, name| edits.remove(name))
}

wasmkernel_guest::export_filter!(check, strip);
