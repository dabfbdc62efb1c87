"""The connection model: `Request` and `WebSocket` are siblings (a
`Connection` each), middleware declares the kinds it handles, and the kernel
tells an endpoint when its client has gone, with one watcher per request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

import pytest
import trio

from wasmkernel import (
    ClientDisconnected,
    Connection,
    Handler,
    Middleware,
    Request,
    Response,
    Route,
    SessionState,
    WebSocket,
    hookimpl,
)
from wasmkernel.testing import app_from, running, websocket_connect

C = TypeVar("C", bound=Connection)


class Chat:
    """A WebSocket echo route, an HTTP route and two middleware: one that
    reads every body (HTTP only, as its one wrapper says) and one that
    handles both kinds and records which connections it saw."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.states: list[SessionState] = []

    @hookimpl
    def wasmkernel_routes(self, app: Any) -> list[Route]:
        async def echo(ws: WebSocket) -> None:
            self.states.append(ws.session_state)
            await ws.accept()
            self.states.append(ws.session_state)
            await ws.send(await ws.receive_text())

        async def post(request: Request) -> dict[str, int]:
            return {"size": len(await request.body())}

        return [Route("/chat", echo, websocket=True), Route("/post", post, methods=["POST"])]

    @hookimpl
    def wasmkernel_middleware(self, app: Any) -> list[Middleware]:
        def read_body(next_handler: Handler, route: Route | None) -> Handler:
            async def handler(request: Request) -> Response:
                await request.body()
                return await next_handler(request)

            return handler

        def both(next_handler: Callable[[C], Awaitable[Response]], route: Route | None) -> Callable[[C], Awaitable[Response]]:
            async def handler(connection: C) -> Response:
                self.seen.append(type(connection).__name__)
                return await next_handler(connection)

            return handler

        return [Middleware("reads-bodies", read_body), Middleware("both", both, websocket=both)]


def test_a_websocket_has_no_body_methods() -> None:
    for name in ("body", "text", "json", "form", "stream", "method", "is_disconnected"):
        assert not hasattr(WebSocket, name), name
    assert issubclass(WebSocket, Connection) and issubclass(Request, Connection) and not issubclass(WebSocket, Request)


async def test_http_only_middleware_is_left_off_websocket_chains(autojump_clock: trio.testing.MockClock) -> None:
    """Issue 27: a middleware reading the body of a WebSocket route consumed
    ``websocket.connect``, and the handshake hung."""
    chat = Chat()
    app = app_from({"router": {}, "chat": {}}, extra_plugins={"chat": chat})
    async with running(app) as client:
        with trio.fail_after(30):  # virtual time: a hang fails at once
            async with websocket_connect(app, "/chat") as ws:
                await ws.send("hello")
                assert await ws.receive() == "hello"
        assert (await client.post("/post", content=b"abc")).json() == {"size": 3}
    assert chat.seen == ["WebSocket", "Request"]
    assert chat.states == [SessionState.CONNECTING, SessionState.OPEN]


def _driven(app: Any, body: bytes, gone: trio.Event, calls: list[str]) -> tuple[Any, Any]:
    """ASGI receive/send for one request: `body`, then a disconnect once `gone` is set."""
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        calls.append("receive")
        if len(calls) == 1:
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    return receive, send


def _scope(path: str) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "headers": [], "query_string": b"", "client": ("127.0.0.1", 1)}


class Slow:
    def __init__(self) -> None:
        self.events: list[str] = []

    @hookimpl
    def wasmkernel_routes(self, app: Any) -> list[Route]:
        async def work(request: Request) -> dict[str, str]:
            assert not await request.is_disconnected()
            try:
                # Two blocks (a filter and its route, say) share the request's one watcher.
                async with request.cancelled_on_disconnect(), request.cancelled_on_disconnect():
                    self.events.append("working")
                    await trio.sleep_forever()
            except ClientDisconnected:
                self.events.append("cancelled")
                assert await request.is_disconnected()
                raise

        return [Route("/work", work, methods=["POST"])]


async def test_a_request_whose_client_leaves_is_cancelled_with_one_watcher() -> None:
    slow = Slow()
    app = app_from({"router": {}, "slow": {}}, extra_plugins={"slow": slow})
    gone, calls = trio.Event(), list[str]()
    receive, send = _driven(app, b"x", gone, calls)
    async with running(app), trio.open_nursery() as nursery:
        nursery.start_soon(app, _scope("/work"), receive, send)
        while "working" not in slow.events:
            await trio.sleep(0)
        gone.set()
    assert slow.events == ["working", "cancelled"]
    assert calls == ["receive", "receive"]  # the body, then the one watcher's wait


async def test_the_watcher_ends_with_the_request() -> None:
    class Quick:
        @hookimpl
        def wasmkernel_routes(self, app: Any) -> list[Route]:
            async def quick(request: Request) -> dict[str, bool]:
                return {"gone": await request.is_disconnected()}

            return [Route("/quick", quick, methods=["POST"])]

    app = app_from({"router": {}, "quick": {}}, extra_plugins={"quick": Quick()})
    async with running(app) as client:
        assert (await client.post("/quick", content=b"x")).json() == {"gone": False}
        assert (await client.post("/quick", content=b"x")).json() == {"gone": False}
        await trio.testing.wait_all_tasks_blocked()
        assert [task.name for task in app.nursery.child_tasks if "_watch" in task.name] == []


def test_middleware_needs_a_wrapper_for_a_websocket_protection() -> None:
    """An HTTP-only middleware enforcing AUTH does not cover a WebSocket route declaring it."""
    from wasmkernel import AUTH, AuthRequirement, StartupError

    class Guarded:
        @hookimpl
        def wasmkernel_routes(self, app: Any) -> list[Route]:
            async def ws(ws: WebSocket) -> None:
                await ws.accept()

            return [Route("/ws", ws, websocket=True, auth=AuthRequirement())]

        @hookimpl
        def wasmkernel_middleware(self, app: Any) -> list[Middleware]:
            return [Middleware("http-auth", lambda handler, route: handler, enforces=frozenset({AUTH}))]

    with pytest.raises(StartupError, match=r"route 'WEBSOCKET /ws' .* declares auth checks no enabled plugin enforces: enable authz"):
        app_from({"router": {}, "guarded": {}}, extra_plugins={"guarded": Guarded()})
