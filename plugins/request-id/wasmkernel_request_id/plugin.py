"""The request-id plugin.

Config (`[plugins.request-id.config]`):
- `header`: the header carrying the id (default "X-Request-ID")
- `trust_incoming`: accept a well-formed id sent by the client (default true);
  false always keeps the kernel's random id (for servers facing untrusted
  clients that should not choose ids)

A well-formed incoming id is 1 to 128 characters of ``[A-Za-z0-9._-]``; anything
else is ignored and the kernel's random id is kept. The id becomes
``request.id``, is sent back in the same header (also on errors raised as
`HTTPError`) and is bound as ``request_id`` in structlog's context variables
for every line logged while the request is handled. Place this plugin first:
it must run outside the logging, access-log and errors plugins.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs
import structlog

from wasmkernel import Application, ConfiguredPlugin, Connection, Middleware, Response, Route, hookimpl

C = TypeVar("C", bound=Connection)

VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def _header_name(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not HEADER_NAME.fullmatch(value):
        raise ValueError(f"{attribute.name}: not a valid HTTP header name: {value!r}")


@attrs.frozen
class Config:
    header: str = attrs.field(default="X-Request-ID", validator=_header_name)
    trust_incoming: bool = True


class Plugin(ConfiguredPlugin[Config]):
    order = -90
    config_class = Config

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        return [Middleware("request-id", self.wrap, websocket=self.wrap)]

    def wrap(self, next_handler: Callable[[C], Awaitable[Response]], route: Route | None) -> Callable[[C], Awaitable[Response]]:
        header = self.config.header
        trust_incoming = self.config.trust_incoming

        async def handler(request: C) -> Response:
            if trust_incoming:
                incoming = request.headers.get(header)
                if incoming is not None and VALID_ID.fullmatch(incoming):
                    # The kernel bound its own id for this request's log lines.
                    request.id = incoming
                    structlog.contextvars.bind_contextvars(request_id=incoming)
            response = await next_handler(request)
            response.headers.set(header, request.id)
            return response

        return handler
