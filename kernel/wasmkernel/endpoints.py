"""Calling a route's endpoint: its typed inputs in, its result out as a response.

A route declaring ``body_model``, ``query_model`` or ``path_model`` (attrs
classes; a body may also be e.g. ``list[Item]``) has its endpoint called as
``endpoint(request, body=..., query=..., path=...)`` — the declared ones —
with objects built from the request once it passed the schemas written from
the models (`wasmkernel.models`, checked by `wasmkernel.inputs`: 415, 400,
422; unknown query parameters are not passed on). A validator of the model
that no schema keyword expresses runs as the object is built; what it raises
is a 422 too (``"validator": "model"``).

What the endpoint returns becomes the response: a `Response` as it is; a
model (or a list of models) serialised as JSON, like a dict or list; a str
as text, bytes as they are, None as 204. Unless it is a `Response`, the
status is the route's lowest declared 2xx (`success_status`, default 200).
Sync endpoints run in a worker thread.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import attrs
import cattrs
import trio

from wasmkernel.http import Request
from wasmkernel.inputs import MAX_MESSAGE, RequestInputs, invalid, pointer
from wasmkernel.jsonio import off_loop
from wasmkernel.middleware import Handler
from wasmkernel.models import input_schema, model_errors, model_schema, structure, unstructure
from wasmkernel.responses import Response, to_response
from wasmkernel.routing import Route


def success_status(route: Route) -> int:
    """The status of an answer that is not a `Response`: the lowest 2xx in `route.responses`, else 200."""
    return min((status for status in route.responses if 200 <= status < 300), default=200)


def _accepts(endpoint: Any, names: list[str]) -> list[str]:
    """Which of `names` the endpoint cannot take as keyword arguments."""
    try:
        parameters = inspect.signature(endpoint).parameters.values()
    except (TypeError, ValueError):  # no signature to read: trust the declaration
        return []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return []
    accepted = {p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    return [name for name in names if name not in accepted]


@attrs.frozen
class TypedInputs:
    """How a route's declared models are read from a request."""

    reader: RequestInputs
    models: tuple[tuple[str, Any], ...]  # (argument and location, model), in path, query, body order

    @classmethod
    def for_route(cls, route: Route) -> TypedInputs | None:
        """None for a route without models; ValueError (or TypeError) for one
        declared wrongly: a type without a schema, a path model whose fields
        are not the path's parameters, an endpoint without the arguments."""
        locations = (("path", route.path_model), ("query", route.query_model), ("body", route.body_model))
        declared = [(name, model) for name, model in locations if model is not None]
        if not declared:
            return None
        if route.websocket:
            raise ValueError("a WebSocket route takes no models")
        for name, _ in declared:
            if getattr(route, f"{name}_schema") is not None:
                raise ValueError(f"declare {name}_model or {name}_schema, not both")
        if route.path_model is not None:
            placeholders = {name for name, _ in route.pattern.params}
            extra = sorted({field.name for field in attrs.fields(route.path_model)} - placeholders) if attrs.has(route.path_model) else []
            if extra:
                raise ValueError(f"path_model {route.path_model.__qualname__} has fields that are not parameters of {route.path!r}: {', '.join(extra)}")
        missing = _accepts(route.endpoint, [name for name, _ in declared])
        if missing:
            raise ValueError(f"the endpoint takes no keyword argument {', '.join(missing)} for its declared model")
        schemas = {name: input_schema(model) if name != "body" else model_schema(model) for name, model in declared}
        reader = RequestInputs.compile(body=schemas.get("body"), query=schemas.get("query"), path=schemas.get("path"))
        return cls(reader, tuple(declared))

    async def arguments(self, request: Request) -> dict[str, Any]:
        """The endpoint's keyword arguments; 415, 400 or 422."""
        found = await self.reader.read(request)
        arguments: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for name, model in self.models:
            data, size = getattr(found, name), found.body_size if name == "body" else 0
            try:
                arguments[name] = await off_loop(size, functools.partial(structure, data, model))
            except cattrs.BaseValidationError as exc:
                for parts, message in model_errors(exc):
                    text = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"
                    errors.append({"location": name, "pointer": pointer(parts), "message": text, "validator": "model"})
        if errors:
            raise invalid(errors)
        return arguments


def _holds_models(result: Any) -> bool:
    return attrs.has(type(result)) or (isinstance(result, (list, tuple)) and bool(result) and attrs.has(type(result[0])))


def render(result: Any, status: int = 200) -> Response:
    """The response for what an endpoint returned (see the module's docstring)."""
    if isinstance(result, Response):
        return result
    response = to_response(unstructure(result) if _holds_models(result) else result)
    if response.status == 200:
        response.status = status
    return response


def endpoint_handler(route: Route) -> Handler:
    """`route`'s endpoint as a `Handler` (see the module's docstring);
    ValueError/TypeError when its models are declared wrongly."""
    endpoint = route.endpoint
    typed = TypedInputs.for_route(route)
    for spec in route.responses.values():
        if spec.model is not None:
            model_schema(spec.model)  # TypeError now, not when the document is built
    status = success_status(route)
    if inspect.iscoroutinefunction(endpoint) or inspect.iscoroutinefunction(type(endpoint).__call__):
        if typed is None:

            async def call_async(request: Request) -> Response:
                return render(await endpoint(request), status)

            return call_async

        async def call_typed(request: Request) -> Response:
            return render(await endpoint(request, **await typed.arguments(request)), status)

        return call_typed

    async def call_sync(request: Request) -> Response:
        arguments = await typed.arguments(request) if typed is not None else {}
        return render(await trio.to_thread.run_sync(functools.partial(endpoint, request, **arguments)), status)

    return call_sync
