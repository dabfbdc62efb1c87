"""`wasmkernel check`, `routes` and `plugins`, run as a user would (`wasmkernel.cli.main`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from wasmkernel_introspect.plugin import describe

from wasmkernel import AuthRequirement
from wasmkernel.cli import main


def write(tmp_path: Path, text: str) -> str:
    """A registry enabling the introspect plugin, then `text`."""
    path = tmp_path / "registry.toml"
    path.write_text("[plugins.introspect]\n" + text)
    return str(path)


def test_check_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = write(tmp_path, "[plugins.router]\n[plugins.health]\n")
    assert main(["check", "--registry", registry]) == 0
    assert "OK — 5 plugins enabled" in capsys.readouterr().out  # and the built-in scaffold and server


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[plugins.router]\n[plugins.missing-one]\n", "plugin 'missing-one' is enabled in"),
        ("[plugins.router]\nafter = ['health']\n[plugins.health]\nafter = ['router']\n", "cycle between: health, router"),
        ("[plugins.router.config]\nstrict = true\n", "[plugins.router] config: unknown key(s): strict (allowed: none)"),
    ],
)
def test_check_reports_bad_registries(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    assert main(["check", "--registry", write(tmp_path, text)]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1, "one clear line, no traceback"


def test_check_is_built_in_and_reports_an_unreadable_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text("[plugins.router\n")
    assert main(["check", "--registry", str(registry)]) == 1
    assert capsys.readouterr().err.startswith(f"wasmkernel: {registry}: invalid TOML")


def test_routes_lists_owner_and_auth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", "--registry", write(tmp_path, "[plugins.router]\n[plugins.health]\n")]) == 0
    out = capsys.readouterr().out
    assert "GET      /health   health" in out
    assert "public" in out


def test_auth_requirements_as_routes_shows_them() -> None:
    assert describe(None) == describe(AuthRequirement(required=False, identify=True)) == "public"
    assert describe(AuthRequirement()) == "required"
    assert describe(AuthRequirement(scopes=("a", "b"), roles=("admin",))) == "required scopes=a,b roles=admin"


def test_plugins_needs_no_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WASMKERNEL_JWT_SECRET", raising=False)
    registry = write(tmp_path, '[plugins.auth-jwt.config]\nsecret = { env = "WASMKERNEL_JWT_SECRET" }\n')
    assert main(["plugins", "--registry", registry]) == 0
    captured = capsys.readouterr()
    assert "note: unset secret" in captured.err
    assert "yes" in next(line for line in captured.out.splitlines() if line.startswith("auth-jwt"))


def test_plugins_lists_what_is_installed_when_the_registry_does_not_assemble(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--registry", write(tmp_path, "[plugins.missing-one]\n")]) == 1
    captured = capsys.readouterr()
    assert "plugin 'missing-one' is enabled in" in captured.err
    assert any(line.split()[:1] == ["health"] for line in captured.out.splitlines())


def test_disabling_a_plugin_removes_its_routes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = write(tmp_path, "[plugins.router]\n[plugins.health]\nenabled = false\n")
    assert main(["routes", "--registry", registry]) == 0
    assert "/health" not in capsys.readouterr().out


def test_plugins_shows_installed_enabled_and_hooks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = write(tmp_path, "[plugins.router]\n[plugins.logging]\n")
    assert main(["plugins", "--registry", registry]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "yes" in lines["router"] and "router" in lines["router"]
    assert "no" in lines["health"].split()
    assert "configure_logging" in lines["logging"]
    assert "middleware chain (outermost first): (none)" in out


def test_only_enabled_plugins_unset_secrets_are_noted(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WASMKERNEL_TEST_UNSET", raising=False)
    registry = write(tmp_path, '[plugins.router]\n[plugins.auth-jwt]\nenabled = false\n[plugins.auth-jwt.config]\nsecret = { env = "WASMKERNEL_TEST_UNSET" }\n')
    assert main(["routes", "--registry", registry]) == 0
    assert "unset secret" not in capsys.readouterr().err


def test_plugins_and_routes_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = write(tmp_path, "[plugins.router]\n[plugins.health]\n[plugins.request-id]\n")
    assert main(["plugins", "--json", "--registry", registry]) == 0
    listed = json.loads(capsys.readouterr().out)
    plugins = {plugin["name"]: plugin for plugin in listed["plugins"]}
    assert plugins["router"]["enabled"] == "yes" and plugins["scaffold"]["enabled"] == "built-in" and plugins["cors"]["enabled"] == "no"
    assert plugins["health"]["placement"]["sources"] == {"order": "plugin"} and "routes" in plugins["health"]["hooks"]
    assert listed["middleware"] == [{"name": "request-id", "plugin": "request-id"}]
    assert "router" in listed["startup_order"]
    assert main(["routes", "--json", "--registry", registry]) == 0
    routes = json.loads(capsys.readouterr().out)["routes"]
    assert {"methods": ["GET"], "path": "/health", "name": "health", "plugin": "health", "auth": None} in routes


def test_plugins_as_json_when_the_registry_does_not_assemble(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json", "--registry", write(tmp_path, "[plugins.missing-one]\n")]) == 1
    listed = json.loads(capsys.readouterr().out)
    assert "plugin 'missing-one' is enabled in" in listed["error"]
    assert any(plugin["name"] == "health" for plugin in listed["plugins"])


def test_no_log_line_comes_before_a_listing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Plugins log at info while they are configured (broker-redis: which broker it uses); a listing shows none."""
    registry = write(tmp_path, "[plugins.router]\n[plugins.logging]\n[plugins.redis]\n[plugins.channels]\n[plugins.broker-redis]\n")
    before = logging.getLogger("wasmkernel").level
    assert main(["routes", "--registry", registry]) == 0
    captured = capfd.readouterr()
    assert captured.out.startswith("methods ")
    assert "broker.in_process" not in captured.out + captured.err
    assert logging.getLogger("wasmkernel").level == before, "the process's logging is as it was (in-process callers, tests)"
