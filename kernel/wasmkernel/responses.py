"""Responses: plain bytes, JSON, text and streaming."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import trio

from wasmkernel.cookies import set_cookie_value
from wasmkernel.datastructures import Headers, HeadersInit
from wasmkernel.jsonio import dump_json

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
#: What a `send` raises when the connection is gone (or the server already answers on it).
GONE = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError)

#: An RFC 9110 field name (token).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: A field value: visible ASCII, space, tab and Latin-1 letters; no control
#: characters (C0, DEL, C1: no CR, LF, NEL) nor what Latin-1 cannot carry.
_VALUE = re.compile(r"[\t\x20-\x7e\xa0-\xff]*")
#: Connection-specific ("hop-by-hop") fields: the server, not the
#: application, speaks for the connection (HTTP/2 forbids them outright).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "http2-settings"}
    | {"proxy-connection", "proxy-authenticate", "proxy-authorization", "proxy-authentication-info"}
)
#: Statuses that never have a body, nor a Content-Length announcing one
#: (HTTP/2 peers reject a length the missing body does not match).
BODILESS = frozenset({204, 304})


class InvalidResponse(Exception):
    """A response whose status line or headers must not be sent (the message says why)."""


def header_problem(name: str, value: str) -> str | None:
    """Why the header `name: value` must not be sent, or None if it may."""
    if not _TOKEN.fullmatch(name):
        return f"header name {name[:40]!r} is not an HTTP token"
    if not _VALUE.fullmatch(value):
        return f"header {name!r} has a control character or line break in its value"
    lower = name.lower()
    if lower in HOP_BY_HOP or lower.startswith("proxy-"):
        return f"header {name!r} is connection-specific; only the server sets it"
    return None


def head_problem(status: Any, headers: Iterable[tuple[str, str]]) -> str | None:
    """Why a response with `status` and `headers` must not be sent: a status
    that is not a final one (200-599), or any bad header."""
    if type(status) is not int or not 200 <= status <= 599:
        return f"status {status!r} is not a final HTTP status (200-599)"
    for name, value in headers:
        problem = header_problem(name, value)
        if problem is not None:
            return problem
    return None


def response_start(status: int, headers: Headers) -> MutableMapping[str, Any]:
    """The `http.response.start` message; `InvalidResponse` (before anything
    is sent) when the status or a header is not sendable."""
    problem = head_problem(status, headers)
    if problem is not None:
        raise InvalidResponse(problem)
    return {"type": "http.response.start", "status": status, "headers": headers.to_asgi()}


class Response:
    """A complete response held in memory. `error` is the exception the
    kernel turned into this response, if any."""

    media_type: str | None = None
    error: Exception | None = None

    def __init__(self, body: bytes | str = b"", status: int = 200, headers: HeadersInit = None, media_type: str | None = None) -> None:
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.headers = Headers(headers or ())
        media_type = media_type or self.media_type
        if media_type and "content-type" not in self.headers:
            self.headers.set("content-type", media_type)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, body={len(self.body)} bytes)"

    def set_cookie(self, name: str, value: str, **options: Any) -> None:
        """Add a `Set-Cookie` header: Secure, HttpOnly, SameSite=Lax and
        Path=/ unless `options` say otherwise (`max_age`, `expires`, `path`,
        `domain`, `secure`, `httponly`, `samesite`); `ValueError` for what a
        browser would misread (see `wasmkernel.cookies.set_cookie_value`)."""
        self.headers.add("set-cookie", set_cookie_value(name, value, **options))

    def delete_cookie(self, name: str, **options: Any) -> None:
        """Tell the browser to drop cookie `name` (`options` as when it was set: same path and domain)."""
        self.set_cookie(name, "", **options, max_age=0, expires=datetime(1970, 1, 1, tzinfo=UTC))

    async def send(self, send: Send, *, include_body: bool = True) -> int:
        """Send status, headers and (unless HEAD) the body; return bytes sent.
        `InvalidResponse` before anything is sent if the head is not sendable."""
        bodiless = self.status in BODILESS
        if bodiless:
            self.headers.remove("content-length")
        else:
            self.headers.set("content-length", str(len(self.body)))
        await send(response_start(self.status, self.headers))
        body = self.body if include_body and not bodiless else b""
        await send({"type": "http.response.body", "body": body})
        return len(body)


class TextResponse(Response):
    media_type = "text/plain; charset=utf-8"


class HTMLResponse(Response):
    media_type = "text/html; charset=utf-8"


class JSONResponse(Response):
    media_type = "application/json"

    def __init__(self, data: Any, status: int = 200, headers: HeadersInit = None, media_type: str | None = None) -> None:
        super().__init__(dump_json(data), status, headers, media_type)
        self.data = data


class StreamingResponse(Response):
    """A response whose body comes from an (async) iterable of byte chunks."""

    def __init__(self, content: AsyncIterable[bytes] | Iterable[bytes], status: int = 200, headers: HeadersInit = None, media_type: str | None = None) -> None:
        super().__init__(b"", status, headers, media_type)
        self.content = content

    def chunks(self) -> AsyncIterator[bytes]:
        """The body's chunks, whether `content` is sync or async. Middleware
        that transforms a stream wraps it: ``response.content = f(response.chunks())``
        (the current content is captured now, not when iterated)."""
        return _iterate(self.content)

    async def send(self, send: Send, *, include_body: bool = True) -> int:
        self.headers.remove("content-length")
        await send(response_start(self.status, self.headers))
        sent = 0
        if include_body:
            async for chunk in self.chunks():
                sent += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return sent


async def _iterate(content: AsyncIterable[bytes] | Iterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(content, AsyncIterable):
        async for chunk in content:
            yield chunk
    else:
        for chunk in content:
            yield chunk
            await trio.lowlevel.checkpoint()


def to_response(result: Any) -> Response:
    """Turn what an endpoint returned into a `Response`."""
    if isinstance(result, Response):
        return result
    if isinstance(result, (dict, list)):
        return JSONResponse(result)
    if isinstance(result, str):
        return TextResponse(result)
    if isinstance(result, (bytes, bytearray)):
        return Response(bytes(result), media_type="application/octet-stream")
    if result is None:
        return Response(status=204)
    raise TypeError(f"endpoint returned {type(result).__name__}, expected a Response, dict, list, str or bytes")
