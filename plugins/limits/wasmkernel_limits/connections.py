"""Limits of long-lived responses: WebSocket connections (with their message
size, idle time and unread messages) and streamed responses (Server-Sent
Events, long downloads), counted per client and in total."""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import attrs

from wasmkernel import Connection, Response, StreamingResponse, TooManyRequests, WebSocket, WebSocketHandler


@attrs.define
class OpenCounts:
    """How many `kind` (e.g. "WebSocket connections") are open, per client
    and in total; `take` refuses one over a limit with 429. Limits of 0 mean
    unlimited."""

    kind: str
    per_client: int
    total: int
    open: Counter[str] = attrs.field(factory=Counter)

    def take(self, client: str) -> None:
        if self.total and sum(self.open.values()) >= self.total:
            raise TooManyRequests(f"Too many {self.kind} ({self.total} open)", headers={"Retry-After": "5"})
        if self.per_client and self.open[client] >= self.per_client:
            raise TooManyRequests(f"Too many {self.kind} from this client ({self.per_client} open)", headers={"Retry-After": "5"})
        self.open[client] += 1

    def release(self, client: str) -> None:
        self.open[client] -= 1
        if not self.open[client]:
            del self.open[client]


def client_of(connection: Connection) -> str:
    return connection.client_host or "unknown"


@attrs.define
class ConnectionLimits:
    """WebSocket routes: connections per client and in total (see
    `OpenCounts`), message size, idle time (`idle_seconds` of 0: none) and
    unread messages."""

    counts: OpenCounts
    idle_seconds: float
    queue_size: int

    def wrap(self, next_handler: WebSocketHandler, body_limit: int) -> WebSocketHandler:
        async def handler(request: WebSocket) -> Response:
            client = client_of(request)
            self.counts.take(client)
            request.max_body_size = body_limit
            request.queue_size = self.queue_size
            request.idle_timeout = self.idle_seconds or None
            try:
                return await next_handler(request)
            finally:
                self.counts.release(client)

        return handler


async def _nowhere(message: Any) -> None:
    """Where a refused stream is sent, without its body (to release what it holds)."""


async def hold_stream(counts: OpenCounts, connection: Connection, response: StreamingResponse) -> None:
    """Count `response` as one of its client's open streams until it has been
    sent, however that ends (or, should an outer middleware drop it unsent,
    until it is garbage). Over a limit the stream is sent nowhere without its
    body, so that it releases what it holds (a subscription, say), and 429 is
    raised instead."""
    client = client_of(connection)
    try:
        counts.take(client)
    except TooManyRequests:
        await response.send(_nowhere, include_body=False)
        raise
    release = weakref.finalize(response, counts.release, client)  # runs once, whichever comes first
    original = response.send

    async def send_then_release(send: Callable[[MutableMapping[str, Any]], Awaitable[None]], *, include_body: bool = True) -> int:
        try:
            return await original(send, include_body=include_body)
        finally:
            release()

    # The kernel sends what the chain returned: the count ends with that send.
    response.send = send_then_release  # type: ignore[method-assign]
