"""Compiling modules, in a short-lived Python 3.10 process.

The server never imports wasmer: a `Compiler` starts one worker process (the
program the call workers run) when a batch — startup, a reload, `wasmkernel
check` — first misses the compile cache, sends it compile jobs and ends it
when the batch is done.
So the memory cranelift takes while it compiles (about 15 times a module's
size, much of it kept by the allocator afterwards) is never held by the server
or a call worker. A compile of at least `PROGRESS_BYTES` is logged when it
starts and every `PROGRESS_EVERY` seconds while it runs.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

import structlog
from wasmkernel_wasm.engine import error_cause, wasmtime_verdict

from wasmkernel import StartupError
from wasmkernel_wasmer_loader.environment import WORKER_VARIABLES
from wasmkernel_wasmer_loader.pool import READY_TIMEOUT
from wasmkernel_wasmer_loader.worker.wire import MAX_REQUEST, Job, WireError, receive, send, to_wire

log = structlog.get_logger("wasmkernel.wasmer_loader")

#: Compiles of modules of at least this many bytes are logged while they run.
PROGRESS_BYTES = 4 * 1024 * 1024
#: Seconds between progress lines while a large module compiles.
PROGRESS_EVERY = 5.0

#: Validation errors of operators wasmer 1.1 predates, and the feature they belong to.
_NEWER_FEATURES = (
    (re.compile(r"Unknown 0xfd subopcode"), "newer SIMD operators (relaxed SIMD)"),
    (re.compile(r"Unsupported feature: proposed simd operator"), "SIMD operators its compiler does not implement"),
    (re.compile(r"Unknown opcode: 0x(0[6-9a]|1[89f])\b|Exceptions support is not enabled"), "exception handling"),
    (re.compile(r"Unknown 0xfe"), "threads (atomic operators)"),
)


class Compiler:
    """One compile process, started on first use and ended by `close` (a context manager)."""

    def __init__(self, command: Callable[[int], list[str]]) -> None:
        self._command = command
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None

    def __enter__(self) -> Compiler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._process = subprocess.Popen(
                self._command(theirs.fileno()), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, pass_fds=(theirs.fileno(),), env=WORKER_VARIABLES
            )
        except OSError as exc:
            ours.close()
            raise StartupError(f"cannot start the Wasmer compile process: {exc}") from None
        finally:
            theirs.close()
        self._sock = ours
        ours.settimeout(READY_TIMEOUT)
        try:
            ready = receive(ours, 64 * 1024)
        except (OSError, EOFError, WireError) as exc:
            self.close()
            raise StartupError(f"the Wasmer compile process did not start ({type(exc).__name__}: {exc}); see its error output above") from None
        if not (isinstance(ready, tuple) and ready[:1] == ("ready",)):
            self.close()
            raise StartupError("the Wasmer compile process did not say it is ready")
        return ours

    def _request(self, job: Job, args: tuple[Any, ...], waiting: Callable[[], None] | None = None) -> Any:
        """The value of one job; `RuntimeError` with wasmer's message if it failed
        (or if the process died: the next request starts a new one)."""
        sock = self._connect()
        sock.settimeout(PROGRESS_EVERY if waiting is not None else None)
        try:
            send(sock, (job.value, to_wire(args), 0))
            status, value = receive(sock, MAX_REQUEST, waiting)
        except (OSError, EOFError, WireError, ValueError) as exc:
            process = self._process
            self.close()
            status_text = f"exit status {process.returncode}" if process is not None and process.returncode is not None else type(exc).__name__
            raise RuntimeError(f"the compile process was lost ({status_text})") from None
        if status != "ok":
            raise RuntimeError(str(value))
        return value

    def compile(self, name: str, wasm: bytes, compiler: str) -> bytes:
        """The serialized artifact of `wasm`; `RuntimeError` with the compiler's
        message (naming the feature wasmer cannot run, if that is why)."""
        waiting = None
        if len(wasm) >= PROGRESS_BYTES:
            self._connect()
            start = time.perf_counter()
            log.info("wasm.compiling", module=name, bytes=len(wasm), compiler=compiler, pid=self.pid)

            def waiting() -> None:
                log.info("wasm.compiling", module=name, elapsed_s=round(time.perf_counter() - start, 1))

        try:
            artifact = self._request(Job.compile, (wasm, compiler), waiting)
        except RuntimeError as exc:
            message = error_cause(exc) if str(exc).strip() else "compile failed"
            for pattern, feature in _NEWER_FEATURES:
                if pattern.search(message):
                    raise RuntimeError(f"{message}: it uses {feature}, which wasmer 1.1 cannot run; {wasmtime_verdict(wasm)}") from None
            raise RuntimeError(message) from None
        if not isinstance(artifact, bytes):
            raise RuntimeError("the compile process sent no artifact")
        return artifact

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._process is not None:
            try:
                self._process.wait(timeout=READY_TIMEOUT)  # it exits when its socket closes
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
