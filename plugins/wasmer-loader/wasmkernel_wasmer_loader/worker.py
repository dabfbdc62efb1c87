"""Code that runs inside worker processes (importable: workers are spawned).

Each worker keeps the deserialized modules it has seen in module globals,
keyed by module name and generation. Calls never raise for guest faults: they
return an `Outcome` that the main process turns into the right `WasmError`.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import wasmer
from wasmer import wasi

from kernel.wasm import ITEMSIZE, ArrayIn, ArrayOut
from kernel.wasm_abi import read_cached

ErrorKind = Literal["trap", "memory", "abi", "exit"]

#: A trap counts as a memory-limit failure when less than this is left below the cap.
MEMORY_SLACK = 2 * 1024 * 1024
STDOUT_LIMIT = 16 * 1024 * 1024
_EXIT = re.compile(r"WASI exited with code: (\d+)")


@attrs.frozen
class ModuleRef:
    """What a worker needs to run one generation of a module (picklable)."""

    name: str
    generation: int
    artifact: str
    stateful: bool
    memory_limit: int
    env: tuple[tuple[str, str], ...] = ()
    dirs: tuple[tuple[str, str, bool], ...] = ()


@attrs.frozen
class Outcome:
    """A call's result: `error` is None on success."""

    value: Any = None
    outputs: tuple[bytes, ...] = ()
    duration_ms: float = 0.0
    error: ErrorKind | None = None
    message: str = ""


_MODULES: dict[str, tuple[int, wasmer.Module]] = {}
_INSTANCES: dict[str, tuple[int, wasmer.Instance]] = {}


@functools.cache
def _store() -> wasmer.Store:
    """This worker's store: a compiler-less engine only deserializes our own artifacts."""
    return wasmer.Store(wasmer.engine.Universal())


def _module(ref: ModuleRef) -> wasmer.Module:
    cached = _MODULES.get(ref.name)
    if cached is not None and cached[0] == ref.generation:
        return cached[1]
    module = wasmer.Module.deserialize(_store(), read_cached(Path(ref.artifact), verify=False))
    _MODULES[ref.name] = (ref.generation, module)
    _INSTANCES.pop(ref.name, None)
    return module


def _instance(ref: ModuleRef) -> wasmer.Instance:
    """A fresh instance (stateless modules, ~25 µs) or this worker's kept one."""
    if not ref.stateful:
        return wasmer.Instance(_module(ref))
    cached = _INSTANCES.get(ref.name)
    if cached is None or cached[0] != ref.generation:
        cached = (ref.generation, wasmer.Instance(_module(ref)))
        _INSTANCES[ref.name] = cached
    return cached[1]


def preload(refs: Sequence[ModuleRef]) -> int:
    """Deserialize every module into this worker; returns the worker's pid."""
    for ref in refs:
        _module(ref)
    return os.getpid()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.removeprefix("RuntimeError: ")


def _fault(ref: ModuleRef, instance: wasmer.Instance | None, exc: BaseException) -> Outcome:
    """Classify a guest failure: a trap with memory at its cap is a memory-limit failure."""
    message = first_line(exc)
    exited = _EXIT.search(str(exc))
    if exited:
        return Outcome(error="exit", message=f"exited with status {exited.group(1)}", value=int(exited.group(1)))
    memory = getattr(instance.exports, "memory", None) if instance is not None else None
    if isinstance(memory, wasmer.Memory) and memory.data_size + MEMORY_SLACK >= ref.memory_limit:
        _INSTANCES.pop(ref.name, None)
        return Outcome(error="memory", message=f"{message} with {memory.data_size // (1024 * 1024)} MiB in use")
    return Outcome(error="trap", message=message)


def call(ref: ModuleRef, function: str, args: Sequence[int | float | ArrayIn | ArrayOut]) -> Outcome:
    """Call a compute export, copying `ArrayIn`s in and `ArrayOut`s back out."""
    instance = None
    try:
        instance = _instance(ref)
        exports = instance.exports
        try:
            target = getattr(exports, function)
        except LookupError:
            target = None
        if not isinstance(target, wasmer.Function) or function in ("alloc", "dealloc"):
            return Outcome(error="abi", message=f"no exported function '{function}'")
        memory, alloc, dealloc = exports.memory, exports.alloc, exports.dealloc
        buffers: list[tuple[int, int]] = []
        outputs: list[tuple[int, int]] = []
        values: list[int | float] = []
        for arg in args:
            if isinstance(arg, (ArrayIn, ArrayOut)):
                size = len(arg.data) if isinstance(arg, ArrayIn) else arg.length * ITEMSIZE[arg.dtype]
                ptr = alloc(size)
                if ptr == 0:
                    return Outcome(error="memory", message=f"alloc({size}) failed: the module's memory limit is {ref.memory_limit // (1024 * 1024)} MiB")
                buffers.append((ptr, size))
                if isinstance(arg, ArrayIn):
                    memoryview(memory.buffer)[ptr : ptr + size] = arg.data
                else:
                    outputs.append((ptr, size))
                values.append(ptr)
            else:
                values.append(arg)
        start = time.perf_counter()
        value = target(*values)
        duration = (time.perf_counter() - start) * 1000
        view = memoryview(memory.buffer)
        out = tuple(bytes(view[ptr : ptr + size]) for ptr, size in outputs)
        for ptr, size in buffers:
            dealloc(ptr, size)
        return Outcome(value=value, outputs=out, duration_ms=duration)
    except (RuntimeError, TypeError) as exc:
        return _fault(ref, instance, exc)


def handle(ref: ModuleRef, request: bytes) -> Outcome:
    """Run `handle(req_ptr, req_len)`; the outcome's value is the response bytes."""
    instance = None
    try:
        instance = _instance(ref)
        exports = instance.exports
        ptr = exports.alloc(len(request))
        if ptr == 0:
            return Outcome(error="memory", message="alloc failed for the request")
        memoryview(exports.memory.buffer)[ptr : ptr + len(request)] = request
        start = time.perf_counter()
        packed = exports.handle(ptr, len(request)) & 0xFFFFFFFFFFFFFFFF
        duration = (time.perf_counter() - start) * 1000
        exports.dealloc(ptr, len(request))
        resp_ptr, resp_len = packed >> 32, packed & 0xFFFFFFFF
        if resp_ptr + resp_len > exports.memory.data_size:
            return Outcome(error="abi", message="handle returned a response outside its memory")
        body = bytes(memoryview(exports.memory.buffer)[resp_ptr : resp_ptr + resp_len])
        exports.dealloc(resp_ptr, resp_len)
        return Outcome(value=body, duration_ms=duration)
    except RuntimeError as exc:
        return _fault(ref, instance, exc)


def run_wasi(ref: ModuleRef, stdin: bytes, env: Sequence[tuple[str, str]]) -> Outcome:
    """Run a WASI command's `_start` with `stdin` on fd 0 and fd 1 captured
    (wasmer-python has no capture API: the guest writes to the real fds).
    Read-only directories are granted as a fresh copy per call."""
    instance = None
    with tempfile.TemporaryDirectory(prefix="wasmkernel-wasi-") as scratch:
        try:
            module = _module(ref)
            builder = wasi.StateBuilder(ref.name)
            for name, value in (*ref.env, *env):
                builder.environment(name, value)
            for index, (host, guest, writable) in enumerate(ref.dirs):
                source = host
                if not writable:
                    source = os.path.join(scratch, str(index))
                    shutil.copytree(host, source, symlinks=False)
                builder.map_directory(guest, source)
            wasi_env = builder.finalize()
            imports = wasi_env.generate_import_object(_store(), wasi.get_version(module, strict=True))
            instance = wasmer.Instance(module, imports)
            stdout = _run_start(instance, stdin, scratch)
            return Outcome(value=stdout[:STDOUT_LIMIT])
        except RuntimeError as exc:
            return _fault(ref, instance, exc)


def _run_start(instance: wasmer.Instance, stdin: bytes, scratch: str) -> bytes:
    in_path, out_path = os.path.join(scratch, "stdin"), os.path.join(scratch, "stdout")
    with open(in_path, "wb") as body:
        body.write(stdin)
    saved = os.dup(0), os.dup(1)
    in_fd = os.open(in_path, os.O_RDONLY)
    out_fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.dup2(in_fd, 0)
        os.dup2(out_fd, 1)
        instance.exports._start()
    except RuntimeError as exc:
        exited = _EXIT.search(str(exc))
        if exited is None or exited.group(1) != "0":
            raise
    finally:
        os.dup2(saved[0], 0)
        os.dup2(saved[1], 1)
        for fd in (*saved, in_fd, out_fd):
            os.close(fd)
    with open(out_path, "rb") as out:
        return out.read(STDOUT_LIMIT)


def compile_module(wasm: bytes, compiler: str) -> bytes:
    """Compile `wasm` with `compiler` and return the serialized artifact
    (`RuntimeError` with the validation message if it is not a valid module)."""
    if compiler == "singlepass":
        from wasmer_compiler_singlepass import Compiler
    else:
        from wasmer_compiler_cranelift import Compiler
    return bytes(wasmer.Module(wasmer.Store(wasmer.engine.Universal(Compiler)), wasm).serialize())


def check_artifact(data: bytes) -> None:
    """Deserialize `data` once (`RuntimeError` if it is corrupt or foreign)."""
    wasmer.Module.deserialize(wasmer.Store(wasmer.engine.Universal()), data)
