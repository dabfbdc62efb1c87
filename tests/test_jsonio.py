"""JSON in and out (orjson) keeps the guarantees of the standard-library
path it replaced: exact integers of any size, finite numbers only, a depth
limit, UTF-8 only; encoding refuses NaN and infinities."""

from __future__ import annotations

import math

import pytest

from wasmkernel import MAX_JSON_DEPTH, BadRequest, dump_json, parse_json


@pytest.mark.parametrize(
    "text",
    ["18446744073709551616", "-9223372036854775809", "1" + "0" * 400, '{"id": 123456789012345678901234567890}'],
)
def test_integers_stay_exact(text: str) -> None:
    value = parse_json(text.encode())
    number = value["id"] if isinstance(value, dict) else value
    assert isinstance(number, int) and str(number) in text


def test_ordinary_documents_decode() -> None:
    assert parse_json(b'{"a": [1, 2.5, "x\\u2028", null, true], "b": {}}') == {"a": [1, 2.5, "x\u2028", None, True], "b": {}}
    assert parse_json(b'["12345678901234567890 in a string"]') == ["12345678901234567890 in a string"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[1e400]", "infinity"),
        (b"[-1e400, 12345678901234567890]", "out of range"),  # the exact (standard library) path says it its way
        (b"[NaN]", "Malformed JSON body"),
        (b"[Infinity]", "Malformed JSON body"),
        (b"[1, 2", "Malformed JSON body: unexpected end of data (line 1, column 6)"),
        (b"", "Malformed JSON body"),
        (b'["\xff"]', "Request body is not valid UTF-8"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), f"nested deeper than {MAX_JSON_DEPTH} levels"),
        (b"[" * 100_000, f"nested deeper than {MAX_JSON_DEPTH} levels"),
    ],
)
def test_malformed_or_unbounded_input_is_400(raw: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_json(raw)


def test_depth_counts_brackets_outside_strings_only() -> None:
    nested = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert parse_json(b'["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", ' + nested[1:])  # 64 deep


def test_encoding_refuses_non_finite_numbers() -> None:
    for value in ([math.nan], {"x": [1.0, math.inf]}, (None, -math.inf)):
        with pytest.raises(ValueError, match="not JSON compliant"):
            dump_json(value)
    assert dump_json({"x": None, "y": [1.5, None]}) == b'{"x":null,"y":[1.5,null]}'


def test_encoding_matches_the_standard_librarys_output() -> None:
    assert dump_json({"a": "é\u2028", 1: 2**70, "t": (1, 2)}) == '{"a":"é\u2028","1":1180591620717411303424,"t":[1,2]}'.encode()
    assert dump_json({"path": "/\udcff"}) == b'{"path":"/?"}'  # a lone surrogate (crafted ASGI path) is replaced
