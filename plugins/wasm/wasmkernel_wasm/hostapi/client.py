"""A wasmer worker's side of the host-API socket (see `wasmkernel_wasm.hostapi.rpc`):
the frame codec and a blocking client. Imports nothing of the server side, so
worker processes stay light."""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

from wasmkernel_wasm.hostapi import HostDenied, HostFailure, HostFault

U32 = struct.Struct("<I")
REPLY = struct.Struct("<BI")
#: Largest frame either side accepts (an HTTP response under its cap, plus headers).
MAX_FRAME = 64 * 1024 * 1024


def fields(parts: Sequence[bytes]) -> bytes:
    return b"".join(U32.pack(len(part)) + part for part in parts)


def encode_request(module: str, op: str, args: Sequence[bytes]) -> bytes:
    body = fields([module.encode(), op.encode()]) + U32.pack(len(args)) + fields(args)
    return U32.pack(len(body)) + body


def decode_request(body: bytes) -> tuple[str, str, list[bytes]]:
    pos = 0

    def field() -> bytes:
        nonlocal pos
        (length,) = U32.unpack_from(body, pos)
        pos += 4 + length
        if pos > len(body):
            raise ValueError("truncated field")
        return body[pos - length : pos]

    module, op = field().decode(), field().decode()
    (count,) = U32.unpack_from(body, pos)
    pos += 4
    return module, op, [field() for _ in range(min(count, 8))]


class Client:
    """A worker's side: one blocking connection, reopened once if it broke."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.path)
            self._sock = sock
        return self._sock

    def call(self, module: str, op: str, args: Sequence[bytes], scope: object = None) -> bytes:
        """One operation; `scope` is unused (the host cancels it when this worker's connection closes)."""
        frame = encode_request(module, op, args)
        for attempt in (1, 2):
            try:
                sock = self._connect()
                sock.sendall(frame)
                body = _recv_frame(sock)
                break
            except OSError as exc:
                if self._sock is not None:
                    self._sock.close()
                self._sock = None
                if attempt == 2:
                    raise HostFault(f"host call {op} could not reach the host ({type(exc).__name__})") from None
        status, code = REPLY.unpack_from(body, 0)
        (length,) = U32.unpack_from(body, REPLY.size)
        data = body[REPLY.size + 4 : REPLY.size + 4 + length]
        if status == 1:
            raise HostFailure(code, data.decode("utf-8", "replace"))
        if status == 2:
            raise HostDenied(data.decode("utf-8", "replace"))
        return data


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        chunk = sock.recv(min(size - len(out), 1 << 20))
        if not chunk:
            raise ConnectionResetError("host closed the connection")
        out += chunk
    return bytes(out)


def _recv_frame(sock: socket.socket) -> bytes:
    (size,) = U32.unpack(_recv_exactly(sock, 4))
    return _recv_exactly(sock, size)
