"""/readyz reports every readiness check and answers 503 while a required one
has a problem."""

from __future__ import annotations

import attrs

from kernel import Application, ReadinessCheck, hookimpl
from kernel.testing import app_from, running


@attrs.define
class Check:
    name: str
    required: bool
    trouble: str | None = None

    def problem(self) -> str | None:
        return self.trouble


@attrs.define(eq=False)
class Checks:
    checks: list[Check]

    @hookimpl
    def wasmkernel_readiness_checks(self, app: Application) -> list[ReadinessCheck]:
        return list(self.checks)


def make_app(*checks: Check) -> Application:
    return app_from({"router": {}, "health": {}, "t": {}}, extra_plugins={"t": Checks(list(checks))})


async def test_ready_without_checks_lists_none() -> None:
    async with running(make_app()) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_a_required_problem_makes_it_unready_until_it_clears() -> None:
    backend = Check("backend", required=True, trouble="connection refused")
    extra = Check("cache", required=False)
    async with running(make_app(backend, extra)) as client:
        down = await client.get("/readyz")
        backend.trouble = None
        up = await client.get("/readyz")
    assert down.status_code == 503
    assert down.json() == {"status": "degraded", "checks": {"backend": "connection refused", "cache": "ok"}}
    assert up.status_code == 200
    assert up.json() == {"status": "ready", "checks": {"backend": "ok", "cache": "ok"}}


async def test_an_optional_problem_is_reported_only() -> None:
    async with running(make_app(Check("cache", required=False, trouble="timeout"))) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"cache": "timeout"}}
