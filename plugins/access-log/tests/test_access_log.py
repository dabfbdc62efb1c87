from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest
import trio
from structlog.testing import capture_logs

from wasmkernel import (
    Application,
    BadRequest,
    Handler,
    Identity,
    Middleware,
    RegistryError,
    Request,
    Response,
    Route,
    StreamingResponse,
    hookimpl,
)
from wasmkernel.testing import app_from, running


async def chunks() -> AsyncIterator[bytes]:
    for part in (b"abc", b"defg", b"h"):
        yield part


def authenticate(next_handler: Handler, route: Route | None) -> Handler:
    async def handler(request: Request) -> Response:
        if "x-user" in request.headers:
            request.identity = Identity(subject=request.headers["x-user"], scheme="test")
        return await next_handler(request)

    return handler


class Routes:
    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [
            Route("/ok", self.ok, name="ok"),
            Route("/slow", self.slow),
            Route("/stream", self.stream),
            Route("/sync-stream", self.sync_stream),
            Route("/bad", self.bad),
            Route("/crash", self.crash),
            Route("/healthz", self.ok),
        ]

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        return [Middleware("fake-auth", authenticate)]

    async def ok(self, request: Request) -> dict[str, bool]:
        return {"ok": True}

    async def slow(self, request: Request) -> str:
        await trio.sleep(0.05)
        return "done"

    async def stream(self, request: Request) -> StreamingResponse:
        return StreamingResponse(chunks(), media_type="text/plain")

    async def sync_stream(self, request: Request) -> StreamingResponse:
        return StreamingResponse([b"12", b"345"], media_type="text/plain")

    async def bad(self, request: Request) -> None:
        raise BadRequest("nope")

    async def crash(self, request: Request) -> None:
        raise RuntimeError("boom")


def make_app(**config: Any) -> Application:
    return app_from({"access-log": {"config": config}, "router": {}, "t": {}}, extra_plugins={"t": Routes()})


def access_lines(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == "request"]


async def test_one_line_per_request_with_every_field() -> None:
    with capture_logs() as logs:
        async with running(make_app()) as client:
            response = await client.get("/ok", headers={"x-user": "alice"})
    [line] = access_lines(logs)
    assert line == {
        "event": "request",
        "log_level": "info",
        "method": "GET",
        "path": "/ok",
        "route": "ok",
        "status": 200,
        "duration_ms": line["duration_ms"],
        "bytes": len(response.content),
        "request_id": line["request_id"],
        "client": "127.0.0.1",
        "subject": "alice",
    }
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] == round(line["duration_ms"], 2)
    assert len(line["request_id"]) == 16


async def test_duration_covers_the_handler() -> None:
    with capture_logs() as logs:
        async with running(make_app(level="warning")) as client:
            await client.get("/slow")
    [line] = access_lines(logs)
    assert line["duration_ms"] >= 50
    assert line["log_level"] == "warning"
    assert line["subject"] is None
    assert line["route"] == "GET /slow"


@pytest.mark.parametrize(("path", "body"), [("/stream", b"abcdefgh"), ("/sync-stream", b"12345")])
async def test_streaming_bytes_are_counted(path: str, body: bytes) -> None:
    with capture_logs() as logs:
        async with running(make_app()) as client:
            response = await client.get(path)
    assert response.content == body
    [line] = access_lines(logs)
    assert (line["status"], line["bytes"]) == (200, len(body))


async def test_head_sends_no_body_bytes() -> None:
    with capture_logs() as logs:
        async with running(make_app()) as client:
            await client.head("/ok")
            await client.head("/stream")
    assert [(line["method"], line["bytes"]) for line in access_lines(logs)] == [("HEAD", 0), ("HEAD", 0)]


async def test_errors_are_logged_with_their_final_status_and_size() -> None:
    with capture_logs() as logs:
        async with running(make_app()) as client:
            bad = await client.get("/bad")
            crash = await client.get("/crash")
            missing = await client.get("/missing")
    assert (bad.status_code, crash.status_code, missing.status_code) == (400, 500, 404)
    lines = access_lines(logs)
    # The kernel has turned each error into its response before access-log sees it.
    assert [(line["path"], line["status"], line["bytes"]) for line in lines] == [
        ("/bad", 400, len(bad.content)),
        ("/crash", 500, len(crash.content)),
        ("/missing", 404, len(missing.content)),
    ]
    assert lines[2]["route"] is None


async def test_skipped_paths_are_not_logged() -> None:
    with capture_logs() as logs:
        async with running(make_app(skip_paths=["/healthz"])) as client:
            await client.get("/healthz")
            await client.get("/ok")
    assert [line["path"] for line in access_lines(logs)] == ["/ok"]


def test_unknown_level_is_refused() -> None:
    with pytest.raises(RegistryError, match="level"):
        make_app(level="trace")
