"""The authz plugin: enforces each route's authentication and authorization
requirement with the application's authenticators and access policies.

Config (`[plugins.authz.config]`):
- `default_auth`: "public" (default) or "required" — the requirement of
  routes that declare none. With "required", list the routes that must stay
  open (health probes, docs) in `routes` as public.
- `routes`: overrides by route name, taking precedence over what the route
  declares: ``routes = { "matmul" = { auth = "required", scopes = ["matrix:compute"] },
  "health" = { auth = "public" } }``. Unknown route names stop startup.

On HTTP and WebSocket routes alike (a WebSocket handshake is refused with
the same statuses), on protected routes only (public routes are not wrapped): the
authenticators run in registry order and the first identity wins (one
raising 401 stops the search). A public route declaring
``AuthRequirement(required=False, identify=True)`` is authenticated
optionally: valid credentials set ``request.identity``, invalid ones are 401,
none let the request through anonymously (the endpoint decides what an
anonymous caller may do, e.g. matmul's large `n`). No identity: 401 with a ``WWW-Authenticate``
challenge per scheme. An identity lacking a required scope or role, or
refused by an access policy: 403 with the reason. Otherwise the identity is
set on ``request.identity``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Literal, TypeVar

import attrs
import structlog

from wasmkernel import (
    AUTH,
    AccessPolicy,
    Application,
    Authenticator,
    AuthRequirement,
    ConfiguredPlugin,
    Connection,
    Forbidden,
    Identity,
    Middleware,
    Response,
    Route,
    StartupError,
    Unauthorized,
    hookimpl,
)

C = TypeVar("C", bound=Connection)

log = structlog.get_logger("wasmkernel.authz")

NAME = "authz"
AUTH_MODES = ("public", "required")


@attrs.frozen
class RouteRule:
    """One entry of `routes`."""

    auth: Literal["public", "required"] = attrs.field(default="required", validator=attrs.validators.in_(AUTH_MODES))
    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()

    def requirement(self) -> AuthRequirement:
        return AuthRequirement(required=self.auth == "required", scopes=self.scopes, roles=self.roles)


@attrs.frozen
class Config:
    default_auth: Literal["public", "required"] = attrs.field(default="public", validator=attrs.validators.in_(AUTH_MODES))
    routes: Mapping[str, RouteRule] = attrs.field(factory=dict)


def builtin_grants(identity: Identity, requirement: AuthRequirement, route: Route) -> str | None:
    """The built-in `AccessPolicy`, the first check of every route: every
    required scope and role must be granted."""
    scopes = sorted(set(requirement.scopes) - identity.scopes)
    roles = sorted(set(requirement.roles) - identity.roles)
    if scopes:
        return "missing scope(s): " + ", ".join(scopes)
    if roles:
        return "missing role(s): " + ", ".join(roles)
    return None


@attrs.frozen
class Enforcer:
    """Builds the per-route guards (the middleware's wrappers, HTTP and
    WebSocket), with the authenticators and policies plugins contribute."""

    config: Config
    authenticators: tuple[Authenticator, ...]
    policies: tuple[AccessPolicy, ...]

    def requirement(self, route: Route) -> AuthRequirement | None:
        rule = self.config.routes.get(route.name)
        if rule is not None:
            return rule.requirement()
        if route.auth is not None:
            return route.auth
        return AuthRequirement() if self.config.default_auth == "required" else None

    def wrap(self, next_handler: Callable[[C], Awaitable[Response]], route: Route | None) -> Callable[[C], Awaitable[Response]]:
        requirement = self.requirement(route) if route is not None else None
        if route is None or requirement is None:
            return next_handler
        if not requirement.required:
            return self.optional(next_handler) if requirement.identify else next_handler
        authenticators = self.authenticators
        checks: tuple[AccessPolicy, ...] = (builtin_grants, *self.policies)
        if not authenticators:
            log.warning("authz.no_authenticators", route=route.name, hint="enable an authentication plugin, e.g. auth-jwt")
        # One WWW-Authenticate header per scheme (RFC 9110 §11.6.1).
        unauthenticated = [("WWW-Authenticate", a.challenge) for a in authenticators]

        async def guard(request: C) -> Response:
            identity = await self.identify(request)
            if identity is None:
                raise Unauthorized("Authentication required", headers=unauthenticated)
            for check in checks:
                refusal = check(identity, requirement, route)
                if refusal is not None:
                    raise Forbidden(refusal)
            request.identity = identity
            return await next_handler(request)

        return guard

    async def identify(self, request: Connection) -> Identity | None:
        """The first identity an authenticator vouches for (401 for bad credentials)."""
        for authenticator in self.authenticators:
            try:
                identity = await authenticator.authenticate(request)
            except Unauthorized as exc:
                exc.headers.setdefault("WWW-Authenticate", authenticator.challenge)
                raise
            if identity is not None:
                return identity
        return None

    def optional(self, next_handler: Callable[[C], Awaitable[Response]]) -> Callable[[C], Awaitable[Response]]:
        async def identified(request: C) -> Response:
            request.identity = await self.identify(request)
            return await next_handler(request)

        return identified


class Plugin(ConfiguredPlugin[Config]):
    order = -20
    config_class = Config

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        known = {route.name for route in (*app.routes, *app.router.routes)}
        unknown = sorted(set(self.config.routes) - known)
        if unknown:
            raise StartupError(f"{app.registry.where(NAME, 'config.routes')}: unknown route name(s): {', '.join(unknown)} (see `wasmkernel routes`)")
        authenticators = tuple(found for _, found in app.hooks.gather("wasmkernel_authenticators"))
        enforcer = Enforcer(self.config, authenticators, tuple(found for _, found in app.hooks.gather("wasmkernel_access_policies")))
        return [Middleware("authz", enforcer.wrap, websocket=enforcer.wrap, enforces=frozenset({AUTH}))]
