"""The channels plugin: named publish/subscribe channels for other plugins.

It offers the `CHANNELS` service (a `Channels`): ``await
channels.publish(name, data, event=...)`` from any plugin, and for routes
``channels.event_stream(request, name)`` (Server-Sent Events) and ``await
channels.serve_websocket(ws, name)``. Events travel through the in-process
`MemoryBroker` (no setup), unless a broker plugin installs another one with
``channels.use_broker`` (e.g. `broker-redis`, across instances); the broker
runs from this plugin's startup.

Config (`[plugins.channels.config]`):
- `history`: events kept per channel for resuming (SSE ``Last-Event-ID``,
  WebSocket ``?last_event_id=``) (default 100)
- `queue_size`: events queued per subscriber (SSE stream, WebSocket or
  direct subscription) before `overflow` applies (default 256)
- `overflow`: "close" (end that subscription: SSE clients reconnect and
  resume, WebSockets are closed 1013; default) or "drop" (drop the event for
  that subscriber only)
- `max_channels`: channels at once (default 1000); publishing to or
  subscribing to one more is refused
- `retry_ms`: the reconnect delay SSE streams advise (default 2000)
- `keepalive_seconds`: a keep-alive comment after this long without an
  event (default 15)

`/readyz` (health plugin) shows ``"channels": {"status", "broker", ...}``
and answers 503 while the broker is down; metrics:
``wasmkernel_channels_broker_up``, ``..._subscribers``,
``..._published_total``, ``..._publish_failures_total``,
``..._delivered_total``, ``..._dropped_total``, ``..._overflow_closes_total``,
``..._interruptions_total``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import attrs

from wasmkernel import Application, ConfiguredPlugin, ErrorMapping, Sample, ServiceKey, hookimpl
from wasmkernel_channels.broker import BrokerUnavailable, MemoryBroker
from wasmkernel_channels.hub import Channels

NAME = "channels"
CHANNELS: ServiceKey[Channels] = ServiceKey("channels service", hint="enable the channels plugin")


@attrs.frozen
class Config:
    history: int = attrs.field(default=100, validator=attrs.validators.ge(0))
    queue_size: int = attrs.field(default=256, validator=attrs.validators.ge(1))
    overflow: Literal["close", "drop"] = "close"
    max_channels: int = attrs.field(default=1000, validator=attrs.validators.ge(1))
    retry_ms: int = attrs.field(default=2000, validator=attrs.validators.ge(0))
    keepalive_seconds: float = attrs.field(default=15.0, validator=attrs.validators.gt(0.0))


@attrs.define(eq=False)
class Metrics:
    channels: Channels

    def collect(self) -> Iterable[Sample]:
        labels = {"broker": self.channels.broker.name}
        counters = self.channels.counters
        yield Sample("wasmkernel_channels_broker_up", 1.0 if self.channels.broker.up else 0.0, "gauge", labels, "1 while the broker can deliver")
        yield Sample("wasmkernel_channels_subscribers", float(self.channels.subscriber_count), "gauge", labels, "open subscriptions (SSE streams, WebSockets)")
        yield Sample("wasmkernel_channels_published_total", float(counters.published), "counter", labels, "events published by this instance")
        yield Sample("wasmkernel_channels_publish_failures_total", float(counters.publish_failures), "counter", labels, "publishes the broker refused")
        yield Sample("wasmkernel_channels_delivered_total", float(counters.delivered), "counter", labels, "events queued to a local subscriber")
        yield Sample("wasmkernel_channels_dropped_total", float(counters.dropped), "counter", labels, "events dropped for a full subscriber queue")
        yield Sample("wasmkernel_channels_overflow_closes_total", float(counters.overflow_closes), "counter", labels, "subscriptions ended by a full queue")
        yield Sample("wasmkernel_channels_interruptions_total", float(counters.interruptions), "counter", labels, "channels ended because events may be lost")


class Plugin(ConfiguredPlugin[Config]):
    config_class = Config
    #: Not in the request chain; before the plugins that publish.
    order = -105

    def __init__(self) -> None:
        super().__init__()
        self.channels: Channels | None = None

    def configured(self) -> None:
        config = self.config
        self.channels = Channels(
            MemoryBroker(),
            history=config.history,
            queue_size=config.queue_size,
            overflow=config.overflow,
            max_channels=config.max_channels,
            retry_ms=config.retry_ms,
            keepalive=config.keepalive_seconds,
        )

    @property
    def hub(self) -> Channels:
        assert self.channels is not None, "configured first"
        return self.channels

    @hookimpl
    def wasmkernel_services(self, app: Application) -> list[tuple[ServiceKey[Any], Any]]:
        return [(CHANNELS, self.hub)]

    @hookimpl
    async def wasmkernel_startup(self, app: Application) -> None:
        await app.nursery.start(self.hub.broker.run, self.hub.deliver)

    @hookimpl
    def wasmkernel_metric_sources(self, app: Application) -> list[Metrics]:
        return [Metrics(self.hub)]

    @hookimpl
    def wasmkernel_error_statuses(self, app: Application) -> dict[type[Exception], ErrorMapping]:
        return {BrokerUnavailable: 503}

    @hookimpl(optionalhook=True)
    def wasmkernel_readiness(self, app: Application) -> dict[str, Callable[[], tuple[bool, Any]]]:
        broker = self.hub.broker

        def probe() -> tuple[bool, Any]:
            return broker.up, broker.status()

        return {NAME: probe}
