"""The HTTP-handler ABI: request and response bytes (see docs/wasm-abi.md)."""

from __future__ import annotations

import struct

from kernel import head_problem
from wasmkernel_wasm import (
    WasmBadResponse,
    WasmRequest,
    WasmResponse,
)

_U32 = struct.Struct("<I")


def _field(out: bytearray, value: bytes) -> None:
    out += _U32.pack(len(value))
    out += value


def encode_request(request: WasmRequest) -> bytes:
    """The bytes `handle(req_ptr, req_len)` receives (u32 LE lengths)."""
    out = bytearray()
    for value in (request.method, request.path, request.query):
        _field(out, value.encode())
    for pairs in (request.params, request.headers):
        out += _U32.pack(len(pairs))
        for name, value in pairs:
            _field(out, name.encode())
            _field(out, value.encode())
    _field(out, request.body)
    return bytes(out)


def decode_response(data: bytes, module: str) -> WasmResponse:
    """Parse what `handle` returned; `WasmError` if it is malformed."""
    pos = 0

    def u32() -> int:
        nonlocal pos
        if pos + 4 > len(data):
            raise ValueError("truncated")
        (value,) = _U32.unpack_from(data, pos)
        pos += 4
        return int(value)

    def field() -> bytes:
        nonlocal pos
        length = u32()
        if pos + length > len(data):
            raise ValueError("truncated field")
        pos += length
        return data[pos - length : pos]

    try:
        status = u32()
        headers = tuple((field().decode(), field().decode()) for _ in range(u32()))
        body = field()
        if pos != len(data):
            raise ValueError("trailing bytes")
    except (ValueError, UnicodeDecodeError) as exc:
        raise WasmBadResponse(f"module '{module}' returned a malformed HTTP response ({exc})") from None
    return checked_response(status, headers, body, module)


def checked_response(status: int, headers: tuple[tuple[str, str], ...], body: bytes, module: str) -> WasmResponse:
    """A module's response as the kernel may send it; `WasmBadResponse` (502)
    for a status that is not final (200-599), a header name that is not a
    token, a value with a control character or line break, a connection-
    specific header, or a Content-Length that is not the body's (the kernel
    sets Content-Length itself)."""
    problem = head_problem(status, headers)
    kept = []
    for name, value in headers:
        if name.lower() == "content-length":
            if value.strip() != str(len(body)):
                problem = problem or f"Content-Length {value[:20]!r} is not the body's length {len(body)}"
            continue
        kept.append((name.lower(), value))
    if problem is not None:
        raise WasmBadResponse(f"module '{module}' returned an unsendable response: {problem}")
    return WasmResponse(status, tuple(kept), body)
