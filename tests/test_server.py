"""The real server: `wasmkernel run` and bare hypercorn, as subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from wasmkernel.testing import BIN, ServerProcesses, free_port, wait_until_serving

pytestmark = pytest.mark.server

REGISTRY = """
[plugins.logging.config]
format = "json"
[plugins.router]
[plugins.health]
"""


def test_wasmkernel_run_serves_the_registry(start_server: ServerProcesses) -> None:
    base = start_server(REGISTRY)
    response = httpx.get(base + "/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert httpx.get(base + "/readyz").json()["status"] == "ready"
    assert httpx.post(base + "/health").status_code == 405


def test_unchanged_under_hypercorn_trio_worker(start_server: ServerProcesses) -> None:
    command = [str(BIN / "hypercorn"), "--worker-class", "trio", "--bind", "127.0.0.1:{port}", "wasmkernel.asgi:app"]
    base = start_server(REGISTRY, command=command)
    assert httpx.get(base + "/health").json() == {"status": "ok"}


def test_two_workers(start_server: ServerProcesses) -> None:
    base = start_server(REGISTRY, command=[str(BIN / "wasmkernel"), "run", "--registry", "{registry}", "--bind", "127.0.0.1:{port}", "--workers", "2"])
    assert all(httpx.get(base + "/health").status_code == 200 for _ in range(10))


def test_default_run_serves_in_one_process_and_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    """No hypercorn parent holding a second application: the process that
    assembled the app serves it; SIGTERM shuts it down gracefully, exit 0."""
    registry = tmp_path / "registry.toml"
    registry.write_text(REGISTRY.replace('format = "json"', 'format = "json"\nlevel = "info"'))
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(BIN / "wasmkernel"), "run", "--registry", str(registry), "--bind", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            env={**os.environ},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/health", process, log=log)
        assert psutil.Process(process.pid).children(recursive=True) == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text()  # exit 0, not -SIGTERM: hypercorn ran the lifespan shutdown and returned
    assert "(in this process)" in text and '"app.started"' in text, text[-1500:]


@pytest.mark.parametrize("workers", [0, 1])
def test_a_failed_startup_exits_1_with_its_reason(tmp_path: Path, workers: int) -> None:
    registry = tmp_path / "registry.toml"
    module = tmp_path / "missing.wasm"
    registry.write_text(
        "[plugins.router]\n[plugins.wasmer-loader.config]\nwatch = false\n"
        f'[[plugins.wasm.config.modules]]\nname = "gone"\npath = "{module}"\nkind = "compute"\n'
    )
    result = subprocess.run(
        [str(BIN / "wasmkernel"), "run", "--registry", str(registry), "--bind", f"127.0.0.1:{free_port()}", "--workers", str(workers)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("wasmkernel: startup failed: plugin 'wasm' failed to start:") and "wasm module 'gone': cannot read" in last, result.stderr[-1000:]
    assert "Traceback" not in result.stderr


def test_run_refuses_a_bad_registry_with_one_line(tmp_path: Path) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text("[plugins.router]\n[plugins.not-installed]\n")
    result = subprocess.run([str(BIN / "wasmkernel"), "run", "--registry", str(registry)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("wasmkernel: plugin 'not-installed' is enabled in")
    assert "Traceback" not in result.stderr


def test_json_log_lines_carry_the_request_id(tmp_path: Path) -> None:
    """A failing request's log line is JSON with its request id and traceback."""
    code = """
import trio
from wasmkernel import Route, hookimpl
from wasmkernel.testing import app_from, running

class Boom:
    @hookimpl
    def wasmkernel_routes(self, app):
        async def boom(request):
            raise RuntimeError("kaput")
        return [Route("/boom", boom)]

async def main():
    app = app_from({"logging": {}, "router": {}, "boom": {}}, extra_plugins={"boom": Boom()})
    async with running(app) as client:
        await client.get("/boom")

trio.run(main)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    import json

    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    failed = [line for line in lines if line["event"] == "request.failed"]
    assert len(failed) == 1
    assert failed[0]["request_id"] == failed[0]["error_id"]
    assert "kaput" in json.dumps(failed[0]["exception"])
