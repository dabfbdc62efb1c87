"""The HTTP-handler ABI: request and response bytes (see docs/wasm-abi.md)."""

from __future__ import annotations

import struct

from wasmkernel_wasm import (
    WasmError,
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
        if pos != len(data) or not 100 <= status <= 599:
            raise ValueError("trailing bytes" if pos != len(data) else f"status {status}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise WasmError(f"module '{module}' returned a malformed HTTP response ({exc})") from None
    return WasmResponse(status, headers, body)
