"""Starting, probing and stopping the servers under test, and measuring them.

Every server runs in its own session (process group), so stopping it stops
the whole tree it spawned (hypercorn workers, WebAssembly worker processes,
the JVM...). Memory is the process tree's resident set: the peak since the
last reset (Linux ``VmHWM``, reset through ``clear_refs``) and the current
value; CPU is the tree's user+system time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import attrs
import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
PEERS_FILE = ROOT / "benchmarks" / "peers" / "peers.toml"
READY_TIMEOUT = 90.0
SETUP_TIMEOUT = 900.0


class SetupFailed(Exception):
    """A server cannot be set up or started; the message is the reported reason.

    For a seed peer this fails the run (non-zero exit): its row must not
    silently disappear from the report."""


class Unavailable(SetupFailed):
    """A prerequisite that cannot be fetched here is absent (a toolchain, a
    Debian package, a jar of the local Maven repository): the peer is reported
    *not available on this machine* with the reason, and the run goes on."""


UNAVAILABLE_EXIT = 3  # a setup command exits 3 when such a prerequisite is missing


@attrs.frozen
class ProcessSpec:
    """One server process: how to set it up and start it on ``$PORT``."""

    name: str
    language: str
    framework: str
    cwd: Path
    start: str
    setup: str = ""
    requires: tuple[str, ...] = ()
    requires_files: tuple[str, ...] = ()
    env: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class ServerRow:
    """A benchmark row: a server process and the `kernel` it is asked for."""

    name: str
    process: ProcessSpec
    kernel: str
    is_wasmkernel: bool = False

    @property
    def naive(self) -> bool:
        return self.kernel == "naive"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peer_rows() -> list[ServerRow]:
    """Rows for every peer in ``peers/peers.toml`` (a peer with several kernels gives several rows)."""
    data = tomllib.loads(PEERS_FILE.read_text())
    rows = []
    for peer in data["peer"]:
        spec = ProcessSpec(
            name=peer["name"],
            language=peer["language"],
            framework=peer["framework"],
            cwd=(PEERS_FILE.parent / peer["dir"]).resolve(),
            start=peer["start"],
            setup=peer.get("setup", ""),
            requires=tuple(peer.get("requires", ())),
            requires_files=tuple(peer.get("requires_files", ())),
            env={"PYTHON": sys.executable},
        )
        kernels = peer["kernels"]
        for kernel in kernels:
            name = spec.name if len(kernels) == 1 else f"{spec.name}-{kernel}"
            rows.append(ServerRow(name, spec, kernel))
    return rows


def wasmkernel_spec(registry: Path, env: Mapping[str, str], name: str = "wasmkernel", workers: int = 0) -> ProcessSpec:
    """`wasmkernel run` on `registry`, as deployed (its default, workers 0: served in the process that
    assembled it; N ≥ 1: hypercorn's parent and N spawned worker processes)."""
    wasmkernel = Path(sys.executable).parent / "wasmkernel"
    # --read-timeout: hypercorn's read timeout (30 s by default) also runs while a
    # request is answered; /matmul at n = 5000 takes minutes (the route's timeout is 600 s).
    command = f"exec {wasmkernel} run --registry {registry} --bind 127.0.0.1:$PORT --workers {workers} --read-timeout 660"
    return ProcessSpec(name, "Python + WebAssembly (wasmer)", "WasmKernel (hypercorn trio worker)", ROOT, command, env=dict(env))


def wasmkernel_rows(spec: ProcessSpec) -> list[ServerRow]:
    return [ServerRow(f"wasmkernel-{kernel}", spec, kernel, is_wasmkernel=True) for kernel in ("naive", "fast")]


def missing_requirements(spec: ProcessSpec) -> str | None:
    """Why `spec` cannot run here (a missing executable or file), or None."""
    for exe in spec.requires:
        if shutil.which(exe) is None:
            return f"'{exe}' is not installed"
    for path in spec.requires_files:
        if not Path(path).exists():
            return f"{path} is missing"
    return None


def run_setup(spec: ProcessSpec) -> None:
    """Run the idempotent setup step; `SetupFailed` with the tail of its output."""
    reason = missing_requirements(spec)
    if reason:
        raise Unavailable(reason)
    if not spec.setup:
        return
    try:
        done = subprocess.run(
            ["sh", "-c", spec.setup],
            check=False,
            cwd=spec.cwd,
            env={**os.environ, **spec.env},
            capture_output=True,
            text=True,
            timeout=SETUP_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise SetupFailed(f"setup did not finish within {SETUP_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        error = Unavailable if done.returncode == UNAVAILABLE_EXIT else SetupFailed
        raise error(f"setup exited with {done.returncode}: {' | '.join(tail) or 'no output'}")


@attrs.define
class RunningServer:
    """A started server; use as a context manager to stop it."""

    spec: ProcessSpec
    port: int
    popen: subprocess.Popen[bytes]
    log: IO[bytes]
    started_at: float
    ready_after_s: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.popen.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _each(self, read: Any) -> float:
        total = 0.0
        for proc in self.processes():
            try:
                total += read(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
                continue
        return total

    def rss_mb(self) -> float:
        return self._each(lambda p: p.memory_info().rss) / 2**20

    def peak_rss_mb(self) -> float:
        """Σ of each process's peak RSS since the last `reset_peak` (an upper bound of the tree's peak)."""
        return self._each(_peak_rss_bytes) / 2**20

    def reset_peak(self) -> None:
        for proc in self.processes():
            try:
                Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
            except OSError:
                continue

    def cpu_seconds(self) -> float:
        return self._each(lambda p: sum(p.cpu_times()[:2]))

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_ready(self, path: str = "/readyz", timeout: float = READY_TIMEOUT) -> None:
        """Poll `path` until it answers 200 (a server without it, 404, is ready
        once it answers): WasmKernel serves while its WebAssembly workers warm
        up, and says ready when they are."""
        deadline = time.perf_counter() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.perf_counter() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.base_url + path).status_code in (200, 404):
                        return
                time.sleep(0.01)
        raise SetupFailed(f"{self.spec.name}: {path} did not say ready within {timeout:.0f} s")

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL it after 10 s."""
        if self.popen.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.popen.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        try:  # workers left behind in the group (the leader exited first)
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.log.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _peak_rss_bytes(proc: psutil.Process) -> float:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) * 1024
    return float(proc.memory_info().rss)


def start(
    spec: ProcessSpec, log_dir: Path, probe: str = "/hello", timeout: float = READY_TIMEOUT, cpus: str | None = None, poll: float = 0.02
) -> RunningServer:
    """Start `spec` on a free port (pinned to `cpus` with taskset when given) and wait until `probe` answers 200."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = (log_dir / f"{spec.name}.log").open("ab")
    started = time.perf_counter()
    popen = subprocess.Popen(
        [*(["taskset", "-c", cpus] if cpus is not None else []), "sh", "-c", spec.start],
        cwd=spec.cwd,
        env={**os.environ, **spec.env, "PORT": str(port)},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = RunningServer(spec, port, popen, log, started)
    deadline = started + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.perf_counter() < deadline:
            if popen.poll() is not None:
                server.stop()
                raise SetupFailed(f"exited with {popen.returncode} before answering (see logs/{spec.name}.log)")
            try:
                if client.get(server.base_url + probe).status_code == 200:
                    server.ready_after_s = time.perf_counter() - started
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(poll)
    server.stop()
    raise SetupFailed(f"did not answer {probe} within {timeout:.0f} s (see logs/{spec.name}.log)")
