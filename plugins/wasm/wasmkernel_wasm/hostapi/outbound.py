"""Outbound HTTP for `http_request`: allow-listed origins only, performed by the host.

Everything a guest hands over is checked before any of it reaches httpx
(`outbound_request`): the method is an RFC 9110 token, the URL printable
ASCII of at most `MAX_URL` characters, header names tokens and values
visible ASCII (a module forwarding a visitor's ``Accept-Language: \\xe9`` gets
`INVALID`, not a crashed host). The exchange runs in the event loop with
httpx's async client under one deadline for all of it (redirects and the
body included), and the body is decoded by bounded decompressors: raw and
decoded bytes both count against `max_response_bytes`, layer by layer
(``Content-Encoding: gzip, gzip``), so a bomb stops at the cap.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx
import trio

from wasmkernel_wasm.hostapi import HTTP_FAILED, INVALID, HostDenied, HostFailure
from wasmkernel_wasm.hostapi.grants import HttpGrant

try:
    import brotli

    _BROTLI: Any = brotli if hasattr(brotli.Decompressor(), "can_accept_more_data") else None
except ImportError:  # brotli (optional) or a version without bounded output
    _BROTLI = None

Origin = tuple[str, str, int]
_PORTS = {"http": 80, "https": 443}
#: Headers the host sets itself.
_RESERVED = frozenset({"host", "content-length", "transfer-encoding", "connection", "accept-encoding"})
#: Longest URL (characters) a guest may request.
MAX_URL = 8192
#: At most this many request headers, of at most `MAX_HEADER_BYTES` together.
MAX_HEADERS = 64
MAX_HEADER_BYTES = 64 * 1024
#: At most this many content codings are undone (``gzip, gzip`` is two).
MAX_CODINGS = 2
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_URL = re.compile(r"[\x21-\x7e]+")
_VALUE = re.compile(r"[\x20-\x7e\t]*")
#: The codings the host can undo within bounds.
ACCEPT_ENCODING = "gzip, deflate" + (", br" if _BROTLI is not None else "")


def origin_of(url: str) -> Origin:
    """(scheme, host, port) of an absolute http(s) URL; `ValueError` otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in _PORTS or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url[:200]!r}")
    return parts.scheme, parts.hostname.lower(), parts.port or _PORTS[parts.scheme]


def allowed_origins(grant: HttpGrant) -> frozenset[Origin]:
    """The grant's `allow` list as origins (`ValueError` names a bad entry)."""
    origins = set()
    for entry in grant.allow:
        origin = origin_of(entry)
        if urlsplit(entry).path not in ("", "/"):
            raise ValueError(f"allow entry {entry!r} must be an origin (scheme://host[:port]) without a path")
        origins.add(origin)
    return frozenset(origins)


def show(origin: Origin) -> str:
    return f"{origin[0]}://{origin[1]}:{origin[2]}"


@attrs.frozen
class Outbound:
    """A guest's outbound request, checked (`outbound_request`)."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def checked_url(url: str) -> str:
    """`url` if it is printable ASCII of at most `MAX_URL` characters and parses; `ValueError` otherwise."""
    if len(url) > MAX_URL:
        raise ValueError(f"the URL is longer than {MAX_URL} characters")
    if not _URL.fullmatch(url):
        raise ValueError("the URL must be printable ASCII (percent-encode anything else)")
    try:
        origin_of(url)
        httpx.URL(url)
    except Exception as exc:  # httpx.InvalidURL, ValueError from urlsplit (bad port, bad IPv6)
        raise ValueError(f"not a usable absolute http(s) URL ({type(exc).__name__})") from None
    return url


def outbound_request(method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes) -> Outbound:
    """The request checked field by field; `HostFailure(INVALID)` names the first bad one."""
    if not _TOKEN.fullmatch(method) or len(method) > 20:
        raise HostFailure(INVALID, "the method must be an HTTP token of at most 20 characters")
    try:
        checked_url(url)
    except ValueError as exc:
        raise HostFailure(INVALID, str(exc)) from None
    if len(headers) > MAX_HEADERS or sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES:
        raise HostFailure(INVALID, f"at most {MAX_HEADERS} request headers of {MAX_HEADER_BYTES} bytes together")
    for index, (name, value) in enumerate(headers):
        if not _TOKEN.fullmatch(name):
            raise HostFailure(INVALID, f"request header {index}: the name must be an HTTP token")
        if not _VALUE.fullmatch(value):
            raise HostFailure(INVALID, f"request header {name!r}: the value must be visible ASCII (no control characters, no bytes above 0x7e)")
    kept = tuple((name, value) for name, value in headers if name.lower() not in _RESERVED)
    return Outbound(method.upper(), url, (*kept, ("accept-encoding", ACCEPT_ENCODING)), body)


@attrs.frozen
class Reply:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


async def fetch(client: httpx.AsyncClient, grant: HttpGrant, origins: frozenset[Origin], entry: str, request: Outbound, timeout: float) -> Reply:
    """Send the request, following redirects to allowed origins only, all
    within `timeout` seconds. `HostDenied` if the URL itself is not allowed;
    `HostFailure` for a refused redirect, a network error, the deadline or a
    response over the size cap."""
    origin = origin_of(request.url)
    if origin not in origins:
        raise HostDenied(f"origin {show(origin)} is not allowed: add it to `http.allow` in its registry entry ({entry})")
    with trio.move_on_after(timeout):
        return await _follow(client, grant, origins, request)
    raise HostFailure(HTTP_FAILED, f"timed out after {timeout:g} s")


async def _follow(client: httpx.AsyncClient, grant: HttpGrant, origins: frozenset[Origin], request: Outbound) -> Reply:
    method, url, body = request.method, request.url, request.body
    for _ in range(grant.max_redirects + 1):
        reply = await _once(client, grant, method, url, request.headers, body)
        location = dict(reply.headers).get("location")
        if reply.status not in (301, 302, 303, 307, 308) or location is None:
            return reply
        try:
            url = checked_url(str(httpx.URL(url).join(location)))
        except Exception as exc:  # a hostile Location: ValueError, httpx.InvalidURL
            raise HostFailure(HTTP_FAILED, f"redirect refused: {exc if isinstance(exc, ValueError) else type(exc).__name__}") from None
        target = origin_of(url)
        if target not in origins:
            raise HostFailure(HTTP_FAILED, f"redirect to {show(target)} refused: that origin is not allowed")
        if reply.status == 303 or (reply.status in (301, 302) and method == "POST"):
            method, body = "GET", b""
    raise HostFailure(HTTP_FAILED, f"more than {grant.max_redirects} redirects")


async def _once(client: httpx.AsyncClient, grant: HttpGrant, method: str, url: str, headers: tuple[tuple[str, str], ...], body: bytes) -> Reply:
    limit = grant.max_response_bytes
    try:
        async with client.stream(method, url, headers=headers, content=body or None, follow_redirects=False) as response:
            decoder = Decoder(response.headers.get_list("content-encoding", split_commas=True), limit)
            raw = 0
            async for chunk in response.aiter_raw():
                raw += len(chunk)
                if raw > limit:
                    raise HostFailure(HTTP_FAILED, f"response exceeds max_response_bytes = {limit}")
                decoder.feed(chunk)
            data = decoder.finish()
            kept = tuple((name.lower(), value) for name, value in response.headers.items() if name.lower() not in ("content-encoding", "content-length"))
            return Reply(response.status_code, kept, data)
    except httpx.TimeoutException:
        raise HostFailure(HTTP_FAILED, "timed out") from None
    except httpx.HTTPError as exc:
        raise HostFailure(HTTP_FAILED, f"request failed: {type(exc).__name__}") from None


class Decoder:
    """Undoes the response's content codings with bounded decompressors: no
    layer ever holds more than `limit` bytes (`HostFailure` beyond)."""

    def __init__(self, codings: Sequence[str], limit: int) -> None:
        names = [coding.strip().lower() for coding in codings if coding.strip().lower() not in ("", "identity")]
        if len(names) > MAX_CODINGS:
            raise HostFailure(HTTP_FAILED, f"the response has {len(names)} content codings; at most {MAX_CODINGS} are undone")
        self.limit = limit
        self._layers = [_layer(name) for name in reversed(names)]
        self._sizes = [0] * len(self._layers)
        self._out = bytearray()

    def feed(self, data: bytes) -> None:
        for index, layer in enumerate(self._layers):
            data = layer.feed(data, self.limit - self._sizes[index])
            self._sizes[index] += len(data)
            if self._sizes[index] > self.limit:
                raise HostFailure(HTTP_FAILED, f"the decoded response exceeds max_response_bytes = {self.limit}")
        self._out += data

    def finish(self) -> bytes:
        return bytes(self._out)


class _Zlib:
    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._inflater: Any = zlib.decompressobj(wbits)
        self._first = True

    def feed(self, data: bytes, room: int) -> bytes:
        try:
            out = self._inflater.decompress(data, max(room, 0) + 1)
        except zlib.error:
            if not (self._first and self._wbits == zlib.MAX_WBITS):
                raise HostFailure(HTTP_FAILED, "the response body is not valid compressed data") from None
            self._inflater, self._wbits = zlib.decompressobj(-zlib.MAX_WBITS), -zlib.MAX_WBITS  # raw deflate, as servers send
            out = self._inflater.decompress(data, max(room, 0) + 1)
        self._first = False
        return bytes(out)


class _Brotli:
    def __init__(self) -> None:
        self._decompressor = _BROTLI.Decompressor()

    def feed(self, data: bytes, room: int) -> bytes:
        try:
            out = bytearray(self._decompressor.process(data, output_buffer_limit=max(room, 0) + 1))
            while len(out) <= room and not self._decompressor.can_accept_more_data():
                more = self._decompressor.process(b"", output_buffer_limit=room + 1 - len(out))
                if not more:
                    break
                out += more
        except _BROTLI.error:
            raise HostFailure(HTTP_FAILED, "the response body is not valid brotli data") from None
        return bytes(out[: max(room, 0) + 1])  # brotli may overshoot its limit by a block


def _layer(coding: str) -> _Zlib | _Brotli:
    if coding in ("gzip", "x-gzip"):
        return _Zlib(16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return _Zlib(zlib.MAX_WBITS)
    if coding == "br" and _BROTLI is not None:
        return _Brotli()
    raise HostFailure(HTTP_FAILED, f"the response's content coding {coding[:40]!r} is not supported (accepted: {ACCEPT_ENCODING})")
