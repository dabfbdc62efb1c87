"""Turning a plugin's registry `config` table into a validated attrs object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory, is_mapping, is_mutable_sequence, is_sequence, list_structure_factory
from cattrs.dispatch import StructureHook
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from cattrs.gen import mapping_structure_factory
from cattrs.v import transform_error

from wasmkernel.errors import ConfigError

T = TypeVar("T")


class Reference(str):
    """Text a registry's `{ env = ... }` or `{ file = ... }` held: for an int,
    float or bool field it is converted (booleans: true, false, 1, 0)."""

    source: str  # "$NAME" or the file's path

    def __new__(cls, text: str, source: str = "") -> Reference:  # the default: unpickling
        reference = super().__new__(cls, text)
        reference.source = source
        return reference

    def converted(self, kind: type, name: str) -> Any:
        text = self.strip().lower()
        try:
            return {"true": True, "1": True, "false": False, "0": False}[text] if kind is bool else kind(text)
        except (KeyError, ValueError):
            raise TypeError(f"expected {name}: {self.source} holds something else") from None


def _strict(kind: type | tuple[type, ...], name: str, then: StructureHook | None = None) -> StructureHook:
    """A hook accepting only `kind` (never a boolean for a number; a
    `Reference` converted to it), then structured by `then`."""

    def structure(value: Any, target: Any) -> Any:
        if isinstance(value, Reference):
            value = value.converted(kind, name) if kind in (int, float, bool) else str(value)
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {name}, got a boolean")
        if kind is float and isinstance(value, int):
            return float(value)
        if not isinstance(value, kind):
            raise TypeError(f"expected {name}, got {type(value).__name__} {value!r}")
        return then(value, target) if then else value

    return structure


def _is_literal(kind: Any) -> bool:
    return get_origin(kind) is Literal


def _literal(value: Any, kind: Any) -> Any:
    allowed = get_args(kind)
    if value not in allowed or isinstance(value, bool) != any(isinstance(a, bool) for a in allowed):
        raise ValueError(f"expected one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
    return value


def _array(kind: Any, converter: cattrs.Converter) -> StructureHook:
    factory = list_structure_factory if is_mutable_sequence(kind) else homogenous_tuple_structure_factory
    return _strict((list, tuple), "an array", factory(kind, converter))


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    for kind, name in ((str, "a string"), (int, "an integer"), (float, "a number"), (bool, "true or false")):
        converter.register_structure_hook(kind, _strict(kind, name))
    converter.register_structure_hook_func(_is_literal, _literal)
    # cattrs takes any iterable for a sequence (a string as its characters) and
    # fails obscurely on a mapping that is not one: accept only arrays and tables.
    converter.register_structure_hook_factory(is_sequence, _array)
    converter.register_structure_hook_factory(is_mapping, lambda kind, converter: _strict(Mapping, "a table", mapping_structure_factory(kind, converter)))
    return converter


_CONVERTER = _converter()


def _describe(exc: BaseException, _: Any) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        allowed = ", ".join(sorted(field.name for field in attrs.fields(exc.cl))) or "none"
        return f"unknown key(s): {', '.join(sorted(exc.extra_fields))} (allowed: {allowed})"
    if isinstance(exc, KeyError):
        return "required key is missing"
    if len(exc.args) > 1 and isinstance(exc.args[1], attrs.Attribute):  # attrs' own validators: (message, attribute, ...)
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def parse_config(cls: type[T], raw: Mapping[str, Any]) -> T:
    """Build `cls` (an attrs class) from `raw`, strictly: unknown keys, missing
    keys and wrong types raise `ConfigError` naming the first bad key; attrs
    validators run as usual (their message is shown, at their class's key)."""
    try:
        return _CONVERTER.structure(dict(raw), cls)
    except ClassValidationError as exc:
        message, _, path = transform_error(exc, "", _describe)[0].rpartition(" @ ")
        raise ConfigError(path.removeprefix("."), message) from None
