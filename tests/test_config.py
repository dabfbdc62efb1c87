"""`parse_config`: strict structuring of a plugin's `config` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import pytest

from wasmkernel import ConfigError, parse_config


@attrs.frozen
class Rule:
    name: str
    tags: tuple[str, ...] = ()
    kind: str = attrs.field(default="a", validator=attrs.validators.in_(["a", "b"]))


@attrs.frozen
class Config:
    paths: list[str] = attrs.field(factory=list)
    rules: Mapping[str, Rule] = attrs.field(factory=dict)
    limit: int = attrs.field(default=0, validator=attrs.validators.ge(0))


def test_a_valid_table_is_structured() -> None:
    config = parse_config(Config, {"paths": ["/a"], "rules": {"r": {"name": "n", "tags": ["t"]}}, "limit": 3})
    assert config == Config(paths=["/a"], rules={"r": Rule("n", ("t",))}, limit=3)


@pytest.mark.parametrize(
    ("raw", "key", "message"),
    [
        ({"paths": "/a"}, "paths", "expected an array, got str '/a'"),
        ({"rules": ["r"]}, "rules", "expected a table, got list ['r']"),
        ({"rules": {"r": {"name": "n", "tags": "t"}}}, "rules['r'].tags", "expected an array, got str 't'"),
        ({"rules": {"r": {}}}, "rules['r'].name", "required key is missing"),
        ({"limit": True}, "limit", "expected an integer, got a boolean"),
        ({"limit": 1, "colour": 1, "bogus": 2}, "", "unknown key(s): bogus, colour (allowed: limit, paths, rules)"),
        ({"rules": {"r": {"name": "n", "x": 1}}}, "rules['r']", "unknown key(s): x (allowed: kind, name, tags)"),
        ({"limit": -1}, "", "'limit' must be >= 0: -1"),
        ({"rules": {"r": {"name": "n", "kind": "z"}}}, "rules['r']", "'kind' must be in ['a', 'b'] (got 'z')"),
    ],
)
def test_bad_tables_name_the_key(raw: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(Config, raw)
    assert (caught.value.key, caught.value.message) == (key, message)
