"""The feed plugin through the default chain, in-process: writing needs a
token with scope feed:write, bodies are validated, posts and comments are
stored in SQLite and each is one event on the channel, seen over the
WebSocket route and over SSE (served by hypercorn, real TCP)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import jwt
import pytest
import trio
from wasmkernel_channels import CHANNELS, event_data
from wasmkernel_feed.store import FeedStore

from wasmkernel import Application
from wasmkernel.testing import ServeApp, app_from, running, websocket_connect

SECRET = "f" * 32


def chain(database: Path, **feed: Any) -> dict[str, dict[str, Any]]:
    return {
        "metrics": {},
        "request-id": {},
        "access-log": {},
        "errors": {},
        "compression": {},
        "cors": {"config": {"allow_origins": ["http://localhost:3000"]}},
        "limits": {"config": {"max_body_bytes": 65536}},
        "authz": {},
        "validation": {},
        "auth-jwt": {"config": {"secret": SECRET}},
        "router": {},
        "health": {},
        "channels": {"config": {"keepalive_seconds": 0.5}},
        "feed": {"config": {"database": str(database), **feed}},
    }


def make_app(database: Path, **feed: Any) -> Application:
    return app_from(chain(database, **feed))


def auth(scope: str = "feed:write", subject: str = "ann") -> dict[str, str]:
    token = jwt.encode({"sub": subject, "scope": scope, "exp": 2_000_000_000}, SECRET, algorithm="HS256")
    return {"authorization": f"Bearer {token}"}


async def test_writing_needs_the_scope_and_a_valid_body(tmp_path: Path) -> None:
    app = make_app(tmp_path / "feed.db")
    async with running(app) as http:
        assert (await http.post("/posts", json={"text": "hi"})).status_code == 401
        assert (await http.post("/posts", json={"text": "hi"}, headers=auth("other"))).status_code == 403
        for bad in ({}, {"text": ""}, {"text": "   "}, {"text": 5}, {"text": "x" * 2001}, {"text": "hi", "extra": 1}):
            response = await http.post("/posts", json=bad, headers=auth())
            assert response.status_code == 422, bad
            assert response.headers["content-type"] == "application/problem+json"
        malformed = await http.post("/posts", content=b"{", headers={**auth(), "content-type": "application/json"})
        assert malformed.status_code == 400
        assert (await http.post("/posts/1/comments", json={"text": "no post"}, headers=auth())).status_code == 404
        huge = await http.post(f"/posts/{2**63}/comments", json={"text": "beyond a row id"}, headers=auth())
        assert (huge.status_code, huge.json()["errors"][0]["pointer"]) == (422, "/id")  # SQLite refused it: a 500
        assert (await http.get("/posts")).json() == {"posts": []}


async def test_posts_and_comments_are_stored_listed_and_published(tmp_path: Path) -> None:
    app = make_app(tmp_path / "feed.db")
    channels = app.services.get(CHANNELS, needed_by="test")
    async with running(app) as http:
        with channels.subscribe("feed") as events:
            post = await http.post("/posts", json={"text": "first <b>post</b>"}, headers=auth())
            assert post.status_code == 201
            created = post.json()
            assert created["text"] == "first <b>post</b>" and created["author"] == "ann" and isinstance(created["id"], int)
            comment = await http.post(f"/posts/{created['id']}/comments", json={"text": "nice"}, headers=auth(subject="bob"))
            assert comment.status_code == 201
            with trio.fail_after(30):
                first, second = await events.next_event(), await events.next_event()
        assert first is not None and second is not None
        assert (first.event, event_data(first)) == ("post", {"type": "post", **created})
        assert (second.event, event_data(second)) == ("comment", {"type": "comment", **comment.json()})
        await http.post("/posts", json={"text": "second"}, headers=auth())
        listed = (await http.get("/posts")).json()["posts"]
        assert [p["text"] for p in listed] == ["second", "first <b>post</b>"]
        assert [c["text"] for c in listed[1]["comments"]] == ["nice"] and listed[1]["comments"][0]["author"] == "bob"
    # Stored: a new application on the same file sees them.
    async with running(make_app(tmp_path / "feed.db")) as http:
        assert len((await http.get("/posts")).json()["posts"]) == 2


async def test_recent_bounds_the_listing(tmp_path: Path) -> None:
    async with running(make_app(tmp_path / "feed.db", recent=2)) as http:
        for n in range(3):
            await http.post("/posts", json={"text": f"p{n}"}, headers=auth())
        assert [p["text"] for p in (await http.get("/posts")).json()["posts"]] == ["p2", "p1"]


async def test_the_websocket_route_is_public_and_delivers_each_event(tmp_path: Path) -> None:
    app = make_app(tmp_path / "feed.db")
    async with running(app) as http, websocket_connect(app, "/feed/ws", headers={"origin": "http://testserver"}) as ws:
        created = (await http.post("/posts", json={"text": "over ws"}, headers=auth())).json()
        with trio.fail_after(30):
            assert await ws.receive_json() == {"type": "post", **created}


async def test_sse_route_streams_events_with_their_type(tmp_path: Path, serve_app: ServeApp) -> None:
    app = make_app(tmp_path / "feed.db")
    channels = app.services.get(CHANNELS, needed_by="test")
    served = await serve_app(app)
    async with served.sse("/feed/events") as events:
        assert events.response.headers["content-type"] == "text/event-stream"
        assert channels.subscriber_count == 1  # subscribed before the response started
        created = (await served.http.post("/posts", json={"text": "over sse"}, headers=auth())).json()
        event = await events.next()
        assert event.event == "post" and event.json() == {"type": "post", **created} and str(event.id).endswith("-1")


async def test_the_page_is_served(tmp_path: Path) -> None:
    async with running(make_app(tmp_path / "feed.db")) as http:
        page = await http.get("/feed/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/feed/ws" in page.text and "Live feed" in page.text


def test_database_path_is_relative_to_the_registry(tmp_path: Path) -> None:
    from wasmkernel import Application
    from wasmkernel.testing import registry_from

    registry = registry_from(chain(Path("data/feed.db")), path=tmp_path / "registry.toml")
    app = Application.assemble(registry)
    feed = next(p.instance for p in app.plugins if p.name == "feed")
    assert feed.db.path == tmp_path / "data" / "feed.db"


def test_invalid_channel_is_a_config_error(tmp_path: Path) -> None:
    from wasmkernel import RegistryError

    with pytest.raises(RegistryError, match="channel"):
        make_app(tmp_path / "feed.db", channel="no spaces")


async def test_stores_opening_one_new_file_at_once_all_open_it_in_wal_mode(tmp_path: Path) -> None:
    """Worker processes start together. SQLite refuses a second switch of a new
    file to WAL at once (no busy timeout): that must not fail the startup."""
    for attempt in range(60):
        path = tmp_path / f"feed-{attempt}.db"
        stores = [FeedStore(path) for _ in range(3)]
        async with trio.open_nursery() as nursery:
            for store in stores:
                nursery.start_soon(store.open)
        for store in stores:
            await store.close()
        with contextlib.closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
