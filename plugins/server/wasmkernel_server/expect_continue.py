"""``100 Continue`` once the application reads the body, not before.

hypercorn's HTTP/1.1 protocol answers ``Expect: 100-continue`` as soon as it
has parsed a request head, before the application runs, so a client that
declares an oversized body is invited to send it and only then gets the 413.
`install` makes hypercorn send the ``100 Continue`` when the application first
asks for the body instead (RFC 9110 §10.1.1): an application that answers
first (413, 401, 404 …) never invites the body. Checked against hypercorn 0.17
and 0.18 (tests/test_server.py).
"""

from __future__ import annotations

from typing import Any

import h11
import hypercorn.protocol
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import AppWrapper, ASGIReceiveEvent, Scope


class _Connection(h11.Connection):
    """An h11 connection whose waiting client hypercorn's own loop never sees."""

    they_are_waiting_for_100_continue = False

    @property
    def client_waits(self) -> bool:
        return bool(h11.Connection.they_are_waiting_for_100_continue.fget(self))  # type: ignore[attr-defined]


class _ContinueOnRead(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection = _Connection(h11.SERVER, max_incomplete_event_size=self.config.h11_max_incomplete_size)
        self.app = _ReceiveContinues(self.app, self)


class _ReceiveContinues:
    def __init__(self, app: AppWrapper, protocol: _ContinueOnRead) -> None:
        self.app, self.protocol = app, protocol

    async def __call__(self, scope: Scope, receive: Any, send: Any, sync_spawn: Any, call_soon: Any) -> None:
        async def receive_body() -> ASGIReceiveEvent:
            connection = self.protocol.connection
            if isinstance(connection, _Connection) and connection.client_waits:
                headers = self.protocol.config.response_headers("h11")
                await self.protocol._send_h11_event(h11.InformationalResponse(status_code=100, headers=headers))
            return await receive()  # type: ignore[no-any-return]

        await self.app(scope, receive_body, send, sync_spawn, call_soon)


def install() -> None:
    """Serve HTTP/1.1 with `_ContinueOnRead` in this process (idempotent)."""
    hypercorn.protocol.H11Protocol = _ContinueOnRead  # type: ignore[attr-defined]
