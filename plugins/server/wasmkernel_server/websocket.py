"""hypercorn's WebSocket stream, over HTTP/1.1 and HTTP/2 (installed by
`wasmkernel_server.patches`), with three changes:

- **Data before the handshake is answered** (a client may send its first
  frames in the same packet as the handshake) is kept, up to
  `EARLY_DATA_LIMIT` bytes, and handed to the connection once the
  application accepts, in order; dropped if the application refuses. In
  hypercorn it was answered 400 while the application could be accepting at
  the same moment: on HTTP/1.1 the two answers collide in h11, whose error
  ended the server. Beyond the limit the handshake is refused: 400 if no
  answer has begun, else the connection is closed; the application hears a
  disconnect either way.
- **No permessage-deflate** (RFC 7692): the ``Sec-WebSocket-Extensions``
  offer is not taken up, so every frame is read at its wire size and the
  message limits bound memory. (wsproto inflates a compressed frame without
  bound before any size check: a 509 KiB frame became hundreds of MiB; each
  compressed connection also holds zlib state of its own.) A client that
  compresses anyway breaks the protocol and is disconnected, nothing inflated.
- Frames are handed to the application by one task at a time (the reader,
  or the task delivering the early data), so their order is kept.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import trio
from hypercorn.protocol.events import Body, Data, Event, Request, StreamClosed
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from hypercorn.typing import WebsocketAcceptEvent, WebsocketResponseBodyEvent

#: Bytes a client may send before its handshake is answered.
EARLY_DATA_LIMIT = 64 * 1024

_EXTENSIONS = b"sec-websocket-extensions"
_ANSWERED = (ASGIWebsocketState.RESPONSE, ASGIWebsocketState.HTTPCLOSED)


class GuardedWSStream(WSStream):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.early = bytearray()
        #: The early data went to the accepted connection: frames flow as in hypercorn.
        self.flowing = False
        #: The application answers the handshake with an HTTP response.
        self.rejecting = False
        self.inbound = trio.Lock()

    async def handle(self, event: Event) -> None:
        if isinstance(event, Request):
            headers = [(name, value) for name, value in event.headers if name.lower() != _EXTENSIONS]
            await super().handle(dataclasses.replace(event, headers=headers))
        elif not isinstance(event, (Body, Data)) or self.closed:
            await super().handle(event)
        elif self.flowing:
            async with self.inbound:
                await super().handle(event)
        elif self.state in _ANSWERED:
            pass  # the application refused the handshake
        else:
            self.early += event.data
            if len(self.early) > EARLY_DATA_LIMIT:
                await self._refuse()

    async def _accept(self, message: WebsocketAcceptEvent) -> None:
        await super()._accept(message)
        if self.closed:
            return
        self.flowing = True
        if self.early:
            self.connection.receive_data(bytes(self.early))
            self.early.clear()
            self.task_group.spawn(self._deliver_early)

    async def _deliver_early(self) -> None:
        async with self.inbound:
            await self._handle_events()

    async def _send_rejection(self, message: WebsocketResponseBodyEvent) -> None:
        self.rejecting = True
        await super()._send_rejection(message)

    async def _refuse(self) -> None:
        """Too much data before the handshake was answered: the application
        hears a disconnect, the client a 400 (or, once an answer has begun, a
        closed connection). Nothing the application sends later goes out."""
        answer = self.state is ASGIWebsocketState.HANDSHAKE and not self.rejecting
        self.closed = True
        self.early.clear()
        if self.app_put is not None:
            await self.app_put({"type": "websocket.disconnect", "code": 1009})
        if answer:
            await self._send_error_response(400)
        await self.send(StreamClosed(stream_id=self.stream_id))
