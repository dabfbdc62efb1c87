"""Token buckets in Redis, shared by every instance that uses the same Redis.

One Lua script reads, refills, spends and writes a bucket atomically (Redis
runs scripts one at a time), so concurrent requests on N instances spend one
budget. The clock is Redis's own (`TIME`): instances' clocks never mix. A
bucket is a hash `<prefix><key>` {tokens, updated} that expires when it would
be full again, so idle clients cost no memory.
"""

from __future__ import annotations

import coredis
import trio
from wasmkernel_redis import Script

from wasmkernel_limits.ratelimit import Decision

TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1])
if tokens == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - tonumber(state[2])) * rate)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'updated', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, string.format('%.6f', tokens)}
"""


class RedisBuckets:
    """`rate` tokens per second, at most `burst`, per key, kept in Redis.

    `take` raises what the client raises when Redis fails, and
    `trio.TooSlowError` when it does not answer within `timeout`."""

    def __init__(self, client: coredis.Redis[bytes], rate: float, burst: int, *, prefix: str = "wasmkernel:ratelimit:", timeout: float = 0.5) -> None:
        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self.timeout = timeout
        self._client = client
        self._script = Script(TAKE)

    async def take(self, key: str) -> Decision:
        with trio.fail_after(self.timeout):
            # EVALSHA (EVAL when Redis lacks the script); it answers {allowed (0/1), tokens left}.
            answer = await self._script(self._client, [self.prefix + key], [repr(self.rate), str(self.burst)])
        allowed, tokens = answer
        return Decision.of(allowed == 1, float(tokens), self.rate, self.burst)
