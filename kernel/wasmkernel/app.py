"""Assembling an application from a registry, and serving it over ASGI.

Assembly happens once: plugins are loaded, configured and asked for their
services, routes, router, middleware, authenticators, policies and metric
sources, and each route's chain is compiled. Per request: router lookup →
that route's chain → endpoint.
"""

from __future__ import annotations

import contextlib
import graphlib
import inspect
import secrets
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from http import HTTPStatus
from typing import Any

import attrs
import pluggy
import structlog
import trio

from wasmkernel import plugins as plugin_loading
from wasmkernel.auth import AccessPolicy, Authenticator
from wasmkernel.endpoints import endpoint_handler
from wasmkernel.errors import ConfigError, HTTPError, MethodNotAllowed, NotFound, PluginLoadError, RegistryError, ServiceUnavailable, StartupError
from wasmkernel.http import ClientDisconnected, Receive, Request
from wasmkernel.metrics import MetricSource
from wasmkernel.middleware import Handler, Middleware, build_chain
from wasmkernel.registry import Registry, load_registry, resolve_secrets, topological
from wasmkernel.responses import GONE, InvalidResponse, JSONResponse, Response, Send
from wasmkernel.routing import WEBSOCKET, MatchKind, Route, RouteMatch, Router
from wasmkernel.services import Services
from wasmkernel.websocket import WebSocket, websocket_handler

Scope = MutableMapping[str, Any]
LoadedPlugin = plugin_loading.LoadedPlugin

log = structlog.get_logger("wasmkernel")

ROUTING_ERROR = "kernel.routing_error"


class _NoRouter:
    """Used when no plugin provides a router: nothing is found."""

    routes: tuple[Route, ...] = ()

    def match(self, method: str, path: str) -> RouteMatch:
        return RouteMatch(MatchKind.NOT_FOUND)


async def _unrouted(request: Request) -> Response:
    """The endpoint of the fallback chain: raises the router's 404/405."""
    raise request.state[ROUTING_ERROR]


#: Renders an error (and, for a 500, the exception behind it) as a response.
ErrorRenderer = Callable[[Request, HTTPError, "Exception | None"], Response]


def render_error(request: Request, error: HTTPError, cause: Exception | None) -> Response:
    """The kernel's error body, used when no plugin renders errors: an RFC
    9457 problem (``title``, ``status``, ``detail``; ``error_id`` for a 5xx),
    the shape the errors plugin extends."""
    body: dict[str, Any] = {"title": _phrase(error.status), "status": error.status, "detail": error.detail}
    if error.status >= 500:
        body["error_id"] = request.id
    for key, value in error.extra.items():
        body.setdefault(key, value)
    return JSONResponse(body, status=error.status, headers=error.headers, media_type="application/problem+json")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


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


@contextlib.contextmanager
def blamed(plugin: LoadedPlugin, failed: str) -> Iterator[None]:
    """Turn what `plugin` raises into a `StartupError` naming it (`failed`
    says where: "in wasmkernel_routes", "to start")."""
    try:
        yield
    except StartupError:
        raise
    except Exception as exc:
        raise PluginLoadError(f"plugin '{plugin.name}' failed {failed}: {type(exc).__name__}: {exc}") from exc


@attrs.define(eq=False)
class Application:
    """One assembled application, an ASGI 3 callable (HTTP, WebSocket,
    lifespan), built by `Application.assemble(registry)` or `load_application`."""

    registry: Registry
    manager: pluggy.PluginManager
    plugins: list[LoadedPlugin]
    routes: list[Route] = attrs.field(factory=list)
    router: Router = attrs.field(factory=_NoRouter)
    middleware: tuple[Middleware, ...] = ()
    authenticators: tuple[Authenticator, ...] = ()
    access_policies: tuple[AccessPolicy, ...] = ()
    services: Services = attrs.field(factory=Services)
    metric_sources: tuple[MetricSource, ...] = ()
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
    _started: list[LoadedPlugin] = attrs.field(factory=list)

    # -- assembly ------------------------------------------------------------

    @classmethod
    def assemble(cls, registry: Registry, extra_plugins: Mapping[str, Any] | None = None) -> Application:
        """Load, configure and ask every enabled plugin; compile the chains.
        `extra_plugins` maps registry names to in-memory plugin objects (tests,
        embedding), used like installed ones."""
        manager = plugin_loading.new_manager()
        app = cls(registry=registry, manager=manager, plugins=plugin_loading.load_enabled(registry, manager, extra_plugins))
        app._configure()
        for plugin, (key, service) in app._gather("wasmkernel_services"):
            app.services.offer(key, service, provider=plugin.name)
        app._collect()
        app._compile()
        return app

    def _each(self, hook: str, **kwargs: Any) -> list[tuple[LoadedPlugin, Any]]:
        """Call `hook` plugin by plugin in plugin order: (plugin, result) for
        each implementer. An exception stops assembly with the plugin's name."""
        results = []
        for plugin in self.plugins:
            with blamed(plugin, f"in {hook}"):
                implemented, result = plugin.call(hook, **kwargs, app=self)
            if implemented:
                results.append((plugin, result))
        return results

    def _gather(self, hook: str, **kwargs: Any) -> list[tuple[LoadedPlugin, Any]]:
        """Every item of every plugin's returned iterable, with its plugin."""
        return [(plugin, item) for plugin, items in self._each(hook, **kwargs) for item in items or ()]

    def _first(self, hook: str, **kwargs: Any) -> Any:
        """The first result that is not None, in plugin order (pluggy's
        firstresult would call the last registered plugin first)."""
        return next((result for _, result in self._each(hook, **kwargs) if result is not None), None)

    def _configure(self) -> None:
        for plugin in self.plugins:
            config = resolve_secrets(dict(plugin.entry.config), self.registry.path.parent, self.registry.where(plugin.name, "config"))
            try:
                with blamed(plugin, "to configure"):
                    plugin.call("wasmkernel_configure", config=config, app=self)
            except ConfigError as exc:
                raise RegistryError(f"{self.registry.where(plugin.name, f'config.{exc.key}' if exc.key else 'config')}: {exc.message}") from None
        if not self._first("wasmkernel_configure_logging") and not structlog.is_configured():
            # structlog's default console renderer prints frame locals with rich: never do.
            structlog.configure(
                processors=[*structlog.get_config()["processors"][:-1], structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)]
            )

    def _collect(self) -> None:
        self.routes = [attrs.evolve(route, owner=plugin.name) for plugin, route in self._gather("wasmkernel_routes")]
        self.router = self._first("wasmkernel_router", routes=tuple(self.routes)) or self.router
        self.middleware = tuple(attrs.evolve(link, owner=plugin.name) for plugin, link in self._gather("wasmkernel_middleware"))
        self.authenticators = tuple(found for _, found in self._gather("wasmkernel_authenticators"))
        self.access_policies = tuple(found for _, found in self._gather("wasmkernel_access_policies"))
        self.metric_sources = tuple(found for _, found in self._gather("wasmkernel_metric_sources"))
        self.render_error = self._first("wasmkernel_error_renderer") or self.render_error

    def _compile(self) -> None:
        enforced = {protection for link in self.middleware for protection in link.enforces}
        for route in self.router.routes:
            try:
                endpoint = websocket_handler(route.endpoint) if route.websocket else endpoint_handler(route)
            except (TypeError, ValueError) as exc:
                raise StartupError(f"route '{route.name}' of plugin '{route.owner}': {exc}") from None
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

    def startup_order(self) -> list[LoadedPlugin]:
        """Plugin order, except that a plugin that got a service starts after
        its provider."""
        by_name = {plugin.name: plugin for plugin in self.plugins}
        try:
            return [by_name[name] for name in topological(by_name, sorted(self.services.dependencies))]
        except graphlib.CycleError as exc:
            raise StartupError(f"plugins need each other's services in a cycle: {' -> '.join(exc.args[1])}") from None

    async def _await_hook(self, plugin: LoadedPlugin, hook: str) -> None:
        _, result = plugin.call(hook, app=self)
        if inspect.isawaitable(result):
            await result

    async def startup(self, nursery: trio.Nursery) -> None:
        """Start every plugin in `startup_order`."""
        self._nursery = nursery
        for plugin in self.startup_order():
            try:
                await self._await_hook(plugin, "wasmkernel_startup")
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
                await self._await_hook(plugin, "wasmkernel_shutdown")
            except Exception:
                log.exception("plugin.shutdown_failed", plugin=plugin.name)
        self._started.clear()
        self._nursery = None

    # -- ASGI --------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive, id=secrets.token_hex(8))
            await self._handle(request, self.router.match(request.method, request.path), send)
        elif scope["type"] == "websocket":
            await self.handle_websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
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
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                nursery.cancel_scope.cancel()
                return
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
            await self.shutdown()
            nursery.cancel_scope.cancel()
        await send({"type": "lifespan.shutdown.complete"})

    async def handle_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The chain runs around the whole connection, whose tasks live in
        this nursery (`WebSocket.nursery`)."""
        async with trio.open_nursery() as nursery:
            ws = WebSocket(scope, receive, id=secrets.token_hex(8), asgi_send=send, nursery=nursery)
            match = self.router.match(WEBSOCKET, ws.path)
            await self._handle(ws, match if match.kind is not MatchKind.METHOD_NOT_ALLOWED else RouteMatch(MatchKind.NOT_FOUND), send)

    async def _handle(self, request: Request, match: RouteMatch, send: Send) -> None:
        if match.kind is MatchKind.FOUND and match.route is not None:
            request.route = match.route
            request.path_params = dict(match.params)
            if match.route.max_body_size is not None:
                request.max_body_size = match.route.max_body_size
            handler = self._chains[match.route]
        else:
            not_found = match.kind is not MatchKind.METHOD_NOT_ALLOWED
            request.state[ROUTING_ERROR] = NotFound("No route matches this path") if not_found else MethodNotAllowed(match.allowed)
            handler = self._fallback
        # Every log line of this request carries its id (rebound by the
        # request-id plugin when the client sent one).
        tokens = structlog.contextvars.bind_contextvars(request_id=request.id)
        try:
            await self._respond(request, handler, send)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)

    async def _respond(self, request: Request, handler: Handler, send: Send) -> None:
        """Send the chain's response. No send failure reaches the server (which
        would answer again on a broken stream): each is logged once, here."""
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
            try:
                await response.send(send, include_body=include_body)
            except InvalidResponse as exc:
                # Refused before anything went out: the server never sees it.
                log.error("response.invalid", error_id=request.id, path=request.path, reason=str(exc))
                await self.render_error(request, HTTPError("Internal server error"), None).send(send, include_body=include_body)
        except GONE as exc:
            # The connection went away, or the server is already answering a
            # malformed request on it (hypercorn's own 400): nothing to send.
            log.info("response.not_sent", reason=type(exc).__name__)
        except Exception:
            # E.g. a streaming body failed after its headers went out.
            log.exception("response.send_failed", error_id=request.id, path=request.path)


def load_application(registry_path: str | None = None) -> Application:
    """Parse the registry (default: $WASMKERNEL_REGISTRY or
    ./plugin_registry.toml) and assemble its application."""
    return Application.assemble(load_registry(registry_path))
