"""Two served instances of the feed sharing one real redis-server (and the
SQLite file), as behind a load balancer: a post made on one reaches the SSE
and WebSocket clients of the other; Redis killed and restarted: no crash,
publishes refused (and not kept), readiness shows the outage, the same
streams stay open and receive again once Redis is back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import trio
import trio_websocket

from tests.realtime.serving import ServerEvent, next_event, serving, sse_events
from tests.redis_server import RedisServer
from wasmkernel import Application
from wasmkernel.testing import app_from

SECRET = "c" * 32


def instance(redis_url: str, database: Path) -> Application:
    return app_from(
        {
            "redis": {
                "config": {"url": redis_url, "health_interval": 0.05, "min_backoff": 0.02, "max_backoff": 0.1, "connect_timeout": 0.3, "command_timeout": 0.3}
            },
            "broker-redis": {"config": {"min_backoff": 0.02, "max_backoff": 0.1, "publish_timeout": 0.3}},
            "channels": {"config": {"keepalive_seconds": 0.2}},
            "metrics": {},
            "access-log": {},
            "errors": {},
            "authz": {},
            "validation": {},
            "auth-jwt": {"config": {"secret": SECRET}},
            "router": {},
            "health": {},
            "feed": {"config": {"database": str(database)}},
        }
    )


AUTH = {"authorization": "Bearer " + jwt.encode({"sub": "ann", "scope": "feed:write", "exp": 2_000_000_000}, SECRET, algorithm="HS256")}


@asynccontextmanager
async def two_instances(redis: RedisServer, database: Path) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, str]]:
    """HTTP clients of instances A and B, and B's WebSocket base URL."""
    async with AsyncExitStack() as stack:
        base_a = await stack.enter_async_context(serving(instance(redis.url, database)))
        base_b = await stack.enter_async_context(serving(instance(redis.url, database)))
        a = await stack.enter_async_context(httpx.AsyncClient(base_url=base_a, timeout=5))
        b = await stack.enter_async_context(httpx.AsyncClient(base_url=base_b, timeout=5))
        yield a, b, base_b.replace("http", "ws")


async def readiness(client: httpx.AsyncClient, status: int) -> Any:
    with trio.fail_after(10):
        while (response := await client.get("/readyz")).status_code != status:
            await trio.sleep(0.05)
    return response.json()


async def next_post(events: AsyncIterator[ServerEvent]) -> Any:
    event = await next_event(events)
    assert event.event == "post"
    return event.json()


async def test_a_post_on_one_instance_reaches_sse_and_websocket_clients_of_the_other(redis_server: RedisServer, tmp_path: Path) -> None:
    async with two_instances(redis_server, tmp_path / "feed.db") as (a, b, ws_b):
        await readiness(a, 200)
        await readiness(b, 200)
        async with b.stream("GET", "/feed/events") as stream, trio_websocket.open_websocket_url(ws_b + "/feed/ws") as ws:
            events = sse_events(stream)
            await trio.sleep(0.2)  # both subscribed on B
            created = await a.post("/posts", json={"text": "from A"}, headers=AUTH)
            assert created.status_code == 201
            expected = {"type": "post", **created.json()}
            assert await next_post(events) == expected
            with trio.fail_after(5):
                assert json.loads(await ws.get_message()) == expected
            comment = await b.post(f"/posts/{created.json()['id']}/comments", json={"text": "from B"}, headers=AUTH)
            assert comment.status_code == 201
        listed = (await a.get("/posts")).json()["posts"]
        assert [(p["text"], [c["text"] for c in p["comments"]]) for p in listed] == [("from A", ["from B"])]


async def test_redis_restarted_without_persistence_loses_no_acknowledged_post_silently(redis_server: RedisServer, tmp_path: Path) -> None:
    """Issue 22: posts were delivered, Redis was killed and restarted empty,
    and posts answered 201 afterwards never reached the other instance's
    streams (their ids repeated ids already delivered, so they were skipped),
    and the streams never ended, so clients never caught up. Now: during the
    outage posts are refused (and not kept); once Redis is back every stream
    ends (what was published just before the crash may be lost), reconnecting
    clients resume, and every post acknowledged afterwards reaches them."""
    async with two_instances(redis_server, tmp_path / "feed.db") as (a, b, ws_b):
        await readiness(a, 200)
        await readiness(b, 200)
        async with AsyncExitStack() as stack:
            events, events_a, ws = await clients(stack, a, b, ws_b, {})
            for text in ("first", "second"):  # delivered: ids <epoch>-1 and -2
                created = await a.post("/posts", json={"text": text}, headers=AUTH)
                assert created.status_code == 201
                seen = await next_event(events)
                assert seen.json()["text"] == (await next_post(events_a))["text"] == text
                with trio.fail_after(5):
                    assert json.loads(await ws.get_message())["text"] == text
            last_seen = seen.id
            assert last_seen is not None

            redis_server.kill()
            down = await readiness(a, 503)
            assert down["channels"]["status"] == "down" and down["channels"]["broker"] == "redis"
            assert (await readiness(b, 503))["channels"]["status"] == "down"
            refused = await a.post("/posts", json={"text": "during the outage"}, headers=AUTH)
            assert refused.status_code == 503 and refused.headers["retry-after"]
            assert "not kept" in refused.json()["detail"]
            metrics = (await a.get("/metrics")).text
            assert 'wasmkernel_channels_broker_up{broker="redis"} 0.0' in metrics
            assert 'wasmkernel_redis_up{address="127.0.0.1:' in metrics

            redis_server.start()
            await readiness(a, 200)
            await readiness(b, 200)
            await ended(events)
            await ended(events_a)
            with trio.fail_after(10), pytest.raises(trio_websocket.ConnectionClosed) as closed:
                while True:
                    await ws.get_message()
            assert closed.value.reason is not None and closed.value.reason.code == 1013
        # The clients reconnect (the SSE one resuming after the last id it saw) and get every new post.
        async with AsyncExitStack() as stack:
            events, events_a, ws = await clients(stack, a, b, ws_b, {"last-event-id": last_seen})
            for text in ("after the restart", "and again"):
                created = await a.post("/posts", json={"text": text}, headers=AUTH)
                assert created.status_code == 201
                assert (await next_post(events))["text"] == (await next_post(events_a))["text"] == text
                with trio.fail_after(5):
                    assert json.loads(await ws.get_message())["text"] == text
        texts = [post["text"] for post in (await b.get("/posts")).json()["posts"]]
        assert sorted(texts) == sorted(["first", "second", "after the restart", "and again"])


async def clients(
    stack: AsyncExitStack, a: httpx.AsyncClient, b: httpx.AsyncClient, ws_b: str, headers: dict[str, str]
) -> tuple[AsyncIterator[ServerEvent], AsyncIterator[ServerEvent], trio_websocket.WebSocketConnection]:
    """An SSE stream on B (with `headers`) and on A, and a WebSocket on B."""
    stream = await stack.enter_async_context(b.stream("GET", "/feed/events", headers=headers))
    stream_a = await stack.enter_async_context(a.stream("GET", "/feed/events"))
    ws = await stack.enter_async_context(trio_websocket.open_websocket_url(ws_b + "/feed/ws"))
    await subscribers(b, 2)
    await subscribers(a, 1)
    return sse_events(stream), sse_events(stream_a), ws


async def subscribers(client: httpx.AsyncClient, count: int) -> None:
    """Wait until `client`'s instance has `count` subscriptions (its metrics say)."""
    line = f'wasmkernel_channels_subscribers{{broker="redis"}} {float(count)}'
    with trio.fail_after(10):
        while line not in (await client.get("/metrics")).text:
            await trio.sleep(0.05)


async def ended(events: AsyncIterator[ServerEvent]) -> None:
    """Read `events` until the stream ends (it must, within 10 s)."""
    with trio.fail_after(10):
        async for _ in events:
            pass
