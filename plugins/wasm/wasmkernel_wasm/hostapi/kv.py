"""Key-value backends behind `kv_*` host calls: in-process memory and a SQLite file.

Backends are synchronous and thread-safe: wasmtime calls them from its call
threads, wasmer's workers through `rpc` (served in threads of the main
process). A `Namespace` adds the grant's quotas; a write over a quota fails
with `HostFailure(QUOTA)` and changes nothing.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Protocol

import attrs

from wasmkernel_wasm.hostapi import INVALID, NOT_FOUND, QUOTA, HostFailure
from wasmkernel_wasm.hostapi.grants import KvGrant

#: `kv_list` returns at most this many keys.
LIST_LIMIT = 1000


class Backend(Protocol):
    def get(self, namespace: str, key: bytes) -> bytes | None: ...

    def set(self, namespace: str, key: bytes, value: bytes, max_total: int) -> bool:
        """Store `value`; False (nothing written) if the namespace would exceed `max_total` bytes."""

    def delete(self, namespace: str, key: bytes) -> bool: ...

    def list(self, namespace: str, prefix: bytes, limit: int) -> list[bytes]: ...

    def close(self) -> None: ...


class MemoryBackend:
    """Dicts in the main process (lost on restart)."""

    def __init__(self) -> None:
        self._data: dict[str, dict[bytes, bytes]] = {}
        self._usage: dict[str, int] = {}
        self._lock = threading.Lock()

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
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def get(self, namespace: str, key: bytes) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE ns = ? AND key = ?", (namespace, key)).fetchone()
        return bytes(row[0]) if row is not None else None

    def set(self, namespace: str, key: bytes, value: bytes, max_total: int) -> bool:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT length(value) FROM kv WHERE ns = ? AND key = ?", (namespace, key)).fetchone()
                used = self._db.execute("SELECT bytes FROM usage WHERE ns = ?", (namespace,)).fetchone()
                usage = (used[0] if used else 0) - (len(key) + row[0] if row else 0) + len(key) + len(value)
                if usage > max_total:
                    self._db.execute("ROLLBACK")
                    return False
                self._db.execute("INSERT OR REPLACE INTO kv (ns, key, value) VALUES (?, ?, ?)", (namespace, key, value))
                self._db.execute("INSERT OR REPLACE INTO usage (ns, bytes) VALUES (?, ?)", (namespace, usage))
                self._db.execute("COMMIT")
                return True
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


@attrs.frozen
class Namespace:
    """One module's view of a backend: its namespace and quotas."""

    backend: Backend
    name: str
    grant: KvGrant

    def _key(self, key: bytes) -> bytes:
        if not key:
            raise HostFailure(INVALID, "empty key")
        if len(key) > self.grant.max_key_bytes:
            raise HostFailure(QUOTA, f"key of {len(key)} bytes exceeds max_key_bytes = {self.grant.max_key_bytes}")
        return key

    def get(self, key: bytes) -> bytes:
        value = self.backend.get(self.name, self._key(key))
        if value is None:
            raise HostFailure(NOT_FOUND, "no such key")
        return value

    def set(self, key: bytes, value: bytes) -> None:
        self._key(key)
        if len(value) > self.grant.max_value_bytes:
            raise HostFailure(QUOTA, f"value of {len(value)} bytes exceeds max_value_bytes = {self.grant.max_value_bytes}")
        if not self.backend.set(self.name, key, value, self.grant.max_total_bytes):
            raise HostFailure(QUOTA, f"namespace '{self.name}' would exceed max_total_bytes = {self.grant.max_total_bytes}")

    def delete(self, key: bytes) -> bool:
        return self.backend.delete(self.name, self._key(key))

    def list(self, prefix: bytes) -> list[bytes]:
        return self.backend.list(self.name, prefix, LIST_LIMIT)
