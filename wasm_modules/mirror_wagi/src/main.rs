//! Hostile-output fixture for reliability tests (WAGI command, wasm32-wasi).
//!
//! Copies the request body (stdin) verbatim to stdout, so a test decides every
//! byte of the CGI output the host must parse: `Status:` lines, header bytes,
//! the blank line (or none), the body. Writes the `X-Stderr` request header
//! (CGI variable `HTTP_X_STDERR`), with `\n` escapes turned into newlines, to
//! stderr, for tests of how the host logs a guest's stderr.

use std::io::{Read, Write};

fn main() {
    let mut body = Vec::new();
    let _ = std::io::stdin().lock().read_to_end(&mut body);
    if let Ok(text) = std::env::var("HTTP_X_STDERR") {
        let _ = std::io::stderr().write_all(text.replace("\\n", "\n").as_bytes());
    }
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    let _ = w.write_all(&body);
    let _ = w.flush();
}
