"""An application served in-process by hypercorn's trio worker on a free
loopback port (real TCP: streams arrive as they are sent), with an HTTP
client, an SSE client and WebSocket clients for it (the WebSocket client is
trio-websocket: ``pip install wasmkernel[test]``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, cast

import attrs
import trio

from wasmkernel import Application
from wasmkernel.testing.inprocess import lone_errors_unwrapped
from wasmkernel.testing.sse import EventStream
from wasmkernel.testing.waiting import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    import httpx
    import trio_websocket


@asynccontextmanager
async def serving(app: Application) -> AsyncIterator[str]:
    """Serve `app` (lifespan included) on a free 127.0.0.1 port until the
    block ends; yield its base URL (``http://127.0.0.1:<port>``)."""
    from hypercorn.config import Config
    from hypercorn.trio import serve
    from hypercorn.typing import Framework

    config = Config()
    config.bind = ["127.0.0.1:0"]  # the kernel picks the port: no race for a "free" one
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 0.5
    config.websocket_ping_interval = None
    stop = trio.Event()
    with lone_errors_unwrapped():
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, cast(Framework, app), config, shutdown_trigger=stop.wait))
            try:
                yield str(binds[0])
            finally:
                stop.set()


@attrs.frozen
class ServedApp:
    """An application `served` on `url`; `http` is an httpx client for it."""

    app: Application
    url: str
    http: httpx.AsyncClient

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    @asynccontextmanager
    async def sse(self, path: str, headers: Mapping[str, str] | None = None, **request: Any) -> AsyncIterator[EventStream]:
        """GET `path` as an event stream (`request`: more httpx arguments,
        e.g. ``params``); the response is in the stream's `response`."""
        async with self.http.stream("GET", path, headers={"accept": "text/event-stream", **(headers or {})}, **request) as response:
            yield EventStream(response)

    @asynccontextmanager
    async def websocket(
        self, path: str, headers: Mapping[str, str] | None = None, subprotocols: Sequence[str] | None = None, **options: Any
    ) -> AsyncIterator[trio_websocket.WebSocketConnection]:
        """A trio-websocket connection to `path` (`options`: more arguments
        of `trio_websocket.open_websocket_url`, e.g. ``message_queue_size``).
        A refused handshake raises `trio_websocket.ConnectionRejected`."""
        import trio_websocket

        extra_headers = [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
        async with trio_websocket.open_websocket_url(self.ws_url + path, extra_headers=extra_headers, subprotocols=subprotocols, **options) as ws:
            yield ws


class ServeApp(Protocol):
    """The `serve_app` fixture: serve an application (or one assembled from a
    registry dict, as `app_from` does) for the rest of the test."""

    async def __call__(
        self, app: Application | Mapping[str, Mapping[str, Any]], extra_plugins: Mapping[str, Any] | None = None, kernel: Mapping[str, Any] | None = None
    ) -> ServedApp: ...


@asynccontextmanager
async def served(app: Application, timeout: float = DEFAULT_TIMEOUT) -> AsyncIterator[ServedApp]:
    """`serving(app)` with an httpx client for it (`timeout`: per request)."""
    import httpx

    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=timeout) as http:
        yield ServedApp(app, url, http)
