"""wasmer-only behaviour: calls run in worker processes, which can be lost."""

# ruff: noqa: F811

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from wasmkernel.testing import running

# The shared fixtures (config, dist, make_app) live in the repository's
# tests/wasm: make it importable when this directory is run on its own. Tests
# take them as arguments, hence the file-wide F811 exemption.
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from wasmkernel_wasm.testing import config, dist, make_app, use_loader  # noqa: F401  (fixtures)


@pytest.fixture
def loader_name() -> str:
    return str(use_loader("wasmer-loader"))


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()]
    except OSError:
        return []


def _busy_worker() -> int | None:
    """A descendant of this process (workers may be forked by a forkserver) that is running."""
    pending = _children(os.getpid())
    while pending:
        pid = pending.pop()
        pending += _children(pid)
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "R":
                return pid
        except (OSError, IndexError):
            continue
    return None


async def test_killed_worker_fails_only_its_request(make_app: Any, config: dict[str, Any]) -> None:
    config["modules"][2]["timeout"] = 10.0
    async with running(make_app(config)) as client:
        results = {}

        async def spin() -> None:
            results["spin"] = await client.get("/faults/spin")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(spin)
            for _ in range(100):
                await trio.sleep(0.02)
                pid = _busy_worker()
                if pid is not None:
                    break
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
        assert results["spin"].status_code == 503
        assert "worker lost" in results["spin"].json()["detail"]
        assert (await client.get("/faults/ok")).status_code == 200


def test_worker_processes_import_neither_the_kernel_nor_the_app(tmp_path: Path) -> None:
    """What the forkserver preloads (and every worker inherits): wasmer and the
    kernel-free parts of wasmkernel_wasm, not the kernel, hypercorn, trio or
    OpenSSL; and a script run by path is not re-run in the workers."""
    import subprocess

    probe = (
        "import sys, wasmkernel_wasmer_loader.worker\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'wasmkernel', 'hypercorn', 'trio', 'trio_parallel', 'structlog', '_hashlib'})\n"
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
