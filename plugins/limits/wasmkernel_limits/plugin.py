"""The limits plugin: request body size, handling time and request rate.

Config (`[plugins.limits.config]`):
- `max_body_bytes`: largest accepted request body (default 1048576, 1 MiB);
  larger ones are answered 413 before they are read
- `timeout_seconds`: longest time the inner chain may take to produce a
  response (default 30); it is then cancelled and 504 is answered. A
  streaming response's body (e.g. Server-Sent Events) is sent after that and
  is not cut
- `rate`: requests per second allowed per client, refilled continuously
  (default 0: no rate limit)
- `burst`: requests a client may make at once (default 20); the bucket size
- `rate_limit_key`: "client" (the client's address, default) or "subject"
  (the authenticated caller, falling back to the address; place this plugin
  after the one that authenticates)
- `max_clients`: clients tracked at once (default 10000); the least recently
  seen are forgotten first, so memory stays bounded
- `exempt_paths`: route paths, as declared, that are never rate limited
  (default ["/health", "/healthz", "/readyz", "/metrics"])
- `routes`: per-route `max_body_bytes` / `timeout_seconds` overrides, keyed
  by route name or by "METHOD /path" as declared, e.g.
  ``routes = { "POST /api/matmul" = { max_body_bytes = 4194304 } }``; a key
  matching no route is logged as a warning

- `websocket_per_client` (default 100) and `websocket_total` (default
  10000): concurrent WebSocket connections per client address and in total
  (0: unlimited); a handshake over either is refused with 429
- `streams_per_client` (default 100) and `streams_total` (default 10000):
  the same for streamed responses (`StreamingResponse`: Server-Sent Events,
  long downloads), counted until the stream ends; one over either is
  answered 429 instead (it is released first, e.g. its channel subscription)
- `websocket_idle_seconds`: close a WebSocket after this many seconds
  without a message either way (default 0: never; hypercorn's pings keep a
  live peer's connection up)
- `websocket_queue`: messages a WebSocket's endpoint may leave unread before
  the connection is closed, 1008 (default 256)

On WebSocket routes the handshake takes a token from the rate limit (so
connection attempts are rate limited), `max_body_bytes` caps each message
(close 1009) and `timeout_seconds` does not apply.
- `redis_unavailable`: what the shared rate limit does while Redis cannot be
  asked: "open" (no limit, default), "local" (this process's buckets) or
  "closed" (503); one warning is logged per outage
- `redis_prefix`: key prefix of the buckets in Redis (default
  "wasmkernel:ratelimit:"); `redis_timeout`: seconds to wait for Redis per
  request (default 0.5) before treating it as unavailable

Where the buckets live: when the redis plugin offers a Redis link (its `url`
is set), in Redis, shared by every instance using it (one atomic Lua script
per request, on Redis's clock; see `wasmkernel_limits.shared`); otherwise in
memory per process (with N worker processes a client may make up to N times
`rate` requests per second).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import attrs
import structlog
import trio

from wasmkernel import (
    Application,
    ConfiguredPlugin,
    Connection,
    GatewayTimeout,
    Handler,
    Middleware,
    PayloadTooLarge,
    Request,
    Response,
    Route,
    StartupError,
    StreamingResponse,
    TooManyRequests,
    WebSocket,
    WebSocketHandler,
    hookimpl,
)
from wasmkernel_limits.connections import ConnectionLimits, OpenCounts, hold_stream
from wasmkernel_limits.ratelimit import Decision, RateLimiter

if TYPE_CHECKING:
    from wasmkernel_limits.shared import SharedLimiter

log = structlog.get_logger("wasmkernel.limits")

positive = attrs.validators.gt(0.0)


@attrs.frozen
class RouteLimits:
    max_body_bytes: int | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.ge(0)))
    timeout_seconds: float | None = attrs.field(default=None, validator=attrs.validators.optional(positive))


@attrs.frozen
class Config:
    max_body_bytes: int = attrs.field(default=1024 * 1024, validator=attrs.validators.ge(0))
    timeout_seconds: float = attrs.field(default=30.0, validator=positive)
    rate: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    burst: int = attrs.field(default=20, validator=attrs.validators.ge(1))
    rate_limit_key: Literal["client", "subject"] = attrs.field(default="client", validator=attrs.validators.in_(("client", "subject")))
    max_clients: int = attrs.field(default=10_000, validator=attrs.validators.ge(1))
    exempt_paths: list[str] = attrs.field(factory=lambda: ["/health", "/healthz", "/readyz", "/metrics"])
    routes: dict[str, RouteLimits] = attrs.field(factory=dict)
    #: Start even when a `routes` key names no route (each is logged as a warning).
    allow_unknown_routes: bool = False
    websocket_per_client: int = attrs.field(default=100, validator=attrs.validators.ge(0))
    websocket_total: int = attrs.field(default=10_000, validator=attrs.validators.ge(0))
    websocket_idle_seconds: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    websocket_queue: int = attrs.field(default=256, validator=attrs.validators.ge(1))
    streams_per_client: int = attrs.field(default=100, validator=attrs.validators.ge(0))
    streams_total: int = attrs.field(default=10_000, validator=attrs.validators.ge(0))
    redis_unavailable: Literal["open", "local", "closed"] = "open"
    redis_prefix: str = attrs.field(default="wasmkernel:ratelimit:", validator=attrs.validators.min_len(1))
    redis_timeout: float = attrs.field(default=0.5, validator=positive)


def matches(key: str, route: Route) -> bool:
    """Whether a `routes` key names `route` (its name or "METHOD /path")."""
    return key == route.name or any(key == f"{method} {route.path}" for method in route.methods)


def client_key(request: Connection) -> str:
    return "client:" + (request.client_host or "unknown")


def subject_key(request: Connection) -> str:
    identity = request.identity
    return "subject:" + identity.subject if identity is not None else client_key(request)


@attrs.frozen
class Buckets:
    """A route's rate limit: the local `limiter` or the `shared` one (none: unlimited), by `key_of`."""

    limiter: RateLimiter | None
    shared: SharedLimiter | None
    key_of: Callable[[Connection], str]

    async def take(self, connection: Connection) -> Decision | None:
        """A token for `connection` (None: unlimited)."""
        if self.shared is not None:
            return await self.shared.take(self.key_of(connection))
        return self.limiter.take(self.key_of(connection), trio.current_time()) if self.limiter is not None else None


def admitted(decision: Decision | None) -> dict[str, str]:
    """The rate headers of an admitted request or handshake; 429 for a refused one."""
    if decision is None:
        return {}
    headers = decision.headers()
    if not decision.allowed:
        raise TooManyRequests(f"Rate limit exceeded; retry in {decision.retry_after} s", headers={**headers, "Retry-After": str(decision.retry_after)})
    return headers


def shared_limiter(app: Application, local: RateLimiter, config: Config) -> SharedLimiter | None:
    """A Redis-backed limiter when the redis plugin is installed and offers
    its link; None otherwise (in-process buckets)."""
    try:
        from wasmkernel_redis import REDIS_LINK
    except ImportError:
        return None
    link = app.services.find(REDIS_LINK)
    if link is None:
        return None
    from wasmkernel_limits.redis_store import RedisBuckets
    from wasmkernel_limits.shared import SharedLimiter

    log.info("limits.shared_store", address=link.address, when_unavailable=config.redis_unavailable)
    buckets = RedisBuckets(link.client, local.rate, local.burst, prefix=config.redis_prefix, timeout=config.redis_timeout)
    return SharedLimiter(link, buckets, local, config.redis_unavailable)


class Plugin(ConfiguredPlugin[Config]):
    order = -30
    config_class = Config

    def __init__(self) -> None:
        super().__init__()
        self.limiter: RateLimiter | None = None
        self.shared: SharedLimiter | None = None

    def configured(self) -> None:
        config = self.config
        websockets = OpenCounts("WebSocket connections", config.websocket_per_client, config.websocket_total)
        self.connections = ConnectionLimits(websockets, config.websocket_idle_seconds, config.websocket_queue)
        self.streams = OpenCounts("streams", config.streams_per_client, config.streams_total)
        if self.config.rate > 0:
            self.limiter = RateLimiter(self.config.rate, self.config.burst, self.config.max_clients)

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        if self.limiter is not None:
            self.shared = shared_limiter(app, self.limiter, self.config)
        # A key matching no route is a typo (a limit nothing enforces) or a
        # route whose plugin is disabled: refused, unless the registry allows it.
        unknown = [key for key in self.config.routes if not any(matches(key, route) for route in app.routes)]
        if unknown and not self.config.allow_unknown_routes:
            raise StartupError(
                f"{app.registry.where('limits', 'config.routes')}: no route named {', '.join(map(repr, unknown))} "
                "(keys are route names or 'METHOD /path' as declared; see `wasmkernel routes`); "
                "set allow_unknown_routes = true to start anyway"
            )
        for key in unknown:
            log.warning("limits.unknown_route", key=key, hint="keys are route names or 'METHOD /path' as declared; see `wasmkernel routes`")
        return [Middleware("limits", self.wrap, websocket=self.wrap_websocket)]

    def buckets(self, route: Route | None) -> Buckets:
        """Where a request or handshake of `route` takes its rate-limit token."""
        exempt = route is not None and route.path in self.config.exempt_paths
        key_of = subject_key if self.config.rate_limit_key == "subject" else client_key
        return Buckets(None if exempt else self.limiter, None if exempt else self.shared, key_of)

    def body_limit(self, route: Route | None) -> int:
        overrides = [limits for key, limits in self.config.routes.items() if route is not None and matches(key, route)]
        declared_limit = route.max_body_size if route is not None and route.max_body_size is not None else self.config.max_body_bytes
        return next((o.max_body_bytes for o in overrides if o.max_body_bytes is not None), declared_limit)

    def wrap_websocket(self, next_handler: WebSocketHandler, route: Route | None) -> WebSocketHandler:
        """The handshake takes a rate-limit token; the connection counts
        against the connection limits; messages are bounded by the body limit."""
        buckets, limited = self.buckets(route), self.connections.wrap(next_handler, self.body_limit(route))

        async def handler(ws: WebSocket) -> Response:
            admitted(await buckets.take(ws))
            return await limited(ws)

        return handler

    def wrap(self, next_handler: Handler, route: Route | None) -> Handler:
        overrides = [limits for key, limits in self.config.routes.items() if route is not None and matches(key, route)]
        body_limit = self.body_limit(route)
        timeout = next((o.timeout_seconds for o in overrides if o.timeout_seconds is not None), self.config.timeout_seconds)
        buckets = self.buckets(route)
        limiter, shared, key_of = buckets.limiter, buckets.shared, buckets.key_of
        route_name = route.name if route is not None else None
        streams = self.streams

        async def handler(request: Request) -> Response:
            request.max_body_size = body_limit
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > body_limit:
                raise PayloadTooLarge(f"Request body exceeds {body_limit} bytes")
            # Inline, not `buckets.take`: one coroutine less per request.
            if shared is not None:
                decision = await shared.take(key_of(request))
            else:
                decision = limiter.take(key_of(request), trio.current_time()) if limiter is not None else None
            rate_headers = admitted(decision)
            response: Response | None = None
            with trio.move_on_after(timeout):
                response = await next_handler(request)
            if response is None:
                log.warning("request.timeout", route=route_name, method=request.method, path=request.path, timeout_seconds=timeout)
                raise GatewayTimeout(f"The request was not handled within {timeout:g} s", headers=rate_headers)
            if isinstance(response, StreamingResponse):
                await hold_stream(streams, request, response)
            for name, value in rate_headers.items():
                response.headers.set(name, value)
            return response

        return handler
