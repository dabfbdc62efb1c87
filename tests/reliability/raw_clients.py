"""Clients below any HTTP library, for attacks on the protocols themselves:
raw HTTP/1.1 bytes, hand-made WebSocket frames, and HTTP/2 (the `h2`
library on a plain socket, or hand-made frames h2 would refuse to send).

All blocking, with socket timeouts: call them from sync tests or through
`trio.to_thread.run_sync`."""

from __future__ import annotations

import base64
import os
import socket
import struct
from collections.abc import Callable, Iterable, Sequence

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TEXT, BINARY, CLOSE, PING = 0x1, 0x2, 0x8, 0x9
# HTTP/2 frame types (RFC 9113 §6)
DATA, HEADERS, RST_STREAM, SETTINGS, H2_PING, GOAWAY, CONTINUATION = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x9
END_STREAM, END_HEADERS = 0x1, 0x4
GOAWAY_CALM = 0xB  # ENHANCE_YOUR_CALM


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def websocket_handshake(path: str, *, extensions: str | None = None, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    """An HTTP/1.1 WebSocket handshake for `path` (a fresh key)."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if extensions is not None:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(payload: bytes, opcode: int = TEXT, *, fin: bool = True, rsv1: bool = False, mask: bool = True) -> bytes:
    """One WebSocket frame as a client sends it (masked unless `mask` is false)."""
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    mask_bit = 0x80 if mask else 0
    size = len(payload)
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """(the response head up to its blank line, the bytes read after it);
    raises ConnectionError if the server closes first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def status_of(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def read_until_closed(sock: socket.socket, limit: int = 1 << 20, *, may_stay_open: bool = False) -> bytes:
    """What the server sends until it closes the connection (or resets it, or
    `limit` bytes came); a timeout is an AssertionError unless `may_stay_open`."""
    data = b""
    try:
        while len(data) < limit:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        if not may_stay_open:
            raise AssertionError(f"the server kept the connection open; it sent {data[:200]!r}") from None
    return data


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of the complete unmasked frames in `data`."""
    frames = []
    while len(data) >= 2:
        opcode, size, start = data[0] & 0x0F, data[1] & 0x7F, 2
        if size == 126:
            size, start = struct.unpack("!H", data[2:4])[0], 4
        elif size == 127:
            size, start = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < start + size:
            break
        frames.append((opcode, data[start : start + size]))
        data = data[start + size :]
    return frames


def h2_frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One raw HTTP/2 frame."""
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream_id) + payload


def header_block(method: str, path: str, extra: Iterable[tuple[str, str]] = ()) -> bytes:
    return hpack.Encoder().encode([(":method", method), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1"), *extra])


class H2Client:
    """HTTP/2 with prior knowledge over one socket (the `h2` library)."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = connect(port, timeout)
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.connection = h2.connection.H2Connection(config)
        self.connection.initiate_connection()
        self.connection.update_settings({h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
        self.flush()
        self.pending: list[h2.events.Event] = []

    def flush(self) -> None:
        self.sock.sendall(self.connection.data_to_send())

    def close(self) -> None:
        self.sock.close()

    def request(self, method: str, path: str, headers: Sequence[tuple[str, str]] = (), *, end_stream: bool = True) -> int:
        stream_id: int = self.connection.get_next_available_stream_id()
        pseudo = [(":method", method), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1")]
        self.connection.send_headers(stream_id, [*pseudo, *headers], end_stream=end_stream)
        self.flush()
        return stream_id

    def websocket(self, path: str) -> int:
        """An extended CONNECT (RFC 8441) for a WebSocket on `path`."""
        stream_id: int = self.connection.get_next_available_stream_id()
        self.wait_for(lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
        headers = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1")]
        self.connection.send_headers(stream_id, [*headers, ("sec-websocket-version", "13")])
        self.flush()
        return stream_id

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send `data` in frames of the peer's largest size (within the flow
        control window: the test's data is smaller than the window)."""
        size = self.connection.max_outbound_frame_size
        chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        for index, chunk in enumerate(chunks):
            self.connection.send_data(stream_id, chunk, end_stream=end_stream and index == len(chunks) - 1)
        self.flush()

    def wait_for(self, done: Callable[[h2.events.Event], bool]) -> list[h2.events.Event]:
        """Events until one satisfies `done` (kept for later calls otherwise)."""
        seen: list[h2.events.Event] = []
        while True:
            for index, event in enumerate(self.pending):
                if done(event):
                    seen += self.pending[: index + 1]
                    self.pending = self.pending[index + 1 :]
                    return seen
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"the server closed the connection; events so far: {self.pending}")
            self.pending += self.connection.receive_data(data)
            self.flush()

    def response(self, stream_id: int) -> tuple[int, bytes]:
        """(status, body) of `stream_id`, once it ended or was reset."""
        events = self.wait_for(lambda e: isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and e.stream_id == stream_id)
        status, body = 0, b""
        for event in events:
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                status = int(dict(event.headers)[b":status"])
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                body += event.data
                self.connection.acknowledge_received_data(event.flow_controlled_length, stream_id)
        return status, body

    def status(self, stream_id: int) -> int:
        events = self.wait_for(lambda e: isinstance(e, (h2.events.ResponseReceived, h2.events.StreamReset)) and e.stream_id == stream_id)
        last = events[-1]
        return int(dict(last.headers)[b":status"]) if isinstance(last, h2.events.ResponseReceived) else 0
