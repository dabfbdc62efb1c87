"""Assembling an application from a registry, and serving it over ASGI.

Assembly happens once: plugins are loaded and configured, offer their
services, then are asked for routes, the router, middleware, authenticators,
policies and metric sources; each route's handler chain is compiled. The per-request
path is then: router lookup → that route's precompiled chain → endpoint.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Literal

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
from kernel.registry import Registry, load_registry, resolve_secrets
from kernel.responses import InvalidResponse, JSONResponse, Response, Send, to_response
from kernel.routing import WEBSOCKET, Endpoint, MatchKind, Route, RouteMatch, Router
from kernel.services import Services
from kernel.websocket import WebSocket, websocket_handler

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


#: Renders an error (and, for a 500, the exception behind it) as a response.
ErrorRenderer = Callable[[Request, HTTPError, "Exception | None"], Response]


def render_error(request: Request, error: HTTPError, cause: Exception | None) -> Response:
    """The kernel's error body, used when no plugin renders errors."""
    body: dict[str, Any] = {"status": error.status, "message": error.detail, **error.extra}
    if error.status >= 500:
        body["error_id"] = request.id
    return JSONResponse(body, status=error.status, headers=error.headers)


#: Route protections and the plugins that enforce them (for startup errors).
PROTECTIONS = {"auth": "authz", "schema": "validation"}


def protections(route: Route) -> set[str]:
    """What `route` declares that some middleware must enforce."""
    needed = set()
    if route.auth is not None and (route.auth.required or route.auth.scopes or route.auth.roles):
        needed.add("auth")
    if route.body_schema is not None or route.query_schema is not None or route.path_schema is not None:
        needed.add("schema")
    return needed


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
    services: Services = attrs.field(factory=Services)
    metric_sources: tuple[MetricSource, ...] = ()
    #: Secrets left unset (assembled with ``secrets="placeholder"``: the CLI's listings).
    unset_secrets: list[str] | None = None
    #: Plugins marked optional whose startup failed: name → reason.
    failed_plugins: dict[str, str] = attrs.field(factory=dict)
    #: Why the last lifespan startup failed, if it did.
    startup_error: str | None = None
    #: True once every startup hook ran (used by readiness probes).
    ready: bool = False
    #: Free storage for plugins, e.g. to share objects between their hooks.
    state: dict[str, Any] = attrs.field(factory=dict)
    _nursery: trio.Nursery | None = None
    render_error: ErrorRenderer = render_error
    _chains: dict[Route, Handler] = attrs.field(factory=dict)
    _fallback: Handler = _unrouted
    _started: list[plugin_loading.LoadedPlugin] = attrs.field(factory=list)

    # -- assembly ------------------------------------------------------------

    @classmethod
    def assemble(cls, registry: Registry, extra_plugins: Mapping[str, Any] | None = None, secrets: Literal["strict", "placeholder"] = "strict") -> Application:
        """Load, configure and ask every enabled plugin; compile the chains.

        `extra_plugins` provides in-memory plugin objects for registry names
        (tests, embedding); they are enabled, ordered and configured like
        installed ones. ``secrets="placeholder"`` (for listing and checking,
        never for serving) replaces unresolvable secrets with `UnsetSecret`s
        recorded in `unset_secrets`."""
        manager = plugin_loading.new_manager()
        app = cls(registry=registry, manager=manager, plugins=plugin_loading.load_enabled(registry, manager, extra_plugins))
        app.unset_secrets = [] if secrets == "placeholder" else None
        app._configure()
        for plugin, offered in app._each("wasmkernel_services", app=app):
            for key, service in offered or ():
                app.services.offer(key, service, provider=plugin.name)
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
            config = resolve_secrets(dict(plugin.entry.config), self.registry.path.parent, where, self.unset_secrets)
            try:
                plugin_loading.call_plugin(self.manager, plugin.instance, "wasmkernel_configure", config=config, app=self)
            except ConfigError as exc:
                key = f"config.{exc.key}" if exc.key else "config"
                raise RegistryError(f"{self.registry.where(plugin.name, key)}: {exc.message}") from None
            except StartupError:
                raise
            except Exception as exc:
                raise PluginLoadError(f"plugin '{plugin.name}' failed to configure: {type(exc).__name__}: {exc}") from exc
        configured = any(done for _, done in self._each("wasmkernel_configure_logging", app=self))
        if not configured and not structlog.is_configured():
            # structlog's default console renderer prints frame locals with rich: never do.
            structlog.configure(
                processors=[*structlog.get_config()["processors"][:-1], structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)]
            )

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
        self.metric_sources = tuple(s for _, found in self._each("wasmkernel_metric_sources", app=self) for s in found or ())
        for _, renderer in self._each("wasmkernel_error_renderer", app=self):
            if renderer is not None:
                self.render_error = renderer
                break

    def _compile(self) -> None:
        enforced = {protection for link in self.middleware for protection in link.enforces}
        for route in self.router.routes:
            endpoint = websocket_handler(route.endpoint) if route.websocket else endpoint_handler(route.endpoint)
            self._chains[route] = build_chain(endpoint, route, self.middleware, self.guard)
            for missing in sorted(protections(route) - enforced):
                message = f"route '{route.name}' of plugin '{route.owner}' declares {missing} checks no enabled plugin enforces: enable {PROTECTIONS[missing]}"
                if not self.registry.allow_unenforced:
                    raise StartupError(message + " (or set allow_unenforced = true under [kernel] to serve it unchecked)")
                log.warning("route.unenforced", route=route.name, protection=missing, message=message)
        self._fallback = build_chain(_unrouted, None, self.middleware, self.guard)

    def guard(self, handler: Handler) -> Handler:
        """`handler`, with whatever it raises turned into a response: the one
        place an `HTTPError` (or a crash, logged with its error id) becomes
        what the client receives."""
        render = self.render_error

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except ClientDisconnected:
                raise
            except HTTPError as exc:
                response = render(request, exc, None)
                response.error = exc
            except Exception as exc:
                route = request.route.name if request.route is not None else None
                log.exception("request.failed", route=route, method=request.method, path=request.path, error_id=request.id)
                response = render(request, HTTPError("Internal server error"), exc)
                response.error = exc
            return response

        return guarded

    def _disable_routes_of(self, owner: str, reason: str) -> None:
        async def unavailable(request: Request) -> Response:
            raise ServiceUnavailable(f"plugin '{owner}' is unavailable: {reason}")

        for route in self.router.routes:
            if route.owner == owner:
                self._chains[route] = build_chain(unavailable, route, self.middleware, self.guard)

    # -- lifecycle -------------------------------------------------------------

    @property
    def nursery(self) -> trio.Nursery:
        """A nursery living as long as the application (for background tasks)."""
        if self._nursery is None:
            raise RuntimeError("the application is not running (no lifespan started)")
        return self._nursery

    def startup_order(self) -> list[plugin_loading.LoadedPlugin]:
        """Plugin order, except that a service's provider starts before the
        plugins that got its service."""
        providers: dict[str, set[str]] = {}
        for provider, consumer in self.services.dependencies:
            providers.setdefault(consumer, set()).add(provider)
        by_name = {plugin.name: plugin for plugin in self.plugins}
        ordered: dict[str, plugin_loading.LoadedPlugin] = {}

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in path:
                raise StartupError(f"plugins need each other's services in a cycle: {' -> '.join((*path, name))}")
            if name not in ordered:
                for provider in sorted(providers.get(name, ()), key=list(by_name).index):
                    visit(provider, (*path, name))
                ordered[name] = by_name[name]

        for plugin in self.plugins:
            visit(plugin.name, ())
        return list(ordered.values())

    async def startup(self, nursery: trio.Nursery) -> None:
        """Start every plugin in `startup_order`."""
        self._nursery = nursery
        for plugin in self.startup_order():
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
        """Stop started plugins in reverse order; never raises."""
        self.ready = False
        for plugin in reversed(self._started):
            try:
                _, result = plugin_loading.call_plugin(self.manager, plugin.instance, "wasmkernel_shutdown", app=self)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("plugin.shutdown_failed", plugin=plugin.name)
        self._started.clear()
        self._nursery = None

    # -- ASGI --------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.handle_http(scope, receive, send)
        elif kind == "websocket":
            await self.handle_websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        async with trio.open_nursery() as nursery:
            try:
                await self.startup(nursery)
            except Exception as exc:
                log.error("app.startup_failed", error=str(exc))
                self.startup_error = str(exc)
                await self.shutdown()
                from kernel.server import report_startup_failure

                report_startup_failure(str(exc))
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
        await self._handle(request, self.router.match(request.method, request.path), send)

    async def handle_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The chain runs around the whole connection; the session's reader and
        sender tasks live in this nursery (see `kernel.websocket`)."""
        ws = WebSocket(scope, receive, id=secrets.token_hex(8), asgi_send=send)
        match = self.router.match(WEBSOCKET, ws.path)
        if match.kind is MatchKind.METHOD_NOT_ALLOWED:
            match = RouteMatch(MatchKind.NOT_FOUND)
        async with trio.open_nursery() as nursery:
            ws.nursery = nursery
            await self._handle(ws, match, send)

    async def _handle(self, request: Request, match: RouteMatch, send: Send) -> None:
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
            response = await handler(request)  # a guarded chain: it raises nothing else
        except ClientDisconnected:
            return
        if isinstance(request, WebSocket):
            send = await request.finish(response)
            if request.accepted:
                return  # the session is over: its 101 placeholder is not sent
        include_body = request.method != "HEAD"
        try:
            await response.send(send, include_body=include_body)
        except InvalidResponse as exc:
            # Refused before anything went out: the server's protocol layer
            # never sees it, so it has no error of its own to trip on.
            log.error("response.invalid", error_id=request.id, path=request.path, reason=str(exc))
            await self._send_safely(request, self._internal_error(request), send, include_body)
        except Exception as exc:
            self._log_send_failure(request, exc)

    def _internal_error(self, request: Request) -> Response:
        return self.render_error(request, HTTPError("Internal server error"), None)

    async def _send_safely(self, request: Request, response: Response, send: Send, include_body: bool) -> None:
        try:
            await response.send(send, include_body=include_body)
        except Exception as exc:
            self._log_send_failure(request, exc)

    @staticmethod
    def _log_send_failure(request: Request, exc: Exception) -> None:
        """Log a failed send once (called while handling it); the error is
        swallowed: none may reach the server, which would answer again on a
        broken stream."""
        if isinstance(exc, (OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError)):
            # The connection went away, or the server is already answering a
            # malformed request on it (hypercorn's own 400): nothing to send.
            log.info("response.not_sent", reason=type(exc).__name__)
        else:
            # E.g. a streaming body failed after its headers went out.
            log.exception("response.send_failed", error_id=request.id, path=request.path)

    @staticmethod
    def _routing_error(match: RouteMatch) -> HTTPError:
        if match.kind is MatchKind.METHOD_NOT_ALLOWED:
            return MethodNotAllowed(match.allowed)
        return NotFound("No route matches this path")


def load_application(registry_path: str | None = None) -> Application:
    """Parse the registry (default: $WASMKERNEL_REGISTRY or
    ./plugin_registry.toml) and assemble its application."""
    return Application.assemble(load_registry(registry_path))
