"""Where WasmKernel's start-up time goes, phase by phase, in one fresh process.

    python benchmarks/startup_phases.py REGISTRY [--importtime]

Prints one JSON object: seconds spent importing the kernel, assembling the
application from REGISTRY (which imports every plugin), starting it (the
module loader compiles or deserializes its modules and spawns and warms its
worker processes: the ``wasm.workers_warm`` log line gives that share), and
the interpreter's own start. ``--importtime`` runs the same under
``python -X importtime`` and reports the packages that took longest instead
(cumulative seconds per top-level package).

Run by ``python -m benchmarks`` (initialization section); the registry's
logging level must be ``info`` so the loader's log line is seen.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from kernel.app import Application
from kernel.registry import load_registry
t1 = time.perf_counter()
app = Application.assemble(load_registry(sys.argv[1]))
t2 = time.perf_counter()
import trio
async def main():
    async with trio.open_nursery() as nursery:
        await app.startup(nursery)
        t3 = time.perf_counter()
        await app.shutdown()
        nursery.cancel_scope.cancel()
    return t3
t3 = trio.run(main)
print("PHASES " + json.dumps({"kernel_import_s": t1 - t0, "assembly_s": t2 - t1, "startup_s": t3 - t2}), flush=True)
"""

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def phases(registry: str) -> dict[str, float]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    interpreter_s = time.perf_counter() - started
    done = subprocess.run([sys.executable, "-c", CHILD, registry], capture_output=True, text=True, check=False, timeout=300)
    line = next((x for x in done.stdout.splitlines() if x.startswith("PHASES ")), None)
    if line is None:
        raise SystemExit(f"startup_phases: the child failed: {(done.stderr or done.stdout)[-500:]}")
    out: dict[str, float] = {"interpreter_s": interpreter_s, **json.loads(line[len("PHASES ") :])}
    for raw in (done.stdout + done.stderr).splitlines():
        if '"wasm.workers_warm"' in raw:
            out["workers_warm_s"] = float(json.loads(raw)["ms"]) / 1000.0
    return out


def importtime(registry: str, top: int = 12) -> dict[str, float]:
    """Top-level packages by cumulative import time (seconds), under -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", CHILD, registry], capture_output=True, text=True, check=False, timeout=300)
    per_package: dict[str, float] = {}
    total = 0.0
    for raw in done.stderr.splitlines():
        found = _IMPORT_LINE.match(raw)
        if not found or len(found.group(3)) != 1:  # top-level imports only (one space of indent)
            continue
        seconds = int(found.group(2)) / 1e6
        package = found.group(4).split(".")[0]
        per_package[package] = per_package.get(package, 0.0) + seconds
        total += seconds
    ranked = dict(sorted(per_package.items(), key=lambda kv: -kv[1])[:top])
    return {"total_s": total, **ranked}


def main() -> int:
    registry = sys.argv[1]
    print(json.dumps(importtime(registry) if "--importtime" in sys.argv[2:] else phases(registry)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
