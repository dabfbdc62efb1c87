"""The validation plugin: checks request bodies, query strings and path
parameters against the JSON Schemas routes declare (`body_schema`,
`query_schema`, `path_schema`; draft 2020-12 unless a schema's ``$schema``
says otherwise; ``format`` is asserted).

Config (`[plugins.validation.config]`):
- `max_errors`: at most this many errors are reported (default 100); the
  response then carries ``"errors_truncated": true``.

Per request, on routes with a schema only (validators are compiled once, at
startup; an invalid schema stops startup naming the route):
- body: ``Content-Type`` must be ``application/json`` or ``*+json`` (else
  415); malformed JSON is 400.
- query: parameters form an object — one value as a string, a repeated key
  (or a property declared ``"type": "array"``) as a list — and strings are
  converted to the declared ``integer``/``number``/``boolean`` first.
  The converted object is stored in ``request.stash[QUERY]``.
- path: ``request.path_params`` likewise, into ``request.stash[PATH]``
  (`QUERY` and `PATH` are this plugin's public stash keys).
- every violation, across all three, makes one 422 whose ``errors`` list
  gives each error's ``location`` ("path" | "query" | "body"), RFC 6901
  ``pointer`` (for a missing property: where it should be), ``message`` and
  the failing JSON Schema keyword as ``validator``.
"""

from __future__ import annotations

from typing import Any

import attrs
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator

from wasmkernel import (
    SCHEMA,
    Application,
    ConfiguredPlugin,
    Handler,
    Middleware,
    Request,
    Response,
    Route,
    StartupError,
    UnprocessableEntity,
    UnsupportedMediaType,
    hookimpl,
)
from wasmkernel_validation import PATH, QUERY
from wasmkernel_validation.schemas import Coercer, compile_schema, errors_of

NAME = "validation"


@attrs.frozen
class Config:
    max_errors: int = attrs.field(default=100, validator=attrs.validators.ge(1))


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


@attrs.frozen
class RouteValidator:
    """The compiled schemas of one route."""

    body: Validator | None
    query: Validator | None
    path: Validator | None
    query_coercer: Coercer
    path_coercer: Coercer
    max_errors: int

    @classmethod
    def for_route(cls, route: Route, max_errors: int) -> RouteValidator | None:
        if route.body_schema is None and route.query_schema is None and route.path_schema is None:
            return None
        compiled: dict[str, Validator | None] = {}
        for location, schema in (("body", route.body_schema), ("query", route.query_schema), ("path", route.path_schema)):
            try:
                compiled[location] = compile_schema(schema) if schema is not None else None
            except SchemaError as exc:
                where = "/" + "/".join(str(part) for part in exc.path)
                raise StartupError(f"route '{route.name}' ({route.owner}): invalid {location}_schema at {where}: {exc.message}") from None
        return cls(
            body=compiled["body"],
            query=compiled["query"],
            path=compiled["path"],
            query_coercer=Coercer.for_schema(route.query_schema),
            path_coercer=Coercer.for_schema(route.path_schema),
            max_errors=max_errors,
        )

    async def check(self, request: Request) -> None:
        """Convert and store query/path values; raise 415/400/422."""
        body = None
        if self.body is not None:
            if not is_json(request.content_type):
                raise UnsupportedMediaType(f"Content-Type must be application/json, got {request.content_type[:100] or 'none'}")
            body = await request.json()
        limit = self.max_errors + 1
        errors: list[dict[str, Any]] = []
        if self.path is not None:
            request.stash[PATH] = path = self.path_coercer.coerce(request.path_params)
            errors += errors_of(self.path, path, "path", limit)
        if self.query is not None:
            request.stash[QUERY] = query = self.query_coercer.coerce(request.query.to_dict())
            errors += errors_of(self.query, query, "query", limit)
        if self.body is not None:
            errors += errors_of(self.body, body, "body", limit)
        if errors:
            extra: dict[str, Any] = {"errors": errors[: self.max_errors]}
            if len(errors) > self.max_errors:
                extra["errors_truncated"] = True
            raise UnprocessableEntity("Request validation failed", extra=extra)


class Plugin(ConfiguredPlugin[Config]):
    order = -10
    config_class = Config

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        return [Middleware(NAME, self.wrap, enforces=frozenset({SCHEMA}))]

    def wrap(self, next_handler: Handler, route: Route | None) -> Handler:
        validator = RouteValidator.for_route(route, self.config.max_errors) if route is not None else None
        if validator is None:
            return next_handler

        async def validate(request: Request) -> Response:
            await validator.check(request)
            return await next_handler(request)

        return validate
