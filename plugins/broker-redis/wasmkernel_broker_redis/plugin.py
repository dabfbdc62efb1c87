"""The broker-redis plugin: the channels plugin's broker over Redis pub/sub,
so several instances behave as one (an event published on any instance
reaches the subscribers of every instance).

It uses the redis plugin's client (the `REDIS_LINK` service: one client per
application) and installs its broker in the channels plugin
(`Channels.use_broker`) — only when the redis plugin has a `url`; without one
it does nothing and the channels plugin keeps its in-process broker, so a
registry can always enable it.
Behaviour while Redis is down: see `wasmkernel_broker_redis.broker`.

Config (`[plugins.broker-redis.config]`):
- `prefix`: key and channel prefix in Redis (default "wasmkernel:channels:")
- `history`: events kept per channel in Redis, for catching up after a
  broken subscription (default 100)
- `publish_timeout`: seconds a publish may wait for Redis (default 3.0)
- `min_backoff`, `max_backoff`: resubscription delays in seconds (0.1, 5.0)

Metrics: ``wasmkernel_broker_outages_total{broker="redis"}`` and
``wasmkernel_broker_resets_total{broker="redis"}`` (Redis found without the
state it had: restarted without persistence, flushed), besides the channels
plugin's ``wasmkernel_channels_broker_up`` and
``..._interruptions_total``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs
import structlog
from wasmkernel_channels import CHANNELS
from wasmkernel_redis import REDIS_LINK, Backoff

from wasmkernel import Application, ConfiguredPlugin, Route, Sample, hookimpl

if TYPE_CHECKING:  # the broker (and coredis) load only when a Redis url is set
    from wasmkernel_broker_redis.broker import RedisBroker

log = structlog.get_logger("wasmkernel.broker.redis")

NAME = "broker-redis"
positive = attrs.validators.gt(0.0)


@attrs.frozen
class Config:
    prefix: str = attrs.field(default="wasmkernel:channels:", validator=attrs.validators.min_len(1))
    history: int = attrs.field(default=100, validator=attrs.validators.ge(0))
    publish_timeout: float = attrs.field(default=3.0, validator=positive)
    min_backoff: float = attrs.field(default=0.1, validator=positive)
    max_backoff: float = attrs.field(default=5.0, validator=positive)


@attrs.define(eq=False)
class Metrics:
    broker: RedisBroker

    def collect(self) -> Iterable[Sample]:
        labels = {"broker": self.broker.name}
        yield Sample("wasmkernel_broker_outages_total", float(self.broker.outages), "counter", labels, "broker outages seen")
        yield Sample("wasmkernel_broker_resets_total", float(self.broker.resets), "counter", labels, "times Redis was found to have lost its state")


class Plugin(ConfiguredPlugin[Config]):
    config_class = Config
    requires = ("channels",)
    #: After the redis plugin (whose client it uses) and channels (whose
    #: startup runs the broker).
    order = -104

    def __init__(self) -> None:
        super().__init__()
        self.broker: RedisBroker | None = None
        self.backoff = Backoff()

    def configured(self) -> None:
        self.backoff = Backoff.configured(self.config.min_backoff, self.config.max_backoff)

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        # The first hook after every plugin offered its services.
        if app.services.find(REDIS_LINK) is None:
            log.info("broker.in_process", hint="set the redis plugin's url (WASMKERNEL_REDIS_URL) to share channels between instances")
            return []
        from wasmkernel_broker_redis.broker import RedisBroker

        link = app.services.get(REDIS_LINK, needed_by=NAME)
        channels = app.services.get(CHANNELS, needed_by=NAME)
        config = self.config
        self.broker = RedisBroker(
            link,
            prefix=config.prefix,
            history=config.history,
            timeout=config.publish_timeout,
            backoff=self.backoff,
            interrupt=channels.interrupt,
            channels_in_use=channels.names,
        )
        channels.use_broker(self.broker, provider=NAME)
        log.info("broker.redis", address=link.address)
        return []

    @hookimpl
    def wasmkernel_metric_sources(self, app: Application) -> list[Metrics]:
        return [] if self.broker is None else [Metrics(self.broker)]
