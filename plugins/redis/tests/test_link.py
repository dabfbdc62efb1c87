"""RedisLink against a real redis-server: health, outages logged once,
recovery after a restart."""

from __future__ import annotations

from typing import Any

import coredis
import structlog
import trio
from wasmkernel_redis import Backoff
from wasmkernel_redis.link import RedisLink

from wasmkernel.testing import RedisServer, wait_until


def link_to(server: RedisServer, **options: Any) -> RedisLink:
    client = coredis.Redis.from_url(server.url, connect_timeout=5.0, stream_timeout=5.0)
    return RedisLink(client, f"127.0.0.1:{server.port}", timeout=5.0, **options)


def count_checks(link: RedisLink) -> list[int]:
    """Count `link`'s health checks from now on (in the one-item list returned)."""
    checks = [0]
    check = link.check

    async def counted() -> bool:
        checks[0] += 1
        return bool(await check())

    link.check = counted
    return checks


async def test_up_then_down_then_up_again(redis_server: RedisServer) -> None:
    link = link_to(redis_server, interval=0.05, backoff=Backoff(0.02, 0.1))
    checks = count_checks(link)
    with structlog.testing.capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(link.run)
            assert link.up and link.outages == 0 and 0 < link.ping_seconds <= link.timeout
            redis_server.kill()
            await wait_until(lambda: not link.up)
            link.mark_down(ConnectionError("seen by a consumer too"))
            failing = checks[0]
            await wait_until(lambda: checks[0] >= failing + 3)  # several failed pings with backoff
            assert link.outages == 1 and "Error" in link.last_error
            redis_server.start()
            await wait_until(lambda: link.up)
            assert await link.client.ping() == b"PONG"
            nursery.cancel_scope.cancel()
    events = [(entry["event"], entry["log_level"]) for entry in logs]
    assert events == [("redis.connected", "info"), ("redis.down", "warning"), ("redis.up", "info")], logs
    assert logs[2]["down_seconds"] > 0


async def test_down_at_startup_counts_as_an_outage(redis_server: RedisServer) -> None:
    redis_server.kill()
    link = link_to(redis_server, interval=0.05, backoff=Backoff(0.02, 0.05))
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        assert not link.up and link.outages == 1
        redis_server.start()
        await wait_until(lambda: link.up)
        nursery.cancel_scope.cancel()
    assert link.outages == 1
