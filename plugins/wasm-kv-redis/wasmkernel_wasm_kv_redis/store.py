"""Key-value namespaces in Redis, through the redis plugin's client.

Per namespace a hash of the values, a sorted set of the keys (for prefix
listing) and a byte count; writes are Lua scripts, so the grant's quotas
hold across every process and instance sharing that Redis. The store is
asynchronous (mode "loop"): wasmtime's call threads reach it with
`trio.from_thread`, wasmer's host RPC server awaits it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from coredis.tokens import PureToken
from wasmkernel_redis import REDIS_ERRORS, REDIS_LINK, RedisLink, Script
from wasmkernel_wasm.hostapi import ENTRY_COST, INVALID, UNAVAILABLE, HostFailure, SingleStore, parse_counter

from wasmkernel import Application

# KEYS: values (hash), keys (sorted set), cost; ARGV: key, value or delta, max_total, "set" | "incr", ENTRY_COST.
# The cost is recounted once when absent (a namespace from before ENTRY_COST).
_COST = """
local cost = redis.call('GET', KEYS[3])
if cost then return tonumber(cost) end
cost = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do cost = cost + #all[i] + #all[i + 1] + tonumber(ARGV[5]) end
return cost
"""

# Counters use HINCRBY: exact 64-bit arithmetic and Redis's integer grammar
# (Lua's numbers are doubles), undone if the new value breaks the quota.
_SET = (
    "local function usage_of()"
    + _COST
    + """end
local used = usage_of()
local entry = tonumber(ARGV[5])
local old = redis.call('HGET', KEYS[1], ARGV[1])
local value = ARGV[2]
if ARGV[4] == 'incr' then
  local done = redis.pcall('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
  if type(done) == 'table' and done.err then return {-1, done.err} end
  value = redis.call('HGET', KEYS[1], ARGV[1])
end
local usage = used + #ARGV[1] + #value + entry
if old then usage = usage - #ARGV[1] - #old - entry end
if usage > tonumber(ARGV[3]) then
  if ARGV[4] == 'incr' then
    if old then redis.call('HSET', KEYS[1], ARGV[1], old) else redis.call('HDEL', KEYS[1], ARGV[1]) end
  end
  return {0, 0}
end
redis.call('HSET', KEYS[1], ARGV[1], value)
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('SET', KEYS[3], usage)
return {1, value}
"""
)

_DELETE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('DECRBY', KEYS[3], #ARGV[1] + #old + tonumber(ARGV[2])) end
return 1
"""


class RedisBackend:
    """Namespaces in Redis, through the redis plugin's `RedisLink` (see the
    module docstring). A failing Redis fails the call cleanly
    (`HostFailure(UNAVAILABLE)`) and marks the link down."""

    mode: Literal["loop"] = "loop"

    def __init__(self, link: RedisLink, prefix: str = "wasmkernel:kv:") -> None:
        self.link = link
        self.prefix = prefix
        self._errors = REDIS_ERRORS
        self._set = Script(_SET)
        self._delete = Script(_DELETE)

    def _keys(self, namespace: str) -> list[str]:
        base = f"{self.prefix}{{{namespace}}}:"
        return [base + "data", base + "keys", base + "cost"]

    async def _run(self, operation: Any) -> Any:
        try:
            return await operation
        except self._errors as exc:
            self.link.mark_down(exc)
            raise HostFailure(UNAVAILABLE, f"the key-value store (Redis) is unavailable: {type(exc).__name__}") from None

    async def get(self, namespace: str, key: bytes) -> bytes | None:
        value = await self._run(self.link.client.hget(self._keys(namespace)[0], key))
        return bytes(value) if value is not None else None

    async def set(self, namespace: str, key: bytes, value: bytes, max_total: int) -> bool:
        done, _ = await self._run(self._set(self.link.client, self._keys(namespace), [key, value, max_total, "set", ENTRY_COST]))
        return bool(done == 1)

    async def incr(self, namespace: str, key: bytes, delta: int, max_total: int) -> int | None:
        done, value = await self._run(self._set(self.link.client, self._keys(namespace), [key, delta, max_total, "incr", ENTRY_COST]))
        if done == -1:
            overflow = "overflow" in (value.decode("latin-1") if isinstance(value, bytes) else str(value))
            raise HostFailure(INVALID, "the counter would overflow 64 bits" if overflow else "the value is not an integer counter")
        return parse_counter(value) if done == 1 else None

    async def delete(self, namespace: str, key: bytes) -> bool:
        return bool(await self._run(self._delete(self.link.client, self._keys(namespace), [key, ENTRY_COST])) == 1)

    async def list(self, namespace: str, prefix: bytes, limit: int) -> list[bytes]:
        start = b"[" + prefix if prefix else b"-"
        keys = await self._run(self.link.client.zrange(self._keys(namespace)[1], start, b"+", sortby=PureToken.BYLEX, offset=0, count=limit))
        return [bytes(key) for key in keys if bytes(key).startswith(prefix)]

    def close(self) -> None:
        """The client belongs to the redis plugin."""


def _connect(app: Application, needed_by: str) -> Callable[[], RedisBackend]:
    """The redis plugin's link, asked for as the module host `needed_by` (Redis starts first)."""
    link = app.services.get(REDIS_LINK, needed_by=needed_by)
    return lambda: RedisBackend(link)


#: ``backend = "redis"``: one store per module host, on the redis plugin's link.
REDIS_STORES = SingleStore("redis", _connect)
