"""Instructions per request through the kernel and the default middleware
chain, counted by valgrind's callgrind: unlike time, the count does not depend
on what else the machine runs, so before/after comparisons hold on a busy
machine (CPython's own work included; cache misses and the like are not).

    python benchmarks/kernel_instructions.py [--requests 2000] [--registry plugin_registry.toml]

Runs the `GET /bench-hello` of `kernel_overhead.py` through the default
chain twice under callgrind, once with `--requests` and once with none: the
difference divided by `--requests` is the cost of one request (assembly and
start-up cancel out: the WebAssembly plugins, whose start-up compiles or
loads cached modules, are disabled; they add nothing to this route's chain).
What start-up allocated is frozen out of the collector, as in a served
process, so the size of the heap does not weigh on each request.
Needs valgrind.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from kernel_overhead import default_chain_app, drive  # noqa: E402

WITHOUT = frozenset({"wasm", "wasm-http", "wasm-filters", "wasmer-loader", "wasmtime-loader", "matmul"})


async def serve(registry: str, requests: int) -> None:
    app = default_chain_app(registry, without=WITHOUT)
    async with trio.open_nursery() as nursery:
        await app.startup(nursery)
        gc.collect()
        gc.freeze()  # as a served application is (the server plugin's GC tuning): collections do not walk modules
        if requests:
            await drive(app, requests)
        await app.shutdown()
        nursery.cancel_scope.cancel()


def instructions(requests: int, registry: str) -> int:
    """Instructions callgrind counts for the whole run of `--child requests`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__, "--child", str(requests), "--registry", registry]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0"}, check=False)
        if done.returncode != 0:
            raise SystemExit(f"valgrind failed: {done.stderr[-2000:]}")
        found = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
        if found is None:
            raise SystemExit("no summary line in callgrind's output")
        return int(found[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--registry", default=str(ROOT / "plugin_registry.toml"))
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        trio.run(serve, args.registry, args.child)
        return
    with_requests, without = instructions(args.requests, args.registry), instructions(0, args.registry)
    print(f"{(with_requests - without) / args.requests:,.0f} instructions per request (default chain, {args.requests} requests; callgrind)")


if __name__ == "__main__":
    main()
