"""Compiling a module into a serialized artifact, large ones in a child process.

Cranelift needs about 15 times a module's size in memory while it compiles
(≈ 1 GB for a 69 MB module) and the allocator keeps much of it afterwards: a
module of at least `CHILD_COMPILE_BYTES` is compiled by a short-lived child
process (``python -m wasmkernel_wasmer_loader.compile``), so the server never
holds that memory. A log line reports progress while it runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import structlog

from wasmkernel_wasmer_loader import worker

log = structlog.get_logger("wasmkernel.wasmer_loader")

#: Modules of at least this many bytes are compiled in a child process.
CHILD_COMPILE_BYTES = 4 * 1024 * 1024
#: Seconds between progress lines while a child compiles.
PROGRESS_EVERY = 5.0


#: Validation errors of operators wasmer 1.1 predates, and the feature they belong to.
_NEWER_FEATURES = (
    (re.compile(r"Unknown 0xfd subopcode"), "newer SIMD operators (relaxed SIMD)"),
    (re.compile(r"Unknown opcode: 0x(0[6-9a]|1[89f])\b"), "exception handling"),
    (re.compile(r"Unknown 0xfe"), "threads (atomic operators)"),
)


def compile_artifact(name: str, wasm: bytes, compiler: str) -> bytes:
    """The serialized artifact of `wasm`; `RuntimeError` with the compiler's
    message (naming the feature wasmer cannot run, if that is why) if it does
    not compile."""
    try:
        return _compile(name, wasm, compiler)
    except RuntimeError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "compile failed"
        for pattern, feature in _NEWER_FEATURES:
            if pattern.search(message):
                raise RuntimeError(f"{message}: it uses {feature}, which wasmer 1.1 cannot run; serve it with wasmtime-loader instead") from None
        raise


def _compile(name: str, wasm: bytes, compiler: str) -> bytes:
    if len(wasm) < CHILD_COMPILE_BYTES:
        return worker.compile_module(wasm, compiler)
    with tempfile.TemporaryDirectory(prefix="wasmkernel-compile-") as tmp:
        source, target = Path(tmp, "module.wasm"), Path(tmp, "module.artifact")
        source.write_bytes(wasm)
        log.info("wasm.compiling", module=name, bytes=len(wasm), compiler=compiler, where="child process")
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", __name__, compiler, str(source), str(target)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while True:
            try:
                _, stderr = child.communicate(timeout=PROGRESS_EVERY)
                break
            except subprocess.TimeoutExpired:
                log.info("wasm.compiling", module=name, elapsed_s=round(time.perf_counter() - start, 1))
        if child.returncode != 0:
            lines = stderr.decode("utf-8", "replace").strip().splitlines()
            raise RuntimeError(lines[-1] if lines else f"the compiler process exited with status {child.returncode}")
        return target.read_bytes()


def main(argv: list[str]) -> int:
    compiler, source, target = argv
    try:
        artifact = worker.compile_module(Path(source).read_bytes(), compiler)
    except RuntimeError as exc:
        print(str(exc).strip().splitlines()[0] if str(exc).strip() else "compile failed", file=sys.stderr)
        return 1
    tmp = f"{target}.{os.getpid()}.tmp"
    Path(tmp).write_bytes(artifact)
    os.replace(tmp, target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
