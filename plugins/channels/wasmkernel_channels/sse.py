"""Server-Sent Events: the ``text/event-stream`` response of a subscription.

The stream starts with a ``retry:`` field (the client's reconnect delay),
then sends each event as ``id:``, ``event:`` and ``data:`` lines, and a
``: keep-alive`` comment after `keepalive` seconds without an event (so
proxies keep the connection and a dead client is noticed). It ends when the
client goes away (the subscription is then closed) or when the subscription
overflows (the client reconnects with ``Last-Event-ID`` and resumes from the
channel's history). It is a `wasmkernel.StreamingResponse`, so the chain's
middleware sees it like any stream (the access log writes one line when it
ends; compression leaves ``text/event-stream`` alone by default).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import trio

from wasmkernel import BadRequest, ClientDisconnected, Connection, Request, StreamingResponse
from wasmkernel_channels.broker import Event

if TYPE_CHECKING:
    from wasmkernel_channels.hub import Subscription

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MEDIA_TYPE = "text/event-stream"
KEEPALIVE = b": keep-alive\n\n"
#: A client's Last-Event-ID: at most 256 visible ASCII characters.
_EVENT_ID = re.compile(r"[\x21-\x7e]{1,256}")
#: Where the event-stream format breaks lines: CRLF, CR or LF, nothing else
#: (not U+2028, U+2029 or U+0085, which `str.splitlines` would also break on).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def format_event(event: Event) -> bytes:
    """One event in the event-stream format (a data line per line of data)."""
    lines = [f"id: {event.id}", f"event: {event.event}", *(f"data: {line}" for line in _LINE_BREAK.split(event.data))]
    return ("\n".join(lines) + "\n\n").encode()


def last_event_id(request: Connection) -> str | None:
    """The id to resume after: the ``Last-Event-ID`` header (sent by
    browsers' EventSource on reconnect) or the ``last_event_id`` query
    parameter (for a first connection); 400 if malformed."""
    value = request.headers.get("last-event-id") or request.query.get("last_event_id")
    if value is None or value == "":
        return None
    if not _EVENT_ID.fullmatch(value):
        raise BadRequest("Last-Event-ID must be 1-256 visible ASCII characters")
    return value


class EventStream(StreamingResponse):
    """The event stream of `subscription` for `request` (see the module
    docstring); `retry_ms` and `keepalive` (seconds) as described there."""

    media_type = MEDIA_TYPE

    def __init__(
        self,
        request: Request,
        subscription: Subscription,
        *,
        retry_ms: int = 2000,
        keepalive: float = 15.0,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(self._events(), headers=headers)
        # No caching, no buffering by proxies (nginx honours X-Accel-Buffering).
        self.headers.set("cache-control", "no-cache")
        self.headers.set("x-accel-buffering", "no")
        self.request = request
        self.subscription = subscription
        self.retry_ms = retry_ms
        self.keepalive = keepalive

    async def _events(self) -> AsyncIterator[bytes]:
        yield f"retry: {self.retry_ms}\n\n".encode()
        while True:
            try:
                event = await self.subscription.next_event(self.keepalive)
            except trio.EndOfChannel:
                return
            yield KEEPALIVE if event is None else format_event(event)

    async def send(self, send: Send, *, include_body: bool = True) -> int:
        """Stream until the events end or the client goes away; the
        subscription is closed either way."""
        sent = 0
        with self.subscription, contextlib.suppress(ClientDisconnected):
            async with self.request.cancelled_on_disconnect():
                sent = await super().send(send, include_body=include_body)
        return sent
