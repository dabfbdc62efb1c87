"""In-memory plugins used by the kernel's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import trio

from wasmkernel import (
    Application,
    Handler,
    JSONResponse,
    Middleware,
    Request,
    Response,
    Route,
    StreamingResponse,
    hookimpl,
)


class Demo:
    """Routes exercising the request/response model."""

    def __init__(self) -> None:
        self.started = False
        self.stopped = False

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [
            Route("/echo", self.echo, methods=["GET", "POST"]),
            Route("/items/{item_id:int}", self.item),
            Route("/files/{rest:path}", self.file),
            Route("/ids/{value:uuid}", self.uuid_param),
            Route("/scale/{factor:float}", self.scale),
            Route("/sync", self.sync_handler),
            Route("/boom", self.boom),
            Route("/stream", self.stream),
            Route("/json", self.parse_json, methods=["POST"]),
            Route("/text", self.text),
            Route("/small", self.echo, methods=["POST"], max_body_size=10, name="small"),
        ]

    @hookimpl
    async def wasmkernel_startup(self, app: Application) -> None:
        await trio.sleep(0)
        self.started = True

    @hookimpl
    def wasmkernel_shutdown(self, app: Application) -> None:
        self.stopped = True

    async def echo(self, request: Request) -> dict[str, Any]:
        return {
            "method": request.method,
            "path": request.path,
            "query": request.query.to_dict(),
            "tags": request.query.getall("tag"),
            "x_multi": request.headers.getall("X-Multi"),
            "cookies": request.cookies,
            "client": request.client_host,
            "body": (await request.body()).decode(),
        }

    async def item(self, request: Request) -> dict[str, Any]:
        return {"item_id": request.path_params["item_id"], "type": type(request.path_params["item_id"]).__name__}

    async def file(self, request: Request) -> str:
        return str(request.path_params["rest"])

    async def uuid_param(self, request: Request) -> str:
        return str(request.path_params["value"])

    async def scale(self, request: Request) -> dict[str, float]:
        return {"factor": request.path_params["factor"]}

    def sync_handler(self, request: Request) -> dict[str, bool]:
        # Runs in a worker thread: trio.from_thread works only from there.
        trio.from_thread.check_cancelled()
        return {"thread": True}

    async def boom(self, request: Request) -> Response:
        raise RuntimeError("secret internal detail")

    async def stream(self, request: Request) -> StreamingResponse:
        async def chunks() -> Any:
            for index in range(3):
                yield f"chunk{index};".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    async def parse_json(self, request: Request) -> JSONResponse:
        return JSONResponse({"received": await request.json()}, status=201)

    async def text(self, request: Request) -> str:
        return "plain"


class Tagger:
    """A middleware that adds a header, to check ordering."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> Iterator[Middleware]:
        def wrap(next_handler: Handler, route: Route | None) -> Handler:
            async def handler(request: Request) -> Response:
                response = await next_handler(request)
                response.headers.add("x-order", self.tag)
                return response

            return handler

        yield Middleware(f"tag-{self.tag}", wrap)


class FailingStartup:
    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        async def fragile(request: Request) -> str:
            return "never"

        return [Route("/fragile", fragile)]

    @hookimpl
    async def wasmkernel_startup(self, app: Application) -> None:
        raise ConnectionError("database unreachable")
