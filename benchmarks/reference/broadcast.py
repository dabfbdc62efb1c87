"""WebSocket broadcast peers of the fan-out benchmark (benchmarks/realtime.py),
served like WasmKernel (hypercorn, trio worker, one worker process):

    python -m hypercorn --worker-class trio --workers 1 --bind 127.0.0.1:$PORT benchmarks.reference.broadcast:raw
    python -m hypercorn --worker-class trio --workers 1 --bind 127.0.0.1:$PORT benchmarks.reference.broadcast:starlette

Both answer the same contract as the Node.js peer (benchmarks/peers/ws-node):
`GET /hello` (readiness), WebSocket `/ws` (subscribe), `POST /publish` (the
text body is sent to every subscriber, then 200 {"subscribers": N}).

``raw``: a bare ASGI app awaiting each subscriber's `websocket.send` in turn
(the baseline of issue 13's figures). ``starlette``: Starlette's
`WebSocketRoute`, subscribers kept in a set, `send_text` to each in turn (the
broadcast of Starlette's and FastAPI's documentation).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_raw_subscribers: set[Send] = set()


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def _raw_publish(receive: Receive, send: Send) -> None:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    text = b"".join(chunks).decode()
    sent = 0
    for subscriber in list(_raw_subscribers):
        try:
            await subscriber({"type": "websocket.send", "text": text})
            sent += 1
        except Exception:  # a subscriber that went away is dropped, the others still get the message
            _raw_subscribers.discard(subscriber)
    await _respond(send, 200, json.dumps({"subscribers": sent}).encode(), b"application/json")


async def _raw_subscribe(receive: Receive, send: Send) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    _raw_subscribers.add(send)
    try:
        while (await receive())["type"] != "websocket.disconnect":
            pass
    finally:
        _raw_subscribers.discard(send)


async def raw(scope: Scope, receive: Receive, send: Send) -> None:
    """The bare ASGI broadcast app."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "websocket" and scope["path"] == "/ws":
        await _raw_subscribe(receive, send)
    elif scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
    elif scope["path"] == "/publish" and scope["method"] == "POST":
        await _raw_publish(receive, send)
    elif scope["path"] == "/hello":
        await _respond(send, 200, b"Hello, world!", b"text/plain; charset=utf-8")
    else:
        await _respond(send, 404, b"not found", b"text/plain")


_clients: set[WebSocket] = set()


async def _subscribe(websocket: WebSocket) -> None:
    await websocket.accept()
    _clients.add(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        _clients.discard(websocket)


async def _publish(request: Request) -> JSONResponse:
    text = (await request.body()).decode()
    sent = 0
    for websocket in list(_clients):
        try:
            await websocket.send_text(text)
            sent += 1
        except Exception:  # gone: dropped, the others still get the message
            _clients.discard(websocket)
    return JSONResponse({"subscribers": sent})


async def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")


starlette = Starlette(routes=[Route("/hello", _hello), Route("/publish", _publish, methods=["POST"]), WebSocketRoute("/ws", _subscribe)])
