"""Token buckets per client, in a bounded table (least recently seen clients
are forgotten first)."""

from __future__ import annotations

import math
from collections import OrderedDict

import attrs


@attrs.define
class Bucket:
    tokens: float
    updated: float


@attrs.frozen
class Decision:
    """The outcome of one request against its client's bucket."""

    allowed: bool
    limit: int
    remaining: int
    #: Seconds until the bucket is full again.
    reset: int
    #: Seconds until the next request would be allowed (0 when allowed).
    retry_after: int

    def headers(self) -> dict[str, str]:
        return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining), "RateLimit-Reset": str(self.reset)}

    @classmethod
    def of(cls, allowed: bool, tokens: float, rate: float, burst: int) -> Decision:
        """The decision for a bucket left with `tokens` after the request."""
        return cls(
            allowed=allowed,
            limit=burst,
            remaining=math.floor(tokens),
            reset=math.ceil((burst - tokens) / rate),
            retry_after=0 if allowed else max(1, math.ceil((1.0 - tokens) / rate)),
        )


class RateLimiter:
    """`rate` tokens per second, at most `burst` saved up, per key; at most
    `max_keys` buckets are kept (an evicted client starts again with a full
    bucket, as it would after being idle)."""

    def __init__(self, rate: float, burst: int, max_keys: int) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float) -> Decision:
        """Spend one token of `key`'s bucket at time `now` (seconds, monotonic)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(float(self.burst), now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        return Decision.of(allowed, bucket.tokens, self.rate, self.burst)
