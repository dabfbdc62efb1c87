from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog
import trio
import trio.testing
from structlog.testing import capture_logs
from wasmkernel_limits.ratelimit import RateLimiter

from wasmkernel import Application, Handler, Identity, Middleware, RegistryError, Request, Response, Route, StartupError, hookimpl
from wasmkernel.testing import app_from, running

TWO_MIB = b"x" * (2 * 1024 * 1024)


def authenticate(next_handler: Handler, route: Route | None) -> Handler:
    async def handler(request: Request) -> Response:
        if "x-user" in request.headers:
            request.identity = Identity(subject=request.headers["x-user"], scheme="test")
        return await next_handler(request)

    return handler


class Auth:
    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        return [Middleware("fake-auth", authenticate)]


class Routes:
    def __init__(self) -> None:
        self.slept_through = False
        self.cancelled = False

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [
            Route("/upload", self.upload, methods=["POST"]),
            Route("/upload-big", self.upload, methods=["POST"]),
            Route("/named-upload", self.upload, methods=["POST"], name="named"),
            Route("/declared-upload", self.upload, methods=["POST"], max_body_size=2000),
            Route("/sleep", self.sleep),
            Route("/ok", self.ok),
            Route("/healthz", self.ok),
        ]

    async def upload(self, request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    async def sleep(self, request: Request) -> str:
        try:
            await trio.sleep(10)
        except trio.Cancelled:
            self.cancelled = True
            raise
        self.slept_through = True
        return "woke up"

    async def ok(self, request: Request) -> dict[str, bool]:
        return {"ok": True}


def make_app(test_routes: Routes | None = None, **config: Any) -> Application:
    return app_from(
        {"auth": {"order": -35}, "limits": {"config": config}, "router": {}, "t": {}},
        extra_plugins={"auth": Auth(), "t": test_routes or Routes()},
    )


async def chunked(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 256 * 1024):
        yield body[start : start + 256 * 1024]


async def test_body_over_the_limit_is_refused() -> None:
    async with running(make_app()) as client:
        declared = await client.post("/upload", content=TWO_MIB)
        streamed = await client.post("/upload", content=chunked(TWO_MIB))
        small = await client.post("/upload", content=b"x" * 1000)
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert declared.json()["detail"] == "Request body exceeds 1048576 bytes"
    assert small.json() == {"received": 1000}


async def test_per_route_body_limits_by_method_path_and_name() -> None:
    overrides = {"POST /upload-big": {"max_body_bytes": 4 * 1024 * 1024}, "named": {"max_body_bytes": 10}}
    async with running(make_app(max_body_bytes=1000, routes=overrides)) as client:
        big = await client.post("/upload-big", content=TWO_MIB)
        default = await client.post("/upload", content=b"x" * 1001)
        named = await client.post("/named-upload", content=b"x" * 11)
    assert big.json() == {"received": len(TWO_MIB)}
    assert default.status_code == 413
    assert named.status_code == 413


async def test_a_route_declared_body_cap_beats_the_default_and_loses_to_an_override() -> None:
    async with running(make_app(max_body_bytes=1000)) as client:
        within = await client.post("/declared-upload", content=b"x" * 1500)
        beyond = await client.post("/declared-upload", content=b"x" * 2001)
    assert within.json() == {"received": 1500}
    assert beyond.status_code == 413
    async with running(make_app(max_body_bytes=1000, routes={"POST /declared-upload": {"max_body_bytes": 100}})) as client:
        assert (await client.post("/declared-upload", content=b"x" * 101)).status_code == 413


def test_unknown_route_key_stops_startup_unless_allowed() -> None:
    with pytest.raises(StartupError, match=r"\[plugins.limits\] config.routes: no route named 'POST /nowhere'.*allow_unknown_routes"):
        make_app(routes={"POST /nowhere": {"max_body_bytes": 1}, "GET /ok": {"max_body_bytes": 1}})
    with structlog.testing.capture_logs() as logs:
        make_app(routes={"POST /nowhere": {"max_body_bytes": 1}, "GET /ok": {"max_body_bytes": 1}}, allow_unknown_routes=True)
    assert [entry["key"] for entry in logs if entry["event"] == "limits.unknown_route"] == ["POST /nowhere"]


async def test_slow_handler_is_cancelled_with_504(autojump_clock: trio.testing.MockClock) -> None:
    """In virtual time: the handler is cancelled when the 0.2 s are up, however busy the machine."""
    routes = Routes()
    async with running(make_app(routes, timeout_seconds=0.2)) as client:
        started = trio.current_time()
        with capture_logs() as logs:
            response = await client.get("/sleep")
        elapsed = trio.current_time() - started
        following = await client.get("/ok")
    assert response.status_code == 504
    assert response.json()["detail"] == "The request was not handled within 0.2 s"
    assert elapsed < 0.7
    assert routes.cancelled and not routes.slept_through
    assert following.json() == {"ok": True}
    assert [entry["event"] for entry in logs] == ["request.timeout"]


async def test_per_route_timeout() -> None:
    async with running(make_app(timeout_seconds=10, routes={"GET /sleep": {"timeout_seconds": 0.05}})) as client:
        response = await client.get("/sleep")
    assert response.status_code == 504


async def test_burst_then_429_with_retry_after() -> None:
    async with running(make_app(rate=0.5, burst=3)) as client:
        responses = [await client.get("/ok") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert all(r.headers["ratelimit-limit"] == "3" for r in responses)
    refused = responses[-1]
    assert refused.headers["retry-after"] == "2"
    assert refused.json()["detail"] == "Rate limit exceeded; retry in 2 s"
    assert refused.headers["ratelimit-reset"] == "6"


async def test_exempt_paths_are_not_limited() -> None:
    async with running(make_app(rate=1, burst=1)) as client:
        probes = [await client.get("/healthz") for _ in range(5)]
    assert {r.status_code for r in probes} == {200}
    assert "ratelimit-limit" not in probes[0].headers


async def test_limits_apply_per_client_and_to_errors() -> None:
    app = make_app(rate=1, burst=1)
    other_host = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.0.0.2", 1000)), base_url="http://testserver")
    async with running(app, client=("10.0.0.1", 1000)) as first, other_host as second:
        assert (await first.get("/ok")).status_code == 200
        missing = await second.get("/missing")
        assert (await first.get("/ok")).status_code == 429
    assert missing.status_code == 404
    assert (missing.headers["ratelimit-limit"], missing.headers["ratelimit-remaining"]) == ("1", "0")


async def test_subject_key_separates_authenticated_callers() -> None:
    async with running(make_app(rate=1, burst=1, rate_limit_key="subject")) as client:
        alice = await client.get("/ok", headers={"x-user": "alice"})
        bob = await client.get("/ok", headers={"x-user": "bob"})
        alice_again = await client.get("/ok", headers={"x-user": "alice"})
        anonymous = await client.get("/ok")
        missing = await client.get("/missing")
    assert [r.status_code for r in (alice, bob, alice_again, anonymous, missing)] == [200, 200, 429, 200, 429]


def test_bucket_refills_at_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=2, max_keys=10)
    assert limiter.take("a", 0.0).allowed
    assert limiter.take("a", 0.0).allowed
    refused = limiter.take("a", 0.0)
    assert (refused.allowed, refused.retry_after) == (False, 1)
    assert limiter.take("a", 0.5).allowed
    assert not limiter.take("a", 0.5).allowed
    full = limiter.take("a", 100.0)
    assert (full.allowed, full.remaining) == (True, 1)


def test_bucket_table_is_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=2)
    limiter.take("a", 0.0)
    limiter.take("b", 0.0)
    limiter.take("a", 0.0)
    limiter.take("c", 0.0)
    assert len(limiter) == 2
    assert not limiter.take("a", 0.0).allowed
    assert limiter.take("b", 0.0).allowed


@pytest.mark.parametrize(
    ("config", "match"),
    [({"timeout_seconds": 0}, "timeout_seconds"), ({"rate_limit_key": "ip"}, "rate_limit_key"), ({"routes": {"GET /ok": {"max_body": 1}}}, "max_body")],
)
def test_invalid_config_is_refused(config: dict[str, Any], match: str) -> None:
    with pytest.raises(RegistryError, match=match):
        make_app(**config)
