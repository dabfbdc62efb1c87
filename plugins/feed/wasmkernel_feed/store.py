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
from typing import TypeVar

import trio

from wasmkernel_feed.models import Comment, Post, Thread

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


def _rowid(cursor: sqlite3.Cursor) -> int:
    assert cursor.lastrowid is not None  # an INSERT into a rowid table
    return cursor.lastrowid


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

    async def add_post(self, text: str, author: str) -> Post:
        def insert(db: sqlite3.Connection) -> Post:
            now = time.time()
            cursor = db.execute("INSERT INTO posts (text, author, created_at) VALUES (?, ?, ?)", (text, author, now))
            return Post(_rowid(cursor), text, author, now)

        return await self._run(insert)

    async def add_comment(self, post_id: int, text: str, author: str) -> Comment | None:
        """The new comment, or None when post `post_id` does not exist."""

        def insert(db: sqlite3.Connection) -> Comment | None:
            now = time.time()
            try:
                cursor = db.execute("INSERT INTO comments (post_id, text, author, created_at) VALUES (?, ?, ?, ?)", (post_id, text, author, now))
            except sqlite3.IntegrityError:  # the foreign key: no such post
                return None
            return Comment(_rowid(cursor), post_id, text, author, now)

        return await self._run(insert)

    async def delete_post(self, post_id: int) -> None:
        await self._run(lambda db: db.execute("DELETE FROM posts WHERE id = ?", (post_id,)))

    async def delete_comment(self, comment_id: int) -> None:
        await self._run(lambda db: db.execute("DELETE FROM comments WHERE id = ?", (comment_id,)))

    async def recent(self, limit: int) -> list[Thread]:
        """The `limit` newest posts, newest first, each with its comments (oldest first)."""

        def select(db: sqlite3.Connection) -> list[Thread]:
            rows = db.execute("SELECT id, text, author, created_at FROM posts ORDER BY id DESC LIMIT ?", (limit,))
            by_id = {row["id"]: Thread(**dict(row)) for row in rows}
            if by_id:
                marks = ",".join("?" * len(by_id))
                query = f"SELECT id, post_id, text, author, created_at FROM comments WHERE post_id IN ({marks}) ORDER BY id"
                for row in db.execute(query, tuple(by_id)):
                    by_id[row["post_id"]].comments.append(Comment(**dict(row)))
            return list(by_id.values())

        return await self._run(select)
