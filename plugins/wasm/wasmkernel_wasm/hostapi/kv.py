"""The key-value stores the host has built in: in-process memory and a SQLite file.

Both are synchronous and thread-safe: wasmtime calls them from its call
threads, wasmer's workers through `rpc` (memory inline in the event loop,
SQLite in threads of the main process). Other stores (Redis: the
`wasm-kv-redis` plugin) are contributed through `wasmkernel_kv_backends`
(`keyvalue`). A `Namespace` adds the grant's quotas; a write over a quota
fails with `HostFailure(QUOTA)` and changes nothing. Counters (`incr`) are
decimal strings, like Redis's INCRBY.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

import attrs

from wasmkernel_wasm.hostapi import INVALID, QUOTA, HostFailure
from wasmkernel_wasm.hostapi.grants import KvGrant

#: `kv_list` returns at most this many keys.
LIST_LIMIT = 1000
#: Bytes an entry costs besides its key and value, in every quota.
ENTRY_COST = 64
_COUNTER = re.compile(rb"0|-?[1-9][0-9]{0,18}")


def cost(key: bytes, value: bytes) -> int:
    """What one entry counts against `max_total_bytes`."""
    return len(key) + len(value) + ENTRY_COST


class Backend(Protocol):
    """A synchronous, thread-safe store: "inline" (quick: run in the event
    loop) or "thread" (blocking: run in a thread of the host's)."""

    @property
    def mode(self) -> Literal["inline", "thread"]: ...

    def get(self, namespace: str, key: bytes) -> bytes | None: ...

    def set(self, namespace: str, key: bytes, value: bytes, max_total: int) -> bool:
        """Store `value`; False (nothing written) if the namespace would exceed `max_total` bytes."""

    def delete(self, namespace: str, key: bytes) -> bool: ...

    def list(self, namespace: str, prefix: bytes, limit: int) -> list[bytes]: ...

    def incr(self, namespace: str, key: bytes, delta: int, max_total: int) -> int | None:
        """Add `delta` to the counter (0 if absent); the new value, or None over `max_total`.
        `HostFailure(INVALID)` if the value is not an integer."""

    def close(self) -> None: ...


class AsyncBackend(Protocol):
    """An asynchronous store, used in the event loop (mode "loop"): the methods of `Backend` as coroutines."""

    @property
    def mode(self) -> Literal["loop"]: ...

    async def get(self, namespace: str, key: bytes) -> bytes | None: ...

    async def set(self, namespace: str, key: bytes, value: bytes, max_total: int) -> bool: ...

    async def delete(self, namespace: str, key: bytes) -> bool: ...

    async def list(self, namespace: str, prefix: bytes, limit: int) -> list[bytes]: ...

    async def incr(self, namespace: str, key: bytes, delta: int, max_total: int) -> int | None: ...

    def close(self) -> None: ...


def parse_counter(data: bytes | str, what: str = "value") -> int:
    """A signed 64-bit decimal integer in Redis's grammar; `HostFailure(INVALID)` for anything else."""
    raw = data.encode("latin-1", "replace") if isinstance(data, str) else bytes(data)
    if not _COUNTER.fullmatch(raw) or not -(2**63) <= int(raw) < 2**63:
        raise HostFailure(INVALID, f"the {what} is not an integer counter (a signed 64-bit decimal: 0 or -?[1-9][0-9]*)")
    return int(raw)


def counter(value: bytes | None, delta: int) -> int:
    """The counter `value` (absent: 0) plus `delta`; `HostFailure(INVALID)` if it is not a 64-bit integer."""
    current = parse_counter(value) if value is not None else 0
    result = current + delta
    if not -(2**63) <= result < 2**63:
        raise HostFailure(INVALID, "the counter would overflow 64 bits")
    return result


class MemoryBackend:
    """Dicts in the main process (lost on restart)."""

    mode: Literal["inline"] = "inline"

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
            usage = self._usage.get(namespace, 0) - (cost(key, old) if old is not None else 0) + cost(key, value)
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
            self._usage[namespace] -= cost(key, old)
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
#: Version 1 counts `ENTRY_COST` per entry: a file from before is recounted once.
_RECOUNT = f"""
DELETE FROM usage;
INSERT INTO usage (ns, bytes) SELECT ns, SUM(length(key) + length(value) + {ENTRY_COST}) FROM kv GROUP BY ns;
PRAGMA user_version = 1;
"""


class SqliteBackend:
    """One SQLite file (WAL), shared by every module granted it; survives restarts.
    Several server processes may open the same file (SQLite locks it)."""

    mode: Literal["thread"] = "thread"

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
        if self._db.execute("PRAGMA user_version").fetchone()[0] < 1:
            self._db.executescript(f"BEGIN IMMEDIATE;{_RECOUNT}COMMIT;")  # idempotent if two openers race
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
                usage = (used[0] if used else 0) - (cost(key, old) if old is not None else 0) + cost(key, value)
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
                    self._db.execute("UPDATE usage SET bytes = bytes - ? WHERE ns = ?", (len(key) + row[0] + ENTRY_COST, namespace))
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


@attrs.frozen
class Namespace:
    """One module's view of a backend: its namespace and quotas (checked before the backend is asked)."""

    backend: Backend | AsyncBackend
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
