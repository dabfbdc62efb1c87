"""Responses: plain bytes, JSON, text and streaming."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

import trio

from kernel.datastructures import Headers

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Response:
    """A complete response held in memory. `error` is the exception the
    kernel turned into this response, if any."""

    media_type: str | None = None
    error: Exception | None = None

    def __init__(
        self,
        body: bytes | str = b"",
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        media_type: str | None = None,
    ) -> None:
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.headers = Headers(headers or ())
        media_type = media_type or self.media_type
        if media_type and "content-type" not in self.headers:
            self.headers.set("content-type", media_type)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, body={len(self.body)} bytes)"

    async def send(self, send: Send, *, include_body: bool = True) -> int:
        """Send status, headers and (unless HEAD) the body; return bytes sent."""
        self.headers.set("content-length", str(len(self.body)))
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers.to_asgi()})
        body = self.body if include_body else b""
        await send({"type": "http.response.body", "body": body})
        return len(body)


class TextResponse(Response):
    media_type = "text/plain; charset=utf-8"


class HTMLResponse(Response):
    media_type = "text/html; charset=utf-8"


def dump_json(data: Any) -> bytes:
    """Compact UTF-8 JSON; NaN and infinities are refused (they are not JSON)."""
    # "replace": a lone surrogate (e.g. from a crafted ASGI path) must not make
    # an error answer fail in turn.
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8", "replace")


class JSONResponse(Response):
    media_type = "application/json"

    def __init__(
        self,
        data: Any,
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(dump_json(data), status, headers, media_type)
        self.data = data


class StreamingResponse(Response):
    """A response whose body comes from an (async) iterable of byte chunks."""

    def __init__(
        self,
        content: AsyncIterable[bytes] | Iterable[bytes],
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(b"", status, headers, media_type)
        self.content = content

    def chunks(self) -> AsyncIterator[bytes]:
        """The body's chunks, whether `content` is sync or async. Middleware
        that transforms a stream wraps it: ``response.content = f(response.chunks())``
        (the current content is captured now, not when iterated)."""
        return _iterate(self.content)

    async def send(self, send: Send, *, include_body: bool = True) -> int:
        self.headers.remove("content-length")
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers.to_asgi()})
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
