"""The jobs a worker runs with wasmer (see `wire.Job`), on Python 3.10.

Each worker keeps the deserialized modules it has seen in module globals,
keyed by module name and generation. Calls never raise for guest faults: they
return an `Outcome` that the server turns into the right `WasmError`.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import wasmer
from wasmer import wasi
from wasmkernel_wasm import ArrayIn, ArrayOut, portable
from wasmkernel_wasm.portable import NAMESPACE, Client, Outcome, abi

from wasmkernel_wasmer_loader.worker.wire import ModuleRef

_EXIT = re.compile(r"WASI exited with code: (\d+)")


@attrs.frozen
class _Guest:
    """A wasmer instance as `wasmkernel_wasm`'s call code sees it."""

    instance: wasmer.Instance
    memory: str = "memory"

    def function(self, name: str) -> Callable[..., Any] | None:
        try:
            target = getattr(self.instance.exports, name)
        except LookupError:
            return None
        return target if isinstance(target, wasmer.Function) else None

    def arity(self, name: str) -> int:
        target = self.function(name)
        return len(target.type.params) if isinstance(target, wasmer.Function) else 0

    def _buffer(self) -> memoryview:
        memory = getattr(self.instance.exports, self.memory, None)
        if not isinstance(memory, wasmer.Memory):
            raise RuntimeError(f"the module exports no memory '{self.memory}'")
        return memoryview(memory.buffer)

    def read(self, ptr: int, size: int) -> bytes:
        return bytes(self._buffer()[ptr : ptr + size])

    def write(self, ptr: int, data: bytes) -> None:
        self._buffer()[ptr : ptr + len(data)] = data

    def memory_size(self) -> int:
        memory = getattr(self.instance.exports, self.memory, None)
        return memory.data_size if isinstance(memory, wasmer.Memory) else 0


@attrs.frozen
class _Memory:
    """The instance's memory as the host functions see it."""

    guest: _Guest

    def size(self) -> int:
        return self.guest.memory_size()

    def read(self, ptr: int, length: int) -> bytes:
        return self.guest.read(ptr, length)

    def write(self, ptr: int, data: bytes) -> None:
        self.guest.write(ptr, data)


def _host_function(name: str, arity: int) -> wasmer.Function:
    def host(*args: int) -> int:
        return abi.dispatch(name, args)

    return wasmer.Function(_store(), host, wasmer.FunctionType([wasmer.Type.I32] * arity, [wasmer.Type.I64]))


@functools.cache
def _host_functions() -> dict[str, wasmer.Function]:
    """The `wasmkernel` host functions, linked into every instance of a module that imports them."""
    return {name: _host_function(name, arity) for name, arity in abi.FUNCTIONS.items()}


@functools.cache
def _client(path: str) -> Client:
    return Client(path)


def _host_call(ref: ModuleRef) -> abi.HostCall | None:
    if ref.grants is None:
        return None
    return abi.HostCall(ref.grants, _client(ref.host_socket) if ref.host_socket else None)


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
    module = wasmer.Module.deserialize(_store(), portable.read_cached(Path(ref.artifact), verify=False))
    _MODULES[ref.name] = (ref.generation, module)
    _INSTANCES.pop(ref.name, None)
    return module


def _new_instance(ref: ModuleRef) -> wasmer.Instance:
    """An instance linked like wasmtime links it (WASI granting nothing if the
    module imports it), its `_initialize` run if it is a reactor."""
    module = _module(ref)
    if ref.wasi:
        # not strict: a module may import the host API beside WASI (C guests using wasmkernel.h do)
        imports = wasi.StateBuilder(ref.name).finalize().generate_import_object(_store(), wasi.get_version(module, strict=False))
    else:
        imports = wasmer.ImportObject()
    _register(imports, module, ref)
    instance = wasmer.Instance(module, imports)
    portable.initialize(_Guest(instance, ref.exports.memory))
    return instance


def _register(imports: wasmer.ImportObject, module: wasmer.Module, ref: ModuleRef) -> None:
    """Add the host API (if imported) and `ref`'s stubs, one namespace at a time."""
    namespaces: dict[str, dict[str, wasmer.Function]] = {}
    if any(entry.module == NAMESPACE for entry in module.imports):
        namespaces[NAMESPACE] = _host_functions()
    for entry in module.imports:
        if (entry.module, entry.name) in ref.stubs and isinstance(entry.type, wasmer.FunctionType):
            namespaces.setdefault(entry.module, {})[entry.name] = _stub(f"{entry.module}.{entry.name}", entry.type)
    for namespace, functions in namespaces.items():
        imports.register(namespace, functions)


def _stub(name: str, signature: wasmer.FunctionType) -> wasmer.Function:
    def stub(*_: Any) -> Any:
        raise abi.Trap(f"the program called {name}, which is linked as a stub (stub_imports)")

    return wasmer.Function(_store(), stub, signature)


def _instance(ref: ModuleRef) -> wasmer.Instance:
    """A fresh instance (stateless modules, ~25 µs) or this worker's kept one."""
    if not ref.stateful:
        return _new_instance(ref)
    cached = _INSTANCES.get(ref.name)
    if cached is None or cached[0] != ref.generation:
        cached = (ref.generation, _new_instance(ref))
        _INSTANCES[ref.name] = cached
    return cached[1]


def preload(refs: Sequence[ModuleRef]) -> int:
    """Deserialize every module into this worker; returns the worker's pid.
    `RuntimeError` naming the module whose cached artifact wasmer refuses."""
    for ref in refs:
        try:
            _module(ref)
        except (RuntimeError, OSError, ValueError) as exc:
            reason = portable.first_line(exc)
            raise RuntimeError(f"module '{ref.name}': its compiled artifact cannot be loaded ({reason}); remove {ref.artifact} to recompile it") from None
    return os.getpid()


def _fault(ref: ModuleRef, instance: wasmer.Instance | None, exc: BaseException) -> Outcome:
    """Classify a guest failure: a trap with memory at its cap is a memory-limit failure."""
    message = portable.first_line(exc)
    exited = _EXIT.search(str(exc))
    if exited:
        return Outcome(error="exit", message=f"exited with status {exited.group(1)}", value=int(exited.group(1)))
    memory = portable.memory_outcome(_Guest(instance, ref.exports.memory) if instance is not None else None, ref.memory_limit, message)
    if memory is not None:
        _INSTANCES.pop(ref.name, None)
        return memory
    return Outcome(error="trap", message=message)


def _with_host(ref: ModuleRef, body: Callable[[_Guest], Outcome]) -> Outcome:
    """Run `body` on an instance with this call's host state bound (see `abi.bind`)."""
    instance = None
    host = _host_call(ref)
    with abi.bind(host):
        try:
            instance = _instance(ref)
            guest = _Guest(instance, ref.exports.memory)
            if host is not None:
                host.memory = _Memory(guest)
            outcome = body(guest)
        except (RuntimeError, TypeError, abi.Trap) as exc:
            outcome = _fault(ref, instance, exc)
    return host.finish(outcome) if host is not None else outcome


def call(ref: ModuleRef, function: str, args: Sequence[int | float | ArrayIn | ArrayOut]) -> Outcome:
    """Call a compute export, copying `ArrayIn`s in and `ArrayOut`s back out."""
    return _with_host(ref, lambda guest: portable.call_export(guest, function, args, ref.memory_limit, ref.exports))


def handle(ref: ModuleRef, request: bytes, export: str = "handle") -> Outcome:
    """Run `handle(req_ptr, req_len)` (or a filter's `on_request`/`on_response`); the outcome's value is the bytes returned."""
    return _with_host(ref, lambda guest: portable.handle_export(guest, request, ref.exports, export))


def run_wasi(
    ref: ModuleRef, stdin: bytes, env: Sequence[tuple[str, str]], argv: Sequence[str], scratch: str, entry: str = "_start", argv_pointer: bool = False
) -> Outcome:
    """Run a WASI command's `entry` (after `_initialize`, if a reactor) with `argv`, `stdin` on fd 0 and fds 1
    and 2 captured (wasmer-python has no capture API: the guest writes to the
    real fds). `scratch` is the call's own directory (the loader removes it):
    it holds the captured streams, the per-call `scratch` grant and a copy
    of each read-only directory (wasmer-python cannot map one read-only)."""
    instance = None
    try:
        module = _module(ref)
        builder = wasi.StateBuilder(argv[0]).arguments(list(argv[1:]))
        for name, value in (*ref.env, *env):
            builder.environment(name, value)
        for index, (host, guest, writable) in enumerate(ref.dirs):
            source = host
            if not writable:
                source = os.path.join(scratch, f"ro{index}")
                shutil.copytree(host, source, symlinks=False)
            builder.map_directory(guest, source)
        if ref.scratch is not None:
            os.makedirs(os.path.join(scratch, "tmp"), exist_ok=True)  # the loader may have put the body in it
            builder.map_directory(ref.scratch, os.path.join(scratch, "tmp"))
        if os.path.isdir(os.path.join(scratch, "dev")):  # the loader made it: the module is granted devices
            builder.map_directory("/dev", os.path.join(scratch, "dev"))
        wasi_env = builder.finalize()
        imports = wasi_env.generate_import_object(_store(), wasi.get_version(module, strict=not ref.stubs))
        _register(imports, module, ref)
        instance = wasmer.Instance(module, imports)
        program = _Guest(instance, ref.exports.memory)
        call = functools.partial(portable.call_with_argv, program, entry, argv, ref.exports) if argv_pointer else None
        stdout, stderr, status, problem = _run_start(program, stdin, scratch, entry, call)
        return problem if problem is not None else Outcome(value=stdout, stderr=stderr, exit_status=status)
    except (RuntimeError, abi.Trap) as exc:  # abi.Trap: a stub was called
        return _fault(ref, instance, exc)


def _run_start(guest: _Guest, stdin: bytes, scratch: str, entry: str, call: Callable[[], Outcome | None] | None) -> tuple[bytes, bytes, int, Outcome | None]:
    """Run `entry` (a reactor's `_initialize` first) with fds 0, 1 and 2 pointed at files in `scratch` (the
    guest never writes to the worker's own stdout or stderr), or `call` instead
    of calling it (argv by pointer); returns stdout, stderr, the exit status
    and `call`'s `Outcome` if the module could not take its arguments."""
    paths = [os.path.join(scratch, name) for name in ("stdin", "stdout", "stderr")]
    with open(paths[0], "wb") as body:
        body.write(stdin)
    saved = os.dup(0), os.dup(1), os.dup(2)
    fds = (os.open(paths[0], os.O_RDONLY), *(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) for path in paths[1:]))
    status = 0
    problem: Outcome | None = None
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        function = guest.function(entry)
        if function is None:
            raise RuntimeError(f"no exported function {entry!r}")
        if entry != "_start":
            portable.initialize(guest)
        if call is not None:
            problem = call()
        else:
            function()
    except RuntimeError as exc:
        exited = _EXIT.search(str(exc))
        if exited is None:
            raise
        status = int(exited.group(1))
    finally:
        for target, fd in enumerate(saved):
            os.dup2(fd, target)
        for fd in (*saved, *fds):
            os.close(fd)
    with open(paths[1], "rb") as out, open(paths[2], "rb") as err:
        return out.read(portable.STDOUT_LIMIT), err.read(portable.STDERR_LIMIT), status, problem


def compile_module(wasm: bytes, compiler: str) -> bytes:
    """Compile `wasm` with `compiler` and return the serialized artifact
    (`RuntimeError` with the validation message if it is not a valid module)."""
    if compiler == "singlepass":
        from wasmer_compiler_singlepass import Compiler
    else:
        from wasmer_compiler_cranelift import Compiler
    return bytes(wasmer.Module(wasmer.Store(wasmer.engine.Universal(Compiler)), wasm).serialize())
