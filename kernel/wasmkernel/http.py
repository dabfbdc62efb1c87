"""The request object handed to middleware and endpoints."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

import attrs

from wasmkernel.datastructures import Headers, QueryParams
from wasmkernel.errors import BadRequest, PayloadTooLarge
from wasmkernel.jsonio import off_loop, parse_json
from wasmkernel.routing import Route

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

DEFAULT_MAX_BODY_SIZE = 1024 * 1024


class ClientDisconnected(Exception):
    """The client went away before the request body was read."""


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


@attrs.define(slots=True)
class Request:
    """An HTTP request, parsed lazily from the ASGI scope; the body is read
    by the first `body()`, at most `max_body_size` bytes (413 beyond). The
    kernel sets `path_params` and `route`, authentication `identity`; `state`
    is free per-request storage for middleware and endpoints."""

    scope: MutableMapping[str, Any] = attrs.field(repr=False)
    receive: Receive = attrs.field(repr=False)
    id: str = ""
    path_params: dict[str, Any] = attrs.field(factory=dict)
    route: Route | None = attrs.field(default=None, repr=False)
    identity: Identity | None = None
    state: dict[str, Any] = attrs.field(factory=dict, repr=False)
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    _headers: Headers | None = attrs.field(default=None, repr=False)
    _query: QueryParams | None = attrs.field(default=None, repr=False)
    _cookies: dict[str, str] | None = attrs.field(default=None, repr=False)
    _body: bytes | None = attrs.field(default=None, repr=False)

    @property
    def method(self) -> str:
        return str(self.scope["method"])

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
        if self._cookies is None:
            jar: SimpleCookie = SimpleCookie()
            for header in self.headers.getall("cookie"):
                with contextlib.suppress(CookieError):
                    jar.load(header)
            self._cookies = {key: morsel.value for key, morsel in jar.items()}
        return self._cookies

    @property
    def content_type(self) -> str:
        """The media type of the body, lower-case, without parameters."""
        return (self.headers.get("content-type") or "").split(";")[0].strip().lower()

    async def body(self) -> bytes:
        """The whole body; 413 if it is (or announces to be) over `max_body_size`."""
        if self._body is not None:
            return self._body
        declared = self.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_size:
            raise PayloadTooLarge(f"Request body exceeds {self.max_body_size} bytes")
        body = bytearray()
        more = True
        while more:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            body += message.get("body", b"")
            if len(body) > self.max_body_size:
                raise PayloadTooLarge(f"Request body exceeds {self.max_body_size} bytes")
            more = message.get("more_body", False)
        self._body = bytes(body)
        return self._body

    async def text(self) -> str:
        try:
            return (await self.body()).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"Request body is not valid UTF-8: {exc.reason}") from None

    async def json(self) -> Any:
        """The body parsed as JSON (see `wasmkernel.jsonio`: a large body is
        decoded in a worker thread); 400 with the parser's message if malformed."""
        if "parsed_json" in self.state:
            return self.state["parsed_json"]
        raw = await self.body()
        value = await off_loop(len(raw), functools.partial(parse_json, raw))
        self.state["parsed_json"] = value
        return value
