"""WasmKernel plugin `redis`: one shared Redis client offered to other plugins.

Public API: the service keys `REDIS` (a `coredis.Redis` client) and
`REDIS_LINK` (`RedisLink`: the client and its health), `REDIS_ERRORS`
(what a failing command raises), `redis_failure` (the same for exception
groups, as coredis's pub/sub raises them) and `Script` (a Lua script run by
its SHA1)."""

from wasmkernel_redis.link import REDIS_ERRORS, RedisLink, redis_failure
from wasmkernel_redis.plugin import REDIS, REDIS_LINK
from wasmkernel_redis.script import Script

__all__ = ["REDIS", "REDIS_ERRORS", "REDIS_LINK", "RedisLink", "Script", "redis_failure"]
