"""The key-value backend "redis" on every loader: shared by workers and instances, quotas, outages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from structlog.testing import capture_logs
from wasmkernel_wasm.testing import LOADERS, dist, use_loader, wasm_plugins

from wasmkernel import Application, StartupError
from wasmkernel.testing import RedisServer, app_from, running

__all__ = ["dist"]
METHODS = ["GET", "POST", "PUT", "DELETE"]


@pytest.fixture(params=LOADERS)
def loader_name(request: pytest.FixtureRequest) -> str:
    return str(use_loader(str(request.param)))


def hostcalls_config(dist: Path, cache: Path, **grants: Any) -> dict[str, Any]:
    """Module `hc` (hostcalls, granted `grants`) on /h/...."""
    return {
        "cache_dir": str(cache),
        "workers": 2,
        "watch": False,
        "modules": [{"name": "hc", "path": str(dist / "hostcalls.wasm"), "kind": "http", **grants}],
        "routes": [{"path": "/h/{op}", "module": "hc", "methods": METHODS}, {"path": "/h/{op}/{arg}", "module": "hc", "methods": METHODS}],
    }


def redis_app(loader_name: str, config: dict[str, Any], url: str) -> Application:
    return app_from({"redis": {"config": {"url": url}}, "wasm-kv-redis": {}, "request-id": {}, "router": {}, **wasm_plugins(loader_name, config)})


async def test_redis_kv_is_shared_by_workers_and_instances(loader_name: str, dist: Path, tmp_path: Path, redis_server: RedisServer) -> None:
    """Two application instances on one Redis: a write through one is read
    through the other; counters are atomic; quotas hold; a Redis outage fails
    only the calls made during it (503 from the module, a redis.down line)."""
    config = hostcalls_config(dist, tmp_path / "cache", kv={"backend": "redis", "max_value_bytes": 64, "max_total_bytes": 400})
    one, two = redis_app(loader_name, config, redis_server.url), redis_app(loader_name, config, redis_server.url)
    async with running(one) as first, running(two) as second:
        assert (await first.put("/h/kv/shared", content=b"from one")).status_code == 204
        assert (await second.get("/h/kv/shared")).text == "from one"
        assert (await second.put("/h/kv/shared2", content=b"x")).status_code == 204
        assert (await first.get("/h/list", params={"prefix": "shared"})).text == "shared\nshared2\n"

        async def bump(client: Any) -> None:
            assert (await client.post("/h/incr/hits")).status_code == 200

        async with trio.open_nursery() as nursery:
            for index in range(20):
                nursery.start_soon(bump, first if index % 2 else second)
        assert (await first.get("/h/kv/hits")).text == "20"
        assert (await second.post("/h/incr/hits", params={"by": "-5"})).text == "15\n"
        assert (await first.put("/h/kv/big", content=b"x" * 65)).status_code == 507
        assert (await first.put("/h/kv/c", content=b"x" * 64)).status_code == 204
        over = await second.put("/h/kv/d", content=b"x" * 64)
        assert over.status_code == 507 and "max_total_bytes = 400" in over.text
        assert (await first.delete("/h/kv/shared")).status_code == 200
        assert (await second.get("/h/kv/shared")).status_code == 404
        redis_server.kill()
        with capture_logs() as logs:
            down = await first.get("/h/kv/shared2")
        assert down.status_code == 502 and "unavailable" in down.text
        assert any(entry["event"] == "redis.down" for entry in logs)
        redis_server.start()
        assert (await first.put("/h/kv/back", content=b"up")).status_code == 204  # the pool reconnects
        assert (await second.get("/h/kv/back")).text == "up"


def test_redis_kv_without_redis_stops_startup(loader_name: str, dist: Path, tmp_path: Path) -> None:
    config = hostcalls_config(dist, tmp_path / "cache", kv={"backend": "redis"})
    with pytest.raises(StartupError, match="needs a Redis link: enable the redis plugin and set its url"):
        redis_app(loader_name, config, "")
