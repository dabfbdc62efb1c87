"""The metrics plugin: Prometheus metrics at `GET /metrics`.

Config (`[plugins.metrics.config]`):
- `path`: where the metrics are served (default "/metrics")
- `buckets`: upper bounds in seconds of the request duration histogram,
  strictly increasing (default: 0.5 ms to 10 s, see `DEFAULT_BUCKETS`)
- `allow_networks`: client networks that may scrape, e.g.
  ``["127.0.0.1/32", "10.0.0.0/8"]`` (default [] = any client); others get
  403. Behind a reverse proxy the client is the proxy: restrict there too.
- `require_auth` (default false) and `scopes` (default []): the route needs
  an authenticated caller (with these scopes); enforced by the authz plugin,
  so startup fails without it.

Metrics name routes, modules and error counts: on a public network restrict
them with `allow_networks`, `require_auth` or the proxy in front.

Each application gets its own `prometheus_client.CollectorRegistry` (never the
global one), holding:
- `wasmkernel_requests_total{method, route, status}` (counter),
  `wasmkernel_request_duration_seconds{method, route}` (histogram) and
  `wasmkernel_requests_in_progress{method, route}` (gauge), recorded by the
  `metrics` middleware. `route` is the route's name, or "<unmatched>" for
  requests no route matched (404/405) — never the raw path. Methods outside
  the HTTP methods the kernel knows are recorded as "OTHER". A WebSocket
  connection is one request (status 101 once accepted, the refusal's status
  otherwise) lasting as long as the connection. Errors
  count with the status of the response the kernel made of them; a client that
  went away before its body was read as 499. The duration ends when the
  handler returns its response, before a streamed body is sent. Requests to
  the metrics route itself are counted like any other.
- for WebSocket routes, `wasmkernel_websocket_connections{route}` (gauge:
  connections being handled, handshake included),
  `wasmkernel_websocket_messages_total{route, direction}` ("in"/"out") and
  `wasmkernel_websocket_closes_total{route, code}` (accepted connections by
  close code), recorded when a connection ends;
- process and platform metrics (`process_*`, `python_*`);
- every `wasmkernel.MetricSource` plugins contribute (`wasmkernel_metric_sources`), converted on each scrape
  (conventions in `wasmkernel_metrics.sources`).

With several worker processes (``wasmkernel run --workers N``), a scrape
answered by any worker shows them all: see `wasmkernel_metrics.workers`.

The answer is Prometheus' text format, or OpenMetrics when the scraper's
`Accept` header asks for it.
"""

from __future__ import annotations

import ipaddress
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import attrs
import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from wasmkernel import (
    HTTP_METHODS,
    Application,
    AuthRequirement,
    ClientDisconnected,
    ConfiguredPlugin,
    Connection,
    Forbidden,
    Handler,
    MetricSource,
    Middleware,
    Request,
    Response,
    ResponseSpec,
    Route,
    StartupError,
    WebSocket,
    WebSocketHandler,
    hookimpl,
)
from wasmkernel_metrics import workers
from wasmkernel_metrics.sources import SourceCollector, produced_names

C = TypeVar("C", bound=Connection)

#: Request duration buckets, in seconds: 0.5 ms to 10 s.
DEFAULT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

UNMATCHED = "<unmatched>"


def _check_path(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.startswith("/"):
        raise ValueError(f"'{attribute.name}' must start with '/', got {value!r}")


def _check_buckets(instance: Any, attribute: attrs.Attribute[Any], value: tuple[float, ...] | None) -> None:
    if value is None:
        return
    if not value:
        raise ValueError("'buckets' must not be empty")
    if any(bound <= 0 for bound in value) or any(a >= b for a, b in itertools.pairwise(value)):
        raise ValueError(f"'buckets' must be positive and strictly increasing, got {list(value)}")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(values: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def _check_networks(instance: Any, attribute: attrs.Attribute[Any], value: Sequence[str]) -> None:
    networks(value)  # ValueError naming the bad network


@attrs.frozen
class Config:
    path: str = attrs.field(default="/metrics", validator=_check_path)
    buckets: tuple[float, ...] | None = attrs.field(default=None, validator=_check_buckets)
    allow_networks: tuple[str, ...] = attrs.field(default=(), validator=_check_networks)
    require_auth: bool = False
    scopes: tuple[str, ...] = ()

    def requirement(self) -> AuthRequirement | None:
        return AuthRequirement(scopes=self.scopes) if self.require_auth or self.scopes else None


def allowed(client: str, allow: Sequence[Network]) -> bool:
    """Whether the client address `client` is in one of `allow` (any when empty)."""
    if not allow:
        return True
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in network for network in allow)


@attrs.frozen
class RequestMetrics:
    """The request metrics of one application, in its own registry."""

    total: Counter
    duration: Histogram
    in_progress: Gauge
    connections: Gauge
    messages: Counter
    closes: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry, buckets: Sequence[float]) -> RequestMetrics:
        return cls(
            total=Counter("wasmkernel_requests_total", "HTTP requests handled.", ("method", "route", "status"), registry=registry),
            duration=Histogram(
                "wasmkernel_request_duration_seconds",
                "Time to produce the response, in seconds.",
                ("method", "route"),
                buckets=buckets,
                registry=registry,
            ),
            in_progress=Gauge(
                "wasmkernel_requests_in_progress", "HTTP requests being handled.", ("method", "route"), registry=registry, multiprocess_mode=workers.GAUGES
            ),
            connections=Gauge(
                "wasmkernel_websocket_connections", "WebSocket connections being handled.", ("route",), registry=registry, multiprocess_mode=workers.GAUGES
            ),
            messages=Counter("wasmkernel_websocket_messages_total", "WebSocket messages received and sent.", ("route", "direction"), registry=registry),
            closes=Counter("wasmkernel_websocket_closes_total", "Ended WebSocket sessions by close code.", ("route", "code"), registry=registry),
        )

    def sessions(self, next_handler: WebSocketHandler, route: Route) -> WebSocketHandler:
        """Connection, message and close counts of a WebSocket route."""
        connections = self.connections.labels(route.name)
        received, sent = self.messages.labels(route.name, "in"), self.messages.labels(route.name, "out")
        closes = self.closes

        async def handler(request: WebSocket) -> Response:
            connections.inc()
            try:
                return await next_handler(request)
            finally:
                connections.dec()
                if request.accepted:
                    received.inc(request.messages_in)
                    sent.inc(request.messages_out)
                    closes.labels(route.name, str(request.close_code or 1000)).inc()

        return handler

    def wrap(self, next_handler: Handler, route: Route | None) -> Handler:
        """The `metrics` middleware: records every request of `route`."""
        return self.count(next_handler, route, None)

    def wrap_websocket(self, next_handler: WebSocketHandler, route: Route | None) -> WebSocketHandler:
        """A connection counts as one request (its handshake is a GET), and in the WebSocket metrics."""
        return self.count(self.sessions(next_handler, route) if route is not None else next_handler, route, "GET")

    def count(self, next_handler: Callable[[C], Awaitable[Response]], route: Route | None, fixed_method: str | None) -> Callable[[C], Awaitable[Response]]:
        """Counts and times each request (`fixed_method`: what a connection without one counts as)."""
        label = route.name if route is not None else UNMATCHED
        total, duration, in_progress = self.total, self.duration, self.in_progress

        async def handler(request: C) -> Response:
            method = fixed_method or request.method  # type: ignore[attr-defined]
            method = method if method in HTTP_METHODS else "OTHER"
            gauge = in_progress.labels(method, label)
            gauge.inc()
            status = 500
            start = time.perf_counter()
            try:
                response = await next_handler(request)
                status = response.status
                return response
            except ClientDisconnected:
                status = 499
                raise
            finally:
                duration.labels(method, label).observe(time.perf_counter() - start)
                total.labels(method, label, str(status)).inc()
                gauge.dec()

        return handler


class Plugin(ConfiguredPlugin[Config]):
    config_class = Config
    order = -100

    def __init__(self) -> None:
        super().__init__()
        self.registry = CollectorRegistry()
        self.requests: RequestMetrics | None = None
        self.allow: tuple[Network, ...] = ()
        self.sources: list[MetricSource] = []
        #: Set when this process is one of several workers sharing their metrics.
        self.mirror: workers.SourceMirror | None = None

    def configured(self) -> None:
        self.allow = networks(self.config.allow_networks)
        self.requests = RequestMetrics.create(self.registry, self.config.buckets or DEFAULT_BUCKETS)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        reserved = produced_names(self.registry.collect())
        self.collector = SourceCollector(lambda: self.sources, reserved)
        self.registry.register(self.collector)
        if workers.shared():
            self.mirror = workers.SourceMirror()

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [
            Route(
                self.config.path,
                self.metrics,
                name="metrics",
                auth=self.config.requirement(),
                summary="Prometheus metrics",
                tags=("observability",),
                responses={
                    200: ResponseSpec(
                        "Metrics in Prometheus' text format (or OpenMetrics, if accepted)",
                        schema={"type": "string"},
                        media_types=("text/plain", "application/openmetrics-text"),
                    )
                },
            )
        ]

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        assert self.requests is not None
        return [Middleware("metrics", self.requests.wrap, websocket=self.requests.wrap_websocket)]

    @hookimpl
    def wasmkernel_startup(self, app: Application) -> None:
        self.sources = [source for _, source in app.hooks.gather("wasmkernel_metric_sources")]
        if self.config.requirement() is not None and not any(link.name == "authz" for link in app.middleware):
            raise StartupError("metrics: require_auth/scopes are set but nothing enforces them; enable the authz plugin (and an authentication plugin)")
        if self.mirror is not None:
            app.nursery.start_soon(self._mirror_sources)

    @hookimpl
    def wasmkernel_shutdown(self, app: Application) -> None:
        if self.mirror is not None:
            workers.worker_ended()

    async def _mirror_sources(self) -> None:
        assert self.mirror is not None
        while True:
            self.mirror.write(self.collector.collect())
            await trio.sleep(workers.MIRROR_INTERVAL)

    async def metrics(self, request: Request) -> Response:
        if not allowed(request.client_host, self.allow):
            raise Forbidden("metrics are not available to this client")
        registry = self.registry
        if self.mirror is not None:
            self.mirror.write(self.collector.collect())
            registry = workers.all_workers()
        encode, content_type = choose_encoder(request.headers.get("accept") or "")
        return Response(encode(registry), headers={"Cache-Control": "no-store"}, media_type=content_type)
