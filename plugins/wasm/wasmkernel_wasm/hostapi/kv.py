"""Key-value backends behind `kv_*` host calls: in-process memory, a SQLite file, Redis.

Memory and SQLite are synchronous and thread-safe: wasmtime calls them from
its call threads, wasmer's workers through `rpc` (served in threads of the
main process). `RedisBackend` is asynchronous: it uses the redis plugin's
client in the main process's event loop (wasmtime's call threads reach it
with `trio.from_thread`, the RPC server awaits it). A `Namespace` adds the
grant's quotas; a write over a quota fails with `HostFailure(QUOTA)` and
changes nothing. Counters (`incr`) are decimal strings, like Redis's INCRBY.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import attrs

from wasmkernel_wasm.hostapi import INVALID, QUOTA, UNAVAILABLE, HostFailure
from wasmkernel_wasm.hostapi.grants import KvGrant

#: `kv_list` returns at most this many keys.
LIST_LIMIT = 1000


class Backend(Protocol):
    def get(self, namespace: str, key: bytes) -> bytes | None: ...

    def set(self, namespace: str, key: bytes, value: bytes, max_total: int) -> bool:
        """Store `value`; False (nothing written) if the namespace would exceed `max_total` bytes."""

    def delete(self, namespace: str, key: bytes) -> bool: ...

    def list(self, namespace: str, prefix: bytes, limit: int) -> list[bytes]: ...

    def incr(self, namespace: str, key: bytes, delta: int, max_total: int) -> int | None:
        """Add `delta` to the counter (0 if absent); the new value, or None over `max_total`.
        `HostFailure(INVALID)` if the value is not an integer."""

    def close(self) -> None: ...


def counter(value: bytes | None, delta: int) -> int:
    """The counter `value` (absent: 0) plus `delta`; `HostFailure(INVALID)` if it is not a 64-bit integer."""
    try:
        current = int(value) if value is not None else 0
    except ValueError:
        raise HostFailure(INVALID, "the value is not an integer counter") from None
    result = current + delta
    if not -(2**63) <= result < 2**63:
        raise HostFailure(INVALID, "the counter would overflow 64 bits")
    return result


class MemoryBackend:
    """Dicts in the main process (lost on restart)."""

    def __init__(self) -> None:
        self._data: dict[str, dict[bytes, bytes]] = {}
        self._usage: dict[str, int] = {}
        self._lock = threading.RLock()

    def get(self, namespace: str, key: bytes) -> bytes | None:
        return self._data.get(namespace, {}).get(key)

    def set(self, namespace: str, key: bytes, value: bytes, max_total: int) -> bool:
        with self._lock:
            table = self._data.setdefault(namespace, {})
            old = table.get(key)
            usage = self._usage.get(namespace, 0) - (len(key) + len(old) if old is not None else 0) + len(key) + len(value)
            if usage > max_total:
                return False
            table[key] = value
            self._usage[namespace] = usage
            return True

    def delete(self, namespace: str, key: bytes) -> bool:
        with self._lock:
            old = self._data.get(namespace, {}).pop(key, None)
            if old is None:
                return False
            self._usage[namespace] -= len(key) + len(old)
            return True

    def list(self, namespace: str, prefix: bytes, limit: int) -> list[bytes]:
        with self._lock:
            keys = [key for key in self._data.get(namespace, {}) if key.startswith(prefix)]
        return sorted(keys)[:limit]

    def incr(self, namespace: str, key: bytes, delta: int, max_total: int) -> int | None:
        with self._lock:
            value = counter(self._data.get(namespace, {}).get(key), delta)
            return value if self.set(namespace, key, str(value).encode(), max_total) else None

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage (ns TEXT PRIMARY KEY, bytes INTEGER NOT NULL);
"""


class SqliteBackend:
    """One SQLite file (WAL), shared by every module granted it; survives restarts.
    Several server processes may open the same file (SQLite locks it)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=5.0)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:  # SQLite answers at once, not after the busy timeout,
            if "locked" not in str(exc):  # when another process is making the new file WAL right now
                raise
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")  # waits for another opener's schema
        self._lock = threading.Lock()

    def get(self, namespace: str, key: bytes) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE ns = ? AND key = ?", (namespace, key)).fetchone()
        return bytes(row[0]) if row is not None else None

    def set(self, namespace: str, key: bytes, value: bytes, max_total: int) -> bool:
        return self._write(namespace, key, lambda _: value, max_total) is not None

    def incr(self, namespace: str, key: bytes, delta: int, max_total: int) -> int | None:
        result: list[int] = []

        def new(old: bytes | None) -> bytes:
            result.append(counter(old, delta))
            return str(result[0]).encode()

        return result[0] if self._write(namespace, key, new, max_total) is not None else None

    def _write(self, namespace: str, key: bytes, new: Callable[[bytes | None], bytes], max_total: int) -> bytes | None:
        """Replace the value with `new(old)` in one transaction; None (nothing written) over `max_total`."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT value FROM kv WHERE ns = ? AND key = ?", (namespace, key)).fetchone()
                old = bytes(row[0]) if row is not None else None
                value = new(old)
                used = self._db.execute("SELECT bytes FROM usage WHERE ns = ?", (namespace,)).fetchone()
                usage = (used[0] if used else 0) - (len(key) + len(old) if old is not None else 0) + len(key) + len(value)
                if usage > max_total:
                    self._db.execute("ROLLBACK")
                    return None
                self._db.execute("INSERT OR REPLACE INTO kv (ns, key, value) VALUES (?, ?, ?)", (namespace, key, value))
                self._db.execute("INSERT OR REPLACE INTO usage (ns, bytes) VALUES (?, ?)", (namespace, usage))
                self._db.execute("COMMIT")
                return value
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def delete(self, namespace: str, key: bytes) -> bool:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT length(value) FROM kv WHERE ns = ? AND key = ?", (namespace, key)).fetchone()
                if row is not None:
                    self._db.execute("DELETE FROM kv WHERE ns = ? AND key = ?", (namespace, key))
                    self._db.execute("UPDATE usage SET bytes = bytes - ? WHERE ns = ?", (len(key) + row[0], namespace))
                self._db.execute("COMMIT")
                return row is not None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def list(self, namespace: str, prefix: bytes, limit: int) -> list[bytes]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key FROM kv WHERE ns = ? AND substr(key, 1, ?) = ? ORDER BY key LIMIT ?", (namespace, len(prefix), prefix, limit)
            ).fetchall()
        return [bytes(row[0]) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


_SET = """
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
local old = redis.call('HGET', KEYS[1], ARGV[1])
local value = ARGV[2]
if ARGV[4] == 'incr' then
  local current = 0
  if old then
    current = tonumber(old)
    if current == nil or string.find(old, '^-?%d+$') == nil then return {-1, 0} end
  end
  value = tostring(current + tonumber(ARGV[2]))
end
local usage = used + #ARGV[1] + #value
if old then usage = usage - #ARGV[1] - #old end
if usage > tonumber(ARGV[3]) then return {0, 0} end
redis.call('HSET', KEYS[1], ARGV[1], value)
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('SET', KEYS[3], usage)
return {1, value}
"""

_DELETE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DECRBY', KEYS[3], #ARGV[1] + #old)
return 1
"""


class RedisBackend:
    """Namespaces in Redis, through the redis plugin's client (`wasmkernel_redis.REDIS_LINK`):
    per namespace a hash of the values, a sorted set of the keys (for prefix
    listing) and a byte count; writes are Lua scripts, so quotas hold across
    every process and instance sharing that Redis. A failing Redis fails the
    call cleanly (`HostFailure(UNAVAILABLE)`) and marks the link down."""

    def __init__(self, link: Any, prefix: str = "wasmkernel:kv:") -> None:
        from wasmkernel_redis import REDIS_ERRORS, Script  # installed whenever a grant says "redis"

        self.link = link
        self.prefix = prefix
        self._errors = REDIS_ERRORS
        self._set = Script(_SET)
        self._delete = Script(_DELETE)

    def _keys(self, namespace: str) -> list[str]:
        base = f"{self.prefix}{{{namespace}}}:"
        return [base + "data", base + "keys", base + "bytes"]

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
        done, _ = await self._run(self._set(self.link.client, self._keys(namespace), [key, value, max_total, "set"]))
        return bool(done == 1)

    async def incr(self, namespace: str, key: bytes, delta: int, max_total: int) -> int | None:
        done, value = await self._run(self._set(self.link.client, self._keys(namespace), [key, delta, max_total, "incr"]))
        if done == -1:
            raise HostFailure(INVALID, "the value is not an integer counter")
        return int(value) if done == 1 else None

    async def delete(self, namespace: str, key: bytes) -> bool:
        return bool(await self._run(self._delete(self.link.client, self._keys(namespace), [key])) == 1)

    async def list(self, namespace: str, prefix: bytes, limit: int) -> list[bytes]:
        from coredis.tokens import PureToken

        start = b"[" + prefix if prefix else b"-"
        keys = await self._run(self.link.client.zrange(self._keys(namespace)[1], start, b"+", sortby=PureToken.BYLEX, offset=0, count=limit))
        return [bytes(key) for key in keys if bytes(key).startswith(prefix)]

    def close(self) -> None:
        """The client belongs to the redis plugin."""


@attrs.frozen
class Namespace:
    """One module's view of a backend: its namespace and quotas (checked before the backend is asked)."""

    backend: Backend | RedisBackend
    name: str
    grant: KvGrant

    def key(self, key: bytes) -> bytes:
        if not key:
            raise HostFailure(INVALID, "empty key")
        if len(key) > self.grant.max_key_bytes:
            raise HostFailure(QUOTA, f"key of {len(key)} bytes exceeds max_key_bytes = {self.grant.max_key_bytes}")
        return key

    def value(self, value: bytes) -> bytes:
        if len(value) > self.grant.max_value_bytes:
            raise HostFailure(QUOTA, f"value of {len(value)} bytes exceeds max_value_bytes = {self.grant.max_value_bytes}")
        return value

    def over_total(self) -> HostFailure:
        return HostFailure(QUOTA, f"namespace '{self.name}' would exceed max_total_bytes = {self.grant.max_total_bytes}")
