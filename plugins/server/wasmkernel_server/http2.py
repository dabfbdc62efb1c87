"""hypercorn's HTTP/2 protocol, without two errors that ended the server
(installed by `wasmkernel_server.patches`).

- hypercorn forgets a stream once its response is complete, but a client may
  go on sending the request's body (RFC 9113 §8.1 allows a response before
  the whole request): the next DATA frame looked the stream up and raised
  `KeyError`. Here such frames go to a stream that discards them (their
  flow-control window is still handed back, as for any DATA).
- PRIORITY frames for more than 1000 idle streams overflow hypercorn's
  priority tree (`priority.TooManyStreamsError`): the client is told
  ENHANCE_YOUR_CALM and its connection closed.
"""

from __future__ import annotations

from typing import Any

import h2.errors
import h2.events
from hypercorn.events import Closed
from hypercorn.protocol.events import Event
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.protocol.ws_stream import WSStream
from priority.priority import TooManyStreamsError


class _Forgotten:
    """A stream whose response is complete: what the client still sends is dropped."""

    idle = True

    async def handle(self, event: Event) -> None:
        pass


_FORGOTTEN = _Forgotten()


class _Streams(dict[int, "HTTPStream | WSStream"]):
    def __missing__(self, stream_id: int) -> Any:
        return _FORGOTTEN


class H2(H2Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.streams = _Streams()

    async def _priority_updated(self, event: h2.events.PriorityUpdated) -> None:
        try:
            await super()._priority_updated(event)
        except TooManyStreamsError:
            self.connection.close_connection(error_code=h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
            await self._flush()
            await self.send(Closed())
