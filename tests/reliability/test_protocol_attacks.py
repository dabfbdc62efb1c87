"""Protocol-level attacks on a real server (`wasmkernel run`, in this process
and with two worker processes): no per-connection protocol error may end the
server, whatever a client sends, in any order, over HTTP/1.1, h2c, and
WebSocket over both (issue 22, class 1). Each attack is repeated so that
both workers meet it; afterwards the server must still run with the same
processes and answer.

The hardened hypercorn classes are the server plugin's
(`wasmkernel_server.patches`); the in-process tests below pin the behaviours
a real client cannot reach deterministically (a failure escaping a
connection, a send meeting a close).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pytest

from tests.reliability import hostile
from tests.reliability import raw_clients as raw
from tests.reliability.harness import Instance, installed, spawn

pytestmark = [pytest.mark.server, pytest.mark.skipif(not installed("channels", "feed", "limits"), reason="needs the feed and limits plugins")]

REPEAT = 6  # connections per attack: each worker of two meets it
MESSAGE_LIMIT = hostile.MESSAGE_LIMIT


@pytest.fixture(scope="module", params=[0, 2], ids=["in-process", "2-workers"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    workdir = tmp_path_factory.mktemp(f"protocol-attacks-{request.param}")
    instance = spawn(hostile.registry(workdir), workdir, workers=request.param)
    yield instance
    instance.stop()


def test_websocket_frames_in_the_handshake_packet(server: Instance) -> None:
    """The reported packet: a handshake and a masked text frame sent together
    (hypercorn saw the frame before the application accepted, answered 400
    while the application accepted, and h11's error ended the server)."""
    processes = hostile.serving_processes(server)
    for _ in range(REPEAT):
        with raw.connect(server.port) as sock:
            sock.sendall(raw.websocket_handshake("/feed/ws") + raw.frame(b'{"hello": 1}') + raw.frame(b"again"))
            head, _ = raw.read_head(sock)
            assert raw.status_of(head) == 101
    hostile.assert_still_serves(server, processes)


def test_data_before_the_handshake_beyond_the_limit(server: Instance) -> None:
    """More than the early-data limit before the handshake is answered: the
    handshake is refused (or, if the application accepted first, the
    message is served); never a dead server."""
    processes = hostile.serving_processes(server)
    for size in (70_000, 200_000, 1_000_000):
        with raw.connect(server.port) as sock:
            try:
                sock.sendall(raw.websocket_handshake("/feed/ws") + raw.frame(b"x" * size))
                answer = raw.read_until_closed(sock, limit=4096, may_stay_open=True)
            except (ConnectionResetError, BrokenPipeError):
                answer = b""
            assert answer == b"" or answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 101"))
    hostile.assert_still_serves(server, processes)


def test_websocket_compression_is_not_negotiated(server: Instance) -> None:
    """permessage-deflate offered: not taken up (issue 22, class 3); a client
    compressing anyway — a 50 MiB bomb in about 50 KiB — breaks the protocol
    and is disconnected before anything is inflated."""
    processes = hostile.serving_processes(server)
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = bomb.compress(bytes(50 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)[:-4]
    assert len(payload) < 100_000
    before = sum(process.memory_info().rss for process in server.processes())
    for _ in range(REPEAT):
        with raw.connect(server.port) as sock:
            sock.sendall(raw.websocket_handshake("/feed/ws", extensions="permessage-deflate; client_max_window_bits"))
            head, rest = raw.read_head(sock)
            assert raw.status_of(head) == 101
            assert b"sec-websocket-extensions" not in head.lower()
            sock.sendall(raw.frame(payload, rsv1=True))
            frames = raw.server_frames(rest + raw.read_until_closed(sock))
            assert {opcode for opcode, _ in frames} <= {raw.PING, raw.CLOSE}, frames
    grown = sum(process.memory_info().rss for process in server.processes()) - before
    assert grown < 50 << 20, f"the server grew by {grown >> 20} MiB"
    hostile.assert_still_serves(server, processes)


def test_unread_websocket_messages_do_not_hold_the_connection(server: Instance) -> None:
    """A message over the limit ends the session (1009) and the server stops
    reading; the client floods on and leaves. hypercorn's reader and the
    application's clean-up then waited forever for room in the finished
    application's queue: the connection was never closed."""
    processes = hostile.serving_processes(server)
    for _ in range(REPEAT):
        with raw.connect(server.port) as sock:
            sock.sendall(raw.websocket_handshake("/feed/ws"))
            raw.read_head(sock)
            sock.sendall(raw.frame(b"x" * (MESSAGE_LIMIT + 1)) + b"".join(raw.frame(b"flood %d" % i) for i in range(100)))
            raw.read_until_closed(sock, limit=65536)
    hostile.wait_until(lambda: hostile.close_wait(server) == 0, "connections the clients closed are still held")
    hostile.assert_still_serves(server, processes)


def test_h2_body_after_a_complete_response(server: Instance) -> None:
    """h2 allows a response before the whole request: the client goes on
    sending its body. hypercorn looked the finished stream up (KeyError),
    which ended the server; the connection now goes on serving."""
    processes = hostile.serving_processes(server)
    for _ in range(REPEAT):
        client = raw.H2Client(server.port)
        try:
            stream = client.request("POST", "/no-such-route", [("content-type", "application/json")], end_stream=False)
            assert client.status(stream) == 404
            client.send_data(stream, b"{" * 1000)
            client.send_data(stream, b"}" * 1000, end_stream=True)
            assert client.response(client.request("GET", "/healthz"))[0] == 200
        finally:
            client.close()
    hostile.assert_still_serves(server, processes)


def test_websocket_over_h2_with_data_before_accept(server: Instance) -> None:
    """RFC 8441 WebSocket over h2c, its first frames in the same packet as
    the CONNECT, then more after the stream was refused or ended."""
    processes = hostile.serving_processes(server)
    for _ in range(REPEAT):
        client = raw.H2Client(server.port)
        try:
            stream = client.websocket("/feed/ws")
            client.send_data(stream, raw.frame(b"early") + raw.frame(b"x" * 60_000))
            client.status(stream)
            client.send_data(stream, raw.frame(b"late"), end_stream=True)
            assert client.response(client.request("GET", "/healthz"))[0] == 200
        finally:
            client.close()
    hostile.assert_still_serves(server, processes)


def test_h2_priority_flood_is_told_to_calm_down(server: Instance) -> None:
    """PRIORITY frames for 1500 idle streams overflow hypercorn's priority tree
    (1000 streams): the server ended; now the client gets GOAWAY
    ENHANCE_YOUR_CALM and only its connection closes."""
    processes = hostile.serving_processes(server)
    for _ in range(REPEAT):
        with raw.connect(server.port) as sock:
            frames = b"".join(raw.h2_frame(0x2, 0, 2 * i + 1, (0).to_bytes(4, "big") + b"\x10") for i in range(1500))
            sock.sendall(raw.PREFACE + raw.h2_frame(raw.SETTINGS, 0, 0) + frames)
            answer = raw.read_until_closed(sock)
        assert raw.GOAWAY_CALM in goaway_codes(answer), answer[:200]
    hostile.assert_still_serves(server, processes)
    assert not [r for r in server.log_lines() if r.get("event") == "server.connection_failed"]


def goaway_codes(data: bytes) -> list[int]:
    """The error codes of the GOAWAY frames in a server's HTTP/2 bytes."""
    codes = []
    while len(data) >= 9:
        size, kind = int.from_bytes(data[:3], "big"), data[3]
        if kind == raw.GOAWAY:
            codes.append(int.from_bytes(data[9 + 4 : 9 + 8], "big"))
        data = data[9 + size :]
    return codes
