"""WASI command modules, WAGI-style: the CGI environment in, stdout parsed into a response."""

from __future__ import annotations

from wasmkernel_wasm import (
    WasmError,
    WasmRequest,
    WasmResponse,
)

_SKIPPED_HEADERS = {"content-type", "content-length", "connection", "proxy", "authorization", "cookie"}


def cgi_env(request: WasmRequest, route: str, server_name: str = "localhost", server_port: str = "80") -> dict[str, str]:
    """The CGI variables a WAGI command sees. `Authorization` and `Cookie` are
    not passed (credentials stay in the host)."""
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
        if name not in _SKIPPED_HEADERS:
            env["HTTP_" + name.upper().replace("-", "_")] = value
    for name, value in request.params:
        env["X_PARAM_" + name.upper().replace("-", "_")] = value
    return env


def parse_cgi_output(stdout: bytes, module: str) -> WasmResponse:
    """Split a WAGI command's stdout into header lines (`Status`, `Location`,
    `Content-Type`, others) and body; `WasmError` if there is no header block."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = stdout.partition(separator)
        if found:
            break
    else:
        raise WasmError(f"module '{module}' wrote no CGI header block (expected header lines, a blank line, then the body)")
    status: int | None = None
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        name, colon, value = line.partition(":")
        if not colon:
            raise WasmError(f"module '{module}' wrote a malformed CGI header line")
        name, value = name.strip(), value.strip()
        if name.lower() == "status":
            code = value.split(" ", 1)[0]
            if not code.isdigit() or not 100 <= int(code) <= 599:
                raise WasmError(f"module '{module}' wrote an invalid CGI Status: {value[:40]!r}")
            status = int(code)
        else:
            headers.append((name.lower(), value))
    if status is None:
        status = 302 if any(name == "location" for name, _ in headers) else 200
    return WasmResponse(status, tuple(headers), body)
