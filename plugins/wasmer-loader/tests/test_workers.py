"""wasmer-only behaviour: calls run in worker processes, which can be lost."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from wasmkernel_wasm.testing import use_loader

from wasmkernel.testing import running, wait_until


@pytest.fixture
def loader_name() -> str:
    return str(use_loader("wasmer-loader"))


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()]
    except OSError:
        return []


def _descendants() -> list[int]:
    """This process's descendants (workers may be forked by a forkserver)."""
    found, pending = [], _children(os.getpid())
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending += _children(pid)
    return found


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_killed_worker_fails_only_its_request(make_app: Any, config: dict[str, Any]) -> None:
    config["modules"][2]["timeout"] = 60.0
    async with running(make_app(config)) as client:
        assert (await client.get("/faults/ok")).status_code == 200
        before = {pid: _cpu_seconds(pid) for pid in _descendants()}
        results = {}

        async def spin() -> None:
            results["spin"] = await client.get("/faults/spin")

        def spinning_worker() -> int | None:
            """The descendant burning CPU since the spin started (an idle worker,
            or the forkserver, may be running for a moment: not for 0.3 s of CPU)."""
            return next((pid for pid in _descendants() if _cpu_seconds(pid) - before.get(pid, 0.0) >= 0.3), None)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(spin)
            pid = await wait_until(spinning_worker, what="a worker running the spin")
            os.kill(pid, signal.SIGKILL)
        assert results["spin"].status_code == 503
        assert "worker lost" in results["spin"].json()["message"]
        assert (await client.get("/faults/ok")).status_code == 200


def test_worker_processes_import_neither_the_kernel_nor_the_app(tmp_path: Path) -> None:
    """What the forkserver preloads (and every worker inherits): wasmer and the
    kernel-free parts of wasmkernel_wasm, not the kernel, hypercorn, trio or
    OpenSSL; and a script run by path is not re-run in the workers."""
    import subprocess

    probe = (
        "import sys, wasmkernel_wasmer_loader.worker\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'kernel', 'hypercorn', 'trio', 'trio_parallel', 'structlog', '_hashlib'})\n"
        "from wasmkernel_wasmer_loader.loader import _workers_skip_main\n"
        "_workers_skip_main()\n"
        "import multiprocessing.spawn\n"
        "data = multiprocessing.spawn.get_preparation_data('probe')\n"
        "print(heavy, 'init_main_from_path' in data, data.get('init_main_from_name'))\n"
    )
    script = tmp_path / "probe.py"
    script.write_text(probe)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.split() == ["[]", "False", "__main__"], done.stdout + done.stderr
