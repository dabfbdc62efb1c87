"""One Redis connection pool and what is known about its health.

`RedisLink.run` is a long-running task (in the application's nursery): it
opens the coredis client, pings Redis every `interval` seconds while it is
up and, after a failure, retries with exponential `backoff` until it
answers again. coredis reconnects its
pool by itself on the next command, so "reconnecting" is these pings.

Consumers that see a command fail call `mark_down`, so the outage is known at
once rather than at the next ping. Each outage is logged once when it starts
(`redis.down`, warning) and once when it ends (`redis.up`, with its length;
the first successful ping logs `redis.connected`);
`outages` counts them, so a consumer can log its own line once per outage.
"""

from __future__ import annotations

import math

import anyio
import coredis
import structlog
import trio

from wasmkernel_redis.backoff import Backoff

log = structlog.get_logger("wasmkernel.redis")

#: What a failing Redis command raises: connection refused/reset, timeouts,
#: a server that answers with an error (e.g. while it loads its data set),
#: a connection coredis (anyio) already closed.
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    coredis.exceptions.RedisError,
    OSError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
)


def redis_failure(exc: BaseException) -> BaseException | None:
    """The Redis error `exc` is, or that every exception of the group `exc`
    is (coredis's pub/sub raises from inside anyio task groups); None when
    `exc` is something else (a bug, a cancellation)."""
    if isinstance(exc, REDIS_ERRORS):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        failures = [redis_failure(inner) for inner in exc.exceptions]
        if all(failures):
            return failures[0]
    return None


class RedisLink:
    """A coredis client, its health monitor and its outage bookkeeping."""

    def __init__(
        self,
        client: coredis.Redis[bytes],
        address: str,
        *,
        interval: float = 1.0,
        timeout: float = 1.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        #: host:port (never the password) for log lines and /readyz.
        self.address = address
        self.interval = interval
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self.up = False
        #: Outages so far (including one at startup).
        self.outages = 0
        #: Round trip of the last successful ping, in seconds.
        self.ping_seconds = math.nan
        self.last_error = ""
        self._down_since: float | None = None
        self._checked = False

    def mark_down(self, error: BaseException | str) -> None:
        """Record that Redis failed (a command raised `error`)."""
        self.last_error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        if self.up or not self._checked:
            self.outages += 1
            self._down_since = trio.current_time()
            log.warning("redis.down", address=self.address, error=self.last_error, outage=self.outages)
        self.up = False
        self._checked = True

    def _mark_up(self, round_trip: float) -> None:
        self.ping_seconds = round_trip
        if self._down_since is not None:
            log.info("redis.up", address=self.address, down_seconds=round(trio.current_time() - self._down_since, 3))
        elif not self._checked:
            log.info("redis.connected", address=self.address)
        self.up = True
        self._checked = True
        self.last_error = ""
        self._down_since = None

    async def check(self) -> bool:
        """Ping once (bounded by `timeout`); update and return the health."""
        started = trio.current_time()
        try:
            with trio.fail_after(self.timeout):
                await self.client.ping()
        except trio.TooSlowError:
            self.mark_down(f"no answer to PING within {self.timeout:g} s")
        except REDIS_ERRORS as exc:
            self.mark_down(exc)
        else:
            self._mark_up(trio.current_time() - started)
        return self.up

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the client, check once (started then, up or not), then keep
        checking until cancelled."""
        async with self.client:
            await self.check()
            task_status.started()
            while True:
                if self.up:
                    self.backoff.reset()
                    await trio.sleep(self.interval)
                else:
                    await self.backoff.wait()
                await self.check()
