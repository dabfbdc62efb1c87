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

from wasmkernel.testing.processes import listens_on, start_on_free_port
from wasmkernel.testing.waiting import wait_until_sync


def redis_binary() -> str | None:
    """redis-server on PATH, or Debian's /usr/bin/redis-server."""
    return shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")


@attrs.define
class RedisServer:
    """One redis-server process on 127.0.0.1:`port`, files under `workdir`."""

    workdir: Path
    #: Chosen at the first start (a free one); a restart keeps it.
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server on a free port, or restart it on its port, and
        wait until it answers PING."""
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server; `make test` does it)")
        self.workdir.mkdir(parents=True, exist_ok=True)

        def launch(port: int) -> subprocess.Popen[bytes]:
            argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            argv += ["--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log"), "--daemonize", "no"]
            return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        if not self.port:
            self.process, self.port = start_on_free_port(launch, lambda port: self.log(), self._answers, timeout=timeout)
            return
        process = self.process = launch(self.port)

        def pong() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"redis-server exited with {process.returncode}: {self.log()[-2000:]}")
            return listens_on(process, self.port) and self._answers(self.port)

        try:
            wait_until_sync(pong, timeout=timeout, what="redis-server answering PING")
        except AssertionError:
            self.stop()
            raise

    @staticmethod
    def _answers(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
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
