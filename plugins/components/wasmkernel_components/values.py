"""Host results in one unambiguous shape, lowered to wasmtime-py's.

wasmtime-py represents an `option`, `result` or `variant` either tagged
(`Variant(tag, payload)`) or bare (the payload itself, `None` for a case
without one), depending on whether the cases' Python classes overlap, so
the same WIT value looks different from one function to the next. Host
functions here always answer with `Some`/`None`, `Ok`/`Err` and `Variant`;
`lowering(valtype)`, built once per imported function at link time, turns
that into what wasmtime-py expects for that exact type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from wasmtime.component import ListType, OptionType, Record, RecordType, ResultType, TupleType, ValType, Variant, VariantType

Lower = Callable[[Any], Any]


@attrs.frozen
class Some:
    value: Any


@attrs.frozen
class Ok:
    value: Any = None


@attrs.frozen
class Err:
    value: Any = None


def _identity(value: Any) -> Any:
    return value


def _cases(lowerings: dict[str, Lower | None], tagged: bool) -> Lower:
    def lower(value: Variant) -> Any:
        inner = lowerings[value.tag]
        payload = inner(value.payload) if inner is not None else None
        return Variant(value.tag, payload) if tagged else payload

    return lower


def lowering(ty: ValType | None) -> Lower:
    """How to turn a host value of WIT type `ty` into wasmtime-py's form."""
    if isinstance(ty, OptionType):
        some = _cases({"none": None, "some": lowering(ty.payload)}, ty._tagged())
        return lambda value: some(Variant("none") if value is None else Variant("some", value.value))
    if isinstance(ty, ResultType):
        cases = _cases({"ok": lowering(ty.ok) if ty.ok is not None else None, "err": lowering(ty.err) if ty.err is not None else None}, ty._tagged())
        return lambda value: cases(Variant("ok" if isinstance(value, Ok) else "err", value.value))
    if isinstance(ty, VariantType):
        return _cases({name: lowering(case) if case is not None else None for name, case in ty.cases}, ty._tagged())
    if isinstance(ty, RecordType):
        fields = [(name, lowering(field)) for name, field in ty.fields]

        def record(value: dict[str, Any]) -> Record:
            out = Record()
            for name, lower in fields:
                setattr(out, name, lower(value[name]))
            return out

        return record
    if isinstance(ty, TupleType):
        elements = [lowering(element) for element in ty.elements]
        return lambda value: tuple(lower(item) for lower, item in zip(elements, value))
    if isinstance(ty, ListType) and not ty._is_bytes():
        element = lowering(ty.element)
        return lambda value: [element(item) for item in value]
    return _identity
