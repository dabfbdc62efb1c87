"""Serving a subscription over a WebSocket: one text message per event (the
event's data: its JSON text), until either side ends.

Messages the client sends are read and ignored (the stream is one-way), so
the kernel's limits still apply to them: a message over the size limit
closes the connection 1009. Events go to the connection's bounded send queue
without waiting (`WebSocket.send_nowait`): a client that stops reading
stalls only its own sender, and when its queue overflows the kernel closes it
1013 (so does an overflow of its subscription).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import trio

from kernel import WebSocket
from wasmkernel_channels.sse import single_error

if TYPE_CHECKING:
    from wasmkernel_channels.hub import Subscription

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

TRY_AGAIN = 1013


async def serve_subscription(ws: WebSocket, subscription: Subscription) -> None:
    """Send `subscription`'s events to the accepted `ws` until the client
    leaves or the subscription ends; the subscription is closed either way."""
    with subscription:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_ignore_incoming, ws, nursery.cancel_scope)
                async for event in subscription:
                    if not ws.send_nowait(event.data):
                        break  # closed, or its send queue overflowed (the kernel closed it 1013)
                if subscription.overflowed:
                    await ws.close(TRY_AGAIN, "too slow: the event queue overflowed")
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise single_error(group) from None


async def _ignore_incoming(ws: WebSocket, scope: trio.CancelScope) -> None:
    async for _ in ws:
        pass
    scope.cancel()
