"""The health plugin.

- `GET /health` → `200 {"status": "ok"}`
- `GET /healthz` → liveness: `200 {"status": "alive"}` while the process serves
- `GET /readyz` → readiness: `200` once every plugin started and every
  readiness probe other plugins contribute (`wasmkernel_readiness`, a hook
  this plugin adds) is ready, otherwise `503` (for load balancers and
  Kubernetes probes). Anyone sees the status; what is missing and each
  probe's detail (e.g. the WebAssembly host's modules and tasks) are shown
  only to a local view (a loopback client whose request no proxy forwarded)
  or an authenticated one (credentials are checked when presented).

Config: none.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, Literal

import attrs
import pluggy

from wasmkernel import Application, AuthRequirement, ConfiguredPlugin, JSONResponse, NoConfig, Request, ResponseSpec, Route, hookimpl
from wasmkernel_health import hookspecs


@attrs.frozen
class Health:
    """The service answers."""

    status: Literal["ok"] = "ok"


@attrs.frozen
class Liveness:
    """The process serves."""

    status: Literal["alive"] = "alive"


#: `/readyz`'s body, ready (200) or not (503): each probe's detail under its name.
READINESS = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not ready", "starting"]},
        "failed_plugins": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Optional plugins that failed to start, with why."},
    },
    "additionalProperties": True,
}


HEALTHY = Health()
ALIVE = Liveness()


class Plugin(ConfiguredPlugin[NoConfig]):
    config_class = NoConfig
    order = 31
    probes: dict[str, Callable[[], tuple[bool, Any]]]

    @hookimpl
    def wasmkernel_addhooks(self, pluginmanager: pluggy.PluginManager) -> None:
        pluginmanager.add_hookspecs(hookspecs)

    def configured(self) -> None:
        self.probes = {}

    @hookimpl
    def wasmkernel_startup(self, app: Application) -> None:
        for _, found in app.hooks.each("wasmkernel_readiness"):
            self.probes.update(found or {})

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [
            Route("/health", self.health, name="health", summary="Service health", tags=("health",), responses={200: Health}),
            Route("/healthz", self.alive, name="healthz", summary="Liveness probe", tags=("health",), responses={200: Liveness}),
            Route(
                "/readyz",
                self.ready,
                name="readyz",
                summary="Readiness probe",
                tags=("health",),
                auth=AuthRequirement(required=False, identify=True),
                responses={200: ResponseSpec("Ready", schema=READINESS), 503: ResponseSpec("Not ready (yet)", schema=READINESS)},
            ),
        ]

    async def health(self, request: Request) -> Health:
        return HEALTHY

    async def alive(self, request: Request) -> Liveness:
        return ALIVE

    async def ready(self, request: Request) -> JSONResponse:
        ready = self.app.ready
        body: dict[str, Any] = {}
        if self.app.failed_plugins:
            body["failed_plugins"] = dict(self.app.failed_plugins)
        for name, probe in self.probes.items():
            ok, body[name] = probe()
            ready = ready and ok
        status = {"status": "ready" if ready else ("not ready" if self.app.ready else "starting")}
        return JSONResponse({**status, **body} if _detailed(request) else status, status=200 if ready else 503)


#: Headers a proxy adds: a request carrying one came through a proxy, whatever its peer address.
_FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")


def _detailed(request: Request) -> bool:
    """Whether `request` may see the probes' details: authenticated, or from
    loopback without a proxy's forwarding headers."""
    if request.identity is not None:
        return True
    try:
        local = ipaddress.ip_address(request.client_host).is_loopback
    except ValueError:
        return False
    return local and not any(name in request.headers for name in _FORWARDED)
