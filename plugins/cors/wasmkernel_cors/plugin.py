"""The CORS plugin.

Config (`[plugins.cors.config]`):
- `allow_origins`: origins allowed to read responses, e.g.
  ["https://app.example.com"], or ["*"] for any (default [], none)
- `allow_methods`: methods allowed in preflights (default ["GET", "HEAD",
  "POST"]; "*" allows any)
- `allow_headers`: request headers allowed in preflights (default []; the
  CORS-safelisted Accept, Accept-Language, Content-Language and Content-Type
  are always allowed; "*" allows any)
- `expose_headers`: response headers scripts may read (default [])
- `allow_credentials`: allow cookies and `Authorization` (default false;
  refused together with the origin "*")
- `max_age`: seconds browsers may cache a preflight answer (default 600)

Behaviour (the same as Starlette's `CORSMiddleware`):
- A request with an allowed `Origin` gets `Access-Control-Allow-Origin` (the
  origin itself, or "*" when every origin is allowed without credentials),
  plus `-Allow-Credentials` and `-Expose-Headers` when configured; errors
  raised as `HTTPError` inside the chain get them too, so scripts can read them.
- A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
  is answered here with 204 and the `Access-Control-Allow-*` headers, before
  authentication and rate limits, for every path (also paths no route
  matches, so the actual request then gets a readable 404).
- A disallowed origin gets no CORS header at all; a preflight asking for a
  disallowed origin, method or header is refused with 400 (raised as
  `BadRequest`, rendered by the errors plugin).
- `Vary: Origin` is added whenever the answer depends on the origin.
- WebSocket routes (against cross-site WebSocket hijacking: browsers send
  cookies with a WebSocket handshake and apply no same-origin policy to it):
  a handshake whose `Origin` is the request's own host (same `Host`), or is
  in `allow_origins`, goes on; any other `Origin` is refused with 403 before
  the endpoint runs. A handshake without `Origin` (not from a browser) goes
  on. No CORS header is added.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import attrs

from wasmkernel import (
    Application,
    BadRequest,
    ConfigError,
    ConfiguredPlugin,
    Forbidden,
    Handler,
    Middleware,
    Request,
    Response,
    Route,
    WebSocket,
    WebSocketHandler,
    hookimpl,
)

SAFELISTED_HEADERS = ("accept", "accept-language", "content-language", "content-type")
ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#\s]+")
TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def _lower(values: list[str]) -> list[str]:
    return [value.lower() for value in values]


def _upper(values: list[str]) -> list[str]:
    return [value.upper() for value in values]


def _origins(instance: Any, attribute: attrs.Attribute[list[str]], values: list[str]) -> None:
    for value in values:
        if value != "*" and not ORIGIN.fullmatch(value):
            raise ValueError(f"{attribute.name}: {value!r} is not an origin (scheme://host[:port], no path or trailing slash) or '*'")


def _tokens(instance: Any, attribute: attrs.Attribute[list[str]], values: list[str]) -> None:
    for value in values:
        if value != "*" and not TOKEN.fullmatch(value):
            raise ValueError(f"{attribute.name}: {value!r} is not a valid name")


@attrs.frozen
class Config:
    allow_origins: list[str] = attrs.field(factory=list, converter=_lower, validator=_origins)
    allow_methods: list[str] = attrs.field(factory=lambda: ["GET", "HEAD", "POST"], converter=_upper, validator=_tokens)
    allow_headers: list[str] = attrs.field(factory=list, converter=_lower, validator=_tokens)
    expose_headers: list[str] = attrs.field(factory=list, validator=_tokens)
    allow_credentials: bool = False
    max_age: int = attrs.field(default=600, validator=attrs.validators.ge(0))


@attrs.frozen
class Policy:
    """The configuration compiled for per-request checks."""

    any_origin: bool
    origins: frozenset[str]
    any_method: bool
    methods: frozenset[str]
    any_header: bool
    headers: frozenset[str]
    #: Headers added to every response for an allowed origin (except the origin itself).
    simple_headers: tuple[tuple[str, str], ...]
    #: Headers added to every successful preflight (except the origin and echoed values).
    preflight_headers: tuple[tuple[str, str], ...]

    @classmethod
    def compile(cls, config: Config) -> Policy:
        if config.allow_credentials and "*" in config.allow_origins:
            raise ConfigError("allow_credentials", "cannot be true when allow_origins contains '*' (list the allowed origins instead)")
        credentials = (("Access-Control-Allow-Credentials", "true"),) if config.allow_credentials else ()
        exposed = (("Access-Control-Expose-Headers", ", ".join(config.expose_headers)),) if config.expose_headers else ()
        methods = () if "*" in config.allow_methods else (("Access-Control-Allow-Methods", ", ".join(config.allow_methods)),)
        headers = [name for name in dict.fromkeys([*SAFELISTED_HEADERS, *config.allow_headers]) if name != "*"]
        allowed_headers = () if "*" in config.allow_headers else (("Access-Control-Allow-Headers", ", ".join(headers)),)
        return cls(
            any_origin="*" in config.allow_origins,
            origins=frozenset(config.allow_origins),
            any_method="*" in config.allow_methods,
            methods=frozenset(config.allow_methods),
            any_header="*" in config.allow_headers,
            headers=frozenset(headers),
            simple_headers=(*credentials, *exposed),
            preflight_headers=(*credentials, *methods, *allowed_headers, ("Access-Control-Max-Age", str(config.max_age))),
        )

    @property
    def varies(self) -> bool:
        """Whether `Access-Control-Allow-Origin` depends on the request's origin."""
        return not self.any_origin

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    def allow_origin(self, origin: str) -> str:
        return "*" if self.any_origin else origin


class Plugin(ConfiguredPlugin[Config]):
    order = -40
    config_class = Config

    def __init__(self) -> None:
        super().__init__()
        self.policy = Policy.compile(self.config)

    def configured(self) -> None:
        self.policy = Policy.compile(self.config)

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        return [Middleware("cors", self.wrap, websocket=self.wrap_websocket)]

    def wrap_websocket(self, next_handler: WebSocketHandler, route: Route | None) -> WebSocketHandler:
        return origin_guard(self.policy, next_handler)

    def wrap(self, next_handler: Handler, route: Route | None) -> Handler:
        policy = self.policy
        answers_preflights = route is None or "OPTIONS" in route.methods

        async def handler(request: Request) -> Response:
            origin = request.headers.get("origin")
            if answers_preflights and origin is not None and request.method == "OPTIONS" and "access-control-request-method" in request.headers:
                return preflight(policy, request, origin)
            if origin is None or not policy.allows(origin):
                response = await next_handler(request)
                if policy.varies:
                    response.headers.add_vary("Origin")
                return response
            added = [("Access-Control-Allow-Origin", policy.allow_origin(origin)), *policy.simple_headers]
            response = await next_handler(request)
            for name, value in added:
                response.headers.set(name, value)
            if policy.varies:
                response.headers.add_vary("Origin")
            return response

        return handler


def preflight(policy: Policy, request: Request, origin: str) -> Response:
    """Answer a preflight request, or refuse it with 400 and no CORS headers."""
    method = request.headers["access-control-request-method"].strip().upper()
    requested = [name.strip().lower() for name in (request.headers.get("access-control-request-headers") or "").split(",") if name.strip()]
    refused = []
    if not policy.allows(origin):
        refused.append("origin")
    if not (policy.any_method or method in policy.methods):
        refused.append("method")
    if not policy.any_header and any(name not in policy.headers for name in requested):
        refused.append("headers")
    if refused:
        raise BadRequest("Disallowed CORS " + ", ".join(refused), headers={"Vary": "Origin"} if policy.varies else None)
    response = Response(status=204, headers=[("Access-Control-Allow-Origin", policy.allow_origin(origin)), *policy.preflight_headers])
    if policy.any_method:
        response.headers.set("Access-Control-Allow-Methods", method)
    if policy.any_header and requested:
        response.headers.set("Access-Control-Allow-Headers", ", ".join(requested))
    if policy.varies:
        response.headers.add_vary("Origin")
    return response


def origin_guard(policy: Policy, next_handler: WebSocketHandler) -> WebSocketHandler:
    """Refuse cross-site WebSocket handshakes from origins not allowed."""

    async def handler(request: WebSocket) -> Response:
        origin = request.headers.get("origin")
        if origin is not None and not policy.allows(origin.lower()):
            host = (request.headers.get("host") or "").lower()
            if not host or urlsplit(origin.lower()).netloc != host:
                raise Forbidden(f"WebSocket connections from origin {origin[:100]!r} are not allowed")
        return await next_handler(request)

    return handler
