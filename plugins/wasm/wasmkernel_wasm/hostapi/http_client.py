"""The outbound-HTTP binding (`http_request`): the guest's request decoded, one
httpx client for every granted module, `outbound`'s checks. Imported only
when some module is granted `http` (httpx is not loaded otherwise)."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import httpx
import trio

from wasmkernel_wasm.hostapi import INVALID, HostFailure
from wasmkernel_wasm.hostapi.capability import Granted, Mode
from wasmkernel_wasm.hostapi.grants import HttpGrant
from wasmkernel_wasm.hostapi.outbound import Origin, fetch, outbound_request
from wasmkernel_wasm.wire import Fields

_U32 = struct.Struct("<I")


def decode_http_request(data: bytes) -> tuple[str, str, list[tuple[str, str]], bytes, int]:
    """field(method) field(url) u32 n x (field(name) field(value)) field(body) u32 timeout_ms."""
    read = Fields(data)
    u32, field = read.u32, read.field

    method, url = field().decode(), field().decode()
    count = u32()
    if count > len(data) // 8:
        raise ValueError("header count exceeds the buffer")
    headers = [(field().decode(), field().decode()) for _ in range(count)]
    body = field()
    timeout_ms = u32()
    read.end()
    return method, url, headers, body, timeout_ms


class HttpClient:
    """The outbound-HTTP binding: each granted module's grant and origins, one client."""

    def __init__(self, granted: Mapping[str, tuple[Granted, HttpGrant, frozenset[Origin]]]) -> None:
        self._granted = granted
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=None)

    async def stop(self) -> None:
        if self._client is not None:
            with trio.CancelScope(shield=True):
                await self._client.aclose()
            self._client = None

    def mode(self, module: str) -> Mode | None:
        return "loop" if module in self._granted and self._client is not None else None

    def run(self, module: str, op: str, args: Sequence[bytes]) -> bytes:
        raise HostFailure(INVALID, "outbound HTTP runs in the event loop")

    async def arun(self, module: str, op: str, args: Sequence[bytes]) -> bytes:
        granted, grant, origins = self._granted[module]
        assert self._client is not None
        try:
            method, url, headers, body, timeout_ms = decode_http_request(args[0])
        except (ValueError, UnicodeDecodeError):
            raise HostFailure(INVALID, "malformed http_request buffer (see docs/wasm-abi.md)") from None
        request = outbound_request(method, url, headers, body)
        timeout = min(grant.timeout, timeout_ms / 1000) if timeout_ms else grant.timeout
        reply = await fetch(self._client, grant, origins, granted.entry, request, timeout)
        out = bytearray(_U32.pack(reply.status))
        out += _U32.pack(len(reply.headers))
        for name, value in reply.headers:
            for part in (name.encode("latin-1", "replace"), value.encode("latin-1", "replace")):
                out += _U32.pack(len(part)) + part
        out += _U32.pack(len(reply.body)) + reply.body
        return bytes(out)
