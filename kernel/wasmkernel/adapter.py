"""The ASGI adapter: an `Application` is an ASGI 3 callable (`serve`) for
``http``, ``websocket`` and ``lifespan`` scopes (the entry point serving the
default registry is `wasmkernel.asgi:app`)."""

from __future__ import annotations

import secrets
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

import structlog
import trio

from wasmkernel.assembly import ROUTING_ERROR
from wasmkernel.connection import Connection, Receive
from wasmkernel.errors import HTTPError, MethodNotAllowed, NotFound
from wasmkernel.http import ClientDisconnected, Request
from wasmkernel.responses import GONE, InvalidResponse, Send
from wasmkernel.routing import WEBSOCKET, MatchKind, RouteMatch
from wasmkernel.websocket import WebSocket

if TYPE_CHECKING:
    from wasmkernel.app import Application

Scope = MutableMapping[str, Any]
log = structlog.get_logger("wasmkernel")


async def serve(app: Application, scope: Scope, receive: Receive, send: Send) -> None:
    """`Application.__call__`."""
    if scope["type"] == "http":
        request = Request(scope, receive, id=secrets.token_hex(8), nursery=app._nursery)
        try:
            await _handle(app, request, app.router.match(request.method, request.path), send)
        finally:
            request.close()
    elif scope["type"] == "websocket":
        await _websocket(app, scope, receive, send)
    elif scope["type"] == "lifespan":
        await _lifespan(app, receive, send)


async def _lifespan(app: Application, receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] != "lifespan.startup":
        return
    async with trio.open_nursery() as nursery:
        try:
            await app.startup(nursery)
        except Exception as exc:
            log.error("app.startup_failed", error=str(exc))
            app.startup_error = str(exc)
            await app.shutdown()
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            nursery.cancel_scope.cancel()
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await app.shutdown()
        nursery.cancel_scope.cancel()
    await send({"type": "lifespan.shutdown.complete"})


async def _websocket(app: Application, scope: Scope, receive: Receive, send: Send) -> None:
    """The chain runs around the whole connection, whose tasks live in this
    nursery (`WebSocket.nursery`)."""
    async with trio.open_nursery() as nursery:
        ws = WebSocket(scope, receive, id=secrets.token_hex(8), asgi_send=send, nursery=nursery)
        match = app.router.match(WEBSOCKET, ws.path)
        await _handle(app, ws, match if match.kind is not MatchKind.METHOD_NOT_ALLOWED else RouteMatch(MatchKind.NOT_FOUND), send)


async def _handle(app: Application, connection: Connection, match: RouteMatch, send: Send) -> None:
    if match.kind is MatchKind.FOUND and match.route is not None:
        connection.route = match.route
        connection.path_params = dict(match.params)
        if match.route.max_body_size is not None:
            connection.max_body_size = match.route.max_body_size
        handler = app.chains[match.route]
    else:
        not_found = match.kind is not MatchKind.METHOD_NOT_ALLOWED
        connection.stash[ROUTING_ERROR] = NotFound("No route matches this path") if not_found else MethodNotAllowed(match.allowed)
        handler = app.websocket_fallback if isinstance(connection, WebSocket) else app.fallback
    # Every log line of this request carries its id (rebound by the
    # request-id plugin when the client sent one).
    tokens = structlog.contextvars.bind_contextvars(request_id=connection.id)
    try:
        await _respond(app, connection, handler, send)
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


async def _respond(app: Application, connection: Connection, handler: Any, send: Send) -> None:
    """Send the chain's response. No send failure reaches the server (which
    would answer again on a broken stream): each is logged once, here."""
    try:
        response = await handler(connection)  # a guarded chain: it raises nothing else
    except ClientDisconnected:
        return
    if isinstance(connection, WebSocket):
        send = await connection.finish(response)
        if connection.accepted:
            return  # the session is over: its 101 placeholder is not sent
    include_body = not isinstance(connection, Request) or connection.method != "HEAD"
    try:
        try:
            await response.send(send, include_body=include_body)
        except InvalidResponse as exc:
            # Refused before anything went out: the server never sees it.
            log.error("response.invalid", error_id=connection.id, path=connection.path, reason=str(exc))
            await app.boundary.render(connection, HTTPError("Internal server error"), None).send(send, include_body=include_body)
    except GONE as exc:
        # The connection went away, or the server is already answering a
        # malformed request on it (hypercorn's own 400): nothing to send.
        log.info("response.not_sent", reason=type(exc).__name__)
    except Exception as exc:
        # A streaming body failed after its headers went out: the response is
        # cut off. A mapped (expected) error, such as a module's broken body,
        # is no crash: one warning, no traceback.
        if app.boundary.http_error(exc) is None:
            log.exception("response.send_failed", error_id=connection.id, path=connection.path)
        else:
            log.warning("response.cut_off", error_id=connection.id, path=connection.path, error=type(exc).__name__, reason=str(exc))
