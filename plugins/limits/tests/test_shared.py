"""The rate limit shared through Redis by two applications (two instances),
and the configured behaviour while Redis is down, against a real redis-server."""

from __future__ import annotations

from collections import Counter
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs
from wasmkernel_redis import REDIS_LINK, RedisLink

from wasmkernel import Application, Request, Route, hookimpl
from wasmkernel.testing import RedisServer, app_from, running, wait_until

FAST_REDIS = {"health_interval": 0.05, "min_backoff": 0.02, "max_backoff": 0.1, "connect_timeout": 5.0, "command_timeout": 5.0}


class Routes:
    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        async def ok(request: Request) -> dict[str, bool]:
            return {"ok": True}

        return [Route("/ok", ok)]


def make_app(redis_url: str, **limits: Any) -> Application:
    return app_from(
        {
            "redis": {"config": {"url": redis_url, **FAST_REDIS}},
            "limits": {"config": {"rate": 0.1, "burst": 5, "redis_timeout": 5.0, **limits}},
            "router": {},
            "t": {},
        },
        extra_plugins={"t": Routes()},
    )


def link_of(app: Application) -> RedisLink:
    return app.services.get(REDIS_LINK, needed_by="test")


async def test_two_instances_spend_one_budget(redis_server: RedisServer) -> None:
    apps = [make_app(redis_server.url), make_app(redis_server.url)]
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(running(app)) for app in apps]
        responses = [await clients[i % 2].get("/ok") for i in range(30)]
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 5, 429: 25}, statuses
    assert [r.headers["RateLimit-Remaining"] for r in responses[:5]] == ["4", "3", "2", "1", "0"]
    assert responses[-1].headers["Retry-After"] == "10"


async def get_many(client: httpx.AsyncClient, count: int) -> list[httpx.Response]:
    return [await client.get("/ok") for _ in range(count)]


@pytest.mark.parametrize(("behaviour", "expected"), [("open", {200: 8}), ("local", {200: 5, 429: 3}), ("closed", {503: 8})])
async def test_redis_down_follows_the_configured_behaviour_and_warns_once(redis_server: RedisServer, behaviour: str, expected: dict[int, int]) -> None:
    app = make_app(redis_server.url, redis_unavailable=behaviour)
    async with running(app) as client:
        redis_server.kill()
        await wait_until(lambda: not link_of(app).up)
        with capture_logs() as logs:
            responses = await get_many(client, 8)
        redis_server.start()
        await wait_until(lambda: link_of(app).up)
        after = await get_many(client, 6)
    assert Counter(r.status_code for r in responses) == expected
    warnings = [entry for entry in logs if entry["event"] == "limits.shared_store_unavailable"]
    assert len(warnings) == 1 and warnings[0]["behaviour"] == behaviour, logs
    if behaviour == "open":
        assert all("RateLimit-Limit" not in r.headers for r in responses)
    if behaviour == "closed":
        assert responses[0].headers["Retry-After"] == "1"
    # Back on Redis (a fresh server: full buckets).
    assert [r.status_code for r in after] == [200] * 5 + [429]


async def test_a_failing_call_counts_as_an_outage_at_once(redis_server: RedisServer) -> None:
    app = make_app(redis_server.url, redis_unavailable="closed")
    link = link_of(app)
    link.interval = 60.0  # the health ping will not notice in time: the request does
    async with running(app) as client:
        redis_server.kill()
        assert link.up
        first = await client.get("/ok")
        second = await client.get("/ok")
    assert (first.status_code, second.status_code) == (503, 503)
    assert not link.up and link.outages == 1
