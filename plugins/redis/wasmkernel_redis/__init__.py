"""WasmKernel plugin `redis`: one shared Redis client offered to other plugins.

Public API: the service keys `REDIS` (a `coredis.Redis` client) and
`REDIS_LINK` (`RedisLink`: the client and its health), `REDIS_ERRORS`
(what a failing command raises), `Backoff` (retry delays), `redis_failure` (the same for exception
groups, as coredis's pub/sub raises them) and `Script` (a Lua script run by
its SHA1). The names that need coredis load
it on first use (PEP 562): a registry without a Redis url never imports it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from wasmkernel_redis.backoff import Backoff
from wasmkernel_redis.plugin import REDIS, REDIS_LINK

if TYPE_CHECKING:
    from wasmkernel_redis.link import REDIS_ERRORS, RedisLink, redis_failure
    from wasmkernel_redis.script import Script

__all__ = ["REDIS", "REDIS_ERRORS", "REDIS_LINK", "Backoff", "RedisLink", "Script", "redis_failure"]


def __getattr__(name: str) -> Any:
    source = "wasmkernel_redis.script" if name == "Script" else "wasmkernel_redis.link"
    if name not in ("REDIS_ERRORS", "RedisLink", "redis_failure", "Script"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value
