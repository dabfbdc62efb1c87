"""Posts and comments in SQLite (the standard library's `sqlite3`).

One connection per store, used from worker threads (`trio.to_thread`) one
call at a time, so the event loop never waits on the disk. The file uses
WAL journaling and a busy timeout, so several instances (or worker
processes, starting at once) may share it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    text TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    text TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS comments_by_post ON comments(post_id, id);
"""


def _row(row: sqlite3.Row) -> dict[str, Any]:
    return dict(row)


class FeedStore:
    """The feed's database at `path` (created with its folder if missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._lock = trio.Lock()
        #: The store's own thread (its work is serialised by `_lock`): never another subsystem's.
        self._threads = trio.CapacityLimiter(1)

    async def open(self) -> None:
        await trio.to_thread.run_sync(self._open, limiter=self._threads)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
        connection.row_factory = sqlite3.Row
        try:
            connection.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:  # SQLite answers at once, not after the busy timeout,
            if "locked" not in str(exc):  # when another process is making the new file WAL right now
                raise
        connection.execute("PRAGMA foreign_keys=ON")
        connection.executescript(f"BEGIN IMMEDIATE;{SCHEMA}COMMIT;")  # waits for another opener's schema
        self._connection = connection

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            async with self._lock:
                await trio.to_thread.run_sync(connection.close, limiter=self._threads)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._connection
        if connection is None:
            raise RuntimeError("the feed store is not open")
        async with self._lock:
            return await trio.to_thread.run_sync(work, connection, limiter=self._threads)

    async def add_post(self, text: str, author: str) -> dict[str, Any]:
        def insert(db: sqlite3.Connection) -> dict[str, Any]:
            now = time.time()
            cursor = db.execute("INSERT INTO posts (text, author, created_at) VALUES (?, ?, ?)", (text, author, now))
            return {"id": cursor.lastrowid, "text": text, "author": author, "created_at": now}

        return await self._run(insert)

    async def add_comment(self, post_id: int, text: str, author: str) -> dict[str, Any] | None:
        """The new comment, or None when post `post_id` does not exist."""

        def insert(db: sqlite3.Connection) -> dict[str, Any] | None:
            now = time.time()
            try:
                cursor = db.execute("INSERT INTO comments (post_id, text, author, created_at) VALUES (?, ?, ?, ?)", (post_id, text, author, now))
            except sqlite3.IntegrityError:  # the foreign key: no such post
                return None
            return {"id": cursor.lastrowid, "post_id": post_id, "text": text, "author": author, "created_at": now}

        return await self._run(insert)

    async def delete_post(self, post_id: int) -> None:
        await self._run(lambda db: db.execute("DELETE FROM posts WHERE id = ?", (post_id,)))

    async def delete_comment(self, comment_id: int) -> None:
        await self._run(lambda db: db.execute("DELETE FROM comments WHERE id = ?", (comment_id,)))

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        """The `limit` newest posts, newest first, each with its comments (oldest first)."""

        def select(db: sqlite3.Connection) -> list[dict[str, Any]]:
            posts = [_row(row) for row in db.execute("SELECT id, text, author, created_at FROM posts ORDER BY id DESC LIMIT ?", (limit,))]
            by_id = {post["id"]: {**post, "comments": []} for post in posts}
            if by_id:
                marks = ",".join("?" * len(by_id))
                query = f"SELECT id, post_id, text, author, created_at FROM comments WHERE post_id IN ({marks}) ORDER BY id"
                for row in db.execute(query, tuple(by_id)):
                    by_id[row["post_id"]]["comments"].append(_row(row))
            return list(by_id.values())

        return await self._run(select)
