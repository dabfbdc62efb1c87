"""Compiling schemas, converting query/path strings to the declared types,
and describing validation errors."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

import attrs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

#: Longer messages (jsonschema quotes the offending value) are cut here.
MAX_MESSAGE = 240
INTEGER = re.compile(r"-?\d+")
NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


def compile_schema(schema: Mapping[str, Any]) -> Validator:
    """A validator for `schema` (its ``$schema`` draft, else 2020-12) that
    asserts ``format``; `SchemaError` if the schema itself is invalid."""
    cls = validator_for(schema, default=Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def declared_types(schema: Any) -> frozenset[str]:
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    if isinstance(kind, str):
        return frozenset((kind,))
    if isinstance(kind, list):
        return frozenset(item for item in kind if isinstance(item, str))
    return frozenset()


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
    """How one parameter is converted: as a list (declared array) or not,
    and to which scalar types."""

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


def pointer(parts: Iterable[Any]) -> str:
    """An RFC 6901 JSON pointer ("" is the whole document)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def missing_property(error: ValidationError) -> str | None:
    """The property a ``required`` error is about."""
    if error.validator != "required" or not isinstance(error.instance, Mapping) or not isinstance(error.validator_value, list):
        return None
    return next((name for name in error.validator_value if name not in error.instance and error.message == f"{name!r} is a required property"), None)


def _location_key(parts: list[Any]) -> tuple[tuple[int, int, str], ...]:
    # Indices sort numerically, names alphabetically; the two never compare.
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, str(part)) for part in parts)


def errors_of(validator: Validator, instance: Any, location: str, limit: int) -> list[dict[str, Any]]:
    """At most `limit` errors of `instance`, ordered by where they are."""
    located = []
    for error in islice(validator.iter_errors(instance), limit):
        parts = list(error.absolute_path)
        missing = missing_property(error)
        if missing is not None:
            parts.append(missing)
        located.append((parts, error))
    located.sort(key=lambda item: _location_key(item[0]))
    return [
        {
            "location": location,
            "pointer": pointer(parts),
            "message": error.message if len(error.message) <= MAX_MESSAGE else error.message[: MAX_MESSAGE - 1] + "…",
            "validator": str(error.validator),
        }
        for parts, error in located
    ]
