"""The compiled converters (`codec`) against wasmtime-py's own conversions: equal values
both ways, for every kind of WIT type, on random values; and the fallback when the
wasmtime-py version is not one the codec was tested against."""

from __future__ import annotations

import ctypes
import functools
import gc
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import wasmtime
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from wasmkernel_components import codec
from wasmkernel_components.values import Err, Ok, Some, lowering
from wasmtime import _ffi as ffi
from wasmtime.component import (
    Component,
    EnumType,
    FlagsType,
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
from wasmtime.component import _types as types
from wat import CACHE, wasm_tools

#: An interface with every kind of value (resources aside: they need a live instance).
WIT = """
package test:codec;

interface shapes {
  record point { x: u32, y: s64, name: string }
  variant shape { none, circle(f64), named(string), nested(option<point>), bytes(list<u8>) }
  enum color { red, green, blue }
  flags perms { read, write, exec }
  numbers: func(a: bool, b: s8, c: u8, d: s16, e: u16, f: s32, g: u32, h: s64, i: u64, j: f32, k: f64, l: char)
    -> tuple<bool, s8, u8, s16, u16, s32, u32, s64, u64, f32, f64, char>;
  texts: func(m: string, n: list<u8>, o: list<string>, z: list<tuple<string, list<u8>>>) -> list<list<u8>>;
  composites: func(p: point, q: shape, r: color, s: perms, w: tuple<u8, string>) -> result<shape, option<point>>;
  options: func(t: option<u8>, u: result<u32, string>, v: result, x: option<option<u8>>, y: result<option<string>, list<u8>>)
    -> option<result<list<point>, shape>>;
}

world codec {
  import shapes;
}
"""


def _types() -> list[ValType]:
    """Every parameter and result type of `WIT`'s functions."""
    folder = CACHE / "codec"
    target = folder / "codec.wasm"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "codec.wit").write_text(WIT)
        tool = wasm_tools()
        subprocess.run([tool, "component", "embed", "--dummy", str(folder / "codec.wit"), "-w", "codec", "-o", str(folder / "core.wasm")], check=True)
        subprocess.run([tool, "component", "new", str(folder / "core.wasm"), "-o", str(target)], check=True)
    engine = wasmtime.Engine()
    component = Component(engine, Path(target).read_bytes())
    found: list[ValType] = []
    for extern in component.type.imports(engine).values():
        instance = cast(Any, extern.ty)
        for item in instance.exports(engine).values():
            if isinstance(item.ty, types.FuncType):
                found += [ty for _, ty in item.ty.params]
                if item.ty.result is not None:
                    found.append(item.ty.result)
    return found


TYPES = _types()
_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
_LEAVES: dict[type, st.SearchStrategy[Any]] = {
    types.Bool: st.booleans(),
    types.S8: st.integers(-(2**7), 2**7 - 1),
    types.U8: st.integers(0, 2**8 - 1),
    types.S16: st.integers(-(2**15), 2**15 - 1),
    types.U16: st.integers(0, 2**16 - 1),
    types.S32: st.integers(-(2**31), 2**31 - 1),
    types.U32: st.integers(0, 2**32 - 1),
    types.S64: st.integers(-(2**63), 2**63 - 1),
    types.U64: st.integers(0, 2**64 - 1),
    types.F32: st.floats(width=32, allow_nan=False),
    types.F64: st.floats(allow_nan=False),
    types.Char: st.characters(blacklist_categories=["Cs"]),
    types.String: _TEXT,
}


def _cases(ty: Any) -> list[tuple[str, ValType | None]]:
    if isinstance(ty, OptionType):
        return [("none", None), ("some", ty.payload)]
    if isinstance(ty, ResultType):
        return [("ok", ty.ok), ("err", ty.err)]
    return list(ty.cases)


def values(ty: ValType, explicit: bool) -> st.SearchStrategy[Any]:
    """Random values of `ty`: in wasmtime-py's shapes, or (`explicit`) in the host's (`values`)."""
    for kind, strategy in _LEAVES.items():
        if isinstance(ty, kind):
            return strategy
    if isinstance(ty, ListType):
        if isinstance(ty.element, types.U8):
            return st.binary(max_size=300)
        return st.lists(values(ty.element, explicit), max_size=3)
    if isinstance(ty, TupleType):
        return st.tuples(*[values(element, explicit) for element in ty.elements])
    if isinstance(ty, RecordType):
        fields = ty.fields
        as_dict = st.fixed_dictionaries({name: values(field, explicit) for name, field in fields})
        return as_dict if explicit else as_dict.map(_record)
    if isinstance(ty, EnumType):
        return st.sampled_from(ty.names)
    if isinstance(ty, FlagsType):
        return st.sets(st.sampled_from(ty.names))
    if isinstance(ty, (OptionType, ResultType, VariantType)):
        tagged = ty._tagged()
        options = []
        for tag, case in _cases(ty):
            payload = values(case, explicit) if case is not None else st.none()
            options.append(payload.map(functools.partial(_shape, ty, tag, explicit=explicit, tagged=tagged)))
        return st.one_of(options)
    raise AssertionError(f"no strategy for {ty!r}")


def _record(fields: dict[str, Any]) -> Record:
    out = Record()
    for name, value in fields.items():
        setattr(out, name, value)
    return out


def _shape(ty: Any, tag: str, value: Any, *, explicit: bool, tagged: bool) -> Any:
    if not explicit:
        return Variant(tag, value) if tagged else value
    if isinstance(ty, OptionType):
        return None if tag == "none" else Some(value)
    if isinstance(ty, ResultType):
        return Ok(value) if tag == "ok" else Err(value)
    return Variant(tag, value)


def _c(store: Any, lower: Callable[[Any, Any, Any], None], value: Any) -> Any:
    pointer = ctypes.pointer(ffi.wasmtime_component_val_t())
    lower(store, value, pointer)
    return pointer.contents


@pytest.fixture(scope="module")
def store() -> wasmtime.Store:
    return wasmtime.Store(wasmtime.Engine())


@st.composite
def typed(draw: st.DrawFn, explicit: bool) -> tuple[ValType, Any]:
    ty = TYPES[draw(st.integers(0, len(TYPES) - 1))]
    return ty, draw(values(ty, explicit))


@pytest.fixture(scope="module", autouse=True)
def _free_types() -> Iterator[None]:
    """Type handles are freed through wasmtime's bindings: before they are torn down at exit."""
    yield
    TYPES.clear()
    gc.collect()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=typed(explicit=False))
def test_lifting_equals_wasmtime_pys(store: wasmtime.Store, case: tuple[ValType, Any]) -> None:
    """What a host function receives is what wasmtime-py's own conversion gives."""
    ty, value = case
    try:
        lowered = _c(store, ty.convert_to_c, value)
    except ValueError:  # wasmtime-py cannot lower an untagged err(bytes) of result<option<string>, list<u8>>
        assume(False)
    ours = codec.lifter(ty)(lowered)
    theirs = ty.convert_from_c(_c(store, ty.convert_to_c, value))
    assert ours == theirs and type(ours) is type(theirs)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=typed(explicit=True))
def test_lowering_equals_wasmtime_pys(store: wasmtime.Store, case: tuple[ValType, Any]) -> None:
    """What a host function answers reaches the guest as with wasmtime-py's own conversion
    (after `values.lowering`, the fallback path)."""
    ty, value = case
    ours = ty.convert_from_c(_c(store, codec.lowerer(ty), value))
    stock = lowering(ty)(value)  # the same value in wasmtime-py's shape
    assert ours == stock
    try:
        theirs = ty.convert_from_c(_c(store, ty.convert_to_c, stock))
    except ValueError:  # wasmtime-py cannot lower an untagged err(bytes) of result<option<string>, list<u8>>: the codec can
        return
    assert ours == theirs


def test_byte_lists_of_every_size_round_trip(store: wasmtime.Store) -> None:
    (ty,) = [ty for ty in TYPES if isinstance(ty, ListType) and isinstance(ty.element, types.U8)][:1]
    for size in (0, 1, 4095, 4096, 65537, 1 << 20):
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        assert codec.lifter(ty)(_c(store, codec.lowerer(ty), data)) == data
        assert ty.convert_from_c(_c(store, codec.lowerer(ty), data)) == data


def test_a_wrong_shape_is_a_type_error_not_a_crash(store: wasmtime.Store) -> None:
    option = next(ty for ty in TYPES if isinstance(ty, OptionType))
    with pytest.raises(TypeError):
        _c(store, codec.lowerer(option), 5)


async def test_an_untested_wasmtime_version_falls_back_to_its_own_conversions(make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from test_host import ECHO, HELLO
    from wat import component

    from wasmkernel.testing import running

    monkeypatch.setattr(codec, "VERSION", "99.0.0")
    assert not codec.available()
    used: list[str] = []
    monkeypatch.setattr(codec, "add_func", lambda *args: used.append("codec"))
    async with running(make_app({"hello": component(HELLO), "echo": component(ECHO)})) as client:
        hello = await client.get("/hello")
        echo = await client.post("/echo", content=b"x" * 100_000)
    assert hello.text == "hello" and echo.content == b"x" * 100_000 and not used
