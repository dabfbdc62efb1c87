"""WasmKernel plugin `redis`: one shared Redis client offered to other plugins.

Public API: the service keys `REDIS` (a `coredis.Redis` client) and
`REDIS_LINK` (`RedisLink`: the client and its health), `REDIS_ERRORS`
(what a failing command raises) and `redis_failure` (the same for exception
groups, as coredis's pub/sub raises them). The names that need coredis load
it on first use (PEP 562): a registry without a Redis url never imports it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from wasmkernel_redis.plugin import REDIS, REDIS_LINK

if TYPE_CHECKING:
    from wasmkernel_redis.link import REDIS_ERRORS, RedisLink, redis_failure

__all__ = ["REDIS", "REDIS_ERRORS", "REDIS_LINK", "RedisLink", "redis_failure"]


def __getattr__(name: str) -> Any:
    if name not in ("REDIS_ERRORS", "RedisLink", "redis_failure"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("wasmkernel_redis.link"), name)
    globals()[name] = value
    return value
