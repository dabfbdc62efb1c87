"""WebSocket connections (the ASGI ``websocket`` scope).

A `WebSocket` is a `Connection` like a `Request` (the WebSocket middleware
of the chain sees its handshake), without a body: a session, whose
`session_state` goes CONNECTING → OPEN → CLOSED, or CONNECTING → REFUSED. Sends go straight to the server, so a slow client
makes only its own sender wait; a task beside the endpoint reads into a
bounded inbox, so a client leaving is noticed even by an endpoint that only
sends. The session ends, with these close codes, when the endpoint returns
(1000), raises (1011; 1008 for an error the boundary maps below 500) or calls `close`;
when another task calls `close_nowait`; when the client leaves (its code:
reads raise `WebSocketDisconnect`, iteration ends, `wait_closed` returns,
sends raise); on a message over `max_body_size` bytes (1009), more than
`queue_size` unread messages (1008), or `idle_timeout` seconds without a
message either way (1000).

An endpoint that never reads sets `discard_incoming` before `accept` and
awaits `wait_closed()`, which reads and discards in its own task (one task
less per connection). `nursery` runs tasks that may outlive the endpoint (a
fan-out sender, say) until the connection ends.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import attrs
import trio

from wasmkernel.connection import Connection
from wasmkernel.errors import BadRequest, Forbidden
from wasmkernel.jsonio import dump_json, off_loop, parse_json
from wasmkernel.responses import GONE, Response, Send

#: The close codes the kernel uses (RFC 6455 §7.4.1).
NORMAL, GOING_AWAY, LOST, POLICY, TOO_BIG, INTERNAL = 1000, 1001, 1006, 1008, 1009, 1011


class SessionState(enum.Enum):
    CONNECTING = "connecting"  # the handshake is not answered yet
    OPEN = "open"  # accepted
    CLOSED = "closed"  # was open, is over
    REFUSED = "refused"  # the handshake was refused, or the client left before it was answered


class WebSocketDisconnect(Exception):
    """The session is over: the client left or the connection was closed."""

    def __init__(self, code: int = NORMAL, reason: str = "") -> None:
        super().__init__(f"WebSocket closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


@attrs.define(slots=True, eq=False)
class WebSocket(Connection):
    """One WebSocket connection (see the module docstring).

    Middleware (the limits plugin) sets `max_body_size` (per message),
    `idle_timeout` (seconds, None for none) and `queue_size`. `close_code` is
    None until the session ends; it, `close_reason`, `messages_in` and
    `messages_out` are for access logs and metrics.
    """

    asgi_send: Send = attrs.field(kw_only=True, repr=False)
    idle_timeout: float | None = None
    queue_size: int = 256
    discard_incoming: bool = False
    session_state: SessionState = SessionState.CONNECTING
    subprotocol: str | None = None
    messages_in: int = 0
    messages_out: int = 0
    close_code: int | None = None
    close_reason: str = ""
    nursery: trio.Nursery = attrs.field(kw_only=True, repr=False)
    #: Only while the session is open, and without `discard_incoming`.
    _inbox: trio.MemorySendChannel[str | bytes] | None = attrs.field(default=None, repr=False)
    _unread: trio.MemoryReceiveChannel[str | bytes] | None = attrs.field(default=None, repr=False)
    _reader: trio.CancelScope = attrs.field(factory=trio.CancelScope, repr=False)
    _closed: trio.Event = attrs.field(factory=trio.Event, repr=False)
    _active: float = 0.0
    _read_inline: bool = False

    @property
    def accepted(self) -> bool:
        """Whether the handshake was accepted (the session is or was open)."""
        return self.session_state in (SessionState.OPEN, SessionState.CLOSED)

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return [str(p) for p in self.scope.get("subprotocols", ())]

    async def accept(self, subprotocol: str | None = None, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Complete the handshake (choosing one of `subprotocols`, if any) and
        start reading (see the module docstring)."""
        if self.session_state is not SessionState.CONNECTING:
            raise RuntimeError(f"accept() on a WebSocket {self.session_state.value}")
        message = await self.receive()
        if message["type"] != "websocket.connect":
            code = int(message.get("code", LOST))
            self._end(code, "", frame=False)
            raise WebSocketDisconnect(code)
        raw_headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        await self.asgi_send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": raw_headers})
        self.subprotocol, self.session_state = subprotocol, SessionState.OPEN
        self._active = trio.current_time()
        self._read_inline = self.discard_incoming
        if not self.discard_incoming:
            self._inbox, self._unread = trio.open_memory_channel[str | bytes](self.queue_size)
            self.nursery.start_soon(self._read_loop)

    async def receive_message(self) -> str | bytes:
        """The next message (text or bytes); `WebSocketDisconnect` once closed."""
        if self._unread is None:
            raise RuntimeError("accept() the WebSocket first (and without discard_incoming)")
        try:
            return await self._unread.receive()
        except trio.EndOfChannel:
            raise WebSocketDisconnect(self.close_code or NORMAL, self.close_reason) from None

    async def receive_text(self) -> str:
        message = await self.receive_message()
        if not isinstance(message, str):
            await self.close(POLICY, "expected a text message")
            raise WebSocketDisconnect(POLICY, "expected a text message")
        return message

    async def receive_bytes(self) -> bytes:
        message = await self.receive_message()
        return message if isinstance(message, bytes) else message.encode()

    async def receive_json(self) -> Any:
        """The next message parsed as JSON (the guarantees of `wasmkernel.jsonio`);
        malformed JSON closes with 1008."""
        message = await self.receive_message()
        raw = message.encode("utf-8", "surrogatepass") if isinstance(message, str) else message
        try:
            return await off_loop(len(raw), functools.partial(parse_json, raw))
        except BadRequest:
            await self.close(POLICY, "malformed JSON")
            raise WebSocketDisconnect(POLICY, "malformed JSON") from None

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        while True:
            try:
                yield await self.receive_message()
            except WebSocketDisconnect:
                return

    async def wait_closed(self) -> None:
        """Return once the session is over, whoever ended it (reading and
        discarding the client's messages meanwhile, see the module docstring)."""
        if self._read_inline:
            self._read_inline = False
            await self._read_loop()
        await self._closed.wait()

    async def send(self, data: str | bytes) -> None:
        """Send a message, waiting while the client is slow (this sender
        only); `WebSocketDisconnect` once the session is over."""
        if self.session_state is SessionState.CONNECTING:
            raise RuntimeError("accept() the WebSocket before sending")
        if self.close_code is not None:
            raise WebSocketDisconnect(self.close_code, self.close_reason)
        self.messages_out += 1
        self._active = trio.current_time()
        try:
            await self.asgi_send({"type": "websocket.send", "text": data} if isinstance(data, str) else {"type": "websocket.send", "bytes": bytes(data)})
        except GONE:
            self._end(LOST, "connection lost", frame=False)
            raise WebSocketDisconnect(LOST, "connection lost") from None

    async def send_text(self, data: str) -> None:
        await self.send(data)

    async def send_bytes(self, data: bytes) -> None:
        await self.send(data)

    async def send_json(self, data: Any) -> None:
        await self.send(dump_json(data).decode())

    async def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Close the session (the close frame follows a message being sent);
        before `accept` it refuses the handshake (hypercorn answers 403)."""
        if self.session_state is SessionState.CONNECTING:
            self._end(code, reason)
            await self.asgi_send({"type": "websocket.close", "code": code, "reason": reason})
        self.close_nowait(code, reason)
        await trio.lowlevel.checkpoint()

    def close_nowait(self, code: int = NORMAL, reason: str = "") -> None:
        """Close an accepted session from any task, at once: reads and
        `wait_closed` return, sends raise. (A handshake not accepted is left to
        the chain to refuse.)"""
        if self.session_state is SessionState.OPEN:
            self._end(code, reason)

    def _end(self, code: int, reason: str, *, frame: bool = True) -> None:
        """End the session, once; the client gets a close frame unless
        `frame` is false (it is gone)."""
        if self.close_code is not None:
            return
        was_open = self.session_state is SessionState.OPEN
        self.session_state = SessionState.CLOSED if was_open else SessionState.REFUSED
        self.close_code, self.close_reason = code, reason
        self._closed.set()
        self._reader.cancel()
        if self._inbox is not None:
            self._inbox.close()
        if frame and was_open:
            self.nursery.start_soon(self._send_close, code, reason)

    async def _send_close(self, code: int, reason: str) -> None:
        with contextlib.suppress(*GONE):
            await self.asgi_send({"type": "websocket.close", "code": code, "reason": reason})

    async def finish(self, response: Response) -> Send:
        """Called by the kernel with the chain's response: an unaccepted
        handshake is refused with it (the ASGI denial response where the server
        supports it, else a close, which hypercorn answers with 403). Returns
        the `send` the kernel sends `response` with."""
        if self.session_state is SessionState.CONNECTING:  # `websocket_handler` ends accepted sessions
            if "websocket.http.response" in self.scope.get("extensions", {}):
                self._end(POLICY, "handshake refused")
                return self._send_denial
            await self.close(POLICY, "handshake refused")
        return _discard

    async def _send_denial(self, message: MutableMapping[str, Any]) -> None:
        await self.asgi_send({**message, "type": "websocket." + message["type"]})

    async def _read_loop(self) -> None:
        with self._reader:
            while self.close_code is None:
                idle = self.idle_timeout or math.inf
                with trio.move_on_at(self._active + idle) as scope:
                    message = await self.receive()
                if scope.cancelled_caught:
                    if trio.current_time() >= self._active + idle:
                        self._end(NORMAL, "idle timeout")
                    continue
                if message["type"] == "websocket.disconnect":
                    self._end(int(message.get("code", 1005)), str(message.get("reason") or ""), frame=False)
                    return
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                size = len(data) if isinstance(data, bytes) or len(data) * 4 <= self.max_body_size else len(data.encode())
                if size > self.max_body_size:
                    self._end(TOO_BIG, f"message over {self.max_body_size} bytes")
                    return
                self.messages_in += 1
                self._active = trio.current_time()
                if self._inbox is not None:
                    try:
                        self._inbox.send_nowait(data)
                    except trio.WouldBlock:
                        self._end(POLICY, "too many unread messages")


async def _discard(message: MutableMapping[str, Any]) -> None:
    """The `send` of a response that has nothing left to send."""


def websocket_handler(
    endpoint: Callable[[WebSocket], Awaitable[None]], status_of: Callable[[Exception], int | None]
) -> Callable[[WebSocket], Awaitable[Response]]:
    """Adapt a WebSocket endpoint into the innermost handler of its chain: it
    ends the session as the module docstring says (1001 when cancelled) and
    returns a 101 placeholder response. An endpoint that returns without
    accepting or closing refuses the handshake (403); an error before
    `accept` is the chain's. `status_of` is the error boundary's status for an
    exception (None: unexpected)."""

    async def handler(ws: WebSocket) -> Response:
        try:
            await endpoint(ws)
        except WebSocketDisconnect:
            pass
        except trio.Cancelled:
            ws.close_nowait(GOING_AWAY, "server shutting down")
            raise
        except Exception as exc:
            status = status_of(exc)
            ws.close_nowait(POLICY if status is not None and status < 500 else INTERNAL, str(exc)[:120] if status is not None else "internal error")
            raise
        except BaseException:
            ws.close_nowait(INTERNAL, "internal error")
            raise
        ws.close_nowait(NORMAL, "")
        if ws.close_code is None:
            raise Forbidden("The endpoint refused the WebSocket handshake")
        return Response(status=101 if ws.accepted else 403)

    return handler
