"""Several instances: `wasmkernel run --workers 2`, and two separate instances
behind a real nginx (deploy/nginx.conf.template, started on loopback with its
prefix in a temporary directory). Which instance answered is told by counting
each instance's access-log lines.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.redis_server import RedisServer
from tests.reliability.harness import Instance, Nginx, full_plugins, installed, nginx_binary, registry_toml, spawn, spawn_nginx, token
from wasmkernel.testing import wait_until

pytestmark = [pytest.mark.server, pytest.mark.skipif(not installed("access-log", "hello", "limits"), reason="feature plugins not installed")]
NGINX = nginx_binary()


def registry(workdir: Path, **limits: float) -> str:
    return registry_toml(full_plugins(workdir, limits=limits, with_wasm=False))


def settled(count: Callable[[], int], timeout: float = 5.0) -> int:
    """`count()` once it stopped changing (log lines are written asynchronously)."""
    deadline = time.monotonic() + timeout
    last = count()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        current = count()
        if current == last:
            return current
        last = current
    return last


def test_two_workers_share_the_port(tmp_path: Path) -> None:
    instance = spawn(registry(tmp_path), tmp_path, workers=2)
    try:
        children = [p for p in instance.processes()[1:] if "python" in p.name() or "wasmkernel" in p.name()]
        assert len(children) >= 2, children
        with httpx.Client(base_url=instance.base) as client:
            assert all(client.get("/hello", headers={"Connection": "close"}).status_code == 200 for _ in range(40))
        assert settled(lambda: instance.access_count("/hello")) == 40
    finally:
        instance.stop()


def scrape(base: str) -> dict[str, float]:
    """One scrape on a new connection (any worker may answer): sample -> value."""
    text = httpx.get(base + "/metrics", headers={"Connection": "close"}, timeout=10).text
    return {
        sample.name + "{" + ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items())) + "}": sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.skipif(not installed("metrics", "channels", "feed"), reason="needs the metrics and feed plugins")
def test_two_workers_answer_metrics_as_one(tmp_path: Path) -> None:
    """Issue 26: with --workers 2 each scrape showed one worker's counters (a
    counter read 11, 9, 11, 11 …). Every scrape now shows both workers:
    request counters and the plugins' sources (channels' published events)."""
    plugins = full_plugins(tmp_path, with_wasm=False)
    instance = spawn(registry_toml({**plugins, "channels": {}, "feed": {"database": str(tmp_path / "feed.db")}}), tmp_path, workers=2)
    try:
        with httpx.Client(base_url=instance.base, headers={"Connection": "close"}, timeout=10) as client:
            assert all(client.get("/hello").status_code == 200 for _ in range(40))
            auth = {"authorization": "Bearer " + token(["feed:write"])}
            assert all(client.post("/posts", json={"text": f"post {n}"}, headers=auth).status_code == 201 for n in range(6))
        hello = "wasmkernel_requests_total{method=GET,route=hello,status=200}"
        published = "wasmkernel_channels_published_total{broker=memory}"

        def agreed() -> bool:
            scrapes = [scrape(instance.base) for _ in range(8)]
            return all(s.get(hello) == 40.0 and s.get(published) == 6.0 for s in scrapes)

        deadline = time.monotonic() + 30
        while not agreed():
            assert time.monotonic() < deadline, [(s.get(hello), s.get(published)) for s in (scrape(instance.base) for _ in range(4))]
            time.sleep(0.2)
        assert not any(name.startswith("process_") for name in scrape(instance.base))  # per process: left out
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
    settled(lambda: first.access_count("/hello") + second.access_count("/hello"))
    counts = (first.access_count("/hello"), second.access_count("/hello"))
    assert sum(counts) == 100, counts
    assert min(counts) >= 30, counts


async def load(base: str, seconds: float, concurrency: int, statuses: Counter[str], until: Callable[[], bool] | None = None) -> None:
    """`concurrency` clients GET /hello for `seconds`, or until `until()` says stop."""
    deadline = trio.current_time() + seconds
    done = until or (lambda: trio.current_time() >= deadline)

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            while not done():
                try:
                    response = await client.get("/hello")
                    statuses[str(response.status_code)] += 1
                except httpx.TransportError as exc:
                    statuses[type(exc).__name__] += 1

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(client_loop)


async def test_sigkill_one_instance_under_load(pair: tuple[Instance, Instance, Nginx]) -> None:
    """nginx retries idempotent requests on the survivor: no GET fails."""
    first, second, proxy = pair
    statuses: Counter[str] = Counter()
    killed_at: list[int] = []  # requests answered when the instance was killed

    # Counts, not time: 50 answers before the kill, 100 after it, however busy the machine.
    def after_kill() -> bool:
        return bool(killed_at) and sum(statuses.values()) - killed_at[0] >= 100

    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(load, proxy.base, 0.0, 16, statuses, until=after_kill))
        await wait_until(lambda: sum(statuses.values()) >= 50, timeout=180, what="50 answers through nginx")
        first.kill()
        killed_at.append(sum(statuses.values()))
    served = sum(statuses.values())
    failed = served - statuses["200"]
    print(f"\nGET through nginx, one of two instances SIGKILLed after {killed_at[0]} answers: {served} requests, {failed} failed: {dict(statuses)}")
    assert served - killed_at[0] >= 100
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


FAST_REDIS = {"health_interval": 0.2, "min_backoff": 0.05, "max_backoff": 0.5, "connect_timeout": 0.5, "command_timeout": 0.5}


def redis_registry(workdir: Path, redis_url: str, **limits: Any) -> str:
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
    served_by = [settled(functools.partial(instance.access_count, "/hello")) for instance in instances]
    print(f"\nburst 5, 30 requests through nginx to two instances sharing Redis: {dict(statuses)}, answered by {served_by}")
    assert statuses == {200: 5, 429: 25}, statuses
    assert min(served_by) >= 5, served_by  # both instances answered


def readiness(base: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(base + "/readyz", timeout=5)
    return response.status_code, response.json()


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.skipif(not installed("redis"), reason="the redis plugin is not installed")
async def test_redis_killed_and_restarted_under_load(tmp_path: Path, redis_server: RedisServer) -> None:
    """Redis SIGKILLed under load, restarted 2 s later: every request is
    answered (the limit fails open), /readyz and the metrics show the outage,
    at most one rate-limit warning per instance, no request fails."""
    instances = [spawn(redis_registry(tmp_path / name, redis_server.url, rate=2000.0, burst=4000), tmp_path / name) for name in "ab"]
    proxy = spawn_nginx([f"127.0.0.1:{instance.port}" for instance in instances], tmp_path / "nginx")
    statuses: Counter[str] = Counter()
    seen_down: list[tuple[int, dict[str, Any]]] = []
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(load, proxy.base, 6.0, 8, statuses)
            await trio.sleep(1.5)
            redis_server.kill()
            with trio.fail_after(5):
                while (answer := await trio.to_thread.run_sync(readiness, instances[0].base))[0] != 503:
                    await trio.sleep(0.1)
            seen_down.append(answer)
            await trio.sleep(1.0)
            redis_server.start()
        with trio.fail_after(10):
            for instance in instances:
                while (await trio.to_thread.run_sync(readiness, instance.base))[0] != 200:
                    await trio.sleep(0.1)
        metrics = httpx.get(instances[0].base + "/metrics").text
        assert all(instance.process.poll() is None for instance in instances)
    finally:
        proxy.stop()
        for instance in instances:
            instance.stop()
    served = sum(statuses.values())
    print(f"\nGET through nginx, Redis SIGKILLed at 1.5 s and restarted ~2 s later: {served} requests: {dict(statuses)}")
    answers_failed = sum(count for status, count in statuses.items() if status != "200" and status.isdigit())
    assert answers_failed == 0, statuses
    assert served - statuses["200"] <= 1 + served // 1000, statuses  # keep-alive races only, as above
    assert seen_down[0][1]["redis"]["status"] == "down", seen_down
    assert "wasmkernel_redis_outages_total" in metrics and 'wasmkernel_redis_up{address="127.0.0.1:' in metrics
    for instance in instances:
        events = [record["event"] for record in instance.log_lines()]
        assert events.count("redis.down") == 1 and events.count("redis.up") == 1, instance.log_path
        assert events.count("limits.shared_store_unavailable") <= 1, instance.log_path
        assert "request.failed" not in events
