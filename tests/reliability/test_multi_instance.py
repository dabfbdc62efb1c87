"""Several instances: `wasmkernel run --workers 2`, and two separate instances
behind a real nginx (deploy/nginx.conf.template, started on loopback with its
prefix in a temporary directory). Which instance answered is told by counting
each instance's access-log lines.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.reliability.harness import Instance, Nginx, full_plugins, installed, nginx_binary, registry_toml, spawn, spawn_nginx
from wasmkernel.testing import RedisServer, wait_until, wait_until_sync

pytestmark = [pytest.mark.server, pytest.mark.skipif(not installed("access-log", "hello", "limits"), reason="feature plugins not installed")]
NGINX = nginx_binary()


def registry(workdir: Path, **limits: float) -> str:
    return registry_toml(full_plugins(workdir, limits=limits, with_wasm=False))


def logged(count: Callable[[], int], expected: int) -> int:
    """`count()` once it reached `expected` (log lines are written
    asynchronously), or what it was when the wait gave up."""
    with contextlib.suppress(AssertionError):
        wait_until_sync(lambda: count() >= expected, what=f"{expected} access-log lines")
    return count()


def test_two_workers_share_the_port(tmp_path: Path) -> None:
    instance = spawn(registry(tmp_path), tmp_path, workers=2)
    try:
        children = [p for p in instance.processes()[1:] if "python" in p.name() or "wasmkernel" in p.name()]
        assert len(children) >= 2, children
        with httpx.Client(base_url=instance.base) as client:
            assert all(client.get("/hello", headers={"Connection": "close"}).status_code == 200 for _ in range(40))
        assert logged(lambda: instance.access_count("/hello"), 40) == 40
    finally:
        instance.stop()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Instance, Instance, Nginx]]:
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install -y nginx; `make test` does it)")
    first = spawn(registry(tmp_path / "a"), tmp_path / "a")
    second = spawn(registry(tmp_path / "b"), tmp_path / "b")
    proxy = spawn_nginx([f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"], tmp_path / "nginx")
    yield first, second, proxy
    proxy.stop()
    first.stop()
    second.stop()


def test_requests_spread_across_instances(pair: tuple[Instance, Instance, Nginx]) -> None:
    first, second, proxy = pair
    with httpx.Client(base_url=proxy.base) as client:
        assert all(client.get("/hello").status_code == 200 for _ in range(100))
    logged(lambda: first.access_count("/hello") + second.access_count("/hello"), 100)
    counts = (first.access_count("/hello"), second.access_count("/hello"))
    assert sum(counts) == 100, counts
    assert min(counts) >= 30, counts


async def load(base: str, concurrency: int, statuses: Counter[str], stop: trio.Event) -> None:
    """GET /hello from `concurrency` clients until `stop` is set; count the outcomes."""

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            while not stop.is_set():
                try:
                    response = await client.get("/hello")
                    statuses[str(response.status_code)] += 1
                except httpx.TransportError as exc:
                    statuses[type(exc).__name__] += 1

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(client_loop)


async def served_at_least(statuses: Counter[str], count: int) -> None:
    await wait_until(lambda: sum(statuses.values()) >= count, what=lambda: f"{count} requests answered (so far: {dict(statuses)})")


async def test_sigkill_one_instance_under_load(pair: tuple[Instance, Instance, Nginx]) -> None:
    """nginx retries idempotent requests on the survivor: no GET fails."""
    first, second, proxy = pair
    statuses: Counter[str] = Counter()
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(load, proxy.base, 16, statuses, stop)
        await served_at_least(statuses, 50)
        first.kill()
        await served_at_least(statuses, sum(statuses.values()) + 150)
        stop.set()
    served = sum(statuses.values())
    failed = served - statuses["200"]
    print(f"\nGET through nginx, one of two instances SIGKILLed after 50 requests: {served} requests, {failed} failed: {dict(statuses)}")
    assert served > 100
    # No request may fail with an HTTP error: nginx retried every GET the dead
    # instance dropped. A keep-alive connection closed by a peer just as the
    # client reused it (RemoteProtocolError, seen ~1 in 4000) is a transport
    # race clients retry, not an answer: tolerated at ≤ 1 % (seen: 2 of 506 on a
    # loaded machine).
    answers_failed = sum(count for status, count in statuses.items() if status.isdigit() and status != "200")
    assert answers_failed == 0, statuses
    assert failed - answers_failed <= 2 + served // 100, statuses
    assert second.access_count("/hello") > 0


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
async def test_rate_limit_is_per_instance(tmp_path: Path) -> None:
    """The limits plugin's buckets live in each process: one instance lets a
    client's burst (5) through; two instances behind nginx let twice that."""
    limits = {"rate": 0.1, "burst": 5}
    instances = [spawn(registry(tmp_path / name, **limits), tmp_path / name) for name in "abc"]
    proxy = spawn_nginx([f"127.0.0.1:{instance.port}" for instance in instances[1:]], tmp_path / "nginx")
    try:
        async with httpx.AsyncClient() as client:
            alone = Counter([(await client.get(instances[0].base + "/hello")).status_code for _ in range(30)])
            balanced = Counter([(await client.get(proxy.base + "/hello")).status_code for _ in range(30)])
    finally:
        proxy.stop()
        for instance in instances:
            instance.stop()
    print(f"\nburst 5, 30 requests: one instance {dict(alone)}; two instances behind nginx {dict(balanced)}")
    assert alone[200] == 5 and alone[429] == 25, alone
    assert balanced[200] == 10 and balanced[429] == 20, balanced


#: Quick to notice a killed Redis (refused connections), never timed out by a busy machine.
FAST_REDIS = {"health_interval": 0.2, "min_backoff": 0.05, "max_backoff": 0.5, "connect_timeout": 5.0, "command_timeout": 5.0}


def redis_registry(workdir: Path, redis_url: str, **limits: Any) -> str:
    limits = {"redis_timeout": 5.0, **limits}
    return registry_toml(full_plugins(workdir, limits=limits, with_wasm=False, redis={"url": redis_url, **FAST_REDIS}))


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.skipif(not installed("redis"), reason="the redis plugin is not installed")
async def test_rate_limit_is_shared_through_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    """With Redis, two instances behind nginx spend one budget: 5 of 30."""
    instances = [spawn(redis_registry(tmp_path / name, redis_server.url, rate=0.1, burst=5), tmp_path / name) for name in "ab"]
    proxy = spawn_nginx([f"127.0.0.1:{instance.port}" for instance in instances], tmp_path / "nginx")
    try:
        async with httpx.AsyncClient() as client:
            statuses = Counter([(await client.get(proxy.base + "/hello")).status_code for _ in range(30)])
    finally:
        proxy.stop()
        for instance in instances:
            instance.stop()
    logged(lambda: sum(instance.access_count("/hello") for instance in instances), 30)
    served_by = [instance.access_count("/hello") for instance in instances]
    print(f"\nburst 5, 30 requests through nginx to two instances sharing Redis: {dict(statuses)}, answered by {served_by}")
    assert statuses == {200: 5, 429: 25}, statuses
    assert min(served_by) >= 5, served_by  # both instances answered


async def readiness(base: str, status: int) -> dict[str, Any]:
    """/readyz of `base` once it answers `status`."""

    async def answered() -> dict[str, Any] | None:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.get(base + "/readyz")
        return response.json() if response.status_code == status else None

    return await wait_until(answered, what=f"{base}/readyz answering {status}")


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.skipif(not installed("redis"), reason="the redis plugin is not installed")
async def test_redis_killed_and_restarted_under_load(tmp_path: Path, redis_server: RedisServer) -> None:
    """Redis SIGKILLed under load and restarted once requests were served
    during the outage: every request is answered (the limit fails open),
    /readyz and the metrics show the outage, at most one rate-limit warning
    per instance, no request fails."""
    instances = [spawn(redis_registry(tmp_path / name, redis_server.url, rate=2000.0, burst=4000), tmp_path / name) for name in "ab"]
    proxy = spawn_nginx([f"127.0.0.1:{instance.port}" for instance in instances], tmp_path / "nginx")
    statuses: Counter[str] = Counter()
    seen_down: list[dict[str, Any]] = []
    stop = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(load, proxy.base, 8, statuses, stop)
            await served_at_least(statuses, 100)
            redis_server.kill()
            seen_down.append(await readiness(instances[0].base, 503))
            await served_at_least(statuses, sum(statuses.values()) + 100)  # answered during the outage
            redis_server.start()
            for instance in instances:
                await readiness(instance.base, 200)
            await served_at_least(statuses, sum(statuses.values()) + 100)  # and after it
            stop.set()
        metrics = httpx.get(instances[0].base + "/metrics").text
        assert all(instance.process.poll() is None for instance in instances)
    finally:
        proxy.stop()
        for instance in instances:
            instance.stop()
    served = sum(statuses.values())
    print(f"\nGET through nginx, Redis SIGKILLed after 100 requests and restarted 100 requests later: {served} requests: {dict(statuses)}")
    answers_failed = sum(count for status, count in statuses.items() if status != "200" and status.isdigit())
    assert answers_failed == 0, statuses
    assert served - statuses["200"] <= 1 + served // 1000, statuses  # keep-alive races only, as above
    assert seen_down[0]["redis"]["status"] == "down", seen_down
    assert "wasmkernel_redis_outages_total" in metrics and 'wasmkernel_redis_up{address="127.0.0.1:' in metrics
    for instance in instances:
        events = [record["event"] for record in instance.log_lines()]
        assert events.count("redis.down") == 1 and events.count("redis.up") == 1, instance.log_path
        assert events.count("limits.shared_store_unavailable") <= 1, instance.log_path
        assert "request.failed" not in events
