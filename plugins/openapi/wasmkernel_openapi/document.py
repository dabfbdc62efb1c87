"""Building the OpenAPI 3.1 document from the application's routes.

Per route (skipping `include_in_schema=False`), per method, one operation:

- path placeholders `{name:converter}` become `{name}` path parameters typed
  by their converter (int → integer, float → number, uuid → string/uuid,
  str/path → string), each merged with the property of the same name in
  `path_schema`;
- every property of `query_schema` becomes a query parameter (required when
  listed in its `required`); `body_schema` becomes a required JSON request
  body; a `description` of a property is also shown on the parameter;
- `responses` (status → description) are listed (default: 200), plus 422
  when the route declares a schema, 401 when authentication is required and
  403 when scopes, roles or access policies can refuse the caller; error
  statuses reference the kernel's error body (`components.schemas.Error`);
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
from typing import Any

import structlog

from wasmkernel import Authenticator, AuthRequirement, Route

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
#: Errors come as the kernel's JSON body, or as RFC 9457 problem details when
#: the errors plugin is enabled.
_ERROR_CONTENT = {"application/json": {"schema": _ERROR_REF}, "application/problem+json": {"schema": _PROBLEM_REF}}
_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The body of every error answer.",
    "properties": {
        "status": {"type": "integer", "description": "The HTTP status."},
        "message": {"type": "string", "description": "What went wrong."},
        "error_id": {"type": "string", "description": "Identifies an internal error in the server's logs."},
    },
    "required": ["status", "message"],
    "additionalProperties": True,
}
_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details (errors plugin).",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "error_id": {"type": "string"},
    },
    "required": ["type", "title", "status"],
    "additionalProperties": True,
}


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
    """The OpenAPI 3.1 document describing `routes`."""
    schemes = security_schemes(authenticators)
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for route in routes:
        if not route.include_in_schema or route.websocket:  # OpenAPI describes no WebSocket
            continue
        template, path_parameters = _path_parameters(route)
        item = paths.setdefault(template, {})
        for method in route.methods:
            operation_id = _unique(_operation_id(route, method), operation_ids)
            item[method.lower()] = {"operationId": operation_id, **_operation(route, method, path_parameters, schemes, has_access_policies)}
    components: dict[str, Any] = {"schemas": {"Error": _ERROR_SCHEMA, "Problem": _PROBLEM_SCHEMA}}
    if schemes:
        components["securitySchemes"] = schemes
    return {"openapi": OPENAPI_VERSION, "info": {"title": title, "version": version}, "paths": paths, "components": components}


def _path_parameters(route: Route) -> tuple[str, list[dict[str, Any]]]:
    """The OpenAPI path template of `route` and its path parameters."""
    declared = _properties(route.path_schema)
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
    method: str,
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
    required_query = set((route.query_schema or {}).get("required") or ())
    query_parameters = [_parameter(name, "query", schema, required=name in required_query) for name, schema in _properties(route.query_schema).items()]
    if path_parameters or query_parameters:
        operation["parameters"] = [*path_parameters, *query_parameters]
    if route.body_schema is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": dict(route.body_schema)}}}
    responses = {str(status): description for status, description in sorted(route.responses.items())} or {"200": "Successful response"}
    if route.body_schema is not None:
        responses.setdefault("400", "Malformed body")
        responses.setdefault("415", "Unsupported media type")
    if route.body_schema is not None or route.query_schema is not None or route.path_schema is not None:
        responses.setdefault("422", "Validation error")
    if route.auth is not None and route.auth.required:
        responses.setdefault("401", "Authentication required")
        if route.auth.scopes or route.auth.roles or has_access_policies:
            responses.setdefault("403", "Not allowed")
    operation["responses"] = {status: _response(status, text) for status, text in sorted(responses.items())}
    # Middleware may answer any route with an error (413, 429, 504, 500, ...).
    operation["responses"]["default"] = {"description": "Error", "content": _ERROR_CONTENT}
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


def _response(status: str, description: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if status[0] in "45":
        response["content"] = _ERROR_CONTENT
    return response


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
