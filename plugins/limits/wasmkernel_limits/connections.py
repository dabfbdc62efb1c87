"""Limits of WebSocket routes: concurrent connections per client and in
total, message size, idle time and unread messages."""

from __future__ import annotations

from collections import Counter

import attrs

from wasmkernel import Response, TooManyRequests, WebSocket, WebSocketHandler


@attrs.define
class ConnectionLimits:
    """Counts open connections; refuses a handshake over a limit with 429.

    `per_client` and `total` of 0 mean unlimited; `idle_seconds` of 0 means
    no idle timeout."""

    per_client: int
    total: int
    idle_seconds: float
    queue_size: int
    open: Counter[str] = attrs.field(factory=Counter)

    def wrap(self, next_handler: WebSocketHandler, body_limit: int) -> WebSocketHandler:
        async def handler(request: WebSocket) -> Response:
            key = request.client_host or "unknown"
            if self.total and sum(self.open.values()) >= self.total:
                raise TooManyRequests(f"Too many WebSocket connections ({self.total} open)", headers={"Retry-After": "5"})
            if self.per_client and self.open[key] >= self.per_client:
                raise TooManyRequests(f"Too many WebSocket connections from this client ({self.per_client} open)", headers={"Retry-After": "5"})
            request.max_body_size = body_limit
            request.queue_size = self.queue_size
            request.idle_timeout = self.idle_seconds or None
            self.open[key] += 1
            try:
                return await next_handler(request)
            finally:
                self.open[key] -= 1
                if not self.open[key]:
                    del self.open[key]

        return handler
