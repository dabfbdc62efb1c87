"""The built-in server plugin: enabled unless a registry disables it, a
worker's failed startup reported to `run`, the 100-continue protocol
installed at startup, the serving process's collector settings. (`wasmkernel
run` as a subprocess is tested end to end in the project's tests/test_server.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import hypercorn.protocol
import pytest
import trio
from wasmkernel_server.patches import install
from wasmkernel_server.serving import GC_THRESHOLDS, STARTUP_REPORT_ENV, reporting_failed_startup

from wasmkernel import Application, hookimpl
from wasmkernel.cli import main
from wasmkernel.testing import app_from, running


class FailsToStart:
    @hookimpl
    def wasmkernel_startup(self, app: Application) -> None:
        raise RuntimeError("no disk")


def test_every_registry_has_the_server_unless_it_disables_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert [plugin.name for plugin in app_from({"router": {}}).plugins] == ["router", "scaffold", "introspect", "server"]
    assert "server" not in [plugin.name for plugin in app_from({"router": {}, "server": {"enabled": False}}).plugins]
    registry = tmp_path / "registry.toml"
    registry.write_text("[plugins.router]\n[plugins.server]\nenabled = false\n")
    with pytest.raises(SystemExit):
        main(["run", "--registry", str(registry)])
    assert f"no command 'run'; plugins' commands from {registry}" in capsys.readouterr().err


async def test_startup_installs_the_protocol_that_sends_100_continue_when_the_body_is_read() -> None:
    async with running(app_from({"router": {}})):
        installed = hypercorn.protocol.H11Protocol  # type: ignore[attr-defined]
    install()
    assert hypercorn.protocol.H11Protocol is installed  # type: ignore[attr-defined]  # idempotent
    assert installed.__module__ == "wasmkernel_server.http11"


async def test_a_worker_reports_a_failed_startup_and_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "report"
    monkeypatch.setenv(STARTUP_REPORT_ENV, str(report))
    exits: list[int] = []

    def exit_now(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)  # os._exit ends the process here

    monkeypatch.setattr("os._exit", exit_now)
    app = reporting_failed_startup(app_from({"broken": {}}, extra_plugins={"broken": FailsToStart()}))
    sent: list[Any] = []
    incoming = iter([{"type": "lifespan.startup"}])

    async def receive() -> Any:
        return next(incoming)

    async def send(message: Any) -> None:
        sent.append(message)

    scope: Any = {"type": "lifespan", "asgi": {"version": "3.0"}}
    with pytest.RaisesGroup(SystemExit), trio.fail_after(30):
        await app(scope, receive, send)
    assert exits == [3] and sent == []
    assert report.read_text() == "plugin 'broken' failed to start: RuntimeError: no disk"


def test_a_serving_process_freezes_what_assembly_allocated_and_collects_less_often() -> None:
    check = (
        "import gc; from wasmkernel_server.serving import GC_THRESHOLDS, tune_gc; tune_gc(); "
        "assert gc.get_threshold() == GC_THRESHOLDS and gc.get_freeze_count() > 1000, (gc.get_threshold(), gc.get_freeze_count())"
    )
    subprocess.run([sys.executable, "-c", check], check=True, timeout=60)
    assert GC_THRESHOLDS[0] > 700  # Python's default


def test_a_slow_first_startup_is_not_cut_off() -> None:
    """Compiling big WebAssembly components at a first start takes minutes (then cached):
    hypercorn's 60 s default startup timeout must not kill it."""
    from wasmkernel_server.serving import hypercorn_config

    assert hypercorn_config(["127.0.0.1:0"]).startup_timeout >= 600
