"""Assembly, once per application: plugins are loaded, configured and asked
for their services, routes, router, middleware, error mappings and renderer;
then each route's chain is compiled. Per request: router lookup → that
route's chain → endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import structlog

from wasmkernel import plugins as plugin_loading
from wasmkernel.connection import Connection
from wasmkernel.endpoints import endpoint_handler
from wasmkernel.errors import ConfigError, HTTPError, RegistryError, StartupError
from wasmkernel.hooks import Hooks, blamed
from wasmkernel.middleware import WebSocketHandler, build_chain
from wasmkernel.registry import Registry, resolve_secrets
from wasmkernel.responses import Response
from wasmkernel.routing import Route, protections
from wasmkernel.stash import StashKey
from wasmkernel.websocket import websocket_handler

if TYPE_CHECKING:
    from wasmkernel.app import Application

A = TypeVar("A", bound="Application")
log = structlog.get_logger("wasmkernel")


#: The router's 404/405 for a connection no route matched.
ROUTING_ERROR: StashKey[HTTPError] = StashKey("routing error")


async def unrouted(connection: Connection) -> Response:
    """The endpoint of the fallback chains: raises the router's 404/405."""
    raise connection.stash[ROUTING_ERROR]


def assemble(cls: type[A], registry: Registry, extra_plugins: Mapping[str, Any] | None = None) -> A:
    manager = plugin_loading.new_manager()
    hooks = Hooks(manager, plugin_loading.load_enabled(registry, manager, extra_plugins))
    app = cls(registry=registry, hooks=hooks)
    hooks.app = app
    configure(app)
    for plugin, (key, service) in hooks.gather("wasmkernel_services"):
        app.services.offer(key, service, provider=plugin.name)
    app.routes = [attrs.evolve(route, owner=plugin.name) for plugin, route in hooks.gather("wasmkernel_routes")]
    app.router = hooks.first("wasmkernel_router", routes=tuple(app.routes)) or app.router
    app.middleware = tuple(attrs.evolve(link, owner=plugin.name) for plugin, link in hooks.gather("wasmkernel_middleware"))
    for plugin, mappings in hooks.each("wasmkernel_error_statuses"):
        app.boundary.add(mappings or {}, plugin.name)
    app.boundary.render = hooks.first("wasmkernel_error_renderer") or app.boundary.render
    compile_chains(app)
    return app


def configure(app: Application) -> None:
    registry = app.registry
    for plugin in app.plugins:
        config = resolve_secrets(dict(plugin.entry.config), registry.path.parent, registry.where(plugin.name, "config"))
        try:
            with blamed(plugin, "to configure"):
                app.hooks.call(plugin, "wasmkernel_configure", config=config)
        except ConfigError as exc:
            raise RegistryError(f"{registry.where(plugin.name, f'config.{exc.key}' if exc.key else 'config')}: {exc.message}") from None
    if not app.hooks.first("wasmkernel_configure_logging") and not structlog.is_configured():
        # structlog's default console renderer prints frame locals with rich: never do.
        structlog.configure(
            processors=[*structlog.get_config()["processors"][:-1], structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)]
        )


def route_chain(app: Application, route: Route, endpoint: Any) -> Any:
    """`route`'s chain around `endpoint` (a `Handler`, or a WebSocket one)."""
    return build_chain(endpoint, route, app.middleware, app.boundary.guard, websocket=route.websocket)


def compile_chains(app: Application) -> None:
    """Every route's chain; a protection a route declares and no middleware
    of its kind enforces stops startup (or is warned about, with `allow_unenforced`)."""
    status_of = app.boundary.status
    for route in app.router.routes:
        try:
            endpoint = websocket_handler(route.endpoint, status_of) if route.websocket else endpoint_handler(route)
        except (TypeError, ValueError) as exc:
            raise StartupError(f"route '{route.name}' of plugin '{route.owner}': {exc}") from None
        app.chains[route] = route_chain(app, route, endpoint)
        enforced = {key for link in app.middleware if link.wrapper(route.websocket) is not None for key in link.enforces}
        for missing in sorted(protections(route) - enforced, key=lambda key: key.name):
            hint = f": {missing.hint}" if missing.hint else ""
            message = f"route '{route.name}' of plugin '{route.owner}' declares {missing.name} no enabled plugin enforces{hint}"
            if not app.registry.allow_unenforced:
                raise StartupError(message + " (or set allow_unenforced = true under [kernel] to serve it unchecked)")
            log.warning("route.unenforced", route=route.name, protection=missing.name, message=message)
    websocket_unrouted: WebSocketHandler = unrouted
    app.fallback = build_chain(unrouted, None, app.middleware, app.boundary.guard)
    app.websocket_fallback = build_chain(websocket_unrouted, None, app.middleware, app.boundary.guard, websocket=True)
