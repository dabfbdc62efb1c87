"""The metrics plugin: Prometheus metrics at `GET /metrics`.

Config (`[plugins.metrics.config]`):
- `path`: where the metrics are served (default "/metrics")
- `buckets`: upper bounds in seconds of the request duration histogram,
  strictly increasing (default: 0.5 ms to 10 s, see `DEFAULT_BUCKETS`)

Each application gets its own `prometheus_client.CollectorRegistry` (never the
global one), holding:
- `wasmkernel_requests_total{method, route, status}` (counter),
  `wasmkernel_request_duration_seconds{method, route}` (histogram) and
  `wasmkernel_requests_in_progress{method, route}` (gauge), recorded by the
  `metrics` middleware. `route` is the route's name, or "<unmatched>" for
  requests no route matched (404/405) — never the raw path. Methods outside
  the HTTP methods the kernel knows are recorded as "OTHER". A raised
  `HTTPError` counts with its status, any other exception as 500, a client that
  went away before its body was read as 499. The duration ends when the
  handler returns its response, before a streamed body is sent. Requests to
  the metrics route itself are counted like any other.
- process and platform metrics (`process_*`, `python_*`);
- every `kernel.MetricSource` of `app.metric_sources`, converted on each scrape
  (conventions in `wasmkernel_metrics.sources`).

The answer is Prometheus' text format, or OpenMetrics when the scraper's
`Accept` header asks for it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

import attrs
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from kernel import HTTP_METHODS, Application, ClientDisconnected, ConfiguredPlugin, Handler, Middleware, Request, Response, Route, hookimpl
from wasmkernel_metrics.sources import SourceCollector, produced_names

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


@attrs.frozen
class Config:
    path: str = attrs.field(default="/metrics", validator=_check_path)
    buckets: tuple[float, ...] | None = attrs.field(default=None, validator=_check_buckets)


@attrs.frozen
class RequestMetrics:
    """The request metrics of one application, in its own registry."""

    total: Counter
    duration: Histogram
    in_progress: Gauge

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
            in_progress=Gauge("wasmkernel_requests_in_progress", "HTTP requests being handled.", ("method", "route"), registry=registry),
        )

    def wrap(self, next_handler: Handler, route: Route | None) -> Handler:
        """The `metrics` middleware: records every request of `route`."""
        label = route.name if route is not None else UNMATCHED
        total, duration, in_progress = self.total, self.duration, self.in_progress

        async def handler(request: Request) -> Response:
            method = request.method if request.method in HTTP_METHODS else "OTHER"
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
    order = -100
    config_class = Config

    def __init__(self) -> None:
        super().__init__()
        self.registry = CollectorRegistry()
        self.requests: RequestMetrics | None = None

    def configured(self) -> None:
        app = self.app
        self.requests = RequestMetrics.create(self.registry, self.config.buckets or DEFAULT_BUCKETS)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        reserved = produced_names(self.registry.collect())
        self.registry.register(SourceCollector(lambda: app.metric_sources, reserved))

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [
            Route(
                self.config.path,
                self.metrics,
                name="metrics",
                summary="Prometheus metrics",
                tags=("observability",),
                responses={200: "Metrics in Prometheus' text format (or OpenMetrics, if accepted)"},
            )
        ]

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        assert self.requests is not None
        return [Middleware("metrics", self.requests.wrap)]

    async def metrics(self, request: Request) -> Response:
        encode, content_type = choose_encoder(request.headers.get("accept") or "")
        return Response(encode(self.registry), headers={"Cache-Control": "no-store"}, media_type=content_type)
