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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import wasmer
from wasmer import wasi
from wasmkernel_wasm import ArrayIn, ArrayOut
from wasmkernel_wasm.artifacts import first_line, read_cached
from wasmkernel_wasm.calls import STDERR_LIMIT, STDOUT_LIMIT, Outcome, call_export, handle_export, memory_outcome

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
class _Guest:
    """A wasmer instance as `wasmkernel_wasm`'s call code sees it."""

    instance: wasmer.Instance

    def function(self, name: str) -> Callable[..., Any] | None:
        try:
            target = getattr(self.instance.exports, name)
        except LookupError:
            return None
        return target if isinstance(target, wasmer.Function) else None

    def read(self, ptr: int, size: int) -> bytes:
        return bytes(memoryview(self.instance.exports.memory.buffer)[ptr : ptr + size])

    def write(self, ptr: int, data: bytes) -> None:
        memoryview(self.instance.exports.memory.buffer)[ptr : ptr + len(data)] = data

    def memory_size(self) -> int:
        memory = getattr(self.instance.exports, "memory", None)
        return memory.data_size if isinstance(memory, wasmer.Memory) else 0


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


def _fault(ref: ModuleRef, instance: wasmer.Instance | None, exc: BaseException) -> Outcome:
    """Classify a guest failure: a trap with memory at its cap is a memory-limit failure."""
    message = first_line(exc)
    exited = _EXIT.search(str(exc))
    if exited:
        return Outcome(error="exit", message=f"exited with status {exited.group(1)}", value=int(exited.group(1)))
    memory = memory_outcome(_Guest(instance) if instance is not None else None, ref.memory_limit, message)
    if memory is not None:
        _INSTANCES.pop(ref.name, None)
        return memory
    return Outcome(error="trap", message=message)


def call(ref: ModuleRef, function: str, args: Sequence[int | float | ArrayIn | ArrayOut]) -> Outcome:
    """Call a compute export, copying `ArrayIn`s in and `ArrayOut`s back out."""
    instance = None
    try:
        instance = _instance(ref)
        return call_export(_Guest(instance), function, args, ref.memory_limit)
    except (RuntimeError, TypeError) as exc:
        return _fault(ref, instance, exc)


def handle(ref: ModuleRef, request: bytes) -> Outcome:
    """Run `handle(req_ptr, req_len)`; the outcome's value is the response bytes."""
    instance = None
    try:
        instance = _instance(ref)
        return handle_export(_Guest(instance), request)
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
            stdout, stderr = _run_start(instance, stdin, scratch)
            return Outcome(value=stdout, stderr=stderr)
        except RuntimeError as exc:
            return _fault(ref, instance, exc)


def _run_start(instance: wasmer.Instance, stdin: bytes, scratch: str) -> tuple[bytes, bytes]:
    """Run `_start` with fds 0, 1 and 2 pointed at files in `scratch`: the
    guest never writes to the worker's own stdout or stderr (the server's log)."""
    paths = [os.path.join(scratch, name) for name in ("stdin", "stdout", "stderr")]
    with open(paths[0], "wb") as body:
        body.write(stdin)
    saved = os.dup(0), os.dup(1), os.dup(2)
    fds = (os.open(paths[0], os.O_RDONLY), *(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) for path in paths[1:]))
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        instance.exports._start()
    except RuntimeError as exc:
        exited = _EXIT.search(str(exc))
        if exited is None or exited.group(1) != "0":
            raise
    finally:
        for target, fd in enumerate(saved):
            os.dup2(fd, target)
        for fd in (*saved, *fds):
            os.close(fd)
    with open(paths[1], "rb") as out, open(paths[2], "rb") as err:
        return out.read(STDOUT_LIMIT), err.read(STDERR_LIMIT)


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
