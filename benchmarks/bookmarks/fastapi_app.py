"""The bookmarks API on FastAPI: pydantic models, JWT scopes (PyJWT +
Security), SQLite, Server-Sent Events.

    python -m hypercorn --worker-class trio benchmarks.bookmarks.fastapi_app:app
    python -m uvicorn benchmarks.bookmarks.fastapi_app:app
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import jwt
from anyio.streams.memory import MemoryObjectSendStream
from fastapi import Depends, FastAPI, HTTPException, Query, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field

SECRET = os.environ["BOOKMARKS_JWT_SECRET"]


class NewBookmark(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000, pattern=r"^https?://\S+$")
    title: str = Field(min_length=1, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=10)


class Bookmark(BaseModel):
    id: int
    url: str
    title: str
    tags: list[str]
    owner: str
    created_at: float


db = sqlite3.connect(os.environ.get("BOOKMARKS_DB", ":memory:"), check_same_thread=False, isolation_level=None)
db.execute("CREATE TABLE IF NOT EXISTS bookmarks (id INTEGER PRIMARY KEY, url, title, tags, owner, created_at)")
lock = anyio.Lock()
subscribers: set[MemoryObjectSendStream[ServerSentEvent]] = set()
app = FastAPI()


async def query(sql: str, *args: object) -> list[tuple[Any, ...]]:
    async with lock:
        return await anyio.to_thread.run_sync(lambda: db.execute(sql, args).fetchall())


def publish(event: str, data: dict[str, Any]) -> None:
    for stream in list(subscribers):
        try:
            stream.send_nowait(ServerSentEvent(event=event, data=data))
        except anyio.WouldBlock:  # a client that does not read is dropped
            subscribers.discard(stream)
            stream.close()


def user(scopes: SecurityScopes, credentials: Annotated[HTTPAuthorizationCredentials, Depends(HTTPBearer())]) -> str:
    try:
        claims = jwt.decode(credentials.credentials, SECRET, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.InvalidTokenError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    missing = set(scopes.scopes) - set(str(claims.get("scope", "")).split())
    if missing:
        raise HTTPException(403, f"missing scope(s): {', '.join(sorted(missing))}")
    return str(claims.get("sub", ""))


Writer = Annotated[str, Security(user, scopes=["bookmarks:write"])]
BookmarkId = Annotated[int, Field(ge=1, le=2**63 - 1)]


def _bookmark(row: tuple[Any, ...]) -> Bookmark:
    id_, url, title, tags, owner, created_at = row
    return Bookmark(id=id_, url=url, title=title, tags=tags.split("\n") if tags else [], owner=owner, created_at=created_at)


@app.post("/bookmarks", status_code=201)
async def create(body: NewBookmark, owner: Writer) -> Bookmark:
    now = time.time()
    rows = await query("INSERT INTO bookmarks VALUES (NULL, ?, ?, ?, ?, ?) RETURNING id", body.url, body.title, "\n".join(body.tags), owner, now)
    bookmark = Bookmark(id=rows[0][0], owner=owner, created_at=now, **body.model_dump())
    publish("created", bookmark.model_dump())
    return bookmark


@app.get("/bookmarks")
async def list_bookmarks(limit: Annotated[int, Query(ge=1, le=100)] = 20, offset: Annotated[int, Query(ge=0)] = 0) -> list[Bookmark]:
    rows = await query("SELECT * FROM bookmarks ORDER BY id DESC LIMIT ? OFFSET ?", limit, offset)
    return [_bookmark(row) for row in rows]


@app.get("/bookmarks/events", response_class=EventSourceResponse)
async def events() -> AsyncIterator[ServerSentEvent]:
    send, receive = anyio.create_memory_object_stream[ServerSentEvent](64)
    subscribers.add(send)
    try:
        async for event in receive:
            yield event
    finally:
        subscribers.discard(send)


@app.get("/bookmarks/{bookmark_id}")
async def get(bookmark_id: BookmarkId) -> Bookmark:
    rows = await query("SELECT * FROM bookmarks WHERE id = ?", bookmark_id)
    if not rows:
        raise HTTPException(404, f"No bookmark {bookmark_id}")
    return _bookmark(rows[0])


@app.delete("/bookmarks/{bookmark_id}", status_code=204)
async def delete(bookmark_id: BookmarkId, owner: Writer) -> Response:
    if not await query("DELETE FROM bookmarks WHERE id = ? RETURNING id", bookmark_id):
        raise HTTPException(404, f"No bookmark {bookmark_id}")
    publish("deleted", {"id": bookmark_id})
    return Response(status_code=204)
