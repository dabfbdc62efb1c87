"""Starlette answering `GET /hello`, served like WasmKernel (hypercorn, trio worker).

The reference for the /hello overhead test: a mainstream ASGI framework on
the same server and event loop, so the difference is the framework itself.

    python -m hypercorn --worker-class trio --bind 127.0.0.1:$PORT benchmarks.reference.starlette_app:app
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")


app = Starlette(routes=[Route("/hello", hello)])
