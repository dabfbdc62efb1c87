"""The kernel's WebSocket model, in-process (no server)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from wasmkernel import Application, Forbidden, Route, WebSocket, WebSocketDisconnect, hookimpl
from wasmkernel.testing import WebSocketDenied, app_from, running, wait_until, websocket_connect


class Sockets:
    """WebSocket routes exercising the model."""

    def __init__(self) -> None:
        self.ended: list[tuple[str, int | None]] = []

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [
            Route("/ws/echo/{room}", self.echo, websocket=True, name="echo", max_body_size=64),
            Route("/ws/echo/{room}", self.http_twin, name="http-twin"),
            Route("/ws/json", self.json_echo, websocket=True),
            Route("/ws/refuse", self.refuse, websocket=True),
            Route("/ws/deny", self.deny, websocket=True),
            Route("/ws/silent", self.silent, websocket=True),
            Route("/ws/boom", self.boom, websocket=True),
            Route("/ws/ended", self.ended_elsewhere, websocket=True),
            Route("/ws/firehose", self.firehose, websocket=True),
        ]

    async def http_twin(self, request: Any) -> dict[str, str]:
        return {"http": "yes"}

    async def echo(self, ws: WebSocket) -> None:
        await ws.accept(subprotocol="chat" if "chat" in ws.subprotocols else None, headers=[("X-Room", ws.path_params["room"])])
        async for message in ws:
            await ws.send(message)
        self.ended.append(("echo", ws.close_code))

    async def json_echo(self, ws: WebSocket) -> None:
        await ws.accept()
        while True:
            data = await ws.receive_json()
            if data == {"bye": True}:
                await ws.close(4000, "bye")
                return
            await ws.send_json({"got": data})

    async def refuse(self, ws: WebSocket) -> None:
        await ws.close()

    async def deny(self, ws: WebSocket) -> None:
        raise Forbidden("not you")

    async def silent(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.wait_closed()
        self.ended.append(("silent", ws.close_code))

    async def boom(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_message()
        raise RuntimeError("endpoint bug")

    async def ended_elsewhere(self, ws: WebSocket) -> None:
        """Sends from a task of the connection, which ends the session (as a
        fan-out whose queue for this client overflowed would)."""

        async def sender() -> None:
            await ws.send("first")
            ws.close_nowait(4002, "enough")
            with pytest.raises(WebSocketDisconnect):
                await ws.send("too late")

        await ws.accept()
        ws.nursery.start_soon(sender)
        await ws.wait_closed()
        self.ended.append(("ended", ws.close_code))

    async def firehose(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                await ws.send("x")
        finally:
            self.ended.append(("firehose", ws.close_code))


def make_app(sockets: Sockets, **plugins: dict[str, Any]) -> Application:
    return app_from({"router": {}, **plugins, "sockets": {}}, extra_plugins={"sockets": sockets})


async def test_accept_subprotocol_headers_echo_and_clean_client_close() -> None:
    sockets = Sockets()
    app = make_app(sockets)
    async with running(app) as http:
        async with websocket_connect(app, "/ws/echo/lobby", subprotocols=["other", "chat"]) as ws:
            assert ws.subprotocol == "chat"
            assert (b"x-room", b"lobby") in ws.headers
            await ws.send("hello")
            assert await ws.receive() == "hello"
            await ws.send(b"\x00\x01")
            assert await ws.receive() == b"\x00\x01"
        # The HTTP route on the same path is a different route.
        assert (await http.get("/ws/echo/lobby")).json() == {"http": "yes"}
    assert sockets.ended == [("echo", 1000)]


async def test_json_and_close_with_code_and_reason() -> None:
    app = make_app(Sockets())
    async with running(app), websocket_connect(app, "/ws/json") as ws:
        await ws.send('{"a": 1}')
        assert await ws.receive_json() == {"got": {"a": 1}}
        await ws.send('{"bye": true}')
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive()
        assert (closed.value.code, closed.value.reason) == (4000, "bye")


async def test_malformed_json_closes_1008() -> None:
    app = make_app(Sockets())
    async with running(app), websocket_connect(app, "/ws/json") as ws:
        await ws.send("{not json")
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive()
        assert closed.value.code == 1008


async def test_oversized_message_closes_1009() -> None:
    app = make_app(Sockets())
    async with running(app), websocket_connect(app, "/ws/echo/a") as ws:
        await ws.send("x" * 65)
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive()
        assert closed.value.code == 1009


async def test_refusals_unknown_paths_and_errors() -> None:
    app = make_app(Sockets())
    async with running(app):
        with pytest.raises(WebSocketDenied) as refused:
            async with websocket_connect(app, "/ws/refuse"):
                pass
        assert refused.value.status == 403
        with pytest.raises(WebSocketDenied) as denied:
            async with websocket_connect(app, "/ws/deny"):
                pass
        assert denied.value.status == 403
        assert b"not you" in denied.value.body
        with pytest.raises(WebSocketDenied) as missing:
            async with websocket_connect(app, "/nowhere"):
                pass
        assert missing.value.status == 404
        # Without the denial extension a refusal is a close before accept.
        with pytest.raises(WebSocketDenied) as closed:
            async with websocket_connect(app, "/ws/deny", denial_extension=False):
                pass
        assert (closed.value.status, closed.value.body) == (403, b"")


async def test_endpoint_error_after_accept_closes_1011() -> None:
    app = make_app(Sockets())
    async with running(app), websocket_connect(app, "/ws/boom") as ws:
        await ws.send("go")
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive()
        assert closed.value.code == 1011


async def test_wait_closed_returns_when_the_client_leaves() -> None:
    sockets = Sockets()
    app = make_app(sockets)
    async with running(app):
        async with websocket_connect(app, "/ws/silent") as ws:
            await ws.close(4001)
        await wait_until(lambda: sockets.ended)
    assert sockets.ended == [("silent", 4001)]


async def test_close_nowait_from_another_task_ends_the_session_at_once() -> None:
    sockets = Sockets()
    app = make_app(sockets)
    async with running(app), websocket_connect(app, "/ws/ended") as ws:
        assert await ws.receive() == "first"
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive()
        assert (closed.value.code, closed.value.reason) == (4002, "enough")
    assert sockets.ended == [("ended", 4002)]


async def test_a_client_that_does_not_read_stalls_only_its_own_sender() -> None:
    sockets = Sockets()
    app = make_app(sockets)
    async with running(app), websocket_connect(app, "/ws/firehose", buffer=0) as stalled:
        await wait_until(lambda: stalled.from_app.statistics().tasks_waiting_send, what="the firehose waiting for its client")
        async with websocket_connect(app, "/ws/echo/a") as ws:
            await ws.send("still served")
            with trio.fail_after(30):
                assert await ws.receive() == "still served"
        await stalled.from_app.aclose()  # the stalled client goes away: the waiting send fails
        await wait_until(lambda: len(sockets.ended) >= 2)
    assert sockets.ended == [("echo", 1000), ("firehose", 1006)]


def test_websocket_routes_are_in_the_route_table() -> None:
    app = make_app(Sockets())
    echo = next(route for route in app.router.routes if route.name == "echo")
    assert echo.websocket and echo.methods == ("WEBSOCKET",) and echo.owner == "sockets"
    unnamed = next(route for route in app.router.routes if route.path == "/ws/json")
    assert unnamed.name == "WEBSOCKET /ws/json"
