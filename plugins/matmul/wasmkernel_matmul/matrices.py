"""The typed models of the matmul routes, and the checks of a `POST
/api/matmul` body that JSON Schema cannot express: equal row lengths and
agreeing inner dimensions.

Bounds (1 to `api_max_dim` rows and columns, numbers only) are in the
body's schema, checked by the kernel before the endpoint runs; JSON decoding
already refused NaN and numbers beyond a double. Errors of the checks here
use the kernel's shape, ``{"pointer", "location", "message"}`` (a JSON
Pointer into the body), so a client sees one format either way.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any, Literal

import attrs

from wasmkernel import UnprocessableEntity

#: Reported errors are capped so a huge bad matrix does not make a huge answer.
MAX_ERRORS = 20


@attrs.frozen
class BenchmarkQuery:
    """`GET /matmul`'s parameters."""

    n: int = attrs.field(validator=attrs.validators.ge(1), metadata={"schema": {"description": "Matrix size"}})
    kernel: Literal["naive", "fast"] = "naive"


def benchmark_query(max_n: int) -> type[BenchmarkQuery]:
    """`BenchmarkQuery` with n at most `max_n` (the plugin's config)."""
    return _bounded(
        BenchmarkQuery,
        n=attrs.field(type=int, validator=[attrs.validators.ge(1), attrs.validators.le(max_n)], metadata={"schema": {"description": "Matrix size"}}),
    )


@attrs.frozen
class BenchmarkResult:
    """The sum of C = A·B and how long it took."""

    n: int
    kernel: str
    checksum: float
    compute_ms: float = attrs.field(metadata={"schema": {"description": "Host wall time around the module calls"}})
    module_ms: float = attrs.field(metadata={"schema": {"description": "The longest time one call spent in the module"}})


@attrs.frozen
class Operands:
    """Two matrices to multiply, as arrays of rows; a's columns as many as b's rows."""

    a: list[list[float]]
    b: list[list[float]]


def operands(max_dim: int) -> type[Operands]:
    """`Operands` of 1 to `max_dim` rows and columns (the plugin's config).
    The bounds are schema keywords only: checked at native speed, not per
    number in Python."""
    matrix = {"minItems": 1, "maxItems": max_dim, "items": {"type": "array", "minItems": 1, "maxItems": max_dim, "items": {"type": "number"}}}
    return _bounded(Operands, **{name: attrs.field(type=list[list[float]], metadata={"schema": matrix}) for name in ("a", "b")})


@attrs.frozen
class Product:
    """C = A·B, as an array of rows."""

    c: list[list[float]]


def _bounded(base: type[Any], **fields: Any) -> type[Any]:
    """A subclass of `base` whose `fields` replace its own (keyword-only: a
    replaced field comes after the inherited ones, some with defaults)."""
    cls = attrs.make_class(base.__name__, fields, bases=(base,), frozen=True, slots=True, kw_only=True)
    cls.__doc__ = base.__doc__
    return cls


@attrs.frozen
class Matrix:
    """A row-major f64 matrix, its values packed little-endian (a module's memory)."""

    rows: int
    cols: int
    values: bytes


def error(pointer: str, message: str) -> dict[str, str]:
    return {"pointer": pointer, "location": "body", "message": message}


def _matrix(name: str, rows: list[list[float]], errors: list[dict[str, str]]) -> Matrix | None:
    """`rows` packed, or None with what is wrong appended to `errors` (one check per row, none per number)."""
    cols = len(rows[0])
    ragged = [
        error(f"/{name}/{i}", f"has {len(row)} columns; row 0 has {cols} (rows must all have the same length)")
        for i, row in enumerate(rows)
        if len(row) != cols
    ]
    if ragged:
        errors += ragged
        return None
    return Matrix(len(rows), cols, b"".join(struct.pack(f"<{cols}d", *row) for row in rows))


def parse_operands(body: Operands) -> tuple[Matrix, Matrix]:
    """The two operands, packed; 422 listing ragged rows and disagreeing inner dimensions."""
    errors: list[dict[str, str]] = []
    a, b = _matrix("a", body.a, errors), _matrix("b", body.b, errors)
    if a is not None and b is not None and a.cols != b.rows:
        errors.append(error("/b", f"has {b.rows} rows but a has {a.cols} columns: inner dimensions must agree"))
    if errors or a is None or b is None:
        raise _unprocessable(errors)
    return a, b


def check_finite(values: Sequence[float]) -> None:
    """422 when the product overflowed to infinity (inputs were finite)."""
    if not all(map(math.isfinite, values)):
        raise _unprocessable([error("", "the product is not finite (a value overflows a 64-bit float)")])


def _unprocessable(errors: list[dict[str, str]]) -> UnprocessableEntity:
    shown = errors[:MAX_ERRORS]
    extra: dict[str, Any] = {"errors": shown}
    if len(errors) > len(shown):
        extra["errors_omitted"] = len(errors) - len(shown)
    return UnprocessableEntity("The matrices cannot be multiplied", extra=extra)
