"""The error boundary: the one place where what a handler raises becomes the
response the client gets. Exceptions are mapped to statuses by type (the
most specific class in the exception's MRO wins, as in Starlette's handler
lookup): `HTTPError` is its own mapping, plugins map their domain errors
(``wasmkernel_error_statuses``), anything else is a 500 with an error id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any, TypeVar

import attrs
import structlog

from wasmkernel.connection import Connection
from wasmkernel.errors import HTTPError, StartupError
from wasmkernel.http import ClientDisconnected, Request
from wasmkernel.responses import JSONResponse, Response
from wasmkernel.routing import WEBSOCKET

C = TypeVar("C", bound=Connection)

log = structlog.get_logger("wasmkernel")

#: What an exception type maps to: a status (the exception's message is the
#: detail sent to the client; its `retry_after` attribute, if set, the
#: `Retry-After` header) or a function building the `HTTPError`.
ErrorMapping = int | Callable[[Exception], HTTPError]
#: Renders an error (and, for a 500, the exception behind it) as a response.
ErrorRenderer = Callable[[Connection, HTTPError, "Exception | None"], Response]


def render_error(connection: Connection, error: HTTPError, cause: Exception | None) -> Response:
    """The kernel's error body, used when no plugin renders errors: an RFC
    9457 problem (``title``, ``status``, ``detail``; ``error_id`` for a 5xx),
    the shape the errors plugin extends."""
    body: dict[str, Any] = {"title": _phrase(error.status), "status": error.status, "detail": error.detail}
    if error.status >= 500:
        body["error_id"] = connection.id
    for key, value in error.extra.items():
        body.setdefault(key, value)
    return JSONResponse(body, status=error.status, headers=error.headers, media_type="application/problem+json")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


@attrs.define
class ErrorBoundary:
    """Exception types mapped to HTTP errors, and the renderer of errors."""

    render: ErrorRenderer = render_error
    #: Exception type → (mapping, plugin that contributed it).
    mappings: dict[type, tuple[ErrorMapping, str]] = attrs.field(factory=dict)

    def add(self, mappings: Mapping[type[Exception], ErrorMapping], plugin: str) -> None:
        for kind, mapping in mappings.items():
            if not (isinstance(kind, type) and issubclass(kind, Exception)) or issubclass(kind, HTTPError):
                raise StartupError(f"plugin '{plugin}' maps {kind!r}: map exception classes that are not HTTPErrors")
            if kind in self.mappings:
                raise StartupError(f"plugins '{self.mappings[kind][1]}' and '{plugin}' both map {kind.__qualname__}: only one may")
            self.mappings[kind] = (mapping, plugin)

    def http_error(self, exc: Exception) -> HTTPError | None:
        """The `HTTPError` `exc` maps to (by the first mapped class of its
        MRO), or None for an unexpected error."""
        if isinstance(exc, HTTPError):
            return exc
        for kind in type(exc).__mro__:
            found = self.mappings.get(kind)
            if found is not None:
                mapping = found[0]
                if not isinstance(mapping, int):
                    return mapping(exc)
                retry_after = getattr(exc, "retry_after", None)
                return HTTPError(str(exc) or None, status=mapping, headers={"Retry-After": str(retry_after)} if retry_after is not None else None)
        return None

    def status(self, exc: Exception) -> int | None:
        """The status `exc` maps to, or None for an unexpected error."""
        error = self.http_error(exc)
        return error.status if error is not None else None

    def response(self, connection: Connection, exc: Exception) -> Response:
        """The response for `exc`: its mapping rendered, or a logged 500."""
        error = self.http_error(exc)
        if error is None:
            route = connection.route.name if connection.route is not None else None
            method = connection.method if isinstance(connection, Request) else WEBSOCKET
            log.exception("request.failed", route=route, method=method, path=connection.path, error_id=connection.id)
            response = self.render(connection, HTTPError("Internal server error"), exc)
        else:
            response = self.render(connection, error, None)
        response.error = exc
        return response

    def guard(self, handler: Callable[[C], Awaitable[Response]]) -> Callable[[C], Awaitable[Response]]:
        """`handler`, with whatever it raises turned into a response (a
        `ClientDisconnected` passes: nobody is there to answer)."""
        respond = self.response

        async def guarded(connection: C) -> Response:
            try:
                return await handler(connection)
            except ClientDisconnected:
                raise
            except Exception as exc:
                return respond(connection, exc)

        return guarded
