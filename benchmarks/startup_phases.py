"""Where WasmKernel's start-up time goes, phase by phase, in one fresh process.

    python benchmarks/startup_phases.py REGISTRY [--importtime]

Prints one JSON object: seconds spent importing the kernel, assembling the
application from REGISTRY (which imports every plugin), starting it (the
module loader compiles or deserializes its modules; serving would start
then), the warm-up of the loader's worker processes that runs beside serving
(the ``wasm.workers_warm`` log line), and the interpreter's own start. ``--importtime`` runs the same under
``python -X importtime`` and reports the packages that took longest instead
(cumulative seconds per top-level package).

Run by ``python -m benchmarks`` (initialization section); the registry's
logging level must be ``info`` so the loader's log line is seen.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping

import attrs

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import wasmkernel.cli  # what `wasmkernel run` imports before it reads the registry
from wasmkernel.app import Application
from wasmkernel.registry import load_registry
t1 = time.perf_counter()
app = Application.assemble(load_registry(sys.argv[1]))
t2 = time.perf_counter()
import trio
async def main():
    async with trio.open_nursery() as nursery:
        await app.startup(nursery)
        t3 = time.perf_counter()
        # Serving would start here; the WebAssembly workers warm meanwhile (wait for it: its log line is the last phase).
        probes = {}
        for _, found in app.hooks.each("wasmkernel_readiness"):
            probes.update(found or {})
        with trio.move_on_after(120):
            while not all(probe()[0] for probe in probes.values()):
                await trio.sleep(0.005)
        await app.shutdown()
        nursery.cancel_scope.cancel()
    return t3
t3 = trio.run(main)
print("PHASES " + json.dumps({"kernel_import_s": t1 - t0, "assembly_s": t2 - t1, "startup_s": t3 - t2}), flush=True)
"""


@attrs.frozen
class Phases:
    """One fresh start's phases (seconds): a row of ``phases.csv``."""

    scenario: str  # warm-cache | cold-cache (WasmKernel's compile cache)
    trial: int
    interpreter_s: float  # `python -c pass`
    kernel_import_s: float  # `wasmkernel.cli` and `wasmkernel.app`, as `wasmkernel run` imports them
    assembly_s: float  # reading the registry, importing and configuring every plugin
    loader_start_s: float  # application startup: the workers' environment, compile or deserialize
    workers_warm_s: float  # spawning the WebAssembly workers and loading every module in them (beside serving)

    @classmethod
    def of(cls, scenario: str, trial: int, measured: Mapping[str, float]) -> Phases:
        warm = measured.get("workers_warm_s", 0.0)
        return cls(scenario, trial, measured["interpreter_s"], measured["kernel_import_s"], measured["assembly_s"], measured["startup_s"], warm)

    @property
    def total_s(self) -> float:
        """Exec to serving (the workers' warm-up runs beside it)."""
        return self.interpreter_s + self.kernel_import_s + self.assembly_s + self.loader_start_s


@attrs.frozen
class ImportTime:
    """Seconds of ``-X importtime`` self time of one top-level package: a row of ``imports.csv``."""

    package: str
    seconds: float


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+\d+ \| *(\S+)$")


def phases(registry: str, env: Mapping[str, str] | None = None) -> dict[str, float]:
    """Seconds per phase of one fresh start of `registry` (`env` added to this process's environment)."""
    environ = {**os.environ, **(env or {})}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    interpreter_s = time.perf_counter() - started
    done = subprocess.run([sys.executable, "-c", CHILD, registry], capture_output=True, text=True, check=False, timeout=300, env=environ)
    line = next((x for x in done.stdout.splitlines() if x.startswith("PHASES ")), None)
    if line is None:
        raise SystemExit(f"startup_phases: the child failed: {(done.stderr or done.stdout)[-500:]}")
    out: dict[str, float] = {"interpreter_s": interpreter_s, **json.loads(line[len("PHASES ") :])}
    for raw in (done.stdout + done.stderr).splitlines():
        if '"wasm.workers_warm"' in raw:
            out["workers_warm_s"] = float(json.loads(raw)["ms"]) / 1000.0
    return out


def importtime(registry: str, env: Mapping[str, str] | None = None, top: int = 12) -> dict[str, float]:
    """Seconds of import time per top-level package (each module's own time, at
    any depth, counted to its package), under ``python -X importtime``; the
    `top` largest, plus ``total_s``."""
    environ = {**os.environ, **(env or {})}
    command = [sys.executable, "-X", "importtime", "-c", CHILD, registry]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300, env=environ)
    per_package: dict[str, float] = {}
    for raw in done.stderr.splitlines():
        found = _IMPORT_LINE.match(raw)
        if found:
            package = found.group(2).split(".")[0]
            per_package[package] = per_package.get(package, 0.0) + int(found.group(1)) / 1e6
    ranked = dict(sorted(per_package.items(), key=lambda kv: -kv[1])[:top])
    return {"total_s": sum(per_package.values()), **ranked}


def main() -> int:
    registry = sys.argv[1]
    print(json.dumps(importtime(registry) if "--importtime" in sys.argv[2:] else phases(registry)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
