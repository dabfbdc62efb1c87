"""The bookmarks API on WasmKernel: typed routes, JWT scopes (auth-jwt +
authz), SQLite, Server-Sent Events (channels).

    python -m hypercorn --worker-class trio benchmarks.bookmarks.wasmkernel_app:app
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import attrs
import trio
from attrs import validators as v
from wasmkernel_channels import CHANNELS

from wasmkernel import Application, AuthRequirement, NotFound, Request, Response, ResponseSpec, Route, hookimpl, load_registry, unstructure

WRITE = AuthRequirement(scopes=["bookmarks:write"])


@attrs.frozen
class NewBookmark:
    url: str = attrs.field(validator=v.and_(v.max_len(2000), v.matches_re(r"https?://\S+")))
    title: str = attrs.field(validator=v.and_(v.min_len(1), v.max_len(200)))
    tags: list[str] = attrs.field(factory=list, validator=v.max_len(10))


@attrs.frozen
class Bookmark:
    id: int
    url: str
    title: str
    tags: list[str]
    owner: str
    created_at: float


@attrs.frozen
class Page:
    limit: int = attrs.field(default=20, validator=[v.ge(1), v.le(100)])
    offset: int = attrs.field(default=0, validator=v.ge(0))


@attrs.frozen
class BookmarkId:
    id: int = attrs.field(validator=[v.ge(1), v.le(2**63 - 1)])


class Bookmarks:
    def __init__(self, database: str) -> None:
        self.db = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        self.db.execute("CREATE TABLE IF NOT EXISTS bookmarks (id INTEGER PRIMARY KEY, url, title, tags, owner, created_at)")
        self.lock = trio.Lock()

    async def query(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        async with self.lock:
            return await trio.to_thread.run_sync(lambda: self.db.execute(sql, args).fetchall())

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        self.channels = app.services.get(CHANNELS, needed_by="bookmarks")
        return [
            Route("/bookmarks", self.create, methods=["POST"], auth=WRITE, body_model=NewBookmark, responses={201: Bookmark}),
            Route("/bookmarks", self.list, query_model=Page, responses={200: list[Bookmark]}),
            Route("/bookmarks/events", self.events, responses={200: ResponseSpec("Events", schema={"type": "string"}, media_types="text/event-stream")}),
            Route("/bookmarks/{id:int}", self.get, path_model=BookmarkId, responses={200: Bookmark}),
            Route("/bookmarks/{id:int}", self.delete, methods=["DELETE"], auth=WRITE, path_model=BookmarkId, responses={204: "Deleted"}),
        ]

    async def create(self, request: Request, body: NewBookmark) -> Bookmark:
        owner, now = request.identity.subject if request.identity else "", time.time()
        rows = await self.query("INSERT INTO bookmarks VALUES (NULL, ?, ?, ?, ?, ?) RETURNING id", body.url, body.title, "\n".join(body.tags), owner, now)
        bookmark = Bookmark(rows[0][0], body.url, body.title, body.tags, owner, now)
        await self.channels.publish("bookmarks", unstructure(bookmark), event="created")
        return bookmark

    async def list(self, request: Request, query: Page) -> list[Bookmark]:
        rows = await self.query("SELECT * FROM bookmarks ORDER BY id DESC LIMIT ? OFFSET ?", query.limit, query.offset)
        return [_bookmark(row) for row in rows]

    async def get(self, request: Request, path: BookmarkId) -> Bookmark:
        rows = await self.query("SELECT * FROM bookmarks WHERE id = ?", path.id)
        if not rows:
            raise NotFound(f"No bookmark {path.id}")
        return _bookmark(rows[0])

    async def delete(self, request: Request, path: BookmarkId) -> None:
        if not await self.query("DELETE FROM bookmarks WHERE id = ? RETURNING id", path.id):
            raise NotFound(f"No bookmark {path.id}")
        await self.channels.publish("bookmarks", {"id": path.id}, event="deleted")

    async def events(self, request: Request) -> Response:
        return self.channels.event_stream(request, "bookmarks")


def _bookmark(row: tuple[Any, ...]) -> Bookmark:
    id_, url, title, tags, owner, created_at = row
    return Bookmark(id_, url, title, tags.split("\n") if tags else [], owner, created_at)


registry = load_registry(str(Path(__file__).with_name("registry.toml")))
app = Application.assemble(registry, extra_plugins={"bookmarks": Bookmarks(os.environ.get("BOOKMARKS_DB", ":memory:"))})
