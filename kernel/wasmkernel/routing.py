"""Route declarations and the router contract: plugins declare `Route`s, the
router plugin compiles them into a `Router` once, and the kernel asks it for
a `RouteMatch` per request.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import attrs

from wasmkernel.models import ResponseSpec, response_specs
from wasmkernel.stash import Stash, StashKey

T = TypeVar("T")

#: What a route's endpoint may be: sync or async, taking the `Request` (and
#: the objects of its declared models as keyword arguments `body`, `query`,
#: `path`) and returning a `Response`, a model, a dict/list (sent as JSON),
#: str (text) or bytes; for a WebSocket route, ``async def (ws: WebSocket) -> None``.
Endpoint = Callable[..., Any]

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: The pseudo-method of WebSocket routes: the kernel matches ``websocket``
#: scopes with it, so a path may have both HTTP and WebSocket routes.
WEBSOCKET = "WEBSOCKET"

#: Path converters: the regex a placeholder matches and what turns it into the parameter's value.
CONVERTERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "str": (r"[^/]+", str),
    "int": (r"-?[0-9]+", int),
    "float": (r"-?[0-9]+(?:\.[0-9]+)?", float),
    "uuid": (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", uuid.UUID),
    "path": (r".*", str),
}
_PLACEHOLDER = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?}")


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _stash(given: Stash | Mapping[StashKey[Any], Any]) -> Stash:
    return given if isinstance(given, Stash) else Stash(given)


def _methods(value: str | Sequence[str]) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    methods = tuple(m.upper() for m in items)
    for method in methods:
        if method not in HTTP_METHODS and method != WEBSOCKET:
            raise ValueError(f"unknown HTTP method {method!r}")
    return methods


@attrs.frozen
class PathPattern:
    """A route path compiled once: `params` are (name, converter) in path
    order, `template` drops the converters (`/items/{id}`), `shape` drops the
    names (`/items/{int}`: two routes of one shape conflict), `regex` is None
    for a static path. `parse` raises ValueError naming the path."""

    path: str
    params: tuple[tuple[str, str], ...]
    template: str
    shape: str
    regex: re.Pattern[str] | None

    @classmethod
    def parse(cls, path: str) -> PathPattern:
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {path!r}")
        literals = _PLACEHOLDER.split(path)[::3]  # the text around the placeholders
        if any("{" in literal or "}" in literal for literal in literals):
            raise ValueError(f"route path {path!r}: malformed placeholder")
        params = tuple((found[1], found[2] or "str") for found in _PLACEHOLDER.finditer(path))
        for index, (name, kind) in enumerate(params):
            if kind not in CONVERTERS:
                raise ValueError(f"route path {path!r}: unknown converter {kind!r} (known: {', '.join(CONVERTERS)})")
            if any(name == seen for seen, _ in params[:index]):
                raise ValueError(f"route path {path!r}: parameter {name!r} appears twice")
        regex = re.escape(literals[0]) + "".join(f"(?P<{name}>{CONVERTERS[kind][0]}){re.escape(text)}" for (name, kind), text in zip(params, literals[1:]))
        template = _PLACEHOLDER.sub(lambda found: "{" + found[1] + "}", path)
        shape = _PLACEHOLDER.sub(lambda found: "{" + (found[2] or "str") + "}", path)
        return cls(path, params, template, shape, re.compile(regex) if params else None)

    def match(self, path: str) -> dict[str, Any] | None:
        """The converted parameters if `path` matches, else None."""
        if self.regex is None:
            return {} if path == self.path else None
        found = self.regex.fullmatch(path)
        try:
            return None if found is None else {name: CONVERTERS[kind][1](found.group(name)) for name, kind in self.params}
        except ValueError:
            return None


@attrs.frozen
class AuthRequirement:
    """What a caller must present to use a route.

    `required`: an authenticated identity is needed; `scopes`/`roles`: every
    listed scope and role must be granted to that identity. `identify` (with
    ``required=False``): authenticate when credentials are presented, so the
    endpoint can grant more to an identified caller; none is still allowed.
    """

    required: bool = True
    identify: bool = False
    scopes: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    roles: tuple[str, ...] = attrs.field(default=(), converter=_strings)


@attrs.frozen(eq=False)
class Protection(StashKey[T]):
    """A check a route declares and a middleware enforces (`Middleware.enforces`):
    a stash key of the plugin that owns the check, under which routes put
    what they require (``Route(..., stash={CSRF: CsrfPolicy()})``). A route
    declaring one that no enabled middleware enforces stops startup with
    `hint` (what to enable). The kernel's own: `AUTH`, `SCHEMA`."""

    hint: str = ""


#: `Route.auth` with something to check: enforced by authz (or another plugin enforcing `AuthRequirement`).
AUTH: Protection[AuthRequirement] = Protection("auth checks", hint="enable authz")
#: `Route.body_schema`, `query_schema`, `path_schema`: enforced by validation.
SCHEMA: Protection[None] = Protection("schema checks", hint="enable validation")


@attrs.frozen(eq=False)
class Route:
    """One route: methods, a path pattern and the endpoint serving it.

    `path` uses `{name}` or `{name:converter}` placeholders (str, int, float,
    uuid, path), compiled into `pattern` (ValueError here if bad). The
    endpoint receives `body_model`, `query_model` and `path_model` objects
    (`wasmkernel.endpoints`); `responses` maps statuses to descriptions,
    models or `ResponseSpec`s. `auth` and the hand-written JSON Schemas are
    read by the authz, validation and openapi plugins;
    `max_body_size` replaces the default body cap (the limits plugin's
    overrides still win); `stash` holds plugins' data under typed keys (a
    mapping given here is copied into one); the kernel fills in `owner`, the declaring plugin.
    Routes compare by identity. ``websocket=True`` declares a WebSocket
    route: endpoint ``async def (ws: wasmkernel.WebSocket) -> None``, methods
    ``("WEBSOCKET",)``, the chain around the whole connection, `max_body_size`
    per message.
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
    responses: Mapping[int, ResponseSpec] = attrs.field(factory=dict, converter=response_specs)
    include_in_schema: bool = True
    max_body_size: int | None = None
    websocket: bool = False
    body_model: Any = None
    query_model: type | None = None
    path_model: type | None = None
    stash: Stash = attrs.field(factory=Stash, converter=_stash, repr=False)
    pattern: PathPattern = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "pattern", PathPattern.parse(self.path))
        if self.websocket:
            object.__setattr__(self, "methods", (WEBSOCKET,))
        elif WEBSOCKET in self.methods:
            raise ValueError("declare a WebSocket route with websocket=True")
        if not self.name:
            object.__setattr__(self, "name", f"{'|'.join(self.methods)} {self.path}")


def protections(route: Route) -> set[Protection[Any]]:
    """What `route` declares that some middleware must enforce."""
    needed = {key for key in route.stash if isinstance(key, Protection)}
    if route.auth is not None and (route.auth.required or route.auth.scopes or route.auth.roles):
        needed.add(AUTH)
    if route.body_schema is not None or route.query_schema is not None or route.path_schema is not None:
        needed.add(SCHEMA)
    return needed


class MatchKind(enum.Enum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"


@attrs.frozen
class RouteMatch:
    """The router's answer for one request: FOUND with `route` and converted
    `params`, METHOD_NOT_ALLOWED with the `allowed` methods, or NOT_FOUND."""

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
