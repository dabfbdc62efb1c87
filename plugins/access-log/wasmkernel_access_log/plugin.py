"""The access-log plugin: one structlog line per request.

Config (`[plugins.access-log.config]`):
- `level`: "debug" | "info" (default) | "warning"
- `skip_paths`: route paths not logged, as declared (e.g. ["/healthz",
  "/items/{id}"]); such routes are not wrapped at all. Requests matching no
  route are always logged.
- `max_field_length`: longest logged text field (default 1024); a longer
  one (a 60 KB path, a huge subject) is cut and ends with ``…[+N chars]``,
  so a client cannot make huge log lines.

Each line is logged by "wasmkernel.access" with the event "request" and
`method`, `path`, `route` (route name or null), `status`, `duration_ms`,
`bytes` (body bytes sent; null when an error escapes to the kernel), `request_id`,
`client` (host or null) and `subject` (authenticated caller or null).

A WebSocket connection is one line with the event "websocket", logged when
it ends: `path`, `route`, `status` (101 when accepted, else the refusal's),
`duration_ms` (the whole connection), `messages_in`, `messages_out`,
`close_code`, `close_reason`, `request_id`, `client` and `subject`.

Streaming responses are logged when their last chunk is sent, so
`duration_ms` and `bytes` cover the whole stream. Errors are logged with the
status of the response the kernel made of them, a client that went away with
499. Its place (`order = -70`): inside `request-id`, outside every middleware
that may refuse a request, so every response is logged exactly once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Literal

import attrs
import structlog

from wasmkernel import (
    Application,
    ClientDisconnected,
    ConfiguredPlugin,
    Handler,
    Middleware,
    Request,
    Response,
    Route,
    StreamingResponse,
    WebSocket,
    WebSocketHandler,
    hookimpl,
)

CLIENT_CLOSED_REQUEST = 499

log = structlog.get_logger("wasmkernel.access")


@attrs.frozen
class Config:
    level: Literal["debug", "info", "warning"] = attrs.field(default="info", validator=attrs.validators.in_(("debug", "info", "warning")))
    skip_paths: list[str] = attrs.field(factory=list)
    max_field_length: int = attrs.field(default=1024, validator=attrs.validators.ge(16))


async def _counted(chunks: AsyncIterator[bytes], done: Callable[[int], None]) -> AsyncIterator[bytes]:
    """Yield `chunks`; call `done(bytes)` once they are exhausted or abandoned."""
    size = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            yield chunk
    finally:
        done(size)


class Plugin(ConfiguredPlugin[Config]):
    order = -70
    config_class = Config

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        return [Middleware("access-log", self.wrap, websocket=self.wrap_websocket)]

    def cut(self, text: str | None) -> str | None:
        limit = self.config.max_field_length
        if text is None or len(text) <= limit:
            return text
        return f"{text[:limit]}…[+{len(text) - limit} chars]"

    def record(self, request: Request, route_name: str | None, status: int, started: float, size: int | None) -> None:
        identity = request.identity
        getattr(log, self.config.level)(
            "request",
            method=self.cut(request.method),
            path=self.cut(request.path),
            route=route_name,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            bytes=size,
            request_id=self.cut(request.id),
            client=request.client_host or None,
            subject=self.cut(identity.subject) if identity is not None else None,
        )

    def wrap_websocket(self, next_handler: WebSocketHandler, route: Route | None) -> WebSocketHandler:
        if route is not None and route.path in self.config.skip_paths:
            return next_handler
        emit = getattr(log, self.config.level)
        route_name = route.name if route is not None else None

        async def handler(request: WebSocket) -> Response:
            started, status = time.perf_counter(), 500
            try:
                response = await next_handler(request)
                status = response.status
                return response
            finally:
                identity = request.identity
                emit(
                    "websocket",
                    path=self.cut(request.path),
                    route=route_name,
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    messages_in=request.messages_in,
                    messages_out=request.messages_out,
                    close_code=request.close_code,
                    close_reason=request.close_reason or None,
                    request_id=request.id,
                    client=request.client_host or None,
                    subject=identity.subject if identity is not None else None,
                )

        return handler

    def wrap(self, next_handler: Handler, route: Route | None) -> Handler:
        if route is not None and route.path in self.config.skip_paths:
            return next_handler
        route_name = route.name if route is not None else None

        async def handler(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await next_handler(request)
            except ClientDisconnected:
                self.record(request, route_name, CLIENT_CLOSED_REQUEST, started, None)
                raise
            if request.method == "HEAD":
                self.record(request, route_name, response.status, started, 0)
            elif isinstance(response, StreamingResponse):
                status = response.status
                response.content = _counted(response.chunks(), lambda size: self.record(request, route_name, status, started, size))
            else:
                self.record(request, route_name, response.status, started, len(response.body))
            return response

        return handler
