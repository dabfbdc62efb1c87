"""WasmKernel plugin `redis`: one shared Redis client offered to other plugins.

Public API: the service keys `REDIS` (a `coredis.Redis` client) and
`REDIS_LINK` (`RedisLink`: the client and its health), `REDIS_ERRORS`
(what a failing command raises) and `redis_failure` (the same for exception
groups, as coredis's pub/sub raises them)."""

from wasmkernel_redis.link import REDIS_ERRORS, RedisLink, redis_failure
from wasmkernel_redis.plugin import REDIS, REDIS_LINK

__all__ = ["REDIS", "REDIS_ERRORS", "REDIS_LINK", "RedisLink", "redis_failure"]
