"""The feed plugin: a live feed of posts and comments.

Routes (typed: bodies are `NewText`, answers `Post`, `Comment`, `Posts`;
see `wasmkernel_feed.models`):
- ``POST /posts`` ``{"text": ...}`` → 201, the new post (JWT scope
  `write_scope`, default "feed:write")
- ``POST /posts/{id:int}/comments`` ``{"text": ...}`` → 201, the new comment
  (same scope; 404 for a post that does not exist)
- ``GET /posts`` → ``{"posts": [...]}``: the `recent` newest posts, newest
  first, each with its ``comments`` (oldest first); public
- ``GET /feed/events``: the feed as Server-Sent Events (resumable with
  ``Last-Event-ID``); public
- ``/feed/ws`` (WebSocket): the same events, one JSON text message each;
  public (``?last_event_id=`` resumes)
- ``GET /feed/``: a page (plain HTML and JavaScript, no build step) showing the
  feed live, reconnecting with backoff; posting from it needs a token

Every new post or comment is one event on channel `channel` (default
"feed"), of SSE type "post" or "comment", whose data is the JSON object
``{"type": "post", "id", "text", "author", "created_at"}`` or ``{"type":
"comment", "id", "post_id", "text", "author", "created_at"}``; `author` is
the token's subject. A post or comment whose event cannot be published (the
broker is down) is not kept: the request is answered 503 with Retry-After.

Posts and comments are stored in SQLite at `database` (default
".wasmkernel/feed.sqlite3", relative to the registry's folder); several
instances may share the file.

Config (`[plugins.feed.config]`): `database`, `channel`, `recent` (default
50), `max_text` (characters per post or comment, default 2000),
`write_scope`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import attrs
import structlog
from wasmkernel_channels import CHANNELS, BrokerUnavailable, Channels, check_channel

from wasmkernel import (
    Application,
    AuthRequirement,
    ConfigError,
    ConfiguredPlugin,
    HTMLResponse,
    NotFound,
    Request,
    Response,
    ResponseSpec,
    Route,
    ServiceUnavailable,
    WebSocket,
    hookimpl,
    unstructure,
)
from wasmkernel_feed.models import Comment, NewText, Post, Posts, new_text
from wasmkernel_feed.store import FeedStore

log = structlog.get_logger("wasmkernel.feed")

NAME = "feed"
TAGS = ("feed",)
#: `GET /feed/events`: Server-Sent Events, each one's data a post or a comment.
EVENT_STREAM = ResponseSpec("Server-Sent Events: `post` and `comment`", schema={"type": "string"}, media_types="text/event-stream")


@attrs.frozen
class PostRef:
    #: A row id: SQLite's are 64-bit (a larger one is a 422, not a 500).
    id: int = attrs.field(validator=[attrs.validators.ge(1), attrs.validators.le(2**63 - 1)])


@attrs.frozen
class Config:
    database: str = attrs.field(default=".wasmkernel/feed.sqlite3", validator=attrs.validators.min_len(1))
    channel: str = "feed"
    recent: int = attrs.field(default=50, validator=[attrs.validators.ge(1), attrs.validators.le(1000)])
    max_text: int = attrs.field(default=2000, validator=[attrs.validators.ge(1), attrs.validators.le(100_000)])
    write_scope: str = attrs.field(default="feed:write", validator=attrs.validators.min_len(1))


class Plugin(ConfiguredPlugin[Config]):
    config_class = Config
    requires = ("channels",)
    order = 45

    def __init__(self) -> None:
        super().__init__()
        self.store: FeedStore | None = None
        self.channels: Channels | None = None
        self.page = resources.files("wasmkernel_feed").joinpath("page.html").read_bytes()

    def configured(self) -> None:
        try:
            check_channel(self.config.channel)
        except ValueError as exc:
            raise ConfigError("channel", str(exc)) from None
        path = Path(self.config.database)
        self.store = FeedStore(path if path.is_absolute() else self.app.registry.path.parent / path)

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        self.channels = app.services.get(CHANNELS, needed_by=NAME)
        write = AuthRequirement(scopes=[self.config.write_scope])
        text = new_text(self.config.max_text)
        not_kept = "Not delivered live, so not kept (retry later)"
        return [
            Route("/posts", self.create_post, methods=["POST"], name="feed.create_post", auth=write, body_model=text,
                  summary="Publish a post", tags=TAGS, responses={201: Post, 503: not_kept}),
            Route("/posts/{id:int}/comments", self.create_comment, methods=["POST"], name="feed.create_comment", auth=write, body_model=text,
                  path_model=PostRef, summary="Comment on a post", tags=TAGS, responses={201: Comment, 404: "No such post", 503: not_kept}),
            Route("/posts", self.list_posts, name="feed.posts", summary="Recent posts with their comments", tags=TAGS, responses={200: Posts}),
            Route("/feed/events", self.events, name="feed.events", summary="The feed as Server-Sent Events", tags=TAGS, responses={200: EVENT_STREAM}),
            Route("/feed/ws", self.websocket, websocket=True, name="feed.ws", summary="The feed over a WebSocket", tags=TAGS),
            Route("/feed/", self.page_view, name="feed.page", summary="The live feed page", tags=TAGS, include_in_schema=False),
        ]  # fmt: skip

    @property
    def hub(self) -> Channels:
        assert self.channels is not None
        return self.channels

    @property
    def db(self) -> FeedStore:
        assert self.store is not None
        return self.store

    @hookimpl
    async def wasmkernel_startup(self, app: Application) -> None:
        await self.db.open()
        log.info("feed.ready", database=str(self.db.path), channel=self.config.channel)

    @hookimpl
    async def wasmkernel_shutdown(self, app: Application) -> None:
        await self.db.close()

    # -- endpoints ---------------------------------------------------------------

    async def create_post(self, request: Request, body: NewText) -> Post:
        post = await self.db.add_post(body.text, _author(request))
        try:
            await self.hub.publish(self.config.channel, {"type": "post", **unstructure(post)}, event="post")
        except BrokerUnavailable as exc:
            await self.db.delete_post(post.id)
            raise _not_kept("post", exc) from None
        return post

    async def create_comment(self, request: Request, body: NewText, path: PostRef) -> Comment:
        comment = await self.db.add_comment(path.id, body.text, _author(request))
        if comment is None:
            raise NotFound(f"No post with id {path.id}")
        try:
            await self.hub.publish(self.config.channel, {"type": "comment", **unstructure(comment)}, event="comment")
        except BrokerUnavailable as exc:
            await self.db.delete_comment(comment.id)
            raise _not_kept("comment", exc) from None
        return comment

    async def list_posts(self, request: Request) -> Posts:
        return Posts(await self.db.recent(self.config.recent))

    async def events(self, request: Request) -> Response:
        return self.hub.event_stream(request, self.config.channel)

    async def websocket(self, ws: WebSocket) -> None:
        await self.hub.serve_websocket(ws, self.config.channel)

    async def page_view(self, request: Request) -> Response:
        return HTMLResponse(self.page, headers={"cache-control": "no-cache"})


def _author(request: Request) -> str:
    return request.identity.subject if request.identity is not None else "anonymous"


def _not_kept(kind: str, error: BrokerUnavailable) -> ServiceUnavailable:
    log.warning("feed.not_delivered", kind=kind, error=str(error))
    return ServiceUnavailable(f"The {kind} was not kept: live delivery is unavailable ({error}); retry later", headers={"Retry-After": "2"})
