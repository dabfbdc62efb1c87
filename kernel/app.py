"""Assembling an application from a registry, and serving it over ASGI.

Assembly happens once: plugins are loaded and configured, then asked for
routes, the router, middleware, authenticators, policies, the module loader
and metric sources; each route's handler chain is compiled. The per-request
path is then: router lookup → that route's precompiled chain → endpoint.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import attrs
import pluggy
import structlog
import trio

from kernel import plugins as plugin_loading
from kernel.auth import AccessPolicy, Authenticator
from kernel.errors import (
    ConfigError,
    HTTPError,
    MethodNotAllowed,
    NotFound,
    PluginLoadError,
    RegistryError,
    ServiceUnavailable,
    StartupError,
)
from kernel.http import ClientDisconnected, Request
from kernel.metrics import MetricSource
from kernel.middleware import Handler, Middleware, build_chain
from kernel.readiness import ReadinessCheck
from kernel.registry import Registry, load_registry, resolve_secrets
from kernel.responses import JSONResponse, Response, Send, to_response
from kernel.routing import Endpoint, MatchKind, Route, RouteMatch, Router
from kernel.wasm import ModuleLoader

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

log = structlog.get_logger("wasmkernel")

ROUTING_ERROR = "kernel.routing_error"


class _NoRouter:
    """Used when no plugin provides a router: nothing is found."""

    routes: tuple[Route, ...] = ()

    def match(self, method: str, path: str) -> RouteMatch:
        return RouteMatch(MatchKind.NOT_FOUND)


def endpoint_handler(endpoint: Endpoint) -> Handler:
    """Adapt an endpoint (sync or async, any return type) into a `Handler`.

    Sync endpoints run in a worker thread so they never block the event loop.
    """
    if inspect.iscoroutinefunction(endpoint) or inspect.iscoroutinefunction(type(endpoint).__call__):

        async def call_async(request: Request) -> Response:
            return to_response(await endpoint(request))

        return call_async

    async def call_sync(request: Request) -> Response:
        return to_response(await trio.to_thread.run_sync(endpoint, request))

    return call_sync


async def _unrouted(request: Request) -> Response:
    """The endpoint of the fallback chain: raises the router's 404/405."""
    raise request.state[ROUTING_ERROR]


def error_body(exc: HTTPError, error_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": exc.status, "message": exc.detail, **exc.extra}
    if error_id:
        body["error_id"] = error_id
    return body


@attrs.define(eq=False)
class Application:
    """One assembled application; an ASGI 3 callable (HTTP and lifespan).

    Build it with `Application.assemble(registry)` or `load_application`.
    Everything a plugin may need at startup is an attribute here.
    """

    registry: Registry
    manager: pluggy.PluginManager
    plugins: list[plugin_loading.LoadedPlugin]
    routes: list[Route] = attrs.field(factory=list)
    router: Router = attrs.field(factory=_NoRouter)
    middleware: tuple[Middleware, ...] = ()
    authenticators: tuple[Authenticator, ...] = ()
    access_policies: tuple[AccessPolicy, ...] = ()
    module_loader: ModuleLoader | None = None
    metric_sources: tuple[MetricSource, ...] = ()
    readiness_checks: tuple[ReadinessCheck, ...] = ()
    #: Plugins marked optional whose startup failed: name → reason.
    failed_plugins: dict[str, str] = attrs.field(factory=dict)
    #: True once every startup hook ran (used by readiness probes).
    ready: bool = False
    #: Free storage for plugins, e.g. to share objects between their hooks.
    state: dict[str, Any] = attrs.field(factory=dict)
    _nursery: trio.Nursery | None = None
    _chains: dict[Route, Handler] = attrs.field(factory=dict)
    _fallback: Handler = _unrouted
    _started: list[plugin_loading.LoadedPlugin] = attrs.field(factory=list)

    # -- assembly ------------------------------------------------------------

    @classmethod
    def assemble(cls, registry: Registry, extra_plugins: Mapping[str, Any] | None = None) -> Application:
        """Load, configure and ask every enabled plugin; compile the chains.

        `extra_plugins` provides in-memory plugin objects for registry names
        (tests, embedding); they are enabled, ordered and configured like
        installed ones."""
        manager = plugin_loading.new_manager()
        app = cls(registry=registry, manager=manager, plugins=plugin_loading.load_enabled(registry, manager, extra_plugins))
        app._configure()
        app._collect()
        app._compile()
        return app

    def _each(self, hook: str, **kwargs: Any) -> list[tuple[plugin_loading.LoadedPlugin, Any]]:
        """Call `hook` plugin by plugin in registry order; (plugin, result)
        pairs. An exception stops assembly with the plugin's name."""
        results = []
        for plugin in self.plugins:
            try:
                implemented, result = plugin_loading.call_plugin(self.manager, plugin.instance, hook, **kwargs)
            except StartupError:
                raise
            except Exception as exc:
                raise PluginLoadError(f"plugin '{plugin.name}' failed in {hook}: {type(exc).__name__}: {exc}") from exc
            if implemented:
                results.append((plugin, result))
        return results

    def _configure(self) -> None:
        for plugin in self.plugins:
            where = self.registry.where(plugin.name, "config")
            config = resolve_secrets(dict(plugin.entry.config), self.registry.path.parent, where)
            try:
                plugin_loading.call_plugin(self.manager, plugin.instance, "wasmkernel_configure", config=config, app=self)
            except ConfigError as exc:
                key = f"config.{exc.key}" if exc.key else "config"
                raise RegistryError(f"{self.registry.where(plugin.name, key)}: {exc.message}") from None
            except StartupError:
                raise
            except Exception as exc:
                raise PluginLoadError(f"plugin '{plugin.name}' failed to configure: {type(exc).__name__}: {exc}") from exc
        for _plugin, configured in self._each("wasmkernel_configure_logging", app=self):
            if configured:
                break

    def _collect(self) -> None:
        for plugin, routes in self._each("wasmkernel_routes", app=self):
            self.routes += [attrs.evolve(route, owner=plugin.name) for route in routes or ()]
        for _, router in self._each("wasmkernel_router", routes=tuple(self.routes), app=self):
            if router is not None:
                self.router = router
                break
        chain: list[Middleware] = []
        for plugin, links in self._each("wasmkernel_middleware", app=self):
            chain += [attrs.evolve(link, owner=plugin.name) for link in links or ()]
        self.middleware = tuple(chain)
        self.authenticators = tuple(a for _, found in self._each("wasmkernel_authenticators", app=self) for a in found or ())
        self.access_policies = tuple(p for _, found in self._each("wasmkernel_access_policies", app=self) for p in found or ())
        for _, loader in self._each("wasmkernel_module_loader", app=self):
            if loader is not None:
                self.module_loader = loader
                break
        self.metric_sources = tuple(s for _, found in self._each("wasmkernel_metric_sources", app=self) for s in found or ())
        self.readiness_checks = tuple(c for _, found in self._each("wasmkernel_readiness_checks", app=self) for c in found or ())

    def _compile(self) -> None:
        for route in self.router.routes:
            self._chains[route] = build_chain(endpoint_handler(route.endpoint), route, self.middleware)
        self._fallback = build_chain(_unrouted, None, self.middleware)

    def _disable_routes_of(self, owner: str, reason: str) -> None:
        async def unavailable(request: Request) -> Response:
            raise ServiceUnavailable(f"plugin '{owner}' is unavailable: {reason}")

        for route in self.router.routes:
            if route.owner == owner:
                self._chains[route] = build_chain(unavailable, route, self.middleware)

    # -- lifecycle -------------------------------------------------------------

    @property
    def nursery(self) -> trio.Nursery:
        """A nursery living as long as the application (for background tasks)."""
        if self._nursery is None:
            raise RuntimeError("the application is not running (no lifespan started)")
        return self._nursery

    async def startup(self, nursery: trio.Nursery) -> None:
        """Start the module loader, then every plugin in order."""
        self._nursery = nursery
        if self.module_loader is not None:
            await self.module_loader.start()
        for plugin in self.plugins:
            try:
                _, result = plugin_loading.call_plugin(self.manager, plugin.instance, "wasmkernel_startup", app=self)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if not plugin.entry.optional:
                    raise PluginLoadError(f"plugin '{plugin.name}' failed to start: {reason}") from exc
                log.warning("plugin.startup_failed", plugin=plugin.name, error=reason, optional=True)
                self.failed_plugins[plugin.name] = reason
                self._disable_routes_of(plugin.name, reason)
                continue
            self._started.append(plugin)
        self.ready = True
        log.info("app.started", plugins=[p.name for p in self._started], failed=sorted(self.failed_plugins), routes=len(self.router.routes))

    async def shutdown(self) -> None:
        """Stop plugins in reverse order, then the module loader; never raises."""
        self.ready = False
        for plugin in reversed(self._started):
            try:
                _, result = plugin_loading.call_plugin(self.manager, plugin.instance, "wasmkernel_shutdown", app=self)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("plugin.shutdown_failed", plugin=plugin.name)
        self._started.clear()
        if self.module_loader is not None:
            try:
                await self.module_loader.stop()
            except Exception:
                log.exception("module_loader.stop_failed")
        self._nursery = None

    # -- ASGI --------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.handle_http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        # websocket: not served; returning closes the connection.

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        async with trio.open_nursery() as nursery:
            try:
                await self.startup(nursery)
            except Exception as exc:
                log.error("app.startup_failed", error=str(exc))
                await self.shutdown()
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                nursery.cancel_scope.cancel()
                return
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
            await self.shutdown()
            nursery.cancel_scope.cancel()
        await send({"type": "lifespan.shutdown.complete"})

    async def handle_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, id=secrets.token_hex(8))
        match = self.router.match(request.method, request.path)
        if match.kind is MatchKind.FOUND and match.route is not None:
            request.route = match.route
            request.path_params = dict(match.params)
            if match.route.max_body_size is not None:
                request.max_body_size = match.route.max_body_size
            handler = self._chains[match.route]
        else:
            request.state[ROUTING_ERROR] = self._routing_error(match)
            handler = self._fallback
        # Every log line of this request carries its id (rebound by the
        # request-id plugin when the client sent one).
        tokens = structlog.contextvars.bind_contextvars(request_id=request.id)
        try:
            await self._respond(request, handler, send)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)

    async def _respond(self, request: Request, handler: Handler, send: Send) -> None:
        try:
            response = await handler(request)
        except ClientDisconnected:
            return
        except HTTPError as exc:
            response = JSONResponse(error_body(exc), status=exc.status, headers=exc.headers)
        except Exception:
            error_id = request.id
            log.exception("request.failed", method=request.method, path=request.path, error_id=error_id)
            response = JSONResponse(error_body(HTTPError("Internal server error"), error_id), status=500)
        try:
            await response.send(send, include_body=request.method != "HEAD")
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
            # The connection went away, or the server is already answering a
            # malformed request on it (hypercorn's own 400): nothing to send.
            log.info("response.not_sent")
        except Exception:
            # A streaming body failed after its headers went out: nothing can
            # be sent any more; log it once and let the server close the stream.
            log.exception("response.stream_failed", error_id=request.id, path=request.path)

    @staticmethod
    def _routing_error(match: RouteMatch) -> HTTPError:
        if match.kind is MatchKind.METHOD_NOT_ALLOWED:
            return MethodNotAllowed(match.allowed)
        return NotFound("No route matches this path")


def load_application(registry_path: str | None = None) -> Application:
    """Parse the registry (default: $WASMKERNEL_REGISTRY or
    ./plugin_registry.toml) and assemble its application."""
    return Application.assemble(load_registry(registry_path))
