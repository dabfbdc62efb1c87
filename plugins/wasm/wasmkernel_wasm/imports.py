"""What a module may import, the same on every loader and for every kind, and
what a runtime cannot run: both are checked before a module is compiled, so a
module that could not be linked or run is refused at startup (and by
``wasmkernel check``) with the import or feature named."""

from __future__ import annotations

from collections.abc import Iterable

from wasmkernel import StartupError
from wasmkernel_wasm.artifacts import error_cause
from wasmkernel_wasm.modules import PreparedModule

WASI = "wasi_snapshot_preview1"

#: WASI preview 1 (wasm32-wasi / wasm32-wasip1): every kind may import it. Nothing
#: is granted unless the registry says so (no args, env, directories or sockets).
WASI_FUNCTIONS = frozenset(
    (
        "args_get",
        "args_sizes_get",
        "environ_get",
        "environ_sizes_get",
        "clock_res_get",
        "clock_time_get",
        "fd_advise",
        "fd_allocate",
        "fd_close",
        "fd_datasync",
        "fd_fdstat_get",
        "fd_fdstat_set_flags",
        "fd_fdstat_set_rights",
        "fd_filestat_get",
        "fd_filestat_set_size",
        "fd_filestat_set_times",
        "fd_pread",
        "fd_prestat_get",
        "fd_prestat_dir_name",
        "fd_pwrite",
        "fd_read",
        "fd_readdir",
        "fd_renumber",
        "fd_seek",
        "fd_sync",
        "fd_tell",
        "fd_write",
        "path_create_directory",
        "path_filestat_get",
        "path_filestat_set_times",
        "path_link",
        "path_open",
        "path_readlink",
        "path_remove_directory",
        "path_rename",
        "path_symlink",
        "path_unlink_file",
        "poll_oneoff",
        "proc_exit",
        "proc_raise",
        "sched_yield",
        "random_get",
        "sock_accept",
        "sock_recv",
        "sock_send",
        "sock_shutdown",
    )
)

_HINTS = {
    ("env", "abort"): "AssemblyScript's default abort: build with `--use abort=` (wasm_modules/build.sh does)",
}


def check_stubs(prepared: PreparedModule, provided: Iterable[tuple[str, str]], key: str) -> None:
    """`StartupError` (naming the registry `key`) for a `stub_imports` entry that is
    not a function import of the module, or that the host provides (WASI included)."""
    functions = {(module, name) for module, name, kind in prepared.shape.imports if kind == "function"}
    offered = set(provided)
    for entry, (module, name) in zip(prepared.spec.stub_imports, prepared.spec.stubs()):
        if not module or not name:
            raise StartupError(f"{key}: {entry!r} is not 'module.name'")
        if module == WASI or (module, name) in offered:
            raise StartupError(f"{key}: {entry!r} is provided by the host; stub only imports it does not provide")
        if (module, name) not in functions:
            raise StartupError(f"{key}: module '{prepared.spec.name}' imports no function {entry!r}")


def check_imports(prepared: PreparedModule, provided: Iterable[tuple[str, str]], runtime: str) -> None:
    """`StartupError` naming the first import of `prepared` that is neither WASI
    nor in `provided` (the runtime's extra (module, name) functions) nor a stub
    its registry entry names."""
    extra = {*provided, *prepared.spec.stubs()}
    for module, name, kind in prepared.shape.imports:
        if kind == "function" and ((module == WASI and name in WASI_FUNCTIONS) or (module, name) in extra):
            continue
        if kind == "memory":
            continue  # refused with its own message by prepare_module
        offered = f"{WASI} functions" + (" and the wasmkernel host API" if prepared.spec.kind != "wasi" else "")
        hint = _HINTS.get((module, name), f"{runtime} provides only {offered} to kind '{prepared.spec.kind}' modules")
        raise StartupError(f"wasm module '{prepared.spec.name}' imports {kind} '{module}.{name}', which the host does not provide: {hint}")


def refuse_unsupported(prepared: PreparedModule, runtime: str, missing: Iterable[tuple[str, bool]]) -> None:
    """`StartupError` naming the first feature in `missing` ((feature, the module
    uses it)) that the module needs and `runtime` cannot run."""
    for feature, used in missing:
        if used:
            raise StartupError(f"wasm module '{prepared.spec.name}' uses {feature}, which {runtime} cannot run; {wasmtime_verdict(prepared.wasm)}")


def wasmtime_verdict(wasm: bytes) -> str:
    """Whether another runtime's user should switch to wasmtime-loader for
    `wasm`: only if wasmtime's validator (its default features, as the
    wasmtime loader runs) accepts the module; otherwise why it does not."""
    try:
        import wasmtime
    except ImportError:
        return "wasmtime-loader may run it (not checked: the wasmtime package is not installed)"
    try:
        wasmtime.Module.validate(wasmtime.Engine(), wasm)
    except wasmtime.WasmtimeError as exc:
        return f"wasmtime cannot run it either: {error_cause(exc)}"
    return "serve it with wasmtime-loader instead"
