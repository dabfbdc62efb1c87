"""hypercorn's HTTP/1.1 protocol with two changes (installed by `wasmkernel_server.patches`).

- ``100 Continue`` once the application reads the body, not before: hypercorn
  answers ``Expect: 100-continue`` as soon as it has parsed a request head, so
  a client that declares an oversized body is invited to send it and only
  then gets the 413. Here the ``100 Continue`` goes out when the application
  first asks for the body (RFC 9110 §10.1.1): an application that answers
  first (413, 401, 404 …) never invites the body.
- Behind a reverse proxy (`H11.refuse_h2c`), ``Upgrade: h2c`` is ignored and
  the request is answered over HTTP/1.1 (RFC 9110 §7.8 lets a server ignore
  an upgrade): an h2c tunnel through a proxy that forwards ``Upgrade`` would
  carry requests the proxy never sees (its access rules, its rate limits).
"""

from __future__ import annotations

from typing import Any

import h11
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import AppWrapper, ASGIReceiveEvent, Scope


class _Connection(h11.Connection):
    """An h11 connection whose waiting client hypercorn's own loop never sees."""

    they_are_waiting_for_100_continue = False

    @property
    def client_waits(self) -> bool:
        return bool(h11.Connection.they_are_waiting_for_100_continue.fget(self))  # type: ignore[attr-defined]


class H11(H11Protocol):
    #: Set by `wasmkernel_server.patches.install` (``wasmkernel run --behind-proxy``).
    refuse_h2c = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection = _Connection(h11.SERVER, max_incomplete_event_size=self.config.h11_max_incomplete_size)
        self.app = _ReceiveContinues(self.app, self)

    async def _check_protocol(self, event: h11.Request) -> None:
        if self.refuse_h2c and any(name.lower() == b"upgrade" and value.strip().lower() == b"h2c" for name, value in event.headers):
            return  # answered over HTTP/1.1
        await super()._check_protocol(event)


class _ReceiveContinues:
    def __init__(self, app: AppWrapper, protocol: H11) -> None:
        self.app, self.protocol = app, protocol

    async def __call__(self, scope: Scope, receive: Any, send: Any, sync_spawn: Any, call_soon: Any) -> None:
        async def receive_body() -> ASGIReceiveEvent:
            connection = self.protocol.connection
            if isinstance(connection, _Connection) and connection.client_waits:
                headers = self.protocol.config.response_headers("h11")
                await self.protocol._send_h11_event(h11.InformationalResponse(status_code=100, headers=headers))
            return await receive()  # type: ignore[no-any-return]

        await self.app(scope, receive_body, send, sync_spawn, call_soon)
