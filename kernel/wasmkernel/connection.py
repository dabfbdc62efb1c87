"""What HTTP requests and WebSocket connections share (Starlette's
`HTTPConnection`): the handshake's URL parts, headers, cookies and client,
what routing found, who the caller is, and plugins' typed per-connection data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import attrs

from wasmkernel.cookies import parse_cookies
from wasmkernel.datastructures import Headers, QueryParams
from wasmkernel.routing import Route
from wasmkernel.stash import Stash

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

DEFAULT_MAX_BODY_SIZE = 1024 * 1024


def _names(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


@attrs.frozen
class Identity:
    """Who made a request, as an authenticator (`scheme`: "jwt", "apikey",
    ...) vouched: `subject`, the `scopes` and `roles` granted, and the raw
    token `claims` or key metadata."""

    subject: str
    scheme: str
    scopes: frozenset[str] = attrs.field(default=frozenset(), converter=_names)
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_names)
    claims: dict[str, Any] = attrs.field(factory=dict, eq=False, hash=False)


@attrs.define(slots=True, eq=False)
class Connection:
    """An ASGI ``http`` or ``websocket`` connection, parsed lazily from its
    scope. The kernel sets `path_params` and `route`, authentication
    `identity`; `stash` holds plugins' data under typed keys;
    `max_body_size` bounds a request body, or each WebSocket message."""

    scope: MutableMapping[str, Any] = attrs.field(repr=False)
    receive: Receive = attrs.field(repr=False)
    id: str = ""
    path_params: dict[str, Any] = attrs.field(factory=dict)
    route: Route | None = attrs.field(default=None, repr=False)
    identity: Identity | None = None
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    _stash: Stash | None = attrs.field(default=None, repr=False)
    _headers: Headers | None = attrs.field(default=None, repr=False)
    _query: QueryParams | None = attrs.field(default=None, repr=False)
    _cookies: dict[str, str] | None = attrs.field(default=None, repr=False)

    @property
    def stash(self) -> Stash:
        if self._stash is None:
            self._stash = Stash()
        return self._stash

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    @property
    def raw_path(self) -> bytes:
        raw = self.scope.get("raw_path")
        return raw if raw is not None else self.path.encode()

    @property
    def query_string(self) -> bytes:
        return bytes(self.scope.get("query_string", b""))

    @property
    def scheme(self) -> str:
        return str(self.scope.get("scheme", "http"))

    @property
    def client(self) -> tuple[str, int] | None:
        client = self.scope.get("client")
        return (str(client[0]), int(client[1])) if client else None

    @property
    def client_host(self) -> str:
        return self.client[0] if self.client else ""

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers.from_asgi(self.scope.get("headers", ()))
        return self._headers

    @property
    def query(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams.parse(self.query_string)
        return self._query

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies by name (see `wasmkernel.cookies.parse_cookies`)."""
        if self._cookies is None:
            self._cookies = parse_cookies(self.headers.getall("cookie"))
        return self._cookies
