"""Real server processes on free loopback ports: `wasmkernel run` started
from a registry text (the `start_server` fixture), and the waits that go with
them. A server's output goes to a file (an unread pipe would block a chatty
server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import attrs

from wasmkernel.testing.waiting import wait_until_sync

#: The directory of the running interpreter's scripts (`wasmkernel`, `pytest`).
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortTaken(AssertionError):
    """A server could not listen on its port: another program took it between
    `free_port()` and the bind (a shared machine runs other test suites)."""


def listens_on(process: subprocess.Popen[bytes], port: int) -> bool:
    """Whether `process` or one of its descendants listens on TCP `port`:
    answering on the port is not enough, another program may hold it."""
    import psutil

    try:
        root = psutil.Process(process.pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    for member in family:
        try:
            sockets = member.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(sock.status == psutil.CONN_LISTEN and sock.laddr and sock.laddr.port == port for sock in sockets):
            return True
    return False


def answers(url: str) -> bool:
    """Whether `url` answers at all (any status)."""
    import httpx

    try:
        httpx.get(url, timeout=5.0)
    except httpx.TransportError:
        return False
    return True


def start_on_free_port(
    start: Callable[[int], subprocess.Popen[bytes]],
    output: Callable[[int], str],
    ready: Callable[[int], bool] = lambda port: True,
    *,
    stop: Callable[[subprocess.Popen[bytes]], None] | None = None,
    timeout: float = 60.0,
    attempts: int = 3,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server on a free loopback port: `start(port)` launches it;
    wait until it (not another program) listens there and `ready(port)`. If
    it exits because the port was taken meanwhile ("already in use" in
    `output(port)`), try another port. `AssertionError` with its output if it
    exits otherwise or is not ready within `timeout` seconds (after `stop`,
    by default `stop_process`, ended it)."""
    for _ in range(attempts):
        port = free_port()
        process = start(port)

        def up(process: subprocess.Popen[bytes] = process, port: int = port) -> bool:
            if process.poll() is not None:
                text = output(port)
                failure = PortTaken if "already in use" in text.lower() else AssertionError
                raise failure(f"{process.args!r} exited with {process.returncode}:\n{text[-5000:]}")
            return listens_on(process, port) and ready(port)

        try:
            wait_until_sync(up, timeout=timeout, interval=0.1, what=f"{process.args!r} listening on port {port}")
        except PortTaken:
            continue
        except AssertionError:
            (stop or stop_process)(process)
            raise
        return process, port
    raise AssertionError(f"every port tried for {start} was taken ({attempts} attempts)")


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0, log: Path | None = None) -> None:
    """Poll `url` until `process` listens on its port and it answers (any
    status); `AssertionError` with the server's output if `process` exits
    first or nothing answers in `timeout` s."""
    port = urlsplit(url).port or 80

    def serving() -> bool:
        if process.poll() is not None:
            output = log.read_text(errors="replace") if log else (process.stdout.read().decode() if process.stdout else "")
            raise AssertionError(f"server exited with {process.returncode}:\n{output[-5000:]}")
        return listens_on(process, port) and answers(url)

    wait_until_sync(serving, timeout=timeout, interval=0.1, what=f"a server answering {url}")


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

        def start(port: int) -> subprocess.Popen[bytes]:
            registry_file = self.workdir / f"registry-{port}.toml"
            registry_file.write_text(registry)
            argv = list(command or [str(BIN / "wasmkernel"), "run", "--registry", str(registry_file), "--bind", f"127.0.0.1:{port}"])
            argv = [arg.format(port=port, registry=registry_file) for arg in argv]
            with self.log(port).open("wb") as output:
                process = subprocess.Popen(
                    argv,
                    cwd=self.workdir,
                    env={**os.environ, "WASMKERNEL_REGISTRY": str(registry_file), **(env or {})},
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            self.processes.append(process)
            return process

        _, port = start_on_free_port(start, lambda port: self.log(port).read_text(errors="replace"), lambda port: answers(f"http://127.0.0.1:{port}{probe}"))
        return f"http://127.0.0.1:{port}"

    def log(self, port: int) -> Path:
        return self.workdir / f"server-{port}.log"

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process)
