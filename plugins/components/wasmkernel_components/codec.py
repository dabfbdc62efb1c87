"""Host functions called through wasmtime's C API with converters compiled once per type.

wasmtime-py's own path (`LinkerInstance.add_func`) rebuilds every function's
type from the C API on every call and re-derives each `option`/`result`/
`variant`'s Python shape (`_tagged()`, walking every case through FFI), then
converts a `list<u8>` one Python call per byte: most of a host call's CPU
time. Here each imported function's parameter and result types are read
once, at link time, into closures (`lifter`, `lowerer`) that do only the
conversion: composites walk precomputed cases and fields, byte lists are two
strided copies over the C value array (every value is a 32-byte
`wasmtime_component_val_t`), and leaves (numbers, strings, enums, flags,
resources) use wasmtime-py's own per-type conversions, which read no types.

Lifted arguments have exactly wasmtime-py's shapes (tagged `Variant` or bare
payload, `Record`, `bytes`), so host functions see the same values either
way; results are taken in the explicit shapes of `values` (`Some`/None,
`Ok`/`Err`, `Variant`, dicts or `Record`s for records).

This reaches into wasmtime-py's private `_ffi` bindings and its callback
protocol, so it is used only on the wasmtime-py versions it was tested
against (`SUPPORTED`); on any other, `available()` is False and the linker
falls back to wasmtime-py's public `add_func` with `values.lowering` (correct,
slower). `tests/test_codec.py` checks both paths give equal values.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import itertools
from collections.abc import Callable
from typing import Any

import structlog
from wasmtime import StoreContext, WasmtimeError
from wasmtime import _ffi as ffi
from wasmtime.component import (
    FuncType,
    LinkerInstance,
    ListType,
    OptionType,
    Record,
    RecordType,
    ResultType,
    TupleType,
    ValType,
    Variant,
    VariantType,
)
from wasmtime.component._types import U8

from wasmkernel_components.values import Err, Ok, Some

log = structlog.get_logger("wasmkernel.components")

#: wasmtime-py versions (major.minor) whose C value layout and callback protocol this module was tested against.
SUPPORTED = ("51.0",)
VERSION = importlib.metadata.version("wasmtime")

Lift = Callable[[Any], Any]
Lower = Callable[[Any, Any, Any], None]

_VAL = ffi.wasmtime_component_val_t
_SIZE = ctypes.sizeof(_VAL)
_KIND = _VAL.kind.offset
_PAYLOAD = _VAL.of.offset
_U8 = int(ffi.WASMTIME_COMPONENT_U8.value)
_BOOL = ffi.WASMTIME_COMPONENT_BOOL


def available() -> bool:
    """Whether this wasmtime-py is one the compiled converters were tested against."""
    return ".".join(VERSION.split(".")[:2]) in SUPPORTED


def _view(address: int, count: int) -> memoryview:
    return memoryview((ctypes.c_ubyte * (count * _SIZE)).from_address(address)).cast("B")


def _emptied(val: Any) -> None:
    """Mark a value whose payload was moved out (so deleting its container frees nothing twice)."""
    val.kind = _BOOL
    val.of.boolean = False


# -- lifting: C value -> Python (consumes the C value) --------------------------------


def _lift_bytes(c: Any) -> bytes:
    count = c.of.list.size
    try:
        return _view(ctypes.addressof(c.of.list.data.contents), count)[_PAYLOAD::_SIZE].tobytes() if count else b""
    finally:
        ffi.wasmtime_component_vallist_delete(ctypes.byref(c.of.list))


def _lift_boxed(lift: Lift | None, pointer: Any) -> Any:
    """The payload behind a boxed value pointer (freed), or None without payload type."""
    if lift is None or not pointer:
        return None
    payload = lift(pointer.contents)
    _emptied(pointer.contents)
    ffi.wasmtime_component_val_delete(pointer)
    return payload


def _cases(ty: VariantType | OptionType | ResultType) -> list[tuple[str, ValType | None]]:
    if isinstance(ty, OptionType):
        return [("none", None), ("some", ty.payload)]
    if isinstance(ty, ResultType):
        return [("ok", ty.ok), ("err", ty.err)]
    return ty.cases


def lifter(ty: ValType) -> Lift:
    """How to turn a C value of type `ty` into wasmtime-py's Python value (consuming it)."""
    if isinstance(ty, ListType):
        element = ty.element
        if isinstance(element, U8):
            return _lift_bytes
        lift_element = lifter(element)

        def lift_list(c: Any) -> list[Any]:
            try:
                out = []
                data = c.of.list.data
                for index in range(c.of.list.size):
                    out.append(lift_element(data[index]))
                    _emptied(data[index])
                return out
            finally:
                ffi.wasmtime_component_vallist_delete(ctypes.byref(c.of.list))

        return lift_list
    if isinstance(ty, RecordType):
        fields = [(name, lifter(field)) for name, field in ty.fields]

        def lift_record(c: Any) -> Record:
            try:
                out = Record()
                data = c.of.record.data
                for index, (name, lift) in zip(range(c.of.record.size), fields):
                    setattr(out, name, lift(data[index].val))
                    _emptied(data[index].val)
                return out
            finally:
                ffi.wasmtime_component_valrecord_delete(ctypes.byref(c.of.record))

        return lift_record
    if isinstance(ty, TupleType):
        elements = [lifter(element) for element in ty.elements]

        def lift_tuple(c: Any) -> tuple[Any, ...]:
            try:
                data = c.of.tuple.data
                out = []
                for index, lift in zip(range(c.of.tuple.size), elements):
                    out.append(lift(data[index]))
                    _emptied(data[index])
                return tuple(out)
            finally:
                ffi.wasmtime_component_valtuple_delete(ctypes.byref(c.of.tuple))

        return lift_tuple
    if isinstance(ty, (VariantType, OptionType, ResultType)):
        tagged = ty._tagged()
        lifts = {name: lifter(case) if case is not None else None for name, case in _cases(ty)}

        def shaped(tag: str, payload: Any) -> Any:
            return Variant(tag, payload) if tagged else payload

        if isinstance(ty, OptionType):
            some = lifts["some"]
            return lambda c: shaped("some", _lift_boxed(some, c.of.option)) if c.of.option else shaped("none", None)
        if isinstance(ty, ResultType):
            ok, err = lifts["ok"], lifts["err"]
            return lambda c: shaped("ok", _lift_boxed(ok, c.of.result.val)) if c.of.result.is_ok else shaped("err", _lift_boxed(err, c.of.result.val))

        def lift_variant(c: Any) -> Any:
            tag = ffi.to_str(c.of.variant.discriminant)
            ffi.wasm_byte_vec_delete(ctypes.byref(c.of.variant.discriminant))
            if tag not in lifts:
                raise ValueError(f"tag {tag} not found in variant cases")
            return shaped(tag, _lift_boxed(lifts[tag], c.of.variant.val))

        return lift_variant
    return ty.convert_from_c  # leaves read no types: numbers, char, string, enum, flags, own, borrow


# -- lowering: Python (the explicit shapes of `values`) -> C value --------------------


def _lower_bytes(store: Any, value: Any, ptr: Any) -> None:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    count = len(value)
    raw = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(raw, count)
    if count:
        view = _view(ctypes.addressof(raw.data.contents), count)
        view[_KIND::_SIZE] = bytes([_U8]) * count
        view[_PAYLOAD::_SIZE] = value
    ptr.contents.kind = ffi.WASMTIME_COMPONENT_LIST
    ptr.contents.of.list = raw


def _boxed(store: Any, lower: Lower | None, value: Any) -> Any:
    """A boxed C value holding `value` (None without payload type)."""
    if lower is None:
        return None
    raw = _VAL()
    lower(store, value, ctypes.pointer(raw))
    return ffi.wasmtime_component_val_new(ctypes.byref(raw))


def _sequence(new: Callable[[Any, int], None], delete: Callable[[Any], None], kind: Any, field: str, slot: Callable[[Any, int], Any]) -> Callable[..., None]:
    """Lower `values` one per slot of a freshly allocated C sequence (list, tuple, record);
    on failure the slots not yet filled are made empty and the sequence freed."""

    def lower(store: Any, values: list[tuple[Lower, Any]], ptr: Any, prepare: Callable[[Any, int], None] | None = None) -> None:
        raw = getattr(ffi, f"wasmtime_component_val{field}_t")()
        new(raw, len(values))
        filled = 0
        try:
            for index, (lower_one, value) in enumerate(values):
                if prepare is not None:
                    prepare(raw, index)
                lower_one(store, value, ctypes.pointer(slot(raw, index)))
                filled += 1
        except BaseException:
            for index in range(filled, len(values)):
                _emptied(slot(raw, index))
            delete(ctypes.byref(raw))
            raise
        ptr.contents.kind = kind
        setattr(ptr.contents.of, field, raw)

    return lower


_list = _sequence(
    ffi.wasmtime_component_vallist_new_uninit, ffi.wasmtime_component_vallist_delete, ffi.WASMTIME_COMPONENT_LIST, "list", lambda raw, i: raw.data[i]
)
_tuple = _sequence(
    ffi.wasmtime_component_valtuple_new_uninit, ffi.wasmtime_component_valtuple_delete, ffi.WASMTIME_COMPONENT_TUPLE, "tuple", lambda raw, i: raw.data[i]
)
_record = _sequence(
    ffi.wasmtime_component_valrecord_new_uninit,
    ffi.wasmtime_component_valrecord_delete,
    ffi.WASMTIME_COMPONENT_RECORD,
    "record",
    lambda raw, i: raw.data[i].val,
)


def lowerer(ty: ValType) -> Lower:
    """How to put a host value (explicit shapes) of type `ty` into a C value."""
    if isinstance(ty, ListType):
        element = ty.element
        if isinstance(element, U8):
            return _lower_bytes
        lower_element = lowerer(element)
        return lambda store, value, ptr: _list(store, [(lower_element, item) for item in value], ptr)
    if isinstance(ty, RecordType):
        fields = [(name, lowerer(field)) for name, field in ty.fields]

        def name(raw: Any, index: int) -> None:
            raw.data[index].name = ffi.str_to_capi(fields[index][0])  # owned by the C value: one copy each

        def lower_record(store: Any, value: Any, ptr: Any) -> None:
            get = value.__getitem__ if isinstance(value, dict) else lambda field: getattr(value, field)
            _record(store, [(lower, get(field)) for field, lower in fields], ptr, name)

        return lower_record
    if isinstance(ty, TupleType):
        elements = [lowerer(element) for element in ty.elements]
        return lambda store, value, ptr: _tuple(store, list(zip(elements, value)), ptr)
    if isinstance(ty, OptionType):
        some = lowerer(ty.payload)

        def lower_option(store: Any, value: Any, ptr: Any) -> None:
            if value is not None and not isinstance(value, Some):
                raise TypeError(f"expected Some or None, got {type(value).__name__}")
            boxed = _boxed(store, some, value.value) if value is not None else None
            ptr.contents.kind = ffi.WASMTIME_COMPONENT_OPTION
            ptr.contents.of.option = boxed

        return lower_option
    if isinstance(ty, ResultType):
        ok = lowerer(ty.ok) if ty.ok is not None else None
        err = lowerer(ty.err) if ty.err is not None else None

        def lower_result(store: Any, value: Any, ptr: Any) -> None:
            if not isinstance(value, (Ok, Err)):
                raise TypeError(f"expected Ok or Err, got {type(value).__name__}")
            is_ok = isinstance(value, Ok)
            boxed = _boxed(store, ok if is_ok else err, value.value)
            ptr.contents.kind = ffi.WASMTIME_COMPONENT_RESULT
            ptr.contents.of.result.is_ok = is_ok
            ptr.contents.of.result.val = boxed

        return lower_result
    if isinstance(ty, VariantType):
        cases = {name: lowerer(case) if case is not None else None for name, case in ty.cases}

        def lower_variant(store: Any, value: Any, ptr: Any) -> None:
            if not isinstance(value, Variant) or value.tag not in cases:
                raise TypeError(f"expected a Variant with one of the tags {sorted(cases)}")
            boxed = _boxed(store, cases[value.tag], value.payload)
            ptr.contents.kind = ffi.WASMTIME_COMPONENT_VARIANT
            ptr.contents.of.variant.discriminant = ffi.str_to_capi(value.tag)
            ptr.contents.of.variant.val = boxed

        return lower_variant
    return ty.convert_to_c  # leaves: numbers, char, string, enum, flags, own, borrow


# -- host functions -------------------------------------------------------------------

HostCall = Callable[..., Any]
_BOUND: dict[int, tuple[HostCall, list[Lift], Lower | None]] = {}
_IDS = itertools.count(1)


@ffi.wasmtime_component_func_callback_t  # type: ignore[untyped-decorator]
def _call(key: Any, context: Any, _ty: Any, args: Any, nargs: int, results: Any, nresults: int) -> Any:
    function, lifts, lower = _BOUND[key or 0]
    store = StoreContext(context)
    try:
        values = [lift(args[index]) for index, lift in enumerate(lifts)]
        answer = function(store, *values)
        if lower is not None:
            lower(store, answer, results)
        return 0
    except WasmtimeError as exc:
        return ctypes.cast(exc._consume(), ctypes.c_void_p).value
    except Exception as exc:  # a converter fault is a host bug: this call fails, the server goes on
        log.exception("component.conversion_failed")
        return ctypes.cast(WasmtimeError(f"the host could not convert a value: {type(exc).__name__}")._consume(), ctypes.c_void_p).value
    finally:
        store._invalidate()


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)  # type: ignore[untyped-decorator]
def _forget(key: Any) -> None:
    _BOUND.pop(key or 0, None)


def add_func(target: LinkerInstance, name: str, ty: FuncType, function: HostCall) -> None:
    """Define `name` in `target` as `function(store, *args)`, converting with types read once from `ty`."""
    key = next(_IDS)
    result = ty.result
    _BOUND[key] = (function, [lifter(param) for _, param in ty.params], lowerer(result) if result is not None else None)
    encoded = name.encode("utf-8")
    error = ffi.wasmtime_component_linker_instance_add_func(target.ptr(), ctypes.create_string_buffer(encoded), len(encoded), _call, key, _forget)
    if error:
        _BOUND.pop(key, None)
        raise WasmtimeError._from_ptr(error)
