"""Real server processes on free loopback ports: `wasmkernel run` started
from a registry text (the `start_server` fixture), and the waits that go with
them. A server's output goes to a file (an unread pipe would block a chatty
server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from wasmkernel.testing.waiting import wait_until_sync

#: The directory of the running interpreter's scripts (`wasmkernel`, `pytest`).
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0, log: Path | None = None) -> None:
    """Poll `url` until it answers (any status); `AssertionError` with the
    server's output if `process` exits first or nothing answers in `timeout` s."""
    import httpx

    def answered() -> bool:
        if process.poll() is not None:
            output = log.read_text(errors="replace") if log else (process.stdout.read().decode() if process.stdout else "")
            raise AssertionError(f"server exited with {process.returncode}:\n{output[-5000:]}")
        try:
            httpx.get(url, timeout=5.0)
        except httpx.TransportError:
            return False
        return True

    wait_until_sync(answered, timeout=timeout, interval=0.1, what=f"a server answering {url}")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@attrs.define
class ServerProcesses:
    """Starts `wasmkernel run` processes (see `start_server`); `stop()` ends them all."""

    workdir: Path
    processes: list[subprocess.Popen[bytes]] = attrs.field(factory=list)

    def __call__(self, registry: str, command: Sequence[str] | None = None, env: Mapping[str, str] | None = None, probe: str = "/health") -> str:
        """Write `registry` to a file, start the server on a free port and
        wait until `probe` answers; return its base URL. `command` replaces
        ``wasmkernel run --registry <file> --bind <address>`` ("{port}" and
        "{registry}" in it are filled in); the output is in
        ``server-<port>.log`` in the work directory."""
        port = free_port()
        registry_file = self.workdir / f"registry-{port}.toml"
        registry_file.write_text(registry)
        argv = list(command or [str(BIN / "wasmkernel"), "run", "--registry", str(registry_file), "--bind", f"127.0.0.1:{port}"])
        argv = [arg.format(port=port, registry=registry_file) for arg in argv]
        log = self.workdir / f"server-{port}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env={**os.environ, "WASMKERNEL_REGISTRY": str(registry_file), **(env or {})},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base + probe, process, log=log)
        return base

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process)
