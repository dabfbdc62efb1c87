"""The server plugin's hardened hypercorn classes (`wasmkernel_server.patches`),
served in this process by hypercorn's trio server with raw clients: what a
real client cannot reach deterministically from outside (tasks left behind,
a failure escaping a connection, a send meeting a close). The same attacks on
real server processes: tests/reliability/test_protocol_attacks.py."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, cast

import pytest
import structlog
import trio
from hypercorn.events import Closed, RawData
from hypercorn.trio import serve
from hypercorn.typing import Framework
from wasmkernel_server import patches
from wasmkernel_server.connections import GuardedTCPServer
from wasmkernel_server.http11 import H11
from wasmkernel_server.serving import hypercorn_config

from tests.conftest import free_port
from tests.reliability import raw_clients as raw
from wasmkernel import Application, Request, Response, Route, StartupError, TextResponse, WebSocket, hookimpl
from wasmkernel.testing import app_from


class Endpoints:
    """An echo WebSocket, one that accepts and then never reads, one that
    refuses, and an HTTP route that answers without reading the body."""

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [
            Route("/echo", self.echo, websocket=True),
            Route("/deaf", self.deaf, websocket=True),
            Route("/refuse", self.refuse, websocket=True),
            Route("/slow", self.slow, methods=["POST"]),
        ]

    async def echo(self, ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            await ws.send(message)

    async def deaf(self, ws: WebSocket) -> None:
        ws.discard_incoming = True
        await ws.accept()
        await trio.sleep(0.5)  # reads nothing meanwhile: the server's queue fills

    async def refuse(self, ws: WebSocket) -> None:
        await ws.close()

    async def slow(self, request: Request) -> Response:
        await trio.sleep(0.5)
        return TextResponse("not read", status=404)


@asynccontextmanager
async def served(**server: Any) -> AsyncIterator[int]:
    """The test application under hypercorn's trio server in this task's
    loop; yields the port. The server plugin's startup installs its classes."""
    app = app_from({"router": {}, "test": {}}, extra_plugins={"test": Endpoints()})
    port = free_port()
    config = hypercorn_config([f"127.0.0.1:{port}"], workers=1)
    config.websocket_ping_interval = server.get("ping")
    config.graceful_timeout = 0.5
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve, cast(Framework, app), config, shutdown_trigger=stop.wait))
        try:
            yield port
        finally:
            stop.set()


async def talk(port: int, data: bytes, *, answer: Callable[[bytes], bool], close_after: float = 0.0) -> bytes:
    """Send `data`, read until `answer(received)` holds (or the server
    closes), wait `close_after` seconds, close."""
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(data)
        received = b""
        with trio.fail_after(10):
            while not answer(received):
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                received += chunk
        await trio.sleep(close_after)
        return received


def open_connections() -> int:
    """Connections whose task (trio's handler running hypercorn's) is alive."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    found, pending = 0, [root]
    while pending:
        task = pending.pop()
        found += task.name.endswith("._run_handler")
        pending += [child for nursery in task.child_nurseries for child in nursery.child_tasks]
    return found


async def all_closed() -> int:
    """Open connections, once there are none (polled; at most 10 s)."""
    with trio.move_on_after(10):
        while open_connections():
            await trio.sleep(0.05)
    return open_connections()


def has_messages(count: int) -> Callable[[bytes], bool]:
    def enough(data: bytes) -> bool:
        frames = data.partition(b"\r\n\r\n")[2]
        return len([f for f in raw.server_frames(frames) if f[0] == raw.TEXT]) >= count

    return enough


async def test_frames_sent_with_the_handshake_reach_the_application_in_order() -> None:
    messages = [b"one", b"two", "three \N{SNOWMAN}".encode(), b"x" * 40_000, b"last"]
    packet = raw.websocket_handshake("/echo") + b"".join(raw.frame(m) for m in messages)
    # and a fragmented message, its continuation in the same packet
    packet += raw.frame(b"frag", fin=False) + raw.frame(b"mented", opcode=0)
    async with served() as port:
        received = await talk(port, packet, answer=has_messages(6))
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    assert [payload for opcode, payload in raw.server_frames(rest) if opcode == raw.TEXT] == [*messages, b"fragmented"]


async def test_early_data_of_a_refused_handshake_is_dropped() -> None:
    async with served() as port:
        received = await talk(port, raw.websocket_handshake("/refuse") + raw.frame(b"unwanted"), answer=lambda data: b"\r\n\r\n" in data)
        assert received.startswith(b"HTTP/1.1 403")
        assert (await talk(port, raw.websocket_handshake("/echo") + raw.frame(b"still"), answer=has_messages(1))).endswith(b"still")


async def test_too_much_early_data_refuses_the_handshake() -> None:
    async with served() as port:
        received = await talk(port, raw.websocket_handshake("/deaf") + raw.frame(b"x" * 100_000), answer=lambda data: False)
    assert received == b"" or received.startswith((b"HTTP/1.1 400", b"HTTP/1.1 101"))


async def test_what_nobody_reads_does_not_hold_the_connection() -> None:
    """A WebSocket the application stops reading, and a body it never reads,
    flooded by the client, which then leaves: every task of the connection
    ends (in hypercorn each connection was left waiting forever for room in
    the finished application's queue)."""
    flood = b"".join(raw.frame(b"message %d" % i) for i in range(60))
    chunked = b"POST /slow HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + b"100\r\n" + b"a" * 256 + b"\r\n"
    async with served() as port:
        for _ in range(3):
            await talk(port, raw.websocket_handshake("/deaf") + flood, answer=lambda data: b"\r\n\r\n" in data, close_after=1.0)
            await talk(port, chunked * 30, answer=lambda data: b"\r\n\r\n" in data, close_after=1.0)
        assert await all_closed() == 0


async def test_a_failure_in_one_connection_ends_only_that_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last line of defence: whatever a connection raises (here an
    injected error in the HTTP/1.1 reader) is logged and contained."""
    original = H11.handle

    async def handle(self: H11, event: Any) -> None:
        if isinstance(event, RawData) and b"BOOM" in event.data:
            raise RuntimeError("injected protocol failure")
        await original(self, event)

    monkeypatch.setattr(H11, "handle", handle)
    async with served() as port:
        with structlog.testing.capture_logs() as logs:
            assert await talk(port, b"BOOM\r\n\r\n", answer=lambda data: False) == b""
        assert [entry["error"] for entry in logs if entry["event"] == "server.connection_failed"] == ["RuntimeError: injected protocol failure"]
        answer = await talk(port, b"POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", answer=lambda data: data.endswith(b"not read"))
        assert answer.startswith(b"HTTP/1.1 404")


class _ClosingStream:
    """A socket stream whose ``send_eof`` is running in another task."""

    def __init__(self) -> None:
        self.closed = False

    async def send_all(self, data: bytes) -> None:
        raise trio.BusyResourceError("another task is currently sending data on this SocketStream")


class _Protocol:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def handle(self, event: Any) -> None:
        self.events.append(event)


async def test_a_send_meeting_the_close_is_a_closed_connection() -> None:
    """hypercorn's ``send_eof`` runs outside its send lock: a WebSocket ping
    (or any send) meeting it raised `trio.BusyResourceError`, which ended the
    server from the ping task."""
    server, protocol = object.__new__(GuardedTCPServer), _Protocol()
    server.stream, server.send_lock, server.protocol = cast(Any, _ClosingStream()), trio.Lock(), cast(Any, protocol)
    await server.protocol_send(RawData(data=b"ping"))
    assert protocol.events == [Closed()]


def h2c_upgrade(path: str) -> bytes:
    settings = base64.urlsafe_b64encode(b"").decode()
    return (f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: {settings}\r\n\r\n").encode()


@pytest.mark.parametrize("behind_proxy", [False, True])
async def test_h2c_upgrade_is_refused_behind_a_proxy(behind_proxy: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a proxy (``--behind-proxy``) an ``Upgrade: h2c`` is answered
    over HTTP/1.1: the request is served, no tunnel opens past the proxy."""
    monkeypatch.setenv("WASMKERNEL_BEHIND_PROXY", "1" if behind_proxy else "0")
    async with served() as port:
        answer = await talk(port, h2c_upgrade("/nowhere"), answer=lambda data: b"\r\n\r\n" in data)
    assert answer.startswith(b"HTTP/1.1 404" if behind_proxy else b"HTTP/1.1 101"), answer[:100]
    patches.install()


def test_another_hypercorn_release_is_refused_in_one_line() -> None:
    patches.check("0.18.0")
    with pytest.raises(StartupError) as refused:
        patches.check("0.19.1")
    assert str(refused.value).count("\n") == 0
    assert "hypercorn 0.19.1 is not supported" in str(refused.value) and "hypercorn>=0.18,<0.19" in str(refused.value)
