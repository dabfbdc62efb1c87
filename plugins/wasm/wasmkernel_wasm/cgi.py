"""WASI command modules, WAGI-style: the CGI environment in, stdout parsed into a response."""

from __future__ import annotations

import re

from wasmkernel import BadRequest
from wasmkernel_wasm import (
    WasmBadResponse,
    WasmRequest,
    WasmResponse,
)
from wasmkernel_wasm.wire import checked_response

#: Not passed as HTTP_* variables: CONTENT_TYPE/CONTENT_LENGTH carry the
#: first two, the others are connection-specific or "httpoxy" (HTTP_PROXY).
_SKIPPED_HEADERS = {"content-type", "content-length", "connection", "proxy"}


def cgi_env(request: WasmRequest, route: str, server_name: str = "localhost", server_port: str = "80") -> dict[str, str]:
    """The CGI variables a WAGI command sees (the request's headers were
    already stripped of credentials by the trigger that built it). A header whose
    name has an underscore is dropped, as Apache httpd does: `X_Forwarded_For`
    would otherwise collide with (and override) `X-Forwarded-For`. 400 for a
    NUL character, which no environment variable can hold."""
    headers = dict(request.headers)
    env = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "WasmKernel",
        "SERVER_NAME": server_name,
        "SERVER_PORT": server_port,
        "REQUEST_METHOD": request.method,
        "PATH_INFO": request.path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": request.query,
        "CONTENT_TYPE": headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(request.body)),
        "X_MATCHED_ROUTE": route,
    }
    for name, value in request.headers:
        if name not in _SKIPPED_HEADERS and "_" not in name:
            key = "HTTP_" + name.upper().replace("-", "_")
            env[key] = f"{env[key]}, {value}" if key in env else value
    for name, value in request.params:
        env["X_PARAM_" + name.upper().replace("-", "_")] = value
    if any("\x00" in value for value in env.values()):
        raise BadRequest("The request's path, query, parameters or headers contain a NUL character")
    return env


#: The most a WAGI command's CGI header block may hold.
HEAD_LIMIT = 64 * 1024
_STATUS = re.compile(r"([0-9]{3})(?: [\t\x20-\x7e]*)?")


def _head_lines(stdout: bytes, module: str) -> tuple[list[bytes], bytes]:
    """CGI's rule: header lines, each ending in LF or CRLF, up to the first
    empty line; everything after it is the body (blank lines included)."""
    lines: list[bytes] = []
    pos = 0
    while True:
        end = stdout.find(b"\n", pos, HEAD_LIMIT + 1)
        if end < 0:
            raise WasmBadResponse(f"module '{module}' wrote no CGI header block within {HEAD_LIMIT} bytes (expected header lines, a blank line, then the body)")
        line = stdout[pos:end]
        if line.endswith(b"\r"):
            line = line[:-1]
        pos = end + 1
        if not line:
            return lines, stdout[pos:]
        lines.append(line)


def parse_cgi_output(stdout: bytes, module: str) -> WasmResponse:
    """Split a WAGI command's stdout into header lines (`Status`, `Location`,
    `Content-Type`, others) and body; `WasmBadResponse` (502) if the header
    block is missing or malformed, or anything in it cannot be sent."""
    lines, body = _head_lines(stdout, module)
    status: int | None = None
    headers: list[tuple[str, str]] = []
    for raw in lines:
        name, colon, value = raw.decode("latin-1").partition(":")
        if not colon:
            raise WasmBadResponse(f"module '{module}' wrote a malformed CGI header line {raw[:40]!r}")
        value = value.strip(" \t")
        if name.lower() != "status":
            headers.append((name, value))
            continue
        code = _STATUS.fullmatch(value)
        if status is not None or code is None:
            raise WasmBadResponse(f"module '{module}' wrote an invalid CGI Status: {value[:40]!r}")
        status = int(code.group(1))
    if status is None:
        status = 302 if any(name.lower() == "location" for name, _ in headers) else 200
    return checked_response(status, tuple(headers), body, module)
