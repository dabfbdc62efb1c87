"""The compression plugin.

Config (`[plugins.compression.config]`):
- `minimum_size`: bodies smaller than this many bytes are sent as they are
  (default 500)
- `level`: gzip level, 1 (fast) to 9 (small) (default 6)
- `brotli_quality`: brotli quality, 0 to 11 (default 4)
- `exclude_types`: media types never compressed because they already are:
  exact ("application/zip") or a whole family ("image/*"); types with a
  ``+json``/``+xml`` suffix (e.g. ``image/svg+xml``) are text and only
  excluded when listed exactly (default: `DEFAULT_EXCLUDED`)

The coding is chosen from `Accept-Encoding` by q-value: "br" (when the
`brotli` package is installed: ``pip install wasmkernel-compression[brotli]``)
or "gzip", "br" winning ties; "*" and "q=0" are honoured. A response is
compressible when its status carries a representation (not 1xx, 204, 206 or
304), it has no `Content-Encoding` yet, no `Cache-Control: no-transform`, its
type is not excluded and its body reaches `minimum_size`; every compressible
response gets `Vary: Accept-Encoding`, compressed or not. A compressed body
replaces the original only if it is smaller; a strong `ETag` is then made weak.
Bodies of `BIG_BODY` bytes or more are compressed in a worker thread.

Streaming responses are compressed incrementally, whatever their size: each
chunk is compressed and flushed at once (so server-sent chunks are not held
back), the stream is finished after the last one. `text/event-stream` is
excluded by default. HTTP only (the kernel leaves it off WebSocket routes).
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import attrs
import trio

from wasmkernel import Application, ConfiguredPlugin, Handler, Middleware, Request, Response, Route, StreamingResponse, hookimpl

try:
    import brotli
except ImportError:  # the optional extra is not installed
    brotli = None

DEFAULT_EXCLUDED = (
    "image/*",
    "video/*",
    "audio/*",
    "font/woff",
    "font/woff2",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/x-bzip2",
    "application/x-xz",
    "application/zstd",
    "application/x-7z-compressed",
    "application/x-rar-compressed",
    "text/event-stream",
)
TEXT_SUFFIXES = ("+json", "+xml")
BIG_BODY = 256 * 1024
NO_REPRESENTATION = frozenset({204, 206, 304})
MEDIA_RANGE = re.compile(r"[a-z0-9!#$&^_.+-]+/(\*|[a-z0-9!#$&^_.+-]+)")


def _media_ranges(instance: Any, attribute: attrs.Attribute[list[str]], values: list[str]) -> None:
    for value in values:
        if not MEDIA_RANGE.fullmatch(value):
            raise ValueError(f"{attribute.name}: {value!r} is not a media type ('type/subtype' or 'type/*')")


def _lowercase(values: list[str]) -> list[str]:
    return [value.lower() for value in values]


@attrs.frozen
class Config:
    minimum_size: int = attrs.field(default=500, validator=attrs.validators.ge(0))
    level: int = attrs.field(default=6, validator=[attrs.validators.ge(1), attrs.validators.le(9)])
    brotli_quality: int = attrs.field(default=4, validator=[attrs.validators.ge(0), attrs.validators.le(11)])
    exclude_types: list[str] = attrs.field(factory=lambda: list(DEFAULT_EXCLUDED), converter=_lowercase, validator=_media_ranges)


class Compressor(Protocol):
    def compress(self, data: bytes) -> bytes:
        """Compress `data`, possibly keeping some of it buffered."""

    def flush(self) -> bytes:
        """Emit everything buffered so far; the stream stays open."""

    def finish(self) -> bytes:
        """Emit the rest and end the stream."""


class Gzip:
    def __init__(self, level: int) -> None:
        self._zlib = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def compress(self, data: bytes) -> bytes:
        return self._zlib.compress(data)

    def flush(self) -> bytes:
        return self._zlib.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._zlib.flush(zlib.Z_FINISH)


class Brotli:
    def __init__(self, quality: int) -> None:
        self._brotli = brotli.Compressor(quality=quality)

    def compress(self, data: bytes) -> bytes:
        return bytes(self._brotli.process(data))

    def flush(self) -> bytes:
        return bytes(self._brotli.flush())

    def finish(self) -> bytes:
        return bytes(self._brotli.finish())


@functools.lru_cache(maxsize=512)
def negotiate(accept_encoding: str, available: tuple[str, ...]) -> str | None:
    """The coding of `available` (in preference order) with the highest
    q-value in `accept_encoding`, or None when none is acceptable."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        name = "gzip" if name.lower() == "x-gzip" else name.lower()
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    weight = 0.0
        if name:
            weights.setdefault(name, weight)
    best, best_weight = None, 0.0
    for coding in available:
        weight = weights.get(coding, weights.get("*", 0.0))
        if weight > best_weight:
            best, best_weight = coding, weight
    return best


def compress_body(compressor: Compressor, body: bytes) -> bytes:
    return compressor.compress(body) + compressor.finish()


async def compress_stream(compressor: Compressor, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        if chunk:
            yield compressor.compress(chunk) + compressor.flush()
    yield compressor.finish()


class Plugin(ConfiguredPlugin[Config]):
    order = -50
    config_class = Config

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        return [Middleware("compression", self.wrap)]

    @functools.cached_property
    def threads(self) -> trio.CapacityLimiter:
        """This plugin's own threads for large bodies: it never takes another subsystem's."""
        return trio.CapacityLimiter(2)

    def compressor(self, coding: str) -> Compressor:
        return Brotli(self.config.brotli_quality) if coding == "br" else Gzip(self.config.level)

    def wrap(self, next_handler: Handler, route: Route | None) -> Handler:
        available = ("br", "gzip") if brotli is not None else ("gzip",)
        minimum_size = self.config.minimum_size
        excluded_exact = frozenset(value for value in self.config.exclude_types if not value.endswith("/*"))
        excluded_families = frozenset(value[:-2] for value in self.config.exclude_types if value.endswith("/*"))

        def compressible(response: Response) -> bool:
            if response.status < 200 or response.status in NO_REPRESENTATION or "content-encoding" in response.headers:
                return False
            if "no-transform" in (response.headers.get("cache-control") or "").lower():
                return False
            media_type = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
            if media_type in excluded_exact:
                return False
            return media_type.endswith(TEXT_SUFFIXES) or media_type.partition("/")[0] not in excluded_families

        async def handler(request: Request) -> Response:
            response = await next_handler(request)
            streaming = isinstance(response, StreamingResponse)
            if not compressible(response) or (not streaming and len(response.body) < minimum_size):
                return response
            response.headers.add_vary("Accept-Encoding")
            coding = negotiate(request.headers.get("accept-encoding") or "", available)
            if coding is None:
                return response
            if isinstance(response, StreamingResponse):
                response.content = compress_stream(self.compressor(coding), response.chunks())
            else:
                body = response.body
                if len(body) >= BIG_BODY:
                    compressed = await trio.to_thread.run_sync(compress_body, self.compressor(coding), body, limiter=self.threads)
                else:
                    compressed = compress_body(self.compressor(coding), body)
                if len(compressed) >= len(body):
                    return response
                response.body = compressed
            response.headers.set("content-encoding", coding)
            etag = response.headers.get("etag")
            if etag is not None and etag.startswith('"'):
                response.headers.set("etag", "W/" + etag)
            return response

        return handler
