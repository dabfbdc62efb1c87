"""The redis plugin: one Redis client per application, shared by the plugins
that need Redis (the rate limiter's store, the Redis broker, ...).

With `url` set, it offers two services: `REDIS` (the `coredis.Redis` client;
bytes in, bytes out) and `REDIS_LINK` (the client with its health: `up`,
`outages`, `mark_down`). With an empty `url` it offers nothing, and plugins
that can do without Redis fall back to their in-process behaviour — so a
registry can enable it with ``url = { env = "WASMKERNEL_REDIS_URL", default = "" }``.

At startup a background task opens the client and pings Redis: every
`health_interval` seconds while it answers, with exponential backoff
(`min_backoff` doubling to `max_backoff`) while it does not. Redis being
unreachable never stops startup or a request: it is an outage, logged once
(`redis.down`, then `redis.up`), shown by `/readyz` (503 while
`required_for_readiness`, the default) and by the metrics
`wasmkernel_redis_up`, `wasmkernel_redis_outages_total` and
`wasmkernel_redis_ping_seconds`.

Config (`[plugins.redis.config]`):
- `url`: ``redis://[user:password@]host:port/db`` or ``rediss://`` (TLS);
  empty: Redis is not used (default)
- `connect_timeout`, `command_timeout`: seconds (default 1.0 each)
- `max_connections`: pool size (default 64)
- `health_interval` (default 1.0), `min_backoff` (0.1), `max_backoff` (5.0): seconds
- `required_for_readiness`: whether an outage makes `/readyz` answer 503
  (default true)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import structlog

from wasmkernel import Application, ConfigError, ConfiguredPlugin, Sample, ServiceKey, hookimpl
from wasmkernel_redis.backoff import Backoff

if TYPE_CHECKING:  # coredis (~0.3 s of imports, with beartype) loads only once a url is configured
    import coredis

    from wasmkernel_redis.link import RedisLink

log = structlog.get_logger("wasmkernel.redis")

REDIS: ServiceKey[coredis.Redis[bytes]] = ServiceKey("Redis client", hint="enable the redis plugin and set its url (WASMKERNEL_REDIS_URL)")
REDIS_LINK: ServiceKey[RedisLink] = ServiceKey("Redis link", hint="enable the redis plugin and set its url (WASMKERNEL_REDIS_URL)")

positive = attrs.validators.gt(0.0)


@attrs.frozen
class Config:
    url: str = attrs.field(default="", repr=False)
    connect_timeout: float = attrs.field(default=1.0, validator=positive)
    command_timeout: float = attrs.field(default=1.0, validator=positive)
    max_connections: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    health_interval: float = attrs.field(default=1.0, validator=positive)
    min_backoff: float = attrs.field(default=0.1, validator=positive)
    max_backoff: float = attrs.field(default=5.0, validator=positive)
    required_for_readiness: bool = True


def address_of(url: str) -> str:
    """host:port of a Redis URL (never its credentials); ConfigError if it is not one."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("url", f"expected a redis://, rediss:// or unix:// URL, got scheme {parts.scheme!r}")
    if parts.scheme == "unix":
        return parts.path
    try:
        port = parts.port or 6379
    except ValueError as exc:
        raise ConfigError("url", f"invalid port: {exc}") from None
    if not parts.hostname:
        raise ConfigError("url", "the URL names no host, e.g. redis://127.0.0.1:6379/0")
    return f"{parts.hostname}:{port}"


@attrs.define(eq=False)
class Metrics:
    link: RedisLink

    def collect(self) -> Iterable[Sample]:
        labels = {"address": self.link.address}
        yield Sample("wasmkernel_redis_up", 1.0 if self.link.up else 0.0, "gauge", labels, "1 while Redis answers its health pings")
        yield Sample("wasmkernel_redis_outages_total", float(self.link.outages), "counter", labels, "Redis outages seen (including one at startup)")
        if self.link.up:
            yield Sample("wasmkernel_redis_ping_seconds", self.link.ping_seconds, "gauge", labels, "round trip of the last health ping")


def readiness(link: RedisLink, required: bool) -> Callable[[], tuple[bool, Any]]:
    """The health plugin's probe: (ready, detail) for `/readyz`."""

    def probe() -> tuple[bool, Any]:
        if link.up:
            return True, {"status": "up", "address": link.address}
        return not required, {"status": "down", "address": link.address, "error": link.last_error or "not checked yet", "outages": link.outages}

    return probe


class Plugin(ConfiguredPlugin[Config]):
    config_class = Config
    #: First: a service provider other plugins build on; not in the request chain.
    order = -120

    def __init__(self) -> None:
        super().__init__()
        self.link: RedisLink | None = None

    def configured(self) -> None:
        if not self.config.url:
            return
        import coredis

        from wasmkernel_redis.link import RedisLink

        address = address_of(self.config.url)
        backoff = Backoff.configured(self.config.min_backoff, self.config.max_backoff)
        try:
            client: coredis.Redis[bytes] = coredis.Redis.from_url(
                self.config.url,
                connect_timeout=self.config.connect_timeout,
                stream_timeout=self.config.command_timeout,
                max_connections=self.config.max_connections,
            )
        except (ValueError, coredis.exceptions.RedisError) as exc:
            raise ConfigError("url", f"not a usable Redis URL: {exc}") from None
        self.link = RedisLink(
            client,
            address,
            interval=self.config.health_interval,
            timeout=self.config.command_timeout,
            backoff=backoff,
        )

    @hookimpl
    def wasmkernel_services(self, app: Application) -> list[tuple[ServiceKey[Any], Any]]:
        if self.link is None:
            return []
        return [(REDIS, self.link.client), (REDIS_LINK, self.link)]

    @hookimpl
    async def wasmkernel_startup(self, app: Application) -> None:
        if self.link is None:
            log.info("redis.not_configured", hint="set the redis plugin's url (WASMKERNEL_REDIS_URL) to share state between instances")
            return
        await app.nursery.start(self.link.run)

    @hookimpl
    def wasmkernel_metric_sources(self, app: Application) -> list[Metrics]:
        return [] if self.link is None else [Metrics(self.link)]

    @hookimpl(optionalhook=True)
    def wasmkernel_readiness(self, app: Application) -> dict[str, Callable[[], tuple[bool, Any]]]:
        return {} if self.link is None else {"redis": readiness(self.link, self.config.required_for_readiness)}
