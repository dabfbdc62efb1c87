"""Route declarations and the router contract.

Plugins declare `Route`s; the router plugin compiles all of them into a
`Router` once at startup; the kernel asks that router, per request, for a
`RouteMatch`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs

#: What a route's endpoint may be: sync or async, taking the `Request` and
#: returning a `Response`, or a dict/list (sent as JSON), str (text) or bytes;
#: for a WebSocket route, ``async def (ws: WebSocket) -> None``.
Endpoint = Callable[[Any], Any]

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: The pseudo-method of WebSocket routes: the kernel matches ``websocket``
#: scopes with it, so a path may have both HTTP and WebSocket routes.
WEBSOCKET = "WEBSOCKET"


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _methods(value: str | Sequence[str]) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    methods = tuple(m.upper() for m in items)
    for method in methods:
        if method not in HTTP_METHODS and method != WEBSOCKET:
            raise ValueError(f"unknown HTTP method {method!r}")
    return methods


@attrs.frozen
class AuthRequirement:
    """What a caller must present to use a route.

    `required`: an authenticated identity is needed; `scopes`/`roles`: every
    listed scope and role must be granted to that identity.
    """

    required: bool = True
    scopes: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    roles: tuple[str, ...] = attrs.field(default=(), converter=_strings)

    def describe(self) -> str:
        if not self.required:
            return "public"
        parts = ["required"]
        if self.scopes:
            parts.append("scopes=" + ",".join(self.scopes))
        if self.roles:
            parts.append("roles=" + ",".join(self.roles))
        return " ".join(parts)


@attrs.frozen(eq=False)
class Route:
    """One HTTP route: methods, a path pattern and the endpoint serving it.

    `path` uses `{name}` or `{name:converter}` placeholders (converters: str,
    int, float, uuid, path). `auth`, `body_schema`, `query_schema` and
    `path_schema` are read by the authz, validation and openapi plugins.
    `max_body_size` replaces the default body cap for this route (the limits
    plugin's registry overrides still win).
    `owner` is the registry name of the plugin that declared the route; the
    kernel fills it in. Routes compare by identity.

    ``websocket=True`` declares a WebSocket route: its endpoint is
    ``async def endpoint(ws: kernel.WebSocket) -> None``, its `methods` become
    ``("WEBSOCKET",)``, the chain runs around the whole connection and
    `max_body_size` caps each incoming message.
    """

    path: str
    endpoint: Endpoint
    methods: tuple[str, ...] = attrs.field(default=("GET",), converter=_methods)
    name: str = ""
    owner: str = ""
    auth: AuthRequirement | None = None
    body_schema: Mapping[str, Any] | None = None
    query_schema: Mapping[str, Any] | None = None
    path_schema: Mapping[str, Any] | None = None
    summary: str = ""
    tags: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    responses: Mapping[int, str] = attrs.field(factory=dict)
    include_in_schema: bool = True
    max_body_size: int | None = None
    websocket: bool = False

    def __attrs_post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"route path must start with '/': {self.path!r}")
        if self.websocket:
            object.__setattr__(self, "methods", (WEBSOCKET,))
        elif WEBSOCKET in self.methods:
            raise ValueError("declare a WebSocket route with websocket=True")
        if not self.name:
            object.__setattr__(self, "name", f"{'|'.join(self.methods)} {self.path}")


class MatchKind(enum.Enum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"


@attrs.frozen
class RouteMatch:
    """The router's answer for one request.

    FOUND: `route` and converted `params`. METHOD_NOT_ALLOWED: `allowed` lists
    the methods the path accepts. NOT_FOUND: nothing.
    """

    kind: MatchKind
    route: Route | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)
    allowed: tuple[str, ...] = ()


class Router(Protocol):
    """A compiled route table (made by the `wasmkernel_router` hook)."""

    @property
    def routes(self) -> Sequence[Route]:
        """Every route the table answers, including ones it synthesised."""

    def match(self, method: str, path: str) -> RouteMatch:
        """Find the route for `method` and `path` (already percent-decoded)."""
