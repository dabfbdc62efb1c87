"""`list<u8>` across wasmtime-py's component API without a Python call per byte.

wasmtime-py converts a `list<u8>` value element by element (a Python call
and a C struct per byte: a 1 MiB body took seconds). Every component value
is a 32-byte `wasmtime_component_val_t` (a kind byte, then the payload), so
a byte list is filled and read with two strided copies over the C array
instead. `install()` puts these conversions on `ListType` for byte lists
(other lists keep wasmtime-py's own), once per process; nested types
(`result<list<u8>, ...>`) reach them through wasmtime-py's recursion.
"""

from __future__ import annotations

import ctypes
from typing import Any

from wasmtime import _ffi as ffi
from wasmtime.component import _types

_VAL = ffi.wasmtime_component_val_t
_SIZE = ctypes.sizeof(_VAL)
_KIND = _VAL.kind.offset
_PAYLOAD = _VAL.of.offset
_U8 = int(ffi.WASMTIME_COMPONENT_U8.value)


def _view(address: int, count: int) -> memoryview:
    return memoryview((ctypes.c_ubyte * (count * _SIZE)).from_address(address)).cast("B")


def _to_c(self: Any, store: Any, val: Any, ptr: Any) -> None:
    if not isinstance(val, (bytes, bytearray, memoryview)) or not self._is_bytes():
        _ORIGINAL_TO_C(self, store, val, ptr)
        return
    count = len(val)
    raw = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(raw, count)
    if count:
        view = _view(ctypes.addressof(raw.data.contents), count)
        view[_KIND::_SIZE] = bytes([_U8]) * count
        view[_PAYLOAD::_SIZE] = val
    ptr.contents.kind = ffi.WASMTIME_COMPONENT_LIST
    ptr.contents.of.list = raw


def _from_c(self: Any, c: Any) -> Any:
    if not self._is_bytes():
        return _ORIGINAL_FROM_C(self, c)
    count = c.of.list.size
    try:
        return _view(ctypes.addressof(c.of.list.data.contents), count)[_PAYLOAD::_SIZE].tobytes() if count else b""
    finally:
        ffi.wasmtime_component_vallist_delete(ctypes.byref(c.of.list))


_ORIGINAL_TO_C = _types.ListType.convert_to_c
_ORIGINAL_FROM_C = _types.ListType.convert_from_c


def install() -> None:
    """Use the strided conversions for byte lists (idempotent)."""
    _types.ListType.convert_to_c = _to_c  # type: ignore[method-assign]
    _types.ListType.convert_from_c = _from_c  # type: ignore[method-assign]
