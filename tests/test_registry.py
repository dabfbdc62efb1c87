from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from wasmkernel import ConfigError, StartupError, load_application, parse_config
from wasmkernel.errors import RegistryError
from wasmkernel.registry import load_registry, order_plugins, parse_registry, resolve_secrets


def names(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "registry.toml"
    path.write_text(text)
    registry = load_registry(path)
    return [entry.name for entry in order_plugins([entry for entry in registry.plugins if entry.enabled], path)]


def test_file_order_is_the_default(tmp_path: Path) -> None:
    assert names("[plugins.b]\n[plugins.a]\n[plugins.c]\n", tmp_path) == ["b", "a", "c"]


def test_disabled_plugins_are_left_out(tmp_path: Path) -> None:
    assert names("[plugins.a]\n[plugins.b]\nenabled = false\n", tmp_path) == ["a"]


def test_explicit_order_and_before_after(tmp_path: Path) -> None:
    text = """
[plugins.a]
[plugins.b]
order = -10
[plugins.c]
before = ["b"]
[plugins.d]
after = ["a"]
order = -20
"""
    # Constraints first; among plugins free to go, lowest (order, position):
    # d (order -20) must wait for a; b (order -10) must wait for c.
    assert names(text, tmp_path) == ["a", "d", "c", "b"]
    assert names("[plugins.a]\n[plugins.b]\norder = -1\n", tmp_path) == ["b", "a"]


def test_ordering_ignores_plugins_that_are_not_enabled(tmp_path: Path) -> None:
    assert names('[plugins.a]\nafter = ["ghost"]\n[plugins.b]\nenabled = false\nbefore = ["a"]\n', tmp_path) == ["a"]


def test_cycle_is_an_error_naming_the_plugins(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"cycle between: a, b"):
        names('[plugins.a]\nafter = ["b"]\n[plugins.b]\nafter = ["a"]\n[plugins.c]\n', tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[plugins.a]\nenabled = 'yes'\n", r"registry.toml: \[plugins.a\] enabled: expected true or false, got str 'yes'"),
        ("[plugins.a]\nbogus = 1\n", r"\[plugins.a\] unknown key\(s\): bogus \(allowed: after, before, config, enabled, optional, order\)"),
        ("[plugins.a]\nbefore = [1]\n", r"\[plugins.a\] before\[0\]: expected a string, got int 1"),
        ("[plugins.a]\norder = true\n", r"\[plugins.a\] order: expected an integer, got a boolean"),
        ("[plugins.a]\nconfig = 3\n", r"\[plugins.a\] config: expected a table, got int 3"),
        ("[other]\n", r"unknown top-level table\(s\): other"),
        ("[plugins]\na = 1\n", r"\[plugins.a\] must be a table"),
        ("[plugins.a\n", r"invalid TOML"),
    ],
)
def test_malformed_registries_name_file_plugin_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        names(text, tmp_path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="registry file not found"):
        load_registry(tmp_path / "nope.toml")


def test_registry_chosen_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "other.toml"
    path.write_text("[plugins.x]\n")
    monkeypatch.setenv("WASMKERNEL_REGISTRY", str(path))
    assert load_registry().path == path


def test_secrets_from_env_file_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WK_TEST_SECRET", "s3cret")
    (tmp_path / "key.txt").write_text("from-file\n")
    config = {
        "a": {"env": "WK_TEST_SECRET"},
        "b": {"file": "key.txt"},
        "b2": {"file": str(tmp_path / "key.txt")},
        "c": {"env": "WK_TEST_UNSET", "default": "fallback"},
        "nested": [{"d": {"env": "WK_TEST_SECRET"}}],
        "plain": {"env_like": 1},
    }
    assert resolve_secrets(config, tmp_path, "where") == {
        "a": "s3cret",
        "b": "from-file",
        "b2": "from-file",
        "c": "fallback",
        "nested": [{"d": "s3cret"}],
        "plain": {"env_like": 1},
    }


def test_missing_secret_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"reg.toml: \[plugins.jwt\] config.secret: environment variable WK_NOPE is not set"):
        resolve_secrets({"secret": {"env": "WK_NOPE"}}, tmp_path, "reg.toml: [plugins.jwt] config")
    with pytest.raises(RegistryError, match="cannot read secret file"):
        resolve_secrets({"secret": {"file": "absent"}}, tmp_path, "x")


def test_kernel_table(tmp_path: Path) -> None:
    registry = parse_registry({"kernel": {"title": "T", "version": "2"}, "plugins": {}}, tmp_path / "r.toml")
    assert (registry.title, registry.version) == ("T", "2")
    with pytest.raises(RegistryError, match=r"r.toml: \[kernel\] unknown key\(s\): nope \(allowed: allow_unenforced, title, version\)"):
        parse_registry({"kernel": {"nope": 1}}, tmp_path / "r.toml")
    with pytest.raises(RegistryError, match=r"r.toml: \[kernel\] allow_unenforced: expected true or false, got str 'yes'"):
        parse_registry({"kernel": {"allow_unenforced": "yes"}}, tmp_path / "r.toml")


@attrs.frozen
class Typed:
    rate: float = 1.0
    burst: int = 1
    debug: bool = False
    name: str = ""
    ports: tuple[int, ...] = ()
    timeout: float | None = None


def test_references_are_converted_to_the_fields_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`{ env = ... }` and `{ file = ... }` hold text: an int, float or bool field gets it converted."""
    for name, value in {"WK_RATE": "50", "WK_BURST": " 7\n", "WK_DEBUG": "True", "WK_NAME": "007", "WK_PORT": "8080", "WK_TIMEOUT": "2.5"}.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "burst").write_text("9\n")
    raw: dict[str, Any] = {"rate": {"env": "WK_RATE"}, "burst": {"env": "WK_BURST"}, "debug": {"env": "WK_DEBUG"}, "name": {"env": "WK_NAME"}}
    raw |= {"ports": [{"env": "WK_PORT"}, 9090], "timeout": {"env": "WK_TIMEOUT"}}
    config = parse_config(Typed, resolve_secrets(raw, tmp_path, "where"))
    assert config == Typed(rate=50.0, burst=7, debug=True, name="007", ports=(8080, 9090), timeout=2.5)
    assert (type(config.rate), type(config.name)) == (float, str)
    from_file = parse_config(Typed, resolve_secrets({"burst": {"file": "burst"}, "debug": {"env": "WK_UNSET", "default": True}}, tmp_path, "where"))
    assert (from_file.burst, from_file.debug) == (9, True)


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("rate", "fast", "expected a number: $WK_VALUE holds something else"),
        ("burst", "2.5", "expected an integer: $WK_VALUE holds something else"),
        ("debug", "yes", "expected true or false: $WK_VALUE holds something else"),
        ("ports", "80", "expected an array, got str '80'"),
    ],
)
def test_a_reference_that_does_not_convert_names_the_key_and_the_variable(field: str, text: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WK_VALUE", text)
    with pytest.raises(ConfigError) as caught:
        parse_config(Typed, resolve_secrets({field: {"env": "WK_VALUE"}}, Path(), "where"))
    assert (caught.value.key, caught.value.message) == (field, message)


def test_a_typed_environment_reference_through_the_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's case: `rate = { env = "RATE" }` in the limits plugin's table."""
    registry = tmp_path / "registry.toml"
    registry.write_text('[plugins.limits.config]\nrate = { env = "WK_LIMITS_RATE" }\nburst = { env = "WK_LIMITS_BURST" }\n')
    monkeypatch.setenv("WK_LIMITS_RATE", "50")
    monkeypatch.setenv("WK_LIMITS_BURST", "100")
    load_application(str(registry))
    monkeypatch.setenv("WK_LIMITS_RATE", "fifty")
    with pytest.raises(StartupError, match=r"\[plugins.limits\] config.rate: expected a number: \$WK_LIMITS_RATE holds something else"):
        load_application(str(registry))
