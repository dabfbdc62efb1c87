"""How wasmer's worker processes reach the main process's `HostAPI`: a Unix socket.

The main process serves `HostAPI.call` on a socket in a private directory
(mode 0700); each worker keeps one blocking connection and sends one request
at a time (its guest call waits for the answer). Frames are length-prefixed,
with the HTTP wire format's fields (no pickle):

    request : u32 size | field(module) field(op) u32 n x field(arg)
    response: u32 size | u8 status (0 ok, 1 failure, 2 denied) u32 code field(data or message)

The server awaits `HostAPI.acall` in the main process's event loop: memory
operations inline, Redis and HTTP awaited, SQLite in a thread of the host
API's limiter. It never dies of what a call or a peer does: any exception of
an operation fails that call (`UNAVAILABLE`, logged), a malformed frame
closes that connection, and an operation is cancelled when its worker goes
away (a timeout or a client that left killed it). The loader supervises it
(`wasmkernel_health.Supervisor`): should it end anyway, it is restarted and
`/readyz` says so meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import struct
import tempfile
from collections.abc import Awaitable, Sequence
from pathlib import Path

import structlog
import trio

from wasmkernel_wasm.hostapi import UNAVAILABLE, HostDenied, HostFailure
from wasmkernel_wasm.hostapi.capabilities import HostAPI
from wasmkernel_wasm.hostapi.client import MAX_FRAME, REPLY, U32, decode_request

log = structlog.get_logger("wasmkernel.wasm.host")


async def answer(host: HostAPI, module: str, op: str, args: Sequence[bytes]) -> bytes:
    """Run one operation and frame its result (never raises for guest-caused failures)."""
    try:
        status, code, data = 0, 0, await host.acall(module, op, args)
    except HostFailure as exc:
        status, code, data = 1, exc.code, exc.message.encode()
    except HostDenied as exc:
        status, code, data = 2, 0, str(exc).encode()
    except Exception:  # HostAPI contains its own; this is the last line
        log.exception("wasm.host_call_crashed", module=module, op=op)
        status, code, data = 1, UNAVAILABLE, b"the host could not complete this call"
    body = REPLY.pack(status, code) + U32.pack(len(data)) + data
    return U32.pack(len(body)) + body


class Server:
    """The main process's side: `serve` runs until cancelled."""

    def __init__(self, host: HostAPI) -> None:
        self.host = host
        self._dir = Path(tempfile.gettempdir()) / f"wasmkernel-host-{os.getpid()}-{secrets.token_hex(4)}"
        self.path = str(self._dir / "host.sock")

    async def serve(self, task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED) -> None:
        self._dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self._dir, 0o700)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # left by a previous run of this server (restarted)
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
        try:
            async with stream:
                await self._requests(stream)
        except Exception:  # whatever went wrong ends this connection only (its worker reconnects)
            log.exception("wasm.host_rpc_connection_failed")

    async def _requests(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()
        while True:
            body = await _read_frame(stream, buffer)
            if body is None:
                return
            try:
                module, op, args = decode_request(body)
            except (ValueError, struct.error, UnicodeDecodeError):
                log.error("wasm.host_rpc_malformed", bytes=len(body))
                return
            reply = await _unless_peer_leaves(stream, answer(self.host, module, op, args))
            if reply is None:
                return
            try:
                await stream.send_all(reply)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return


async def _unless_peer_leaves(stream: trio.SocketStream, operation: Awaitable[bytes]) -> bytes | None:
    """`operation`'s result, or None (it cancelled) if the worker closes the
    connection first: it waits for this answer, so anything it sends or a
    close means its call is over (killed at a timeout or for a client that left)."""
    result: list[bytes] = []
    async with trio.open_nursery() as nursery:

        async def run() -> None:
            result.append(await operation)
            nursery.cancel_scope.cancel()

        async def watch() -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.receive_some(1)
            nursery.cancel_scope.cancel()

        nursery.start_soon(run)
        nursery.start_soon(watch)
    return result[0] if result else None


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
