"""The redis plugin in an application, against a real redis-server: services
offered only with a URL, /readyz and /metrics follow an outage."""

from __future__ import annotations

from typing import Any

import pytest
from wasmkernel_redis import REDIS, REDIS_LINK

from wasmkernel import Application, RegistryError
from wasmkernel.testing import RedisServer, app_from, running, wait_until


def make_app(**config: Any) -> Application:
    fast = {"health_interval": 0.05, "min_backoff": 0.02, "max_backoff": 0.1, "connect_timeout": 5.0, "command_timeout": 5.0}
    return app_from({"redis": {"config": {**fast, **config}}, "router": {}, "health": {}, "metrics": {}})


async def wait_for_status(client: Any, path: str, status: int) -> Any:
    async def answered() -> Any:
        response = await client.get(path)
        return response if response.status_code == status else None

    return await wait_until(answered, what=f"{path} answering {status}")


async def test_without_url_nothing_is_offered_and_readiness_ignores_redis() -> None:
    app = make_app(url="")
    assert app.services.find(REDIS) is None and app.services.find(REDIS_LINK) is None
    async with running(app) as client:
        ready = await client.get("/readyz")
        metrics = (await client.get("/metrics")).text
    assert ready.status_code == 200 and "redis" not in ready.json()
    assert "wasmkernel_redis_up" not in metrics


async def test_client_offered_and_outage_visible_in_readyz_and_metrics(redis_server: RedisServer) -> None:
    app = make_app(url=redis_server.url)
    redis = app.services.get(REDIS, needed_by="test")
    link = app.services.get(REDIS_LINK, needed_by="test")
    assert link.client is redis and link.address == f"127.0.0.1:{redis_server.port}"
    async with running(app) as client:
        await redis.set("greeting", b"hello")
        assert await redis.get("greeting") == b"hello"
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["redis"] == {"status": "up", "address": link.address}
        assert f'wasmkernel_redis_up{{address="{link.address}"}} 1.0' in (await client.get("/metrics")).text

        redis_server.kill()
        down = await wait_for_status(client, "/readyz", 503)
        assert down.json()["redis"]["status"] == "down" and down.json()["redis"]["outages"] == 1
        metrics = (await client.get("/metrics")).text
        assert f'wasmkernel_redis_up{{address="{link.address}"}} 0.0' in metrics
        assert f'wasmkernel_redis_outages_total{{address="{link.address}"}} 1.0' in metrics

        redis_server.start()
        await wait_for_status(client, "/readyz", 200)
        assert await redis.get("greeting") is None  # a fresh server: no persistence


async def test_outage_only_reported_when_not_required(redis_server: RedisServer) -> None:
    redis_server.kill()
    async with running(make_app(url=redis_server.url, required_for_readiness=False)) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["redis"]["status"] == "down"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:6379", "expected a redis://, rediss:// or unix:// URL"),
        ("redis://127.0.0.1:notaport/0", "invalid port"),
        ("redis:///0", "the URL names no host"),
    ],
)
def test_a_bad_url_stops_startup_naming_the_key(url: str, message: str) -> None:
    with pytest.raises(RegistryError, match=rf"redis.*config\.url.*{message}"):
        make_app(url=url)


def test_reversed_backoff_bounds_stop_startup_naming_the_key() -> None:
    with pytest.raises(RegistryError, match=r"\[plugins.redis\] config.min_backoff: must not exceed max_backoff \(1\)"):
        make_app(url="redis://127.0.0.1:1", min_backoff=2.0, max_backoff=1.0)
