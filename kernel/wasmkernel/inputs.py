"""Reading a route's JSON body, query and path parameters against JSON
Schemas, with jsonschema-rs (draft 2020-12 unless a schema's ``$schema``
names another; ``format`` is asserted). Used by typed endpoints (schemas
written from their models) and by the validation plugin (hand-written schemas).

- body: ``Content-Type`` must be ``application/json`` or
  ``application/*+json`` (else 415); malformed JSON is 400.
- query: the parameters form an object — one value as a string, a repeated
  key (or a property declared ``"type": "array"``) as a list — and strings
  are converted to the declared ``integer``/``number``/``boolean``/``null``
  first; path parameters likewise.
- every violation of the three makes one 422 whose ``errors`` list gives
  each one's ``location`` ("path" | "query" | "body"), RFC 6901 ``pointer``
  (for a missing property: where it should be), ``message`` and failing
  keyword ``validator``, ordered by location then position. Every error is
  listed for documents up to `FULL_ERRORS_BYTES`; of a larger invalid one,
  the first (listing them all costs ~15 µs each), with ``errors_truncated``.
- then the schemas' ``default``s fill in absent members (through
  ``properties``, ``items``, ``allOf`` and local ``$ref``s).
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import jsonschema_rs

from wasmkernel.errors import UnprocessableEntity, UnsupportedMediaType
from wasmkernel.http import Request
from wasmkernel.jsonio import off_loop

#: Longer messages (they may quote the offending value) are cut here.
MAX_MESSAGE = 240
#: Invalid documents up to this size have every error listed; larger ones their first.
FULL_ERRORS_BYTES = 4096
DEFAULT_MAX_ERRORS = 100
INTEGER = re.compile(r"-?\d+")
NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def pointer(parts: Iterable[Any]) -> str:
    """An RFC 6901 JSON pointer ("" is the whole document)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


# -- query and path strings -> declared scalar types ------------------------------------


def declared_types(schema: Any) -> frozenset[str]:
    """The JSON types `schema` allows by its ``type`` (or those of its ``anyOf`` members)."""
    if not isinstance(schema, Mapping):
        return frozenset()
    kind = schema.get("type")
    if isinstance(kind, str):
        return frozenset((kind,))
    if isinstance(kind, list):
        return frozenset(item for item in kind if isinstance(item, str))
    members = schema.get("anyOf")
    return frozenset().union(*(declared_types(member) for member in members)) if isinstance(members, list) else frozenset()


def convert(value: Any, types: frozenset[str]) -> Any:
    """`value` as the first declared type it parses as; unchanged when it is
    not a string, may be one, or parses as none (validation then reports it)."""
    if not isinstance(value, str) or not types or "string" in types:
        return value
    try:
        if "integer" in types and INTEGER.fullmatch(value):
            return int(value)
        if "number" in types and NUMBER.fullmatch(value):
            number = float(value)
            if math.isfinite(number):
                return int(value) if INTEGER.fullmatch(value) else number
    except ValueError:  # more digits than int() accepts
        return value
    if "boolean" in types and value.lower() in BOOLEANS:
        return BOOLEANS[value.lower()]
    if "null" in types and value in ("", "null"):
        return None
    return value


@attrs.frozen
class Plan:
    """How one parameter is converted: as a list (declared array) or not, and to which scalar types."""

    array: bool
    types: frozenset[str]


@attrs.frozen
class Coercer:
    """Converts string parameters following an object schema's `properties`."""

    plans: Mapping[str, Plan] = attrs.field(factory=dict)

    @classmethod
    def for_schema(cls, schema: Mapping[str, Any] | None) -> Coercer:
        properties = schema.get("properties") if schema is not None else None
        plans: dict[str, Plan] = {}
        for name, sub in (properties or {}).items():
            types = declared_types(sub)
            if "array" in types:
                plans[name] = Plan(array=True, types=declared_types(sub.get("items")))
            else:
                plans[name] = Plan(array=False, types=types)
        return cls(plans)

    def coerce(self, values: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, value in values.items():
            plan = self.plans.get(name)
            if plan is None:
                result[name] = value
            elif plan.array or isinstance(value, list):
                result[name] = [convert(item, plan.types) for item in (value if isinstance(value, list) else [value])]
            else:
                result[name] = convert(value, plan.types)
        return result


# -- defaults -----------------------------------------------------------------------------


@attrs.define(eq=False)
class Defaults:
    """Where a schema declares defaults: `values` fill absent members of an
    object; `members` and `items` lead to defaults deeper inside."""

    values: dict[str, Any] = attrs.field(factory=dict)
    members: dict[str, Defaults] = attrs.field(factory=dict)
    items: Defaults | None = None

    @classmethod
    def of(cls, schema: Any, root: Mapping[str, Any]) -> Defaults | None:
        """The defaults of `schema` (None if it declares none)."""
        return cls._walk(schema, root, {})

    @classmethod
    def _walk(cls, schema: Any, root: Mapping[str, Any], seen: dict[int, Defaults | None]) -> Defaults | None:
        if not isinstance(schema, Mapping):
            return None
        if id(schema) in seen:  # a recursive schema: the plan refers to itself
            return seen[id(schema)]
        plan = cls()
        seen[id(schema)] = plan
        for part in [_resolve(schema.get("$ref"), root), *(schema.get("allOf") or ())]:
            found = cls._walk(part, root, seen)
            if found is not None:
                plan.values.update(found.values)
                plan.members.update(found.members)
                plan.items = plan.items or found.items
        properties = schema.get("properties")
        for name, sub in properties.items() if isinstance(properties, Mapping) else ():
            if isinstance(sub, Mapping) and "default" in sub:
                plan.values[name] = sub["default"]
            inner = cls._walk(sub, root, seen)
            if inner is not None:
                plan.members[name] = inner
        plan.items = plan.items or cls._walk(schema.get("items"), root, seen)
        if plan.values or plan.members or plan.items:
            return plan
        seen[id(schema)] = None  # known to declare none
        return None

    def apply(self, instance: Any) -> None:
        """Fill in the defaults, in place."""
        if isinstance(instance, dict):
            for name, value in self.values.items():
                if name not in instance:
                    instance[name] = copy.deepcopy(value)
            for name, inner in self.members.items():
                if name in instance:
                    inner.apply(instance[name])
        elif isinstance(instance, list) and self.items is not None:
            for item in instance:
                self.items.apply(item)


def _resolve(ref: Any, root: Mapping[str, Any]) -> Any:
    """The target of a local ``$ref`` ("#/$defs/Name"), else None."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    target: Any = root
    for part in ref[1:].split("/")[1:]:
        name = part.replace("~1", "/").replace("~0", "~")
        target = target.get(name) if isinstance(target, Mapping) else None
    return target


# -- one compiled schema ----------------------------------------------------------------


class SchemaProblem(ValueError):
    """A schema that cannot be used; the message says where and why."""


def _message(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _describe(error: jsonschema_rs.ValidationError, location: str) -> tuple[list[Any], dict[str, Any]]:
    parts = list(error.instance_path)
    missing = getattr(error.kind, "property", None) if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Required) else None
    if missing is not None:
        parts.append(missing)
    keyword = str(error.schema_path[-1]) if error.schema_path else ""
    return parts, {"location": location, "pointer": pointer(parts), "message": _message(error.message), "validator": keyword}


def _location_key(parts: list[Any]) -> tuple[tuple[int, int, str], ...]:
    # Indices sort numerically, names alphabetically; the two never compare.
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, str(part)) for part in parts)


@attrs.frozen
class SchemaCheck:
    """One JSON Schema, compiled once: its validator, how its parameters are
    converted from strings, and its defaults."""

    schema: Mapping[str, Any]
    validator: jsonschema_rs.Validator = attrs.field(repr=False)
    coercer: Coercer
    defaults: Defaults | None

    @classmethod
    def compile(cls, schema: Mapping[str, Any]) -> SchemaCheck:
        """`SchemaProblem` (with a pointer into the schema) if `schema` is invalid."""
        try:
            validator = jsonschema_rs.validator_for(dict(schema), validate_formats=True)
        except jsonschema_rs.ValidationError as exc:
            raise SchemaProblem(f"at {pointer(exc.instance_path) or '/'}: {exc.message}") from None
        except (ValueError, TypeError) as exc:  # e.g. an unresolvable $ref, a value that is not JSON
            raise SchemaProblem(str(exc).splitlines()[0]) from None
        return cls(schema, validator, Coercer.for_schema(schema), Defaults.of(schema, schema))

    def problems(self, instance: Any, location: str, limit: int, size: int) -> tuple[list[dict[str, Any]], bool]:
        """At most `limit` errors of `instance` (a document of `size` bytes),
        ordered by where they are, and whether that is all of them."""
        if self.validator.is_valid(instance):
            return [], True
        if size > FULL_ERRORS_BYTES:
            try:
                self.validator.validate(instance)
            except jsonschema_rs.ValidationError as first:
                return [_describe(first, location)[1]], False
        described = sorted((_describe(error, location) for error in self.validator.iter_errors(instance)), key=lambda item: _location_key(item[0]))
        return [error for _, error in described[:limit]], len(described) <= limit

    def fill(self, instance: Any) -> Any:
        """`instance` with the schema's defaults filled in (in place)."""
        if self.defaults is not None:
            self.defaults.apply(instance)
        return instance


# -- a route's inputs -------------------------------------------------------------------


@attrs.frozen
class Inputs:
    """What `RequestInputs.read` found: the decoded body and the converted
    query and path parameters, validated, defaults filled in (None where the
    route declares no schema); `body_size` is the body's length in bytes."""

    body: Any = None
    query: dict[str, Any] | None = None
    path: dict[str, Any] | None = None
    body_size: int = 0


def _compiled(location: str, schema: Mapping[str, Any] | None) -> SchemaCheck | None:
    try:
        return SchemaCheck.compile(schema) if schema is not None else None
    except SchemaProblem as exc:
        raise SchemaProblem(f"invalid {location} schema {exc}") from None


@attrs.frozen
class RequestInputs:
    """The schemas of one route's body, query and path parameters, compiled once."""

    body: SchemaCheck | None = None
    query: SchemaCheck | None = None
    path: SchemaCheck | None = None
    max_errors: int = DEFAULT_MAX_ERRORS

    @classmethod
    def compile(
        cls,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        path: Mapping[str, Any] | None = None,
        max_errors: int = DEFAULT_MAX_ERRORS,
    ) -> RequestInputs:
        """`SchemaProblem` naming the location of an invalid schema."""
        return cls(_compiled("body", body), _compiled("query", query), _compiled("path", path), max_errors)

    async def read(self, request: Request) -> Inputs:
        """Read and check the request: 415, 400 or 422 (see the module's docstring)."""
        body, size = None, 0
        if self.body is not None:
            if not is_json(request.content_type):
                raise UnsupportedMediaType(f"Content-Type must be application/json, got {request.content_type[:100] or 'none'}")
            body = await request.json()
            size = len(await request.body())
        limit, complete = self.max_errors, True
        errors: list[dict[str, Any]] = []
        path = query = None
        if self.path is not None:
            path = self.path.coercer.coerce(request.path_params)
            found, whole = self.path.problems(path, "path", limit, 0)
            errors, complete = errors + found, complete and whole
        if self.query is not None:
            query = self.query.coercer.coerce(request.query.to_dict())
            found, whole = self.query.problems(query, "query", limit, len(request.query_string))
            errors, complete = errors + found, complete and whole
        if self.body is not None:
            found, whole = await off_loop(size, functools.partial(self.body.problems, body, "body", limit, size))
            errors, complete = errors + found, complete and whole
        if errors:
            raise invalid(errors, self.max_errors, complete)
        return Inputs(
            body=self.body.fill(body) if self.body is not None else None,
            query=self.query.fill(query) if self.query is not None else None,
            path=self.path.fill(path) if self.path is not None else None,
            body_size=size,
        )


def invalid(errors: list[dict[str, Any]], max_errors: int = DEFAULT_MAX_ERRORS, complete: bool = True) -> UnprocessableEntity:
    """The 422 listing `errors` (at most `max_errors`; ``errors_truncated`` when more were found or looked for)."""
    extra: dict[str, Any] = {"errors": errors[:max_errors]}
    if len(errors) > max_errors or not complete:
        extra["errors_truncated"] = True
    return UnprocessableEntity("Request validation failed", extra=extra)
