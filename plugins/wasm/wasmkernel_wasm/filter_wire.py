"""The filter modules' wire format (kind = "filter", see docs/wasm-abi.md):
what `on_request` and `on_response` are given and what they return, checked
like any module output (a final status, RFC 9110 header names and values, no
connection-specific, `host` or `content-length` header; anything else is a
502). The middleware that runs them is the wasm-filters plugin's."""

from __future__ import annotations

import struct
from collections.abc import Iterable

from wasmkernel import header_problem
from wasmkernel_wasm import FilterDecision, FilterRequest, FilterResponse, HeaderEdits, WasmBadResponse
from wasmkernel_wasm.wire import Fields, checked_response, put_field

_U32 = struct.Struct("<I")
CONTINUE, RESPOND = 0, 1
#: Headers a filter may not add or remove: the server owns them.
RESERVED = frozenset({"host", "content-length"})


def _pairs(out: bytearray, pairs: Iterable[tuple[str, str]]) -> None:
    items = list(pairs)
    out += _U32.pack(len(items))
    for name, value in items:
        put_field(out, name.encode())
        put_field(out, value.encode())


def encode_filter_request(request: FilterRequest) -> bytes:
    """field(method) field(path) field(query) field(route) pairs(headers) u32 has_body field(body)."""
    out = bytearray()
    for value in (request.method, request.path, request.query, request.route):
        put_field(out, value.encode())
    _pairs(out, request.headers)
    out += _U32.pack(0 if request.body is None else 1)
    put_field(out, request.body or b"")
    return bytes(out)


def encode_filter_response(response: FilterResponse) -> bytes:
    """field(method) field(path) u32 status pairs(headers)."""
    out = bytearray()
    put_field(out, response.method.encode())
    put_field(out, response.path.encode())
    out += _U32.pack(response.status)
    _pairs(out, response.headers)
    return bytes(out)


class _Reader(Fields):
    def count(self, least: int) -> int:
        count = self.u32()
        if count * least > len(self.data) - self.pos:
            raise ValueError("count exceeds the buffer")
        return count

    def edits(self) -> HeaderEdits:
        add = tuple((self.field().decode(), self.field().decode()) for _ in range(self.count(8)))
        remove = tuple(self.field().decode() for _ in range(self.count(4)))
        return HeaderEdits(add, remove)


def _checked_edits(edits: HeaderEdits, module: str) -> HeaderEdits:
    for name, value in (*edits.add, *((name, "") for name in edits.remove)):
        problem = header_problem(name, value)
        if problem is None and name.lower() in RESERVED:
            problem = f"header {name!r} is set by the server, not by a filter"
        if problem is not None:
            raise WasmBadResponse(f"filter module '{module}' returned an unusable header edit: {problem}")
    return HeaderEdits(tuple((name.lower(), value) for name, value in edits.add), tuple(name.lower() for name in edits.remove))


def decode_decision(data: bytes, module: str) -> FilterDecision:
    """Parse what `on_request` returned; `WasmBadResponse` (502) if it is malformed or unsendable."""
    reader = _Reader(data)
    try:
        action = reader.u32()
        if action == RESPOND:
            status = reader.u32()
            headers = tuple((reader.field().decode(), reader.field().decode()) for _ in range(reader.count(8)))
            body = reader.field()
            reader.end()
        elif action == CONTINUE:
            request, response = reader.edits(), reader.edits()
            reader.end()
        else:
            raise ValueError(f"unknown action {action}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise WasmBadResponse(f"filter module '{module}' returned a malformed decision", reason=str(exc)) from None
    if action == RESPOND:
        return FilterDecision(respond=checked_response(status, headers, body, module))
    return FilterDecision(request=_checked_edits(request, module), response=_checked_edits(response, module))


def decode_edits(data: bytes, module: str) -> HeaderEdits:
    """Parse what `on_response` returned (`WasmBadResponse` if malformed or unsendable)."""
    reader = _Reader(data)
    try:
        edits = reader.edits()
        reader.end()
    except (ValueError, UnicodeDecodeError) as exc:
        raise WasmBadResponse(f"filter module '{module}' returned malformed response edits", reason=str(exc)) from None
    return _checked_edits(edits, module)
