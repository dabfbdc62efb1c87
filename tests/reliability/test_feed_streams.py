"""The feed's streams under hostile or broken clients (served by hypercorn
in-process, real TCP): a WebSocket or SSE client that never reads does not
slow the others, who get every event in order, and is itself closed; an
oversized message and malformed frames close only their own connection."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
import trio
import trio_websocket
from structlog.testing import capture_logs

from tests.reliability.harness import installed
from wasmkernel import Application
from wasmkernel.testing import ServeApp, ServedApp, app_from, wait_until

pytestmark = pytest.mark.skipif(not installed("channels", "feed"), reason="needs the channels and feed plugins")

EVENTS = 120
PAD = "x" * 131072  # a few of these fill the socket buffers of a client that stopped reading


def feed_app(database: Path) -> Application:
    return app_from(
        {
            "metrics": {},
            "access-log": {},
            "errors": {},
            "limits": {"config": {"max_body_bytes": 4096, "websocket_queue": 8}},
            "router": {},
            "channels": {"config": {"queue_size": 8, "keepalive_seconds": 0.5}},
            "feed": {"config": {"database": str(database)}},
        },
        kernel={"allow_unenforced": True},  # no auth plugins: only reading is exercised here
    )


async def handshake(port: int, path: str) -> trio.SocketStream:
    """A raw TCP connection that completed a WebSocket handshake."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    head = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    await stream.send_all(("\r\n".join(head) + "\r\n\r\n").encode())
    answer = b""
    with trio.fail_after(30):
        while b"\r\n\r\n" not in answer:
            answer += await stream.receive_some(4096)
    assert answer.startswith(b"HTTP/1.1 101"), answer[:200]
    return stream


async def stalled_sse(port: int) -> trio.SocketStream:
    """A raw TCP connection that asked for the event stream and never reads it."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(f"GET /feed/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return stream


def hub_of(app: Application) -> Any:
    from wasmkernel_channels import CHANNELS

    return app.services.get(CHANNELS, needed_by="test")


async def subscribers(app: Application, count: int) -> None:
    await wait_until(lambda: hub_of(app).subscriber_count == count, what=f"{count} subscribers")


async def serve_feed(serve_app: ServeApp, tmp_path: Path) -> ServedApp:
    return await serve_app(feed_app(tmp_path / "feed.db"))


async def test_clients_that_never_read_do_not_slow_the_others(tmp_path: Path, serve_app: ServeApp) -> None:
    with capture_logs() as logs:
        served = await serve_feed(serve_app, tmp_path)
        app, port = served.app, served.port
        hub = hub_of(app)
        stalled_ws = await handshake(port, "/feed/ws")
        stalled_stream = await stalled_sse(port)
        async with served.websocket("/feed/ws") as reader, served.sse("/feed/events") as events:
            await subscribers(app, 4)
            for n in range(EVENTS):
                await hub.publish("feed", {"type": "post", "id": n, "text": PAD}, event="post")
                # The readers get every event, in order, while the stalled clients hold theirs.
                assert json.loads(await reader.get_message())["id"] == n
                assert (await events.next()).json()["id"] == n
            await subscribers(app, 2)  # both stalled subscriptions were ended
        counters = hub.counters
        assert counters.overflow_closes >= 1
        await stalled_ws.aclose()
        await stalled_stream.aclose()
        assert (await served.http.get("/posts")).status_code == 200
        closes = await wait_until(lambda: [line["close_code"] for line in logs if line.get("event") == "websocket" and line["close_code"] == 1013])
    assert 1013 in closes, closes


async def test_oversized_and_malformed_frames_close_only_their_connection(tmp_path: Path, serve_app: ServeApp) -> None:
    served = await serve_feed(serve_app, tmp_path)
    app, port, http = served.app, served.port, served.http
    hub = hub_of(app)
    async with served.websocket("/feed/ws") as good, served.websocket("/feed/ws") as big:
        garbage = await handshake(port, "/feed/ws")
        unmasked = await handshake(port, "/feed/ws")
        await subscribers(app, 4)

        await big.send_message("x" * 10_000)  # over max_body_bytes
        with pytest.raises(trio_websocket.ConnectionClosed) as closed:
            with trio.fail_after(30):
                await big.get_message()
        assert closed.value.reason is not None and closed.value.reason.code == 1009

        await garbage.send_all(b"\xff\xff\xff\xff\xff\xff\xff\xff")  # reserved bits and opcode, absurd length
        await unmasked.send_all(b"\x81\x05hello")  # a client frame must be masked
        for broken in (garbage, unmasked):
            with trio.fail_after(30):
                while await broken.receive_some(4096):
                    pass  # the server's close frame, then the end of the connection
        await subscribers(app, 1)

        await hub.publish("feed", {"type": "post", "id": 1, "text": "still here"}, event="post")
        with trio.fail_after(30):
            assert json.loads(await good.get_message())["text"] == "still here"
    assert (await http.get("/posts")).status_code == 200
