"""The HTTP-handler ABI: request and response bytes (see docs/wasm-abi.md)."""

from __future__ import annotations

import struct

from wasmkernel import head_problem
from wasmkernel_wasm import (
    WasmBadResponse,
    WasmRequest,
    WasmResponse,
)

_U32 = struct.Struct("<I")


class Fields:
    """Reads u32 LE values and u32-length-prefixed fields from `data`;
    `ValueError` for anything past its end."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u32(self) -> int:
        if self.pos + 4 > len(self.data):
            raise ValueError("truncated")
        (value,) = _U32.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(value)

    def field(self) -> bytes:
        length = self.u32()
        if self.pos + length > len(self.data):
            raise ValueError("truncated field")
        self.pos += length
        return self.data[self.pos - length : self.pos]

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ValueError("trailing bytes")


def put_field(out: bytearray, value: bytes) -> None:
    """Append `value` with its u32 LE length (the wire formats' field)."""
    out += _U32.pack(len(value))
    out += value


def encode_request(request: WasmRequest) -> bytes:
    """The bytes `handle(req_ptr, req_len)` receives (u32 LE lengths)."""
    out = bytearray()
    for value in (request.method, request.path, request.query):
        put_field(out, value.encode())
    for pairs in (request.params, request.headers):
        out += _U32.pack(len(pairs))
        for name, value in pairs:
            put_field(out, name.encode())
            put_field(out, value.encode())
    put_field(out, request.body)
    return bytes(out)


def decode_response(data: bytes, module: str) -> WasmResponse:
    """Parse what `handle` returned; `WasmError` if it is malformed."""
    read = Fields(data)
    u32, field = read.u32, read.field

    try:
        status = u32()
        headers = tuple((field().decode(), field().decode()) for _ in range(u32()))
        body = field()
        read.end()
    except (ValueError, UnicodeDecodeError) as exc:
        raise WasmBadResponse(f"module '{module}' returned a malformed HTTP response", reason=str(exc)) from None
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
