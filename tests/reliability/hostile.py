"""Hostile client shapes, one function each (`SHAPES`): what issue 22's
reviews sent to take the server down, over HTTP/1.1, WebSocket over both
protocols, h2c and HTTP/2 with prior knowledge. Each opens its own
connection(s) to 127.0.0.1:`port`, does its damage and returns; errors on the
client's side (resets, timeouts) are expected and swallowed by `attack`:
only what happens to the server matters.

They are aimed at a server of `registry` (the feed's WebSocket is
`WS_PATH`; `POST_PATH` is any path, a 404 will do).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import h2.errors
import h2.exceptions
import httpx
import psutil

from tests.reliability import raw_clients as raw
from tests.reliability.harness import Instance, full_plugins, registry_toml

WS_PATH = "/feed/ws"
POST_PATH = "/no-such-route"
#: The per-message and body limit of `registry`, and a message over it.
MESSAGE_LIMIT = 65536
OVERSIZED = MESSAGE_LIMIT + 4464


def registry(workdir: Path) -> str:
    """Every installed feature plugin but WebAssembly's, the channels and the feed."""
    plugins = full_plugins(workdir, with_wasm=False, limits={"max_body_bytes": MESSAGE_LIMIT})
    return registry_toml({**plugins, "channels": {}, "feed": {"database": str(workdir / "feed.db")}})


Shape = Callable[[int], None]


def ws_frames_with_handshake(port: int) -> None:
    """The first review's packet: a handshake and frames in one write."""
    with raw.connect(port, 5) as sock:
        sock.sendall(raw.websocket_handshake(WS_PATH) + raw.frame(b'{"x": 1}') + raw.frame(b"\x00" * 300, raw.BINARY))
        raw.read_head(sock)


def ws_early_flood(port: int) -> None:
    """Far more than the early-data limit before the handshake is answered."""
    with raw.connect(port, 5) as sock:
        sock.sendall(raw.websocket_handshake(WS_PATH) + raw.frame(b"y" * 300_000))
        raw.read_until_closed(sock, limit=4096, may_stay_open=True)


def ws_compression_bomb(port: int) -> None:
    """permessage-deflate offered, then a compressed frame of 20 MiB of zeros."""
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = bomb.compress(bytes(20 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)[:-4]
    with raw.connect(port, 5) as sock:
        sock.sendall(raw.websocket_handshake(WS_PATH, extensions="permessage-deflate"))
        raw.read_head(sock)
        sock.sendall(raw.frame(payload, rsv1=True))
        raw.read_until_closed(sock, limit=4096, may_stay_open=True)


def ws_flood_after_close(port: int) -> None:
    """A message over the limit (the server closes 1009 and stops reading),
    then a flood nobody reads, then leave."""
    with raw.connect(port, 5) as sock:
        sock.sendall(raw.websocket_handshake(WS_PATH))
        raw.read_head(sock)
        sock.sendall(raw.frame(b"z" * OVERSIZED) + b"".join(raw.frame(b"flood %d" % i) for i in range(200)))


def ws_protocol_violations(port: int) -> None:
    """Unmasked, reserved opcode, fragmented control frame, bad UTF-8, a
    continuation with nothing to continue, a 2^63-byte length."""
    bad = [
        raw.frame(b"unmasked", mask=False),
        raw.frame(b"reserved", opcode=0x3),
        raw.frame(b"ping", opcode=raw.PING, fin=False),
        raw.frame(b"\xff\xfe", raw.TEXT),
        raw.frame(b"orphan", opcode=0x0),
        b"\x82\xff" + (1 << 63).to_bytes(8, "big") + b"mask",
    ]
    for frame in bad:
        with raw.connect(port, 5) as sock:
            sock.sendall(raw.websocket_handshake(WS_PATH) + frame)
            raw.read_until_closed(sock, limit=4096, may_stay_open=True)


def ws_ping_flood(port: int) -> None:
    """Pings faster than pongs can go out, the client never reading."""
    with raw.connect(port, 5) as sock:
        sock.sendall(raw.websocket_handshake(WS_PATH))
        raw.read_head(sock)
        sock.sendall(b"".join(raw.frame(b"p" * 125, opcode=raw.PING) for _ in range(2000)))


def ws_handshake_abandoned(port: int) -> None:
    """A handshake with frames, the connection reset at once (RST, not FIN)."""
    sock = raw.connect(port, 5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.sendall(raw.websocket_handshake(WS_PATH) + raw.frame(b"bye"))
    sock.close()


def unread_body(port: int) -> None:
    """A chunked body the application never reads, then leave."""
    with raw.connect(port, 5) as sock:
        sock.sendall(f"POST {POST_PATH} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + (b"100\r\n" + b"a" * 256 + b"\r\n") * 400)


def h2c_upgrade_with_frames(port: int) -> None:
    """An h2c upgrade whose HTTP/2 preface and frames follow in the same packet."""
    request = b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n\r\n"
    headers = raw.h2_frame(raw.HEADERS, raw.END_STREAM | raw.END_HEADERS, 3, raw.header_block("GET", "/healthz"))
    frames = raw.PREFACE + raw.h2_frame(raw.SETTINGS, 0, 0) + headers
    with raw.connect(port, 5) as sock:
        sock.sendall(request + frames + raw.h2_frame(raw.DATA, 0, 1, b"late body on the upgraded stream"))
        raw.read_until_closed(sock, limit=65536, may_stay_open=True)


def h2_rapid_reset(port: int) -> None:
    """CVE-2023-44487: streams opened and reset at once, in bulk."""
    client = raw.H2Client(port, 5)
    with contextlib.closing(client):
        for _ in range(10):
            for _ in range(100):
                stream = client.connection.get_next_available_stream_id()
                client.connection.send_headers(stream, [(":method", "GET"), (":scheme", "http"), (":path", "/healthz"), (":authority", "a")])
                client.connection.reset_stream(stream, h2.errors.ErrorCodes.CANCEL)
            client.flush()


def h2_continuation_flood(port: int) -> None:
    """HEADERS without END_HEADERS, then endless CONTINUATION frames."""
    with raw.connect(port, 5) as sock:
        sock.sendall(raw.PREFACE + raw.h2_frame(raw.SETTINGS, 0, 0) + raw.h2_frame(raw.HEADERS, 0, 1, raw.header_block("GET", "/healthz")))
        block = raw.h2_frame(raw.CONTINUATION, 0, 1, b"\x40\x01x\x01y" * 2000)
        for _ in range(200):
            sock.sendall(block)


def h2_ping_flood(port: int) -> None:
    """PINGs in bulk, the client never reading the acknowledgements."""
    with raw.connect(port, 5) as sock:
        sock.sendall(raw.PREFACE + raw.h2_frame(raw.SETTINGS, 0, 0))
        pings = b"".join(raw.h2_frame(raw.H2_PING, 0, 0, i.to_bytes(8, "big")) for i in range(5000))
        for _ in range(4):
            sock.sendall(pings)


def h2_priority_flood(port: int) -> None:
    """PRIORITY frames for thousands of idle streams (hypercorn's priority
    tree holds at most 1000)."""
    with raw.connect(port, 5) as sock:
        frames = b"".join(raw.h2_frame(0x2, 0, 2 * i + 1, (0).to_bytes(4, "big") + b"\x10") for i in range(1500))
        sock.sendall(raw.PREFACE + raw.h2_frame(raw.SETTINGS, 0, 0) + frames)
        raw.read_until_closed(sock, limit=65536, may_stay_open=True)


def h2_body_after_response(port: int) -> None:
    """DATA frames after the server completed the stream's response."""
    client = raw.H2Client(port, 5)
    with contextlib.closing(client):
        stream = client.request("POST", POST_PATH, end_stream=False)
        client.status(stream)
        client.send_data(stream, b"late" * 1000, end_stream=True)
        client.response(client.request("GET", "/healthz"))


def h2_websocket_early_data(port: int) -> None:
    """WebSocket over HTTP/2 (RFC 8441) with its frames before the answer,
    then more after, then a reset."""
    client = raw.H2Client(port, 5)
    with contextlib.closing(client):
        stream = client.websocket(WS_PATH)
        client.send_data(stream, raw.frame(b"early") + raw.frame(b"w" * 30_000))
        client.status(stream)
        client.send_data(stream, raw.frame(b"late"))
        client.connection.reset_stream(stream, h2.errors.ErrorCodes.CANCEL)
        client.flush()


def h2_window_overflow(port: int) -> None:
    """WINDOW_UPDATE past 2^31 - 1, and SETTINGS with absurd values."""
    with raw.connect(port, 5) as sock:
        settings = raw.h2_frame(raw.SETTINGS, 0, 0, (4).to_bytes(2, "big") + (2**31).to_bytes(4, "big"))
        window = raw.h2_frame(0x8, 0, 0, (2**31 - 1).to_bytes(4, "big")) * 2
        sock.sendall(raw.PREFACE + raw.h2_frame(raw.SETTINGS, 0, 0) + window + settings)
        raw.read_until_closed(sock, limit=65536, may_stay_open=True)


SHAPES: tuple[Shape, ...] = (
    ws_frames_with_handshake,
    ws_early_flood,
    ws_compression_bomb,
    ws_flood_after_close,
    ws_protocol_violations,
    ws_ping_flood,
    ws_handshake_abandoned,
    unread_body,
    h2c_upgrade_with_frames,
    h2_rapid_reset,
    h2_continuation_flood,
    h2_ping_flood,
    h2_priority_flood,
    h2_body_after_response,
    h2_websocket_early_data,
    h2_window_overflow,
)


def attack(shape: Shape, port: int) -> None:
    """Run `shape`; what fails on the client's side is expected."""
    with contextlib.suppress(OSError, ConnectionError, AssertionError, h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
        shape(port)


# -- after an attack -------------------------------------------------------------


def serving_processes(instance: Instance) -> set[int]:
    return {process.pid for process in instance.processes()}


def assert_still_serves(instance: Instance, processes: set[int], probes: int = 6) -> None:
    """The server runs with the same `processes` (with workers, hypercorn
    stops them all when one dies) and answers, on new connections."""
    assert instance.process.poll() is None, instance.log_path.read_text(errors="replace")[-3000:]
    assert serving_processes(instance) == processes, instance.log_path.read_text(errors="replace")[-3000:]
    for _ in range(probes):
        assert httpx.get(instance.base + "/healthz", headers={"connection": "close"}, timeout=10).status_code == 200


def close_wait(instance: Instance) -> int:
    """Server-side connections the client closed but the server still holds."""
    held = 0
    for process in instance.processes():
        try:
            held += sum(1 for c in process.net_connections("tcp") if c.status == psutil.CONN_CLOSE_WAIT)
        except psutil.NoSuchProcess:
            continue
    return held


def wait_until(condition: Callable[[], bool], message: str, attempts: int = 300) -> None:
    """Poll `condition` every 0.1 s, `attempts` times at most."""
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(message)
