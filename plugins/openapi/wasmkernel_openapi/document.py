"""Building the OpenAPI 3.1 document from the application's routes.

Per route (skipping `include_in_schema=False`), per method, one operation:

- path placeholders `{name:converter}` become `{name}` path parameters typed
  by their converter (int → integer, float → number, uuid → string/uuid,
  str/path → string), each merged with the property of the same name in
  `path_schema`;
- every property of `query_schema` (or field of `query_model`) becomes a
  query parameter (required when listed in its `required`); `body_schema`
  (or `body_model`) becomes a required JSON request body; a `description`
  of a property is also shown on the parameter; models are
  `components.schemas` entries named after their class, referenced;
- `responses` are listed (default: 200) with their content: a model's or
  hand-written schema per media type; a 2xx that declares none has a
  generic one (``*/*``, any body: e.g. a WebAssembly module's answer); plus
  422 when the route declares a model or schema, 401 when authentication is
  required and 403 when scopes, roles or access policies can refuse the
  caller; error statuses are RFC 9457 problems (``application/problem+json``:
  `components.schemas.Error`, and `Problem` — with the 422's `errors` — for
  422 and the `default` response);
- `auth` becomes `security`: one alternative per known authenticator
  scheme listing the required scopes (plus `{}` when authentication is
  optional). Schemes come from the plugins' authenticators: "jwt" is HTTP bearer
  (JWT), "apikey" an API key in the header named by the authenticator's
  `header` attribute (default X-API-Key); others are left out.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import attrs
import structlog

from wasmkernel import Authenticator, AuthRequirement, ResponseSpec, Route, SchemaBuilder

log = structlog.get_logger("wasmkernel.openapi")

OPENAPI_VERSION = "3.1.0"
DEFAULT_API_KEY_HEADER = "X-API-Key"

_CONVERTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "path": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_JSON = "application/problem+json"
#: Every error answer is an RFC 9457 problem (the kernel's and the errors plugin's renderers).
_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The body of every error answer: RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem (errors plugin)."},
        "title": {"type": "string", "description": "The status's phrase."},
        "status": {"type": "integer", "description": "The HTTP status."},
        "detail": {"type": "string", "description": "What went wrong."},
        "instance": {"type": "string", "description": "The request path (errors plugin)."},
        "error_id": {"type": "string", "description": "Identifies the request in the server's logs."},
    },
    "required": ["title", "status", "detail"],
    "additionalProperties": True,
}
_VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One problem of a request's input.",
    "properties": {
        "location": {"type": "string", "enum": ["path", "query", "body"]},
        "pointer": {"type": "string", "description": "RFC 6901 JSON pointer into the location (where a missing member should be)."},
        "message": {"type": "string"},
        "validator": {"type": "string", "description": "The failing JSON Schema keyword ('model' for a model's own validator)."},
    },
    "required": ["location", "pointer", "message"],
}
_PROBLEM_SCHEMA: dict[str, Any] = {
    "allOf": [_ERROR_REF],
    "type": "object",
    "description": "An error answer; a 422 lists each problem of the input in `errors`.",
    "properties": {
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
        "errors_truncated": {"type": "boolean", "description": "More problems were found than listed."},
        "errors_omitted": {"type": "integer", "description": "How many problems were not listed."},
    },
}
FIXED_COMPONENTS = {"Error": _ERROR_SCHEMA, "Problem": _PROBLEM_SCHEMA, "ValidationError": _VALIDATION_ERROR_SCHEMA}
#: Any body: what a 2xx that declares nothing may carry.
_ANY_CONTENT: dict[str, Any] = {"*/*": {"schema": {}}}
#: Statuses whose answers have no body.
_BODILESS = (204, 304)


def security_schemes(authenticators: Iterable[Authenticator]) -> dict[str, dict[str, Any]]:
    """OpenAPI security schemes for the authenticators this plugin knows."""
    schemes: dict[str, dict[str, Any]] = {}
    for authenticator in authenticators:
        scheme = getattr(authenticator, "scheme", "")
        if scheme in schemes:
            continue
        if scheme == "jwt":
            schemes[scheme] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        elif scheme == "apikey":
            header = getattr(authenticator, "header", None)
            schemes[scheme] = {"type": "apiKey", "in": "header", "name": header if isinstance(header, str) and header else DEFAULT_API_KEY_HEADER}
        else:
            log.info("openapi.scheme_skipped", scheme=scheme, reason="no OpenAPI equivalent known")
    return schemes


def build_document(
    routes: Sequence[Route],
    *,
    title: str,
    version: str,
    authenticators: Sequence[Authenticator] = (),
    has_access_policies: bool = False,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing `routes`; `TypeError` if a model has no JSON Schema."""
    schemes = security_schemes(authenticators)
    models = SchemaBuilder("#/components/schemas/")
    models.definitions.update(FIXED_COMPONENTS)  # a model of the same name is qualified by its module
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for route in routes:
        if not route.include_in_schema or route.websocket:  # OpenAPI describes no WebSocket
            continue
        template, path_parameters = _path_parameters(route, models)
        item = paths.setdefault(template, {})
        for method in route.methods:
            operation_id = _unique(_operation_id(route, method), operation_ids)
            item[method.lower()] = {"operationId": operation_id, **_operation(route, models, path_parameters, schemes, has_access_policies)}
    components: dict[str, Any] = {"schemas": models.definitions}
    if schemes:
        components["securitySchemes"] = schemes
    return {"openapi": OPENAPI_VERSION, "info": {"title": title, "version": version}, "paths": paths, "components": components}


def _path_parameters(route: Route, models: SchemaBuilder) -> tuple[str, list[dict[str, Any]]]:
    """The OpenAPI path template of `route` and its path parameters."""
    declared = _properties(models.object_schema(route.path_model) if route.path_model is not None else route.path_schema)
    parameters = []
    for name, converter in route.pattern.params:
        schema = {**_CONVERTER_SCHEMAS[converter], **declared.get(name, {})}
        parameters.append(_parameter(name, "path", schema, required=True))
    return route.pattern.template, parameters


def _properties(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    properties = (schema or {}).get("properties")
    return dict(properties) if isinstance(properties, Mapping) else {}


def _parameter(name: str, location: str, schema: Mapping[str, Any], *, required: bool) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": location, "required": required, "schema": dict(schema)}
    if isinstance(schema.get("description"), str):
        parameter["description"] = schema["description"]
    return parameter


def _operation(
    route: Route,
    models: SchemaBuilder,
    path_parameters: list[dict[str, Any]],
    schemes: Mapping[str, Any],
    has_access_policies: bool,
) -> dict[str, Any]:
    operation: dict[str, Any] = {}
    if route.summary:
        operation["summary"] = route.summary
    description = _description(route)
    if description:
        operation["description"] = description
    if route.tags:
        operation["tags"] = list(route.tags)
    query = models.object_schema(route.query_model) if route.query_model is not None else route.query_schema
    required_query = set((query or {}).get("required") or ())
    query_parameters = [_parameter(name, "query", schema, required=name in required_query) for name, schema in _properties(query).items()]
    if path_parameters or query_parameters:
        operation["parameters"] = [*path_parameters, *query_parameters]
    body = models.schema(route.body_model) if route.body_model is not None else route.body_schema
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": dict(body)}}}
    responses = {status: _response(status, spec, models) for status, spec in route.responses.items()} or {200: _response(200, ResponseSpec(), models)}
    if body is not None:
        responses.setdefault(400, _error("Malformed body"))
        responses.setdefault(415, _error("Unsupported media type"))
    if body is not None or query is not None or route.path_model is not None or route.path_schema is not None:
        responses.setdefault(422, _error("Validation error", _PROBLEM_REF))
    if route.auth is not None and route.auth.required:
        responses.setdefault(401, _error("Authentication required"))
        if route.auth.scopes or route.auth.roles or has_access_policies:
            responses.setdefault(403, _error("Not allowed"))
    operation["responses"] = {str(status): response for status, response in sorted(responses.items())}
    # Middleware may answer any route with an error (413, 429, 504, 500, ...).
    operation["responses"]["default"] = _error("Error", _PROBLEM_REF)
    if route.auth is not None and schemes:
        operation["security"] = _security(route.auth, schemes)
    return operation


def _description(route: Route) -> str:
    """The endpoint's docstring, plus the roles and scopes it requires."""
    endpoint = route.endpoint
    parts = [inspect.getdoc(endpoint) or "" if inspect.isfunction(endpoint) or inspect.ismethod(endpoint) else ""]
    if route.auth is not None:
        grants = [f"{kind}: {', '.join(names)}" for kind, names in (("scopes", route.auth.scopes), ("roles", route.auth.roles)) if names]
        if grants:
            parts.append("Requires " + "; ".join(grants) + ".")
    return "\n\n".join(part for part in parts if part)


def _error(description: str, schema: Mapping[str, Any] = _ERROR_REF) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": dict(schema)}}}


def _response(status: int, spec: ResponseSpec, models: SchemaBuilder) -> dict[str, Any]:
    """One response: its description and content (a 2xx without a declared
    body may carry anything; an error without one is a problem)."""
    description = spec.description or _model_summary(spec.model) or _phrase(status)
    if spec.has_body:
        schema = models.schema(spec.model) if spec.model is not None else dict(spec.schema or {})
        return {"description": description, "content": {media_type: {"schema": schema} for media_type in spec.media_types}}
    if status >= 400:
        return _error(description, _PROBLEM_REF if status == 422 else _ERROR_REF)
    if 200 <= status < 300 and status not in _BODILESS:
        return {"description": description, "content": _ANY_CONTENT}
    return {"description": description}


def _model_summary(model: Any) -> str:
    """The first paragraph of a model class's docstring."""
    doc = model.__doc__ if isinstance(model, type) and attrs.has(model) else None
    return doc.strip().split("\n\n")[0].replace("\n", " ") if doc and not doc.startswith(f"{model.__name__}(") else ""


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Response"


def _security(auth: AuthRequirement, schemes: Mapping[str, Any]) -> list[dict[str, list[str]]]:
    alternatives: list[dict[str, list[str]]] = [{name: list(auth.scopes)} for name in schemes]
    if not auth.required:
        alternatives.append({})
    return alternatives


def _operation_id(route: Route, method: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_]+", "_", route.name).strip("_") or "operation"
    return base if len(route.methods) == 1 else f"{base}_{method.lower()}"


def _unique(candidate: str, taken: set[str]) -> str:
    name, suffix = candidate, 2
    while name in taken:
        name, suffix = f"{candidate}_{suffix}", suffix + 1
    taken.add(name)
    return name
