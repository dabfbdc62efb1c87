"""The live feed on real server processes sharing one real redis-server:
two instances behind nginx (deploy/nginx.conf.template: WebSocket upgrades
pass, event streams are not buffered) and one instance with two worker
processes. A post made on any instance reaches every stream, whichever
instance or worker holds it."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from tests.reliability.harness import Instance, full_plugins, installed, nginx_binary, registry_toml, spawn, spawn_nginx, token
from wasmkernel.testing import EventStream, RedisServer, sse_events, wait_until

pytestmark = [
    pytest.mark.server,
    pytest.mark.slow,  # several server processes and nginx: about a minute on two cores
    pytest.mark.skipif(not installed("channels", "broker-redis", "feed", "redis"), reason="needs the real-time plugins"),
]

AUTH = {"authorization": "Bearer " + token(["feed:write"])}


def registry(workdir: Path, redis: RedisServer, database: Path) -> str:
    plugins = full_plugins(workdir, with_wasm=False, redis={"url": redis.url, "health_interval": 0.2, "min_backoff": 0.05, "max_backoff": 0.5})
    return registry_toml({**plugins, "channels": {"keepalive_seconds": 1.0}, "broker-redis": {}, "feed": {"database": str(database)}})


def streams_served(instance: Instance) -> int:
    return sum(1 for record in instance.log_lines() if record.get("event") == "request" and record.get("path") == "/feed/events")


async def open_streams(stack: AsyncExitStack, base: str, count: int) -> tuple[list[EventStream], list[trio_websocket.WebSocketConnection]]:
    """`count` SSE streams and `count` WebSockets on `base`, each on its own
    connection; each is subscribed once its headers or handshake are in."""
    streams, sockets = [], []
    for _ in range(count):
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=10))
        response = await stack.enter_async_context(client.stream("GET", "/feed/events"))
        assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
        streams.append(sse_events(response))
        sockets.append(await stack.enter_async_context(trio_websocket.open_websocket_url(base.replace("http", "ws") + "/feed/ws")))
    return streams, sockets


async def everyone_gets(post: dict[str, Any], streams: list[EventStream], sockets: list[trio_websocket.WebSocketConnection]) -> None:
    expected = {"type": "post", **post}
    for events in streams:
        assert (await events.next()).json() == expected
    for ws in sockets:
        with trio.fail_after(30):
            assert json.loads(await ws.get_message()) == expected


async def test_two_instances_behind_nginx_share_the_feed(redis_server: RedisServer, tmp_path: Path) -> None:
    nginx = nginx_binary()
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install -y nginx; `make test` does it)")
    database = tmp_path / "feed.db"
    instances: list[Instance] = []
    try:
        for name in ("a", "b"):
            instances.append(spawn(registry(tmp_path / name, redis_server, database), tmp_path / name, probe="/readyz"))
        proxy = spawn_nginx([f"127.0.0.1:{instance.port}" for instance in instances], tmp_path / "nginx")
        try:
            async with AsyncExitStack() as stack:
                streams, sockets = await open_streams(stack, proxy.base, 4)
                async with httpx.AsyncClient(timeout=10) as http:
                    for instance in instances:  # a post on each instance, directly
                        created = await http.post(instance.base + "/posts", json={"text": f"on {instance.port}"}, headers=AUTH)
                        assert created.status_code == 201, created.text
                        await everyone_gets(created.json(), streams, sockets)

            # Each instance held some of the streams (one access-log line each, once closed).
            def all_logged() -> list[int] | None:
                counts = [streams_served(instance) for instance in instances]
                return counts if sum(counts) >= 4 else None

            served = await wait_until(all_logged, what="4 streams in the access logs")
            assert sum(served) == 4 and all(served), served
        finally:
            proxy.stop()
    finally:
        for instance in instances:
            instance.stop()


async def test_worker_processes_share_the_feed_through_redis(redis_server: RedisServer, tmp_path: Path) -> None:
    instance = spawn(registry(tmp_path, redis_server, tmp_path / "feed.db"), tmp_path, workers=2, probe="/readyz")
    try:
        async with AsyncExitStack() as stack:
            streams, sockets = await open_streams(stack, instance.base, 4)
            async with httpx.AsyncClient(base_url=instance.base, timeout=10) as http:
                for n in range(2):
                    created = await http.post("/posts", json={"text": f"post {n}"}, headers={**AUTH, "connection": "close"})
                    assert created.status_code == 201, created.text
                    await everyone_gets(created.json(), streams, sockets)
    finally:
        instance.stop()


async def _resumed(client: httpx.AsyncClient, stack: AsyncExitStack, events: EventStream, last_id: str, count: int) -> tuple[list[str], int]:
    """The texts of the next `count` posts on `events` and how many times the
    stream had to be reopened: if it was cut, reconnect (through nginx, so to
    the survivor) with `Last-Event-ID`."""
    texts: list[str] = []
    reconnects = 0
    while len(texts) < count:
        try:
            event = await events.next()
        except (StopAsyncIteration, httpx.HTTPError):
            response = await stack.enter_async_context(client.stream("GET", "/feed/events", headers={"last-event-id": last_id}))
            assert response.status_code == 200, response.status_code
            events = sse_events(response)
            reconnects += 1
            continue
        last_id = event.id or last_id
        texts.append(event.json()["text"])
    return texts, reconnects


async def test_clients_of_a_killed_instance_resume_on_the_survivor(redis_server: RedisServer, tmp_path: Path) -> None:
    """Instance a is SIGKILLed while it holds event streams; two posts are made
    on b while those clients are cut off; each client reconnects through nginx
    with its Last-Event-ID and gets both, in order, from the channel's history
    in Redis. Streams held by b never notice."""
    nginx = nginx_binary()
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install -y nginx; `make test` does it)")
    database = tmp_path / "feed.db"
    instances = [spawn(registry(tmp_path / name, redis_server, database), tmp_path / name, probe="/readyz") for name in ("a", "b")]
    proxy = spawn_nginx([f"127.0.0.1:{instance.port}" for instance in instances], tmp_path / "nginx")
    try:
        async with AsyncExitStack() as stack, httpx.AsyncClient(base_url=proxy.base, timeout=10) as client:
            streams = []
            for _ in range(4):
                response = await stack.enter_async_context(client.stream("GET", "/feed/events"))
                streams.append(sse_events(response))  # subscribed once its headers are in
            survivor = instances[1].base
            first = await client.post(survivor + "/posts", json={"text": "before"}, headers=AUTH)
            assert first.status_code == 201, first.text
            last_ids = []
            for events in streams:
                event = await events.next()
                assert event.json()["text"] == "before" and event.id
                last_ids.append(event.id)
            instances[0].kill()
            for text in ("during-1", "during-2"):
                created = await client.post(survivor + "/posts", json={"text": text}, headers=AUTH)
                assert created.status_code == 201, created.text
            reconnects = 0
            for events, last_id in zip(streams, last_ids):
                texts, reopened = await _resumed(client, stack, events, last_id, 2)
                assert texts == ["during-1", "during-2"]
                reconnects += reopened
            assert 0 < reconnects < len(streams), reconnects  # nginx spread the streams over both instances
    finally:
        proxy.stop()
        for instance in instances:
            instance.stop()
