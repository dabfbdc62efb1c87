"""An application run in-process: lifespan startup and shutdown, an httpx
client talking to it through ASGI (needs httpx: ``pip install
wasmkernel[test]``), and WebSocket sessions over ASGI messages.

httpx's ASGI transport buffers a response: streams (SSE) need the
application served on a socket (`wasmkernel.testing.served`)."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Iterator, Mapping, MutableMapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from wasmkernel import Application, WebSocketDisconnect

if TYPE_CHECKING:
    import httpx


class RunApp(Protocol):
    """The `run_app` fixture: start an application (or assemble one from a
    registry dict, as `app_from` does) in-process for the rest of the test."""

    async def __call__(
        self, app: Application | Mapping[str, Mapping[str, Any]], extra_plugins: Mapping[str, Any] | None = None, kernel: Mapping[str, Any] | None = None
    ) -> httpx.AsyncClient: ...


@contextmanager
def lone_errors_unwrapped() -> Iterator[None]:
    """Re-raise a nursery's lone error as itself, so tests can match on it."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


@asynccontextmanager
async def running(app: Application, client: tuple[str, int] = ("127.0.0.1", 50000)) -> AsyncIterator[httpx.AsyncClient]:
    """Start `app` (lifespan startup), yield an httpx client talking to it
    in-process, then shut it down."""
    import httpx

    with lone_errors_unwrapped():
        async with trio.open_nursery() as nursery:
            try:
                await app.startup(nursery)
                transport = httpx.ASGITransport(app=app, client=client)
                async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                    yield http
            finally:
                with trio.CancelScope(shield=True):
                    await app.shutdown()
                nursery.cancel_scope.cancel()


class WebSocketDenied(Exception):
    """The application refused an in-process WebSocket handshake."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        super().__init__(f"handshake refused with {status}: {body[:200]!r}")
        self.status, self.headers, self.body = status, headers, body


@attrs.define
class WebSocketClient:
    """The client side of an in-process WebSocket (see `websocket_connect`)."""

    to_app: trio.MemorySendChannel[dict[str, Any]]
    from_app: trio.MemoryReceiveChannel[MutableMapping[str, Any]]
    subprotocol: str | None = None
    headers: list[tuple[bytes, bytes]] = attrs.field(factory=list)
    close_code: int | None = None

    async def send(self, data: str | bytes) -> None:
        await self.to_app.send({"type": "websocket.receive", "text": data} if isinstance(data, str) else {"type": "websocket.receive", "bytes": data})

    async def receive(self) -> str | bytes:
        """The next message; `wasmkernel.WebSocketDisconnect` when the app closed."""
        try:
            message = await self.from_app.receive()
        except trio.EndOfChannel:
            raise WebSocketDisconnect(self.close_code or 1006) from None
        if message["type"] == "websocket.close":
            self.close_code = int(message.get("code", 1000))
            raise WebSocketDisconnect(self.close_code, str(message.get("reason") or ""))
        text = message.get("text")
        return str(text) if text is not None else bytes(message["bytes"])

    async def receive_json(self) -> Any:
        return json.loads(await self.receive())

    async def close(self, code: int = 1000) -> None:
        await self.to_app.send({"type": "websocket.disconnect", "code": code})


@asynccontextmanager
async def websocket_connect(
    app: Application,
    path: str,
    headers: Mapping[str, str] | None = None,
    subprotocols: list[str] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 50000),
    buffer: float = math.inf,
    denial_extension: bool = True,
) -> AsyncIterator[WebSocketClient]:
    """Open a WebSocket to `app` in-process (start it with `running` first).

    `buffer` bounds the messages the app may send before the client reads
    (a small one imitates a client that stops reading). A refused handshake
    raises `WebSocketDenied` with the HTTP answer (status 403 and no body for a
    close before accept, or without `denial_extension`)."""
    path_part, _, query = path.partition("?")
    all_headers = {"host": "testserver", **(headers or {})}
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "scheme": "ws",
        "http_version": "1.1",
        "path": path_part,
        "raw_path": path_part.encode(),
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in all_headers.items()],
        "client": client,
        "server": ("testserver", 80),
        "subprotocols": subprotocols or [],
        "extensions": {"websocket.http.response": {}} if denial_extension else {},
    }
    to_app, app_receive = trio.open_memory_channel[dict[str, Any]](math.inf)
    app_send, from_app = trio.open_memory_channel[MutableMapping[str, Any]](buffer)

    async def run() -> None:
        async with app_send:
            await app(scope, app_receive.receive, app_send.send)

    denied: WebSocketDenied | None = None
    with lone_errors_unwrapped():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            await to_app.send({"type": "websocket.connect"})
            first = await from_app.receive()
            if first["type"] == "websocket.close":
                denied = WebSocketDenied(403, [], b"")
            elif first["type"] == "websocket.http.response.start":
                body = b""
                async for part in from_app:
                    body += part.get("body", b"")
                    if not part.get("more_body"):
                        break
                denied = WebSocketDenied(int(first["status"]), list(first.get("headers", [])), body)
            else:
                session = WebSocketClient(to_app, from_app, first.get("subprotocol"), list(first.get("headers", [])))
                try:
                    yield session
                finally:
                    await to_app.send({"type": "websocket.disconnect", "code": session.close_code or 1000})
    if denied is not None:
        raise denied
