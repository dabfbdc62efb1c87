"""Two served instances of the feed sharing one real redis-server (and the
SQLite file), as behind a load balancer: a post made on one reaches the SSE
and WebSocket clients of the other; Redis killed and restarted: no crash,
publishes refused (and not kept), readiness shows the outage, the same
streams stay open and receive again once Redis is back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jwt
import trio

from wasmkernel import Application
from wasmkernel.testing import EventStream, RedisServer, ServeApp, ServedApp, app_from, wait_until

SECRET = "c" * 32


def instance(redis_url: str, database: Path) -> Application:
    return app_from(
        {
            "redis": {
                "config": {"url": redis_url, "health_interval": 0.05, "min_backoff": 0.02, "max_backoff": 0.1, "connect_timeout": 5.0, "command_timeout": 5.0}
            },
            "broker-redis": {"config": {"min_backoff": 0.02, "max_backoff": 0.1, "publish_timeout": 5.0}},
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


async def two_instances(serve_app: ServeApp, redis: RedisServer, database: Path) -> tuple[ServedApp, ServedApp]:
    """Instances A and B, served and ready."""
    served = await serve_app(instance(redis.url, database)), await serve_app(instance(redis.url, database))
    for one in served:
        await readiness(one.http, 200)
    return served


async def readiness(client: httpx.AsyncClient, status: int) -> Any:
    async def answered() -> httpx.Response | None:
        response = await client.get("/readyz")
        return response if response.status_code == status else None

    return (await wait_until(answered, what=f"/readyz answering {status}")).json()


async def next_post(events: EventStream) -> Any:
    event = await events.next()
    assert event.event == "post"
    return event.json()


async def test_a_post_on_one_instance_reaches_sse_and_websocket_clients_of_the_other(redis_server: RedisServer, tmp_path: Path, serve_app: ServeApp) -> None:
    served_a, served_b = await two_instances(serve_app, redis_server, tmp_path / "feed.db")
    a, b = served_a.http, served_b.http
    # Subscribed on B once the stream's headers and the handshake are in.
    async with served_b.sse("/feed/events") as events, served_b.websocket("/feed/ws") as ws:
        created = await a.post("/posts", json={"text": "from A"}, headers=AUTH)
        assert created.status_code == 201
        expected = {"type": "post", **created.json()}
        assert await next_post(events) == expected
        with trio.fail_after(30):
            assert json.loads(await ws.get_message()) == expected
        comment = await b.post(f"/posts/{created.json()['id']}/comments", json={"text": "from B"}, headers=AUTH)
        assert comment.status_code == 201
    listed = (await a.get("/posts")).json()["posts"]
    assert [(p["text"], [c["text"] for c in p["comments"]]) for p in listed] == [("from A", ["from B"])]


async def test_redis_killed_and_restarted_streams_survive_and_delivery_resumes(redis_server: RedisServer, tmp_path: Path, serve_app: ServeApp) -> None:
    served_a, served_b = await two_instances(serve_app, redis_server, tmp_path / "feed.db")
    a, b = served_a.http, served_b.http
    async with served_b.sse("/feed/events") as events, served_b.websocket("/feed/ws") as ws:
        redis_server.kill()
        down = await readiness(a, 503)
        assert down["channels"]["status"] == "down" and down["channels"]["broker"] == "redis"
        assert (await readiness(b, 503))["channels"]["status"] == "down"
        refused = await a.post("/posts", json={"text": "during the outage"}, headers=AUTH)
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert "not kept" in refused.json()["detail"]
        assert (await a.get("/posts")).json()["posts"] == []  # not kept, so never half-published
        metrics = (await a.get("/metrics")).text
        assert 'wasmkernel_channels_broker_up{broker="redis"} 0.0' in metrics
        assert 'wasmkernel_redis_up{address="127.0.0.1:' in metrics

        redis_server.start()
        await readiness(a, 200)
        await readiness(b, 200)
        created = await a.post("/posts", json={"text": "after the outage"}, headers=AUTH)
        assert created.status_code == 201
        expected = {"type": "post", **created.json()}
        assert await next_post(events) == expected  # the same SSE stream, never closed
        with trio.fail_after(30):
            assert json.loads(await ws.get_message()) == expected
