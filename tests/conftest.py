"""Shared fixtures: in-memory test plugins and real server processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text() if log else (process.stdout.read().decode() if process.stdout else "")
            raise AssertionError(f"server exited with {process.returncode}:\n{output}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"server did not answer {url} within {timeout}s")


ServerFactory = Callable[..., str]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start a real server process; returns its base URL. Stopped at teardown.

    `start_server(registry_text, command=None, env=None, probe="/health")`:
    the default command is `wasmkernel run --registry <file> --bind <port>`;
    its output is in `server-<port>.log` under the test's tmp_path.
    """
    processes: list[subprocess.Popen[bytes]] = []

    def start(registry: str, command: Sequence[str] | None = None, env: dict[str, str] | None = None, probe: str = "/health") -> str:
        port = free_port()
        registry_file = tmp_path / f"registry-{port}.toml"
        registry_file.write_text(registry)
        argv = list(command or [str(BIN / "wasmkernel"), "run", "--registry", str(registry_file), "--bind", f"127.0.0.1:{port}"])
        argv = [arg.format(port=port, registry=registry_file) for arg in argv]
        # Output goes to a file: an unread pipe would block a chatty server.
        log = tmp_path / f"server-{port}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                argv,
                cwd=tmp_path,
                env={**os.environ, "WASMKERNEL_REGISTRY": str(registry_file), **(env or {})},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base + probe, process, log=log)
        return base

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
