"""A worker's main loop: one request at a time on the socket the server passed.

Started by the server as ``<env>/bin/python -I -c BOOT CODE_DIR FD`` (see
`wasmkernel_wasmer_loader.environment`): it says it is ready, then answers
requests until the server closes the socket. The server kills a worker whose
call overran its time limit or whose client went away; as a backstop for a
server that died mid-call (nobody left to kill a runaway guest), each call
also gets a CPU-time limit (`RLIMIT_CPU`), well beyond its wall-clock one.
"""

from __future__ import annotations

import os
import platform
import resource
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

import wasmer

from wasmkernel_wasmer_loader.worker import jobs
from wasmkernel_wasmer_loader.worker.wire import MAX_REQUEST, Job, encode_outcome, from_wire, receive, send

#: The CPU-time backstop of a call: this many times its time limit, plus `CPU_SLACK` seconds.
CPU_FACTOR = 2
CPU_SLACK = 5


def _outcome(run: Callable[..., Any]) -> Callable[..., Any]:
    return lambda *args: encode_outcome(run(*args))


_JOBS: dict[Job, Callable[..., Any]] = {
    Job.preload: jobs.preload,
    Job.call: _outcome(jobs.call),
    Job.handle: _outcome(jobs.handle),
    Job.run_wasi: _outcome(jobs.run_wasi),
    Job.compile: jobs.compile_module,
}


def _limit_cpu(seconds: float) -> None:
    """Let this process use at most `seconds` more CPU time (0: no limit) before SIGXCPU ends it."""
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    soft = hard
    if seconds > 0:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(usage.ru_utime + usage.ru_stime + CPU_FACTOR * seconds + CPU_SLACK)
        soft = soft if hard == resource.RLIM_INFINITY else min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def answer(job: str, args: tuple[Any, ...], seconds: float) -> tuple[str, Any]:
    """("ok", value) or ("error", message): a guest fault is an ok outcome;
    an error is what wasmer raised outside a call (an invalid module, a
    foreign artifact) or a bug."""
    _limit_cpu(seconds)
    try:
        return "ok", _JOBS[Job(job)](*from_wire(args))
    except Exception as exc:
        text = str(exc).strip()
        return "error", text.splitlines()[0] if text else type(exc).__name__
    finally:
        _limit_cpu(0)


def main() -> None:
    # The server decides when a worker ends; a terminal's Ctrl-C reaches the whole group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=int(sys.argv[2]))
    send(sock, ("ready", {"pid": os.getpid(), "python": platform.python_version(), "wasmer": wasmer.__version__}))
    while True:
        try:
            job, args, seconds = receive(sock, MAX_REQUEST)
        except EOFError:
            return
        send(sock, answer(job, args, seconds))
