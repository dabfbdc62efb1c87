"""JSON in and out with orjson, keeping the kernel's guarantees: a body is
refused (400) when it is not UTF-8 JSON, nests arrays/objects deeper than
`MAX_JSON_DEPTH`, or has a number beyond a double (``1e400``) or a NaN /
Infinity literal; integers are exact at any size (a body with an integer
orjson would round, 19 digits or more, is decoded by the standard library);
encoding refuses NaN and infinities. Work on large documents goes to a
worker thread (`off_loop`) so the event loop keeps answering meanwhile.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import trio

from wasmkernel.errors import BadRequest

T = TypeVar("T")

#: Deepest nesting of arrays and objects a JSON body may have (400 beyond):
#: deeper ones would exhaust the stack of the parser or of whoever walks them.
MAX_JSON_DEPTH = 64
#: Documents from this size on are decoded and validated in a worker thread.
OFF_LOOP_BYTES = 64 * 1024
#: Worker threads that decode or validate large documents at once.
_LIMITER: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("wasmkernel.jsonio.limiter")

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
#: Maps every digit to "1", anything else to "0": a run of 19 "1"s marks an
#: integer (or a string) orjson might not keep exact.
_DIGITS = bytes(ord("1") if ord("0") <= byte <= ord("9") else ord("0") for byte in range(256))
_LONG_RUN = b"1" * 19


def too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `raw` nests arrays/objects deeper than `limit` (brackets
    inside strings do not count); linear time, no recursion."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(_DEPTH_STEP[byte] for byte in brackets), default=0) > limit


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _exact(raw: bytes) -> Any:
    """The standard library's decoding: every integer exact, floats finite."""
    return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float)


def parse_json(raw: bytes) -> Any:
    """`raw` decoded; `BadRequest` ("Malformed JSON body: ...") if it is not
    UTF-8 JSON within the guarantees above."""
    if too_deep(raw):
        raise BadRequest(f"Malformed JSON body: nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return _exact(raw) if _LONG_RUN in raw.translate(_DIGITS) else orjson.loads(raw)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"Request body is not valid UTF-8: {exc.reason}") from None
    except json.JSONDecodeError as exc:  # orjson's errors are JSONDecodeErrors too
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise BadRequest(f"Request body is not valid UTF-8: {bad.reason}") from None
        raise BadRequest(f"Malformed JSON body: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"Malformed JSON body: {str(exc)[:200]}") from None


def _non_finite(data: Any) -> bool:
    """Whether `data` holds a NaN or an infinity anywhere (iterative walk)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def dump_json(data: Any) -> bytes:
    """Compact UTF-8 JSON; NaN and infinities are refused (ValueError: they
    are not JSON). Integers beyond 64 bits and strings with lone surrogates
    (e.g. from a crafted ASGI path, replaced) go through the standard library."""
    try:
        encoded = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8", "replace")
    # orjson writes NaN and infinities as null: only a document with a null can hide one.
    if b"null" in encoded and _non_finite(data):
        raise ValueError("Out of range float values are not JSON compliant")
    return encoded


def limiter() -> trio.CapacityLimiter:
    """The worker threads of this trio run that take large documents."""
    try:
        return _LIMITER.get()
    except LookupError:
        _LIMITER.set(trio.CapacityLimiter(2))
        return _LIMITER.get()


async def off_loop(size: int, work: Callable[[], T]) -> T:
    """`work()`, in a worker thread when `size` (bytes of the document) is at
    least `OFF_LOOP_BYTES`, else right here (a thread costs more than it saves)."""
    if size < OFF_LOOP_BYTES:
        return work()
    return await trio.to_thread.run_sync(work, limiter=limiter())
