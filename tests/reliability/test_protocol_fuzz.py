"""Whatever a client sends, in any order, in any split: hypothesis composes
connections from pieces of every protocol the server speaks — WebSocket
handshakes and frames (masked or not, any opcode, RSV1, fragments), HTTP/1.1
requests, chunks and h2c upgrades, the HTTP/2 preface and frames of any type,
flags and stream, and random bytes — sends each in random splits to one real
server, and asserts it still serves, with no connection failure even
contained (`server.connection_failed`) or crash logged. (Without the server
plugin's hardened classes, random sequences of this kind ended the server
within a few hundred connections.)"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability import hostile
from tests.reliability import raw_clients as raw
from tests.reliability.harness import Instance, installed, spawn

pytestmark = [pytest.mark.server, pytest.mark.skipif(not installed("channels", "feed", "limits"), reason="needs the feed and limits plugins")]

PATHS = st.sampled_from(["/healthz", hostile.WS_PATH, "/feed/events", "/posts", "/nowhere"])
PIECES = st.one_of(
    st.builds(lambda ext: raw.websocket_handshake(hostile.WS_PATH, extensions=ext), st.sampled_from([None, "permessage-deflate"])),
    st.builds(
        lambda payload, opcode, fin, rsv1, mask: raw.frame(payload, opcode, fin=fin, rsv1=rsv1, mask=mask),
        st.binary(max_size=300),
        st.sampled_from([0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA, 0xB]),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
    st.binary(min_size=1, max_size=64),
    st.just(raw.PREFACE),
    st.builds(raw.h2_frame, st.integers(0, 11), st.integers(0, 255), st.sampled_from([0, 1, 3, 5, 2**31 - 1]), st.binary(max_size=40)),
    st.builds(
        lambda method, path, flags, stream, connect: raw.h2_frame(raw.HEADERS, flags, stream, raw.header_block(method, path, connect)),
        st.sampled_from(["GET", "POST", "CONNECT"]),
        PATHS,
        st.sampled_from([0x0, 0x1, 0x4, 0x5, 0x24]),
        st.sampled_from([1, 3, 5]),
        st.sampled_from([[], [(":protocol", "websocket")]]),
    ),
    st.builds(lambda path: f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode(), PATHS),
    st.just(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n\r\n"),
    st.builds(lambda path: f"POST {path} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n".encode(), PATHS),
    st.sampled_from([b"5\r\nhello\r\n", b"0\r\n\r\n", b"ffffffff\r\n"]),
    st.builds(lambda stream, code: raw.h2_frame(raw.RST_STREAM, 0, stream, struct.pack("!I", code)), st.sampled_from([1, 3]), st.integers(0, 13)),
    st.builds(lambda end, stream, data: raw.h2_frame(raw.DATA, end, stream, data), st.sampled_from([0, 1]), st.sampled_from([1, 3]), st.binary(max_size=100)),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    workdir = tmp_path_factory.mktemp("protocol-fuzz")
    instance = spawn(hostile.registry(workdir), workdir, workers=0)
    yield instance
    instance.stop()


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(pieces=st.lists(PIECES, min_size=1, max_size=8), cuts=st.lists(st.integers(1, 200), max_size=8))
def test_any_bytes_in_any_order_leave_the_server_serving(server: Instance, pieces: list[bytes], cuts: list[int]) -> None:
    data = b"".join(pieces)
    try:
        with raw.connect(server.port, 2) as sock:
            for cut in [*cuts, len(data)]:
                sock.sendall(data[:cut])
                data = data[cut:]
                if not data:
                    break
            sock.settimeout(0.05)
            raw.read_until_closed(sock, limit=65536, may_stay_open=True)
    except OSError:
        pass  # the server may close or reset a connection it refuses
    assert server.process.poll() is None, server.log_path.read_text(errors="replace")[-3000:]


def test_and_nothing_failed_on_the_way(server: Instance) -> None:
    """(After the property above, same server.) Still serving; no connection
    failure, contained or not, and no crash was logged."""
    hostile.assert_still_serves(server, hostile.serving_processes(server), probes=2)
    failures = [r for r in server.log_lines() if r.get("event") in ("server.connection_failed", "request.failed", "Error in ASGI Framework")]
    assert not failures, failures[:3]
