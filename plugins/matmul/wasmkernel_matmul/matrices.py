"""Checking a `POST /api/matmul` body: shapes, sizes and finite numbers.

Errors use the validation plugin's shape, ``{"pointer", "location",
"message"}`` (a JSON Pointer into the body), so a client sees one format
whether the schema check or this semantic check refused the request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs

from wasmkernel import UnprocessableEntity

#: Reported errors are capped so a huge bad matrix does not make a huge answer.
MAX_ERRORS = 20


@attrs.frozen
class Matrix:
    """A row-major f64 matrix."""

    rows: int
    cols: int
    values: tuple[float, ...]


def body_schema(max_dim: int) -> dict[str, Any]:
    """JSON Schema of the request body (read by the validation and openapi plugins)."""
    matrix = {
        "type": "array",
        "minItems": 1,
        "maxItems": max_dim,
        "items": {"type": "array", "minItems": 1, "maxItems": max_dim, "items": {"type": "number"}},
    }
    return {
        "type": "object",
        "required": ["a", "b"],
        "properties": {"a": matrix, "b": matrix},
        "additionalProperties": False,
    }


def error(pointer: str, message: str) -> dict[str, str]:
    return {"pointer": pointer, "location": "body", "message": message}


def _matrix(name: str, value: Any, max_dim: int, errors: list[dict[str, str]]) -> Matrix | None:
    """Check one matrix, appending what is wrong to `errors`."""
    where = f"/{name}"
    if not isinstance(value, list) or not value:
        errors.append(error(where, "must be a non-empty array of rows"))
        return None
    if len(value) > max_dim:
        errors.append(error(where, f"has {len(value)} rows; at most {max_dim} are allowed"))
        return None
    first = value[0]
    cols = len(first) if isinstance(first, list) else 0
    if cols == 0 or cols > max_dim:
        errors.append(error(f"{where}/0", f"must be an array of 1..{max_dim} numbers"))
        return None
    flat: list[float] = []
    before = len(errors)
    for i, row in enumerate(value):
        if not isinstance(row, list):
            errors.append(error(f"{where}/{i}", "must be an array of numbers"))
            continue
        if len(row) != cols:
            errors.append(error(f"{where}/{i}", f"has {len(row)} columns; row 0 has {cols} (rows must all have the same length)"))
            continue
        for j, x in enumerate(row):
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                errors.append(error(f"{where}/{i}/{j}", "must be a number"))
                continue
            number = _as_float(x)
            if math.isfinite(number):
                flat.append(number)
            else:
                errors.append(error(f"{where}/{i}/{j}", "must be a finite number"))
    if len(errors) > before:
        return None
    return Matrix(len(value), cols, tuple(flat))


def _as_float(x: int | float) -> float:
    """`x` as a float; infinity for an integer beyond the float range (e.g. 401 digits)."""
    try:
        return float(x)
    except OverflowError:
        return math.inf


def parse_operands(body: Any, max_dim: int) -> tuple[Matrix, Matrix]:
    """The two operands of ``{"a": [[...]], "b": [[...]]}``; 422 listing every problem."""
    errors: list[dict[str, str]] = []
    if not isinstance(body, dict):
        raise _unprocessable([error("", "must be a JSON object with members 'a' and 'b'")])
    errors += [error("", f"unknown member '{key}' (only 'a' and 'b' are allowed)") for key in sorted(set(body) - {"a", "b"})]
    errors += [error("", f"missing required member '{key}'") for key in ("a", "b") if key not in body]
    a = _matrix("a", body["a"], max_dim, errors) if "a" in body else None
    b = _matrix("b", body["b"], max_dim, errors) if "b" in body else None
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
