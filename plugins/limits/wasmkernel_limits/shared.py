"""The rate limit shared by every instance through Redis, and what happens
while Redis cannot be asked.

While Redis is up each request spends a token of its client's bucket in Redis
(`RedisBuckets`). While it is down (the redis plugin's link says so, or the
call fails or takes longer than its timeout), `when_down` decides:

- ``"open"`` (default): the request passes without a rate limit;
- ``"local"``: this process's own buckets apply (N instances then allow up to
  N times the rate, as without Redis);
- ``"closed"``: 503 with ``Retry-After: 1``.

Either way one warning (`limits.shared_store_unavailable`) is logged per
outage, not per request; requests go back to Redis as soon as the link is up
again.
"""

from __future__ import annotations

from typing import Literal

import structlog
import trio
from wasmkernel_redis import REDIS_ERRORS, RedisLink

from wasmkernel import ServiceUnavailable
from wasmkernel_limits.ratelimit import Decision, RateLimiter
from wasmkernel_limits.redis_store import RedisBuckets

log = structlog.get_logger("wasmkernel.limits")

WhenDown = Literal["open", "local", "closed"]


class SharedLimiter:
    def __init__(self, link: RedisLink, buckets: RedisBuckets, local: RateLimiter, when_down: WhenDown) -> None:
        self.link = link
        self.buckets = buckets
        self.local = local
        self.when_down = when_down
        self._warned_outage = 0
        #: Requests decided without Redis.
        self.unshared = 0

    async def take(self, key: str) -> Decision | None:
        """The decision for one request of `key`; None: let it pass unlimited."""
        if self.link.up:
            try:
                return await self.buckets.take(key)
            except trio.TooSlowError:
                self.link.mark_down(f"the rate-limit script took over {self.buckets.timeout:g} s")
            except REDIS_ERRORS as exc:
                self.link.mark_down(exc)
        return self._without_redis(key)

    def _without_redis(self, key: str) -> Decision | None:
        self.unshared += 1
        if self._warned_outage != self.link.outages:
            self._warned_outage = self.link.outages
            log.warning(
                "limits.shared_store_unavailable",
                address=self.link.address,
                error=self.link.last_error,
                behaviour=self.when_down,
                hint="requests are limited again through Redis once it answers; set redis_unavailable to choose open, local or closed",
            )
        if self.when_down == "closed":
            raise ServiceUnavailable("The shared rate limit cannot be checked: Redis is unavailable", headers={"Retry-After": "1"})
        if self.when_down == "local":
            return self.local.take(key, trio.current_time())
        return None
