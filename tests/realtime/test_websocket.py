"""The kernel's WebSocket model, in-process (no server)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from kernel import Application, Forbidden, Route, WebSocket, WebSocketDisconnect, hookimpl
from kernel.testing import WebSocketDenied, app_from, running, websocket_connect


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
            Route("/ws/flood", self.flood, websocket=True),
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

    async def flood(self, ws: WebSocket) -> None:
        ws.queue_size = 4
        await ws.accept()
        for i in range(100):
            if not ws.send_nowait(f"m{i}"):
                break
            await trio.lowlevel.checkpoint()
        await ws.wait_closed()
        self.ended.append(("flood", ws.close_code))

    async def firehose(self, ws: WebSocket) -> None:
        ws.queue_size = 2
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
        with trio.fail_after(2):
            while not sockets.ended:
                await trio.sleep(0.01)
    assert sockets.ended == [("silent", 4001)]


async def test_a_client_that_does_not_read_is_closed_1013() -> None:
    sockets = Sockets()
    app = make_app(sockets)
    async with running(app), websocket_connect(app, "/ws/flood", buffer=0) as ws:
        with trio.fail_after(2):
            while not sockets.ended:
                await trio.sleep(0.01)
        assert sockets.ended == [("flood", 1013)]
        # What the client eventually reads ends with the 1013 close frame.
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                await ws.receive()
        assert closed.value.code == 1013


async def test_a_send_waiting_for_room_ends_when_the_connection_is_lost() -> None:
    sockets = Sockets()
    app = make_app(sockets)
    async with running(app), websocket_connect(app, "/ws/firehose", buffer=0) as ws:
        await trio.sleep(0.1)  # the endpoint waits for room, its sender for the client
        await ws.from_app.aclose()  # which goes away: the sender's send fails
        with trio.fail_after(2):
            while not sockets.ended:
                await trio.sleep(0.01)
    assert sockets.ended == [("firehose", 1006)]


def test_websocket_routes_are_in_the_route_table() -> None:
    app = make_app(Sockets())
    echo = next(route for route in app.router.routes if route.name == "echo")
    assert echo.websocket and echo.methods == ("WEBSOCKET",) and echo.owner == "sockets"
    unnamed = next(route for route in app.router.routes if route.path == "/ws/json")
    assert unnamed.name == "WEBSOCKET /ws/json"
