"""The health plugin.

- `GET /health` → `200 {"status": "ok"}`
- `GET /healthz` → liveness: `200 {"status": "alive"}` while the process serves
- `GET /readyz` → readiness: `200` once every plugin started and WASM modules
  are loaded and no required readiness check (`app.readiness_checks`, e.g.
  Redis) reports a problem, otherwise `503` with what is missing (for load
  balancers and Kubernetes probes). Every check is listed under `checks`:
  `"ok"` or its problem.

Config: none.
"""

from __future__ import annotations

from typing import Any

import attrs

from kernel import Application, ConfiguredPlugin, JSONResponse, Request, Route, hookimpl


@attrs.frozen
class Config:
    """No options; unknown keys are refused."""


class Plugin(ConfiguredPlugin[Config]):
    config_class = Config

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [
            Route("/health", self.health, name="health", summary="Service health", tags=("health",)),
            Route("/healthz", self.alive, name="healthz", summary="Liveness probe", tags=("health",)),
            Route("/readyz", self.ready, name="readyz", summary="Readiness probe", tags=("health",)),
        ]

    async def health(self, request: Request) -> dict[str, str]:
        return {"status": "ok"}

    async def alive(self, request: Request) -> dict[str, str]:
        return {"status": "alive"}

    async def ready(self, request: Request) -> JSONResponse:
        problems = {check.name: (check.problem(), check.required) for check in self.app.readiness_checks}
        blocked = any(problem is not None and required for problem, required in problems.values())
        ready = self.app.ready and not blocked
        body: dict[str, Any] = {"status": "ready" if ready else "starting" if not self.app.ready else "degraded"}
        if problems:
            body["checks"] = {name: problem or "ok" for name, (problem, _) in problems.items()}
        if self.app.failed_plugins:
            body["failed_plugins"] = dict(self.app.failed_plugins)
        if self.app.module_loader is not None:
            body["wasm_modules"] = [module.name for module in self.app.module_loader.modules()]
        return JSONResponse(body, status=200 if ready else 503)
