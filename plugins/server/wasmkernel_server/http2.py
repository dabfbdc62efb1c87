"""hypercorn's HTTP/2 protocol, without the `KeyError` that ended the server
(installed by `wasmkernel_server.patches`).

hypercorn forgets a stream once its response is complete, but a client may
go on sending the request's body (RFC 9113 §8.1 allows a response before the
whole request): the next DATA frame looked the stream up and raised
`KeyError`. Here such frames go to a stream that discards them (their
flow-control window is still handed back, as for any DATA).
"""

from __future__ import annotations

from typing import Any

from hypercorn.protocol.events import Event
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.protocol.ws_stream import WSStream


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
