"""How wasmer's worker processes reach the main process's `HostAPI`: a Unix socket.

The main process serves `HostAPI.call` on a socket in a private directory
(mode 0700); each worker keeps one blocking connection and sends one request
at a time (its guest call waits for the answer). Frames are length-prefixed,
with the HTTP wire format's fields (no pickle):

    request : u32 size | field(module) field(op) u32 n x field(arg)
    response: u32 size | u8 status (0 ok, 1 failure, 2 denied) u32 code field(data or message)

The server awaits `HostAPI.acall` in the main process's event loop: memory
operations inline, Redis ones awaited on the redis plugin's client, those
that may block (SQLite, outbound HTTP) in a thread.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path

import structlog
import trio

from wasmkernel_wasm.hostapi import HostDenied, HostFailure, HostFault
from wasmkernel_wasm.hostapi.host import HostAPI

log = structlog.get_logger("wasmkernel.wasm.host")
_U32 = struct.Struct("<I")
_REPLY = struct.Struct("<BI")
#: Largest frame either side accepts (an HTTP response under its cap, plus headers).
MAX_FRAME = 64 * 1024 * 1024


def _fields(parts: Sequence[bytes]) -> bytes:
    return b"".join(_U32.pack(len(part)) + part for part in parts)


def encode_request(module: str, op: str, args: Sequence[bytes]) -> bytes:
    body = _fields([module.encode(), op.encode()]) + _U32.pack(len(args)) + _fields(args)
    return _U32.pack(len(body)) + body


def decode_request(body: bytes) -> tuple[str, str, list[bytes]]:
    pos = 0

    def field() -> bytes:
        nonlocal pos
        (length,) = _U32.unpack_from(body, pos)
        pos += 4 + length
        if pos > len(body):
            raise ValueError("truncated field")
        return body[pos - length : pos]

    module, op = field().decode(), field().decode()
    (count,) = _U32.unpack_from(body, pos)
    pos += 4
    return module, op, [field() for _ in range(min(count, 8))]


async def answer(host: HostAPI, module: str, op: str, args: Sequence[bytes]) -> bytes:
    """Run one operation and frame its result (never raises for guest-caused failures)."""
    try:
        status, code, data = 0, 0, await host.acall(module, op, args)
    except HostFailure as exc:
        status, code, data = 1, exc.code, exc.message.encode()
    except HostDenied as exc:
        status, code, data = 2, 0, str(exc).encode()
    body = _REPLY.pack(status, code) + _U32.pack(len(data)) + data
    return _U32.pack(len(body)) + body


class Server:
    """The main process's side: `serve` runs until cancelled."""

    def __init__(self, host: HostAPI) -> None:
        self.host = host
        self._dir = Path(tempfile.gettempdir()) / f"wasmkernel-host-{os.getpid()}-{secrets.token_hex(4)}"
        self.path = str(self._dir / "host.sock")

    async def serve(self, task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED) -> None:
        self._dir.mkdir(mode=0o700)
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        try:
            await sock.bind(self.path)
            sock.listen(64)
            await trio.serve_listeners(self._connection, [trio.SocketListener(sock)], task_status=task_status)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
                self._dir.rmdir()

    async def _connection(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()
        async with stream:
            while True:
                body = await _read_frame(stream, buffer)
                if body is None:
                    return
                try:
                    module, op, args = decode_request(body)
                except (ValueError, struct.error, UnicodeDecodeError):
                    log.error("wasm.host_rpc_malformed", bytes=len(body))
                    return
                reply = await answer(self.host, module, op, args)
                try:
                    await stream.send_all(reply)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return


async def _read_frame(stream: trio.SocketStream, buffer: bytearray) -> bytes | None:
    while True:
        if len(buffer) >= 4:
            (size,) = _U32.unpack_from(buffer, 0)
            if size > MAX_FRAME:
                return None
            if len(buffer) >= 4 + size:
                body = bytes(buffer[4 : 4 + size])
                del buffer[: 4 + size]
                return body
        try:
            chunk = await stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        if not chunk:
            return None
        buffer += chunk


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

    def call(self, module: str, op: str, args: Sequence[bytes]) -> bytes:
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
        status, code = _REPLY.unpack_from(body, 0)
        (length,) = _U32.unpack_from(body, _REPLY.size)
        data = body[_REPLY.size + 4 : _REPLY.size + 4 + length]
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
    (size,) = _U32.unpack(_recv_exactly(sock, 4))
    return _recv_exactly(sock, size)
