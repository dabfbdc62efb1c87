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
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path

import structlog
import trio

from wasmkernel_wasm.hostapi import HostDenied, HostFailure
from wasmkernel_wasm.hostapi.client import MAX_FRAME, REPLY, U32, decode_request
from wasmkernel_wasm.hostapi.host import HostAPI

log = structlog.get_logger("wasmkernel.wasm.host")


async def answer(host: HostAPI, module: str, op: str, args: Sequence[bytes]) -> bytes:
    """Run one operation and frame its result (never raises for guest-caused failures)."""
    try:
        status, code, data = 0, 0, await host.acall(module, op, args)
    except HostFailure as exc:
        status, code, data = 1, exc.code, exc.message.encode()
    except HostDenied as exc:
        status, code, data = 2, 0, str(exc).encode()
    body = REPLY.pack(status, code) + U32.pack(len(data)) + data
    return U32.pack(len(body)) + body


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
            (size,) = U32.unpack_from(buffer, 0)
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
