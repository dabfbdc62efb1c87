"""Starting and stopping an application's plugins (inside the ASGI lifespan)."""

from __future__ import annotations

import graphlib
import inspect
from typing import TYPE_CHECKING

import structlog

from wasmkernel.errors import PluginLoadError, ServiceUnavailable, StartupError
from wasmkernel.plugins import LoadedPlugin
from wasmkernel.registry import topological
from wasmkernel.responses import Response

if TYPE_CHECKING:
    from wasmkernel.app import Application

log = structlog.get_logger("wasmkernel")


def startup_order(app: Application) -> list[LoadedPlugin]:
    """Plugin order, except that a plugin that got a service starts after its provider."""
    by_name = {plugin.name: plugin for plugin in app.plugins}
    try:
        return [by_name[name] for name in topological(by_name, sorted(app.services.dependencies))]
    except graphlib.CycleError as exc:
        raise StartupError(f"plugins need each other's services in a cycle: {' -> '.join(exc.args[1])}") from None


async def _await_hook(app: Application, plugin: LoadedPlugin, hook: str) -> None:
    _, result = app.hooks.call(plugin, hook)
    if inspect.isawaitable(result):
        await result


async def startup(app: Application) -> None:
    """Start every plugin in `startup_order`: a failure stops startup, but an
    optional plugin's only disables it (its routes answer 503)."""
    for plugin in startup_order(app):
        try:
            await _await_hook(app, plugin, "wasmkernel_startup")
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if not plugin.entry.optional:
                raise PluginLoadError(f"plugin '{plugin.name}' failed to start: {reason}") from exc
            log.warning("plugin.startup_failed", plugin=plugin.name, error=reason, optional=True)
            app.failed_plugins[plugin.name] = reason
            _disable_routes_of(app, plugin.name, reason)
            continue
        app.started.append(plugin)
    app.ready = True
    log.info("app.started", plugins=[p.name for p in app.started], failed=sorted(app.failed_plugins), routes=len(app.router.routes))


def _disable_routes_of(app: Application, owner: str, reason: str) -> None:
    from wasmkernel.assembly import route_chain

    async def unavailable(connection: object) -> Response:
        raise ServiceUnavailable(f"plugin '{owner}' is unavailable: {reason}")

    for route in app.router.routes:
        if route.owner == owner:
            app.chains[route] = route_chain(app, route, unavailable)


async def shutdown(app: Application) -> None:
    """Stop started plugins in reverse order; never raises."""
    app.ready = False
    for plugin in reversed(app.started):
        try:
            await _await_hook(app, plugin, "wasmkernel_shutdown")
        except Exception:
            log.exception("plugin.shutdown_failed", plugin=plugin.name)
    app.started.clear()
