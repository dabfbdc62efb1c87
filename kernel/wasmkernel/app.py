"""The application: what assembly built (`wasmkernel.assembly`), started and
stopped by `wasmkernel.lifecycle`, served by the ASGI adapter
(`wasmkernel.adapter`), errors answered by its boundary (`wasmkernel.boundary`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import trio

from wasmkernel import adapter, lifecycle
from wasmkernel.boundary import ErrorBoundary
from wasmkernel.hooks import Hooks
from wasmkernel.middleware import Handler, Middleware, WebSocketHandler
from wasmkernel.plugins import LoadedPlugin
from wasmkernel.registry import Registry, load_registry
from wasmkernel.routing import MatchKind, Route, RouteMatch, Router
from wasmkernel.services import Services


class _NoRouter:
    """Used when no plugin provides a router: nothing is found."""

    routes: tuple[Route, ...] = ()

    def match(self, method: str, path: str) -> RouteMatch:
        return RouteMatch(MatchKind.NOT_FOUND)


@attrs.define(eq=False)
class Application:
    """One assembled application, an ASGI 3 callable (HTTP, WebSocket,
    lifespan), built by `Application.assemble(registry)` or `load_application`."""

    registry: Registry
    #: The one way to call hooks: ``app.hooks.each/gather/first`` (see `wasmkernel.hooks`).
    hooks: Hooks
    services: Services = attrs.field(factory=Services)
    routes: list[Route] = attrs.field(factory=list)
    router: Router = attrs.field(factory=_NoRouter)
    middleware: tuple[Middleware, ...] = ()
    boundary: ErrorBoundary = attrs.field(factory=ErrorBoundary)
    #: Each route's compiled chain (HTTP or WebSocket), and the chains answering 404/405.
    chains: dict[Route, Any] = attrs.field(factory=dict, repr=False)
    fallback: Handler | None = attrs.field(default=None, repr=False)
    websocket_fallback: WebSocketHandler | None = attrs.field(default=None, repr=False)
    #: Plugins marked optional whose startup failed: name → reason.
    failed_plugins: dict[str, str] = attrs.field(factory=dict)
    #: Why the last lifespan startup failed, if it did.
    startup_error: str | None = None
    #: True once every startup hook ran (used by readiness probes).
    ready: bool = False
    started: list[LoadedPlugin] = attrs.field(factory=list, repr=False)
    _nursery: trio.Nursery | None = attrs.field(default=None, repr=False)

    @classmethod
    def assemble(cls, registry: Registry, extra_plugins: Mapping[str, Any] | None = None) -> Application:
        """Load, configure and ask every enabled plugin; compile the chains.
        `extra_plugins` maps registry names to in-memory plugin objects (tests,
        embedding), used like installed ones."""
        from wasmkernel.assembly import assemble

        return assemble(cls, registry, extra_plugins)

    @property
    def plugins(self) -> Sequence[LoadedPlugin]:
        """The enabled plugins, in plugin order."""
        return self.hooks.plugins

    @property
    def nursery(self) -> trio.Nursery:
        """A nursery living as long as the application (for background tasks)."""
        if self._nursery is None:
            raise RuntimeError("the application is not running (no lifespan started)")
        return self._nursery

    def startup_order(self) -> list[LoadedPlugin]:
        """Plugin order, except that a plugin that got a service starts after its provider."""
        return lifecycle.startup_order(self)

    async def startup(self, nursery: trio.Nursery) -> None:
        """Start every plugin in `startup_order`; `nursery` becomes `self.nursery`."""
        self._nursery = nursery
        await lifecycle.startup(self)

    async def shutdown(self) -> None:
        """Stop started plugins in reverse order; never raises."""
        await lifecycle.shutdown(self)
        self._nursery = None

    __call__ = adapter.serve


def load_application(registry_path: str | None = None) -> Application:
    """Parse the registry (default: $WASMKERNEL_REGISTRY or
    ./plugin_registry.toml) and assemble its application."""
    return Application.assemble(load_registry(registry_path))
