"""The Wasmer loader's worker processes, from the server's side (trio).

Each worker is a Python 3.10 process (`environment.WorkerEnvironment`)
running `worker.serve` on one end of a socket pair: one request at a time,
framed by `worker.wire`. The pool keeps at most `size` of them: a call takes
an idle one (or starts one, or waits for one being started), and gives it
back, or discards it — killed and reaped — when the call timed out, was
cancelled (its client went away) or the worker died; the loader then starts
and warms a replacement in the background.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio

from wasmkernel_wasmer_loader.environment import WORKER_VARIABLES
from wasmkernel_wasmer_loader.worker.wire import HEADER, Job, WireError, dumps, frame_size, loads, to_wire

#: Seconds a new worker may take to say it is ready (start Python, import wasmer).
READY_TIMEOUT = 60.0
#: Seconds to wait for a killed worker to be reaped.
REAP_TIMEOUT = 5.0


class WorkerLost(Exception):
    """The worker died, or broke the protocol, during a request."""


class WorkerFailed(Exception):
    """The worker answered a request with an error (wasmer raised outside a guest call)."""


@attrs.define(eq=False)
class Worker:
    """One worker process and the server's end of its socket."""

    process: trio.Process
    stream: trio.SocketStream
    pid: int

    async def _receive_exactly(self, size: int) -> bytes:
        buffer = bytearray()
        while len(buffer) < size:
            chunk = await self.stream.receive_some(min(size - len(buffer), 1 << 20))
            if not chunk:
                raise WorkerLost(f"worker {self.pid} closed its socket (exit status {self.process.poll()})")
            buffer += chunk
        return bytes(buffer)

    async def receive(self, limit: int) -> Any:
        try:
            size = frame_size(await self._receive_exactly(HEADER.size), limit)
            return loads(await self._receive_exactly(size))
        except (WireError, trio.BrokenResourceError) as exc:
            raise WorkerLost(f"worker {self.pid}: {exc}") from None

    async def request(self, job: Job, args: Sequence[Any], cpu_seconds: float, limit: int) -> Any:
        """Send one request and wait for its reply's value (`WorkerFailed` for an error reply)."""
        try:
            for part in dumps((job.value, to_wire(args), cpu_seconds)):
                await self.stream.send_all(part)
        except trio.BrokenResourceError as exc:
            raise WorkerLost(f"worker {self.pid}: {exc}") from None
        reply = await self.receive(limit)
        if not (isinstance(reply, tuple) and len(reply) == 2 and reply[0] in ("ok", "error")):
            raise WorkerLost(f"worker {self.pid} sent a malformed reply")
        if reply[0] == "error":
            raise WorkerFailed(str(reply[1]))
        return reply[1]

    async def kill(self) -> None:
        """Kill and reap the process (also when the caller is being cancelled)."""
        with trio.CancelScope(shield=True):
            if self.process.returncode is None:
                self.process.kill()
            await self.stream.aclose()
            with trio.move_on_after(REAP_TIMEOUT):
                await self.process.wait()


async def start_worker(command: Callable[[int], list[str]], expected_wasmer: str) -> Worker:
    """Start one worker and wait until it is ready (`WorkerLost` if it is not)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        process = await trio.lowlevel.open_process(
            command(theirs.fileno()), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, pass_fds=(theirs.fileno(),), env=WORKER_VARIABLES
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    worker = Worker(process, trio.SocketStream(trio.socket.from_stdlib_socket(ours)), process.pid)
    try:
        with trio.fail_after(READY_TIMEOUT):
            ready = await worker.receive(64 * 1024)
        if not (isinstance(ready, tuple) and len(ready) == 2 and ready[0] == "ready" and isinstance(ready[1], dict)):
            raise WorkerLost(f"worker {worker.pid} did not say it is ready")
        if ready[1].get("wasmer") != expected_wasmer:
            raise WorkerLost(f"worker {worker.pid} runs wasmer {ready[1].get('wasmer')!r}, expected {expected_wasmer}")
    except trio.TooSlowError:
        await worker.kill()
        raise WorkerLost(f"worker {worker.pid} was not ready within {READY_TIMEOUT:g} s") from None
    except BaseException:
        await worker.kill()
        raise
    return worker


class WorkerPool:
    """At most `size` workers: `acquire` one for a call, then `release` or `discard` it."""

    def __init__(self, command: Callable[[int], list[str]], size: int, wasmer: str) -> None:
        self.command = command
        self.size = size
        self.wasmer = wasmer
        self._idle: list[Worker] = []
        #: Workers alive or being started.
        self._count = 0
        self._changed = trio.Event()
        self._closed = False

    def statistics(self) -> tuple[int, int]:
        """(idle workers, workers alive or being started)."""
        return len(self._idle), self._count

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _start_counted(self) -> Worker:
        """Start a worker whose place `_count` already holds (given back if it fails)."""
        try:
            return await start_worker(self.command, self.wasmer)
        except BaseException:
            self._count -= 1
            self._notify()
            raise

    async def acquire(self) -> Worker:
        """An idle worker, else a new one if fewer than `size` exist, else the
        next one to become idle (one being started or given back)."""
        while True:
            if self._closed:
                raise trio.ClosedResourceError("the worker pool is closed")
            if self._idle:
                return self._idle.pop()
            if self._count < self.size:
                self._count += 1
                return await self._start_counted()
            await self._changed.wait()

    async def release(self, worker: Worker) -> None:
        """Give `worker` back after a call it answered (killed if the pool closed meanwhile)."""
        if self._closed:
            self._count -= 1
            await worker.kill()
            return
        self._idle.append(worker)
        self._notify()

    async def discard(self, worker: Worker) -> None:
        """Kill `worker` (its call timed out, was cancelled or lost it)."""
        self._count -= 1
        self._notify()
        await worker.kill()

    async def warm(self, count: int, preload: Callable[[Worker], Awaitable[Any]]) -> list[int]:
        """Start `count` more workers at once (no more than `size` in all),
        run `preload` on each and make them idle; their pids. Raises (an
        exception group) if any fails to start or preload."""
        pids: list[int] = []
        starting = max(0, min(count, self.size - self._count))
        self._count += starting  # held now: concurrent callers see them

        async def one() -> None:
            worker = await self._start_counted()
            try:
                await preload(worker)
            except BaseException:
                await self.discard(worker)
                raise
            pids.append(worker.pid)
            await self.release(worker)

        async with trio.open_nursery() as nursery:
            for _ in range(starting):
                nursery.start_soon(one)
        return pids

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        self._count -= len(idle)
        self._notify()
        for worker in idle:
            await worker.kill()
