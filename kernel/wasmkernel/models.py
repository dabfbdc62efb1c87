"""Typed models: attrs classes (and the types they are made of) as request
inputs and responses, with their JSON Schema — one source of truth for
validation and for OpenAPI.

- `SchemaBuilder` writes the JSON Schema of a type: attrs classes become
  named definitions (``$ref``), their fields properties (required unless
  they have a default), attrs validators the matching keywords (`min_len`,
  `max_len`, `ge`, `gt`, `le`, `lt`, `in_`, `matches_re`, inside `and_`,
  `optional` and `deep_iterable`), and a field's ``metadata={"schema":
  {...}}`` is merged last (``description``, ``examples``, ``format``, more
  constraints). A class refuses members it does not declare.
- `structure` builds a model from JSON that its schema accepted (cheap:
  the checks are done); `unstructure` turns a model back into JSON-ready data.

Supported: attrs classes, ``str``, ``int``, ``float``, ``bool``, ``None``,
``Any``, ``datetime``/``date`` (RFC 3339 strings), ``UUID``, ``enum.Enum``
and ``Literal`` (their values), ``X | None``, unions of JSON scalars,
``list``/``Sequence``/``set``/``frozenset``/``tuple`` (variadic or fixed),
``dict``/``Mapping`` with ``str`` keys (``Annotated[X, ...]`` is X).
Anything else is a `TypeError` when the route is declared.
"""

from __future__ import annotations

import collections.abc
import datetime
import enum
import re
import types
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import attrs
import cattrs
import orjson

Schema = dict[str, Any]

_SCALARS: dict[Any, Schema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    uuid.UUID: {"type": "string", "format": "uuid"},
}
_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}
# Tuples, not sets: a type holding Annotated metadata (a dict) is unhashable.
_SEQUENCES = (list, collections.abc.Sequence, collections.abc.MutableSequence, collections.abc.Iterable, collections.abc.Collection)
_SETS = (set, frozenset, collections.abc.Set, collections.abc.MutableSet)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
#: Bound keywords of attrs' number validators, by their comparison.
_BOUNDS = {">=": "minimum", ">": "exclusiveMinimum", "<=": "maximum", "<": "exclusiveMaximum"}
_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _is_union(tp: Any) -> bool:
    return get_origin(tp) is Union or isinstance(tp, types.UnionType)


def _json_type(value: Any) -> str | None:
    return next((name for kind, name in _JSON_TYPES.items() if type(value) is kind), None)


def _enum_schema(values: list[Any]) -> Schema:
    kinds = sorted({_json_type(value) or "?" for value in values})
    schema: Schema = {"enum": values}
    if len(kinds) == 1 and kinds[0] != "?":
        schema["type"] = kinds[0]
    return schema


def _nullable(schema: Schema) -> Schema:
    kind = schema.get("type")
    if isinstance(kind, str) and "enum" not in schema and "$ref" not in schema:
        return {**schema, "type": [kind, "null"]}
    if "enum" in schema and isinstance(kind, str):
        return {**schema, "type": [kind, "null"], "enum": [*schema["enum"], None]}
    return {"anyOf": [schema, {"type": "null"}]}


def _types_of(schema: Schema) -> set[str]:
    kind = schema.get("type")
    return {kind} if isinstance(kind, str) else set(kind) if isinstance(kind, list) else set()


class SchemaBuilder:
    """JSON Schemas of types; each attrs class is one entry of `definitions`
    (named after the class), referenced as ``ref_prefix + name``: use
    ``"#/$defs/"`` for a self-contained schema, ``"#/components/schemas/"``
    for an OpenAPI document."""

    def __init__(self, ref_prefix: str = "#/$defs/") -> None:
        self.ref_prefix = ref_prefix
        self.definitions: dict[str, Schema] = {}
        self._names: dict[type, str] = {}

    def schema(self, tp: Any) -> Schema:
        """The schema of `tp` (`TypeError` when it is not supported)."""
        if tp is Any or tp is object:
            return {}
        if tp is None:
            tp = type(None)
        scalar = next((schema for kind, schema in _SCALARS.items() if tp is kind), None)
        if scalar is not None:
            return dict(scalar)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum_schema([member.value for member in tp])
        if isinstance(tp, type) and attrs.has(tp):
            return {"$ref": self.ref_prefix + self.define(tp)}
        origin, args = get_origin(tp), get_args(tp)
        if origin is Annotated:
            return self.schema(args[0])
        if origin is Literal:
            return _enum_schema(list(args))
        if _is_union(tp):
            return self._union(args)
        if tp in _SEQUENCES or origin in _SEQUENCES or tp in _SETS or origin in _SETS:
            schema: Schema = {"type": "array", "items": self.schema(args[0]) if args else {}}
            if tp in _SETS or origin in _SETS:
                schema["uniqueItems"] = True
            return schema
        if tp is tuple or origin is tuple:
            return self._tuple(args)
        if tp in _MAPPINGS or origin in _MAPPINGS:
            if args and args[0] is not str:
                raise TypeError(f"{tp!r}: JSON object keys are strings (use a str key type)")
            return {"type": "object", "additionalProperties": self.schema(args[1]) if args else {}}
        raise TypeError(f"type {tp!r} has no JSON Schema (see wasmkernel.models for the supported types)")

    def _union(self, members: tuple[Any, ...]) -> Schema:
        others = [member for member in members if member is not type(None)]
        if len(others) == 1:
            return _nullable(self.schema(others[0])) if len(others) < len(members) else self.schema(others[0])
        if not all(any(member is kind for kind in _JSON_TYPES) or get_origin(member) is Literal for member in members):
            raise TypeError(f"Union{list(members)!r}: only X | None and unions of JSON scalars are supported")
        return {"anyOf": [self.schema(member) for member in members]}

    def _tuple(self, args: tuple[Any, ...]) -> Schema:
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return {"type": "array", "items": self.schema(args[0]) if args else {}}
        items = [self.schema(arg) for arg in args]
        return {"type": "array", "prefixItems": items, "items": False, "minItems": len(items), "maxItems": len(items)}

    def define(self, cls: type) -> str:
        """The definition name of attrs class `cls`, defining it if new."""
        if cls in self._names:
            return self._names[cls]
        name = cls.__name__
        if name in self.definitions:
            name = _NAME.sub("_", f"{cls.__module__}.{cls.__qualname__}".replace("<locals>.", ""))
        self._names[cls] = name
        self.definitions[name] = {}  # reserved: a class may refer to itself
        self.definitions[name] = self.object_schema(cls)
        return name

    def object_schema(self, cls: type) -> Schema:
        """The object schema of attrs class `cls` itself (not a reference)."""
        try:
            attrs.resolve_types(cls)
        except NameError as exc:
            raise TypeError(f"cannot resolve the annotations of {cls.__qualname__}: {exc} (define the types it uses at module level)") from None
        properties: Schema = {}
        required = []
        for field in attrs.fields(cls):
            if not field.init:
                continue
            properties[field.name] = self._field(cls, field)
            if field.default is attrs.NOTHING:
                required.append(field.name)
        schema: Schema = {"type": "object", "title": cls.__name__}
        if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):  # attrs' generated repr-like doc
            schema["description"] = cls.__doc__.strip()
        schema.update(properties=properties, additionalProperties=False)
        if required:
            schema["required"] = required
        return schema

    def _field(self, cls: type, field: attrs.Attribute[Any]) -> Schema:
        if field.type is None:
            raise TypeError(f"{cls.__qualname__}.{field.name} has no type annotation")
        schema = self.schema(field.type)
        _constrain(schema, field.validator, _types_of(schema) or {"string", "array", "object", "number"})
        default = field.default
        if default is not attrs.NOTHING and not isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            try:
                schema["default"] = orjson.loads(orjson.dumps(unstructure(default)))
            except (TypeError, orjson.JSONEncodeError):
                pass  # not JSON: documented without a default, still optional
        schema.update(field.metadata.get("schema", {}))
        return schema


def _constrain(schema: Schema, validator: Any, kinds: set[str]) -> None:
    """Add the keywords attrs' own `validator` enforces (others still run when
    the model is built)."""
    kind = type(validator).__name__
    if validator is None:
        return
    if kind == "_AndValidator":
        for inner in validator._validators:
            _constrain(schema, inner, kinds)
    elif kind == "_OptionalValidator":
        _constrain(schema, validator.validator, kinds)
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
    elif kind == "_DeepIterable":
        _constrain(schema, validator.iterable_validator, kinds)
        items = schema.get("items")
        if isinstance(items, dict):
            _constrain(items, validator.member_validator, _types_of(items) or {"string", "array", "object", "number"})
    elif kind in ("_MinLengthValidator", "_MaxLengthValidator"):
        bound = "min" if kind == "_MinLengthValidator" else "max"
        size = validator.min_length if bound == "min" else validator.max_length
        for json_type, word in (("string", "Length"), ("array", "Items"), ("object", "Properties")):
            if json_type in kinds:
                schema[f"{bound}{word}"] = size
    elif kind == "_NumberValidator" and validator.compare_op in _BOUNDS:
        schema[_BOUNDS[validator.compare_op]] = validator.bound
    elif kind == "_InValidator":
        options = list(validator.options)
        if all(_json_type(option) for option in options):
            schema["enum"] = options
    elif kind == "_MatchesReValidator":
        pattern = validator.pattern.pattern
        how = getattr(validator.match_func, "__name__", "fullmatch")
        schema["pattern"] = pattern if how == "search" else f"^(?:{pattern})" + ("$" if how == "fullmatch" else "")


def model_schema(tp: Any) -> Schema:
    """A self-contained JSON Schema of `tp` (attrs classes under ``$defs``)."""
    builder = SchemaBuilder()
    schema = builder.schema(tp)
    return {**schema, "$defs": builder.definitions} if builder.definitions else schema


def input_schema(cls: type) -> Schema:
    """The schema of query or path parameters described by attrs class `cls`:
    its object schema, without refusing unknown parameters (they are not
    passed to it). `TypeError` unless every field is a scalar or a list of them."""
    if not (isinstance(cls, type) and attrs.has(cls)):
        raise TypeError(f"{cls!r} is not an attrs class")
    builder = SchemaBuilder()
    schema = builder.object_schema(cls)
    if builder.definitions:
        raise TypeError(f"{cls.__qualname__}: parameters are scalars or lists of scalars, not models ({', '.join(builder.definitions)})")
    del schema["additionalProperties"]
    return schema


def _media_types(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen
class ResponseSpec:
    """What a route answers with one status: a `description`, and the body's
    `model` (a type: an endpoint returning an instance has it serialised as
    JSON) or hand-written JSON `schema`, in `media_types`. Routes take
    ``responses={201: Post, 404: "No such post", 200: ResponseSpec(...)}``:
    a string is a description, a mapping a schema, anything else a model."""

    description: str = ""
    model: Any = None
    schema: Mapping[str, Any] | None = None
    media_types: tuple[str, ...] = attrs.field(default=("application/json",), converter=_media_types)

    def __attrs_post_init__(self) -> None:
        if self.model is not None and self.schema is not None:
            raise ValueError("a response declares a model or a schema, not both")

    @property
    def has_body(self) -> bool:
        return self.model is not None or self.schema is not None


def response_specs(value: Mapping[int, Any]) -> dict[int, ResponseSpec]:
    """`Route.responses` as `ResponseSpec`s (ValueError for a status outside 100-599)."""
    specs = {}
    for status, declared in value.items():
        if type(status) is not int or not 100 <= status <= 599:
            raise ValueError(f"responses: {status!r} is not an HTTP status")
        if isinstance(declared, ResponseSpec):
            specs[status] = declared
        elif isinstance(declared, str):
            specs[status] = ResponseSpec(declared)
        elif isinstance(declared, Mapping):
            specs[status] = ResponseSpec(schema=declared)
        else:
            specs[status] = ResponseSpec(model=declared)
    return specs


# -- structuring: JSON that the model's schema accepted -> the model -------------------


def _identity(value: Any, _: Any) -> Any:
    return value


def _identity_one(value: Any) -> Any:
    return value


def _plain(tp: Any) -> bool:
    """Whether values of `tp` come out of JSON decoding as they are."""
    if get_origin(tp) is Annotated:
        return _plain(get_args(tp)[0])
    return tp in (str, int, bool, Any, object, type(None)) or get_origin(tp) is Literal or (_is_union(tp) and all(_plain(arg) for arg in get_args(tp)))


def _item(tp: Any) -> Any:
    args = get_args(tp)
    return args[0] if args else Any


def _is_plain_sequence(tp: Any) -> bool:
    """A list, set or variadic tuple of JSON scalars or floats: built in one
    C-level call instead of one hook call per item (a 300x300 matrix)."""
    origin, args = get_origin(tp) or tp, get_args(tp)
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        return False
    return _is_collection(tp) and (_plain(_item(tp)) or _item(tp) is float)


def _is_collection(tp: Any) -> bool:
    origin = get_origin(tp) or tp
    return origin in _SEQUENCES or origin in _SETS or origin is tuple


def _plain_sequence(tp: Any) -> Callable[[Any, Any], Any]:
    origin = get_origin(tp) or tp
    build: Callable[[Any], Any] = set if origin in _SETS else tuple if origin is tuple else list
    if _item(tp) is float:
        return lambda value, _: build(map(float, value))
    return lambda value, _: build(value)


def _is_plain_choice(tp: Any) -> bool:
    return get_origin(tp) is Literal or (_is_union(tp) and _plain(tp))


def _is_json(tp: Any) -> bool:
    """Whether values of `tp` are JSON-ready as they are: scalars, and lists
    (or tuples) and str-keyed dicts of them, declared with their item types."""
    origin, args = get_origin(tp) or tp, get_args(tp)
    if _plain(tp) or tp is float:
        return True
    if origin in _SEQUENCES or origin is tuple:
        return bool(args) and all(_is_json(arg) for arg in args if arg is not Ellipsis)
    return origin in _MAPPINGS and len(args) == 2 and args[0] is str and _is_json(args[1])


def _parse_datetime(value: str, _: Any) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))


def _structuring() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=True)
    for kind in (str, int, bool):
        converter.register_structure_hook(kind, _identity)
    converter.register_structure_hook(float, lambda value, _: float(value))
    converter.register_structure_hook(datetime.datetime, _parse_datetime)
    converter.register_structure_hook(datetime.date, lambda value, _: datetime.date.fromisoformat(value))
    converter.register_structure_hook(uuid.UUID, lambda value, _: uuid.UUID(value))
    converter.register_structure_hook_func(_is_plain_choice, _identity)
    converter.register_structure_hook_factory(_is_plain_sequence, _plain_sequence)
    return converter


def _unstructuring() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_unstructure_hook(datetime.datetime, lambda value: value.isoformat())
    converter.register_unstructure_hook(datetime.date, lambda value: value.isoformat())
    converter.register_unstructure_hook(uuid.UUID, str)
    # A declared list of numbers (a matrix...) is JSON as it is: no hook call per item.
    converter.register_unstructure_hook_func(lambda tp: get_origin(tp) is not None and _is_json(tp), _identity_one)
    # Items by their own class (this also serves recursive models, which cattrs' generated code does not).
    converter.register_unstructure_hook_func(lambda tp: _is_collection(tp) and not _is_json(tp), lambda value: [converter.unstructure(item) for item in value])
    return converter


_STRUCTURE = _structuring()
_UNSTRUCTURE = _unstructuring()


def structure(data: Any, tp: Any) -> Any:
    """`tp` built from `data`, which `model_schema(tp)` accepted (defaults
    of absent fields come from the class). What a validator the schema does
    not express raises is a `cattrs.ClassValidationError` (see `model_errors`)."""
    return _STRUCTURE.structure(data, tp)


def unstructure(value: Any) -> Any:
    """`value` (a model, or anything holding models) as JSON-ready data."""
    return _UNSTRUCTURE.unstructure(value)


def model_errors(error: BaseException, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """(path, message) for each failure inside a structuring error: paths
    follow the attributes and indexes cattrs noted; attrs' own validators
    name their attribute (``args[1]``)."""
    if isinstance(error, cattrs.ClassValidationError | cattrs.IterableValidationError):
        noted, others = error.group_exceptions()
        found = [item for inner in others for item in model_errors(inner, prefix)]
        for inner, note in noted:
            found += model_errors(inner, (*prefix, getattr(note, "name", getattr(note, "index", None))))
        return found
    if len(error.args) > 1 and isinstance(error.args[1], attrs.Attribute):
        return [((*prefix, error.args[1].name), str(error.args[0]))]
    return [(prefix, str(error) or type(error).__name__)]
