"""The validation plugin: checks request bodies, query strings and path
parameters against the hand-written JSON Schemas routes declare
(`body_schema`, `query_schema`, `path_schema`), with jsonschema-rs (draft
2020-12 unless a schema's ``$schema`` says otherwise; ``format`` is
asserted). Typed routes (`body_model`, ...) need no plugin: the kernel reads
their models (`wasmkernel.endpoints`) with the same checks.

Config (`[plugins.validation.config]`):
- `max_errors`: at most this many errors are reported (default 100); the
  response then carries ``"errors_truncated": true``.

Per request, on routes with a schema only (compiled once, at startup; an
invalid schema stops startup naming the route), as `wasmkernel.inputs`
describes: 415 for a body that is not JSON, 400 if malformed, one 422
listing every violation with its ``location``, ``pointer``, ``message`` and
``validator``. The schemas' ``default``s are then filled in. The endpoint
reads the body with ``await request.json()``, the converted query in
``request.stash[QUERY]`` and path parameters in ``request.stash[PATH]``
(`QUERY` and `PATH` are this plugin's public stash keys).
"""

from __future__ import annotations

import attrs

from wasmkernel import (
    SCHEMA,
    Application,
    ConfiguredPlugin,
    Handler,
    Middleware,
    Request,
    RequestInputs,
    Response,
    Route,
    SchemaProblem,
    StartupError,
    hookimpl,
)
from wasmkernel_validation import PATH, QUERY

NAME = "validation"


@attrs.frozen
class Config:
    max_errors: int = attrs.field(default=100, validator=attrs.validators.ge(1))


def route_inputs(route: Route, max_errors: int) -> RequestInputs | None:
    """The compiled schemas of `route` (None without any); `StartupError` naming the route if one is invalid."""
    if route.body_schema is None and route.query_schema is None and route.path_schema is None:
        return None
    try:
        return RequestInputs.compile(route.body_schema, route.query_schema, route.path_schema, max_errors)
    except SchemaProblem as exc:
        raise StartupError(f"route '{route.name}' ({route.owner}): {exc}") from None


class Plugin(ConfiguredPlugin[Config]):
    order = -10
    config_class = Config

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        return [Middleware(NAME, self.wrap, enforces=frozenset({SCHEMA}))]

    def wrap(self, next_handler: Handler, route: Route | None) -> Handler:
        inputs = route_inputs(route, self.config.max_errors) if route is not None else None
        if inputs is None:
            return next_handler

        async def validate(request: Request) -> Response:
            found = await inputs.read(request)
            if found.query is not None:
                request.stash[QUERY] = found.query
            if found.path is not None:
                request.stash[PATH] = found.path
            return await next_handler(request)

        return validate
