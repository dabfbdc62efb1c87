from __future__ import annotations

from typing import Any

import pytest

from wasmkernel import Application, StartupError, hookimpl
from wasmkernel.testing import app_from, running


class Probe:
    """A plugin contributing a readiness probe it can flip."""

    def __init__(self) -> None:
        self.ok = True

    @hookimpl(optionalhook=True)
    def wasmkernel_readiness(self, app: Application) -> dict[str, Any]:
        return {"queue": lambda: (self.ok, {"connected": self.ok})}


class Broken:
    @hookimpl
    def wasmkernel_startup(self, app: Application) -> None:
        raise RuntimeError("no disk")


async def test_health_and_liveness() -> None:
    async with running(app_from({"router": {}, "health": {}})) as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
        assert (await client.get("/healthz")).json() == {"status": "alive"}
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_readiness_follows_every_probe() -> None:
    probe = Probe()
    async with running(app_from({"router": {}, "health": {}, "probe": {}}, extra_plugins={"probe": probe})) as client:
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready", "queue": {"connected": True}})
        probe.ok = False
        down = await client.get("/readyz")
        assert (down.status_code, down.json()) == (503, {"status": "not ready", "queue": {"connected": False}})
        assert (await client.get("/healthz")).status_code == 200


async def test_readiness_before_startup_and_with_a_failed_optional_plugin() -> None:
    app = app_from({"router": {}, "health": {}, "broken": {"optional": True}}, extra_plugins={"broken": Broken()})
    async with running(app) as client:
        body = (await client.get("/readyz")).json()
        assert body == {"status": "ready", "failed_plugins": {"broken": "RuntimeError: no disk"}}
        app.ready = False
        starting = await client.get("/readyz")
        assert (starting.status_code, starting.json()["status"]) == (503, "starting")


def test_config_takes_no_keys() -> None:
    with pytest.raises(StartupError, match=r"\[plugins.health\] config: unknown key\(s\): path \(allowed: none\)"):
        app_from({"health": {"config": {"path": "/up"}}})


async def test_readiness_details_only_for_a_local_or_authenticated_view() -> None:
    """Issue 22 class 15: anyone sees the status, not what the probes say
    (module names, task errors): a remote client, or a local one whose
    request a proxy forwarded, gets the status alone."""
    probe = Probe()
    app = app_from({"router": {}, "health": {}, "probe": {}}, extra_plugins={"probe": probe})
    async with running(app, client=("203.0.113.9", 4000)) as remote:
        assert (await remote.get("/readyz")).json() == {"status": "ready"}
        probe.ok = False
        down = await remote.get("/readyz")
        assert (down.status_code, down.json()) == (503, {"status": "not ready"})
    async with running(app) as local:
        assert (await local.get("/readyz")).json() == {"status": "not ready", "queue": {"connected": False}}
        proxied = await local.get("/readyz", headers={"x-forwarded-for": "203.0.113.9"})
        assert proxied.json() == {"status": "not ready"}
