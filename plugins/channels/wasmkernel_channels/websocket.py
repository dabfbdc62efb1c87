"""Serving a channel over a WebSocket: one text message per event (the
event's data: its JSON text), until either side ends.

The direct fan-out path: a `WebSocketSubscriber` writes each event straight
into the connection's bounded send queue (`WebSocket.send_nowait`), so a
delivery costs one queue put and the connection's own sender task, with no
task of its own in between. A client that stops reading stalls only that
sender; when its queue overflows the channels' `overflow` policy applies:
"close" closes it 1013 (counted as an overflow close), "drop" drops the
event for it. Messages the client sends are discarded unread
(`WebSocket.discard_incoming`), and the kernel's limits still apply to
them: a message over the size limit closes the connection 1009.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from kernel import WebSocket

if TYPE_CHECKING:
    from wasmkernel_channels.broker import Event


class WebSocketSubscriber:
    """One WebSocket subscribed to one channel (see the module docstring)."""

    def __init__(self, channel: str, ws: WebSocket) -> None:
        self.channel = channel
        self.ws = ws
        self.dropped = 0
        self.overflowed = False

    def _offer(self, event: Event, policy: Literal["close", "drop"]) -> bool:
        """Queue `event` on the connection without waiting; False if it was
        not queued (dropped, or the connection is or was just closed)."""
        was_open = self.ws.close_code is None
        if self.ws.send_nowait(event.data, policy):
            return True
        if self.ws.close_code is None:
            self.dropped += 1
        else:
            self.overflowed = was_open
        return False
