"""A real `redis-server` for tests: its own loopback port and directory, no
persistence. Tests that need Redis take the `redis_server` fixture (from the
kit's pytest plugin); it skips the test with the install command when
Debian's `redis-server` is missing.

The server can be killed (SIGKILL, as an outage) and restarted on the same
port, for the reconnect tests.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import attrs

from wasmkernel.testing.processes import free_port
from wasmkernel.testing.waiting import wait_until_sync


def redis_binary() -> str | None:
    """redis-server on PATH, or Debian's /usr/bin/redis-server."""
    return shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")


@attrs.define
class RedisServer:
    """One redis-server process on 127.0.0.1:`port`, files under `workdir`."""

    workdir: Path
    port: int = attrs.field(factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start (or restart) the server and wait until it accepts connections."""
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server; `make test` does it)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.workdir / "redis.log"),
            "--daemonize",
            "no",
        ]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until_sync(self._pong, timeout=timeout, what="redis-server answering PING")
        except AssertionError:
            self.stop()
            raise

    def _pong(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.process.returncode}: {self.log()[-2000:]}")
        return self._answers()

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def log(self) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: an abrupt outage (connections reset, nothing flushed)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
