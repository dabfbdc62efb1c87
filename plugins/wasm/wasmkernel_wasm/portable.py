"""The kernel-free part of the engine API: what a worker process imports.

A loader's worker may run in a process that has neither the kernel nor trio,
on another interpreter: the Wasmer loader's workers run on Python 3.10
(wasmer 1.1 has wheels for no other Python) with only the files listed in
`PORTABLE_FILES` copied beside them. So those modules import only the
standard library, attrs and each other, and keep to Python 3.10 (ruff checks
them with a 3.10 target; a test imports them in a fresh Python 3.10 process
where nothing else of WasmKernel exists):

- the package's data types (`wasmkernel_wasm`: `ArrayIn`, `ArrayOut`,
  `WasmRequest`, ...; `MODULE_LOADER`, a kernel key, is imported on first
  use) and its errors (plain exceptions);
- below, re-exported: the compile cache's files (`read_cached`,
  `write_cached`, `first_line`, `error_cause`), one call inside a runtime
  (`call_export`, `handle_export`, `call_with_argv`, `initialize`,
  `memory_outcome` → `Outcome`), and the guest's side of the host API
  (`abi`: the host functions, `LEVELS` its log levels, `Client`: a worker's RPC client, `Grants`).

Worker code imports `wasmkernel_wasm` and this module only (loader code in
the main process imports `wasmkernel_wasm.engine`, which re-exports all of
this). Whatever a worker needs from this package belongs here, and nothing
here may import what is not in `PORTABLE_FILES`.
"""

from __future__ import annotations

from pathlib import Path

from wasmkernel_wasm.artifacts import error_cause, first_line, read_cached, write_cached
from wasmkernel_wasm.calls import (
    DEFAULT_EXPORTS,
    STDERR_LIMIT,
    STDOUT_LIMIT,
    ExportNames,
    Outcome,
    call_export,
    call_with_argv,
    handle_export,
    initialize,
    memory_outcome,
)
from wasmkernel_wasm.hostapi import NAMESPACE, NOT_FOUND, HostDenied, HostFailure, abi
from wasmkernel_wasm.hostapi.abi import LEVELS
from wasmkernel_wasm.hostapi.client import Client
from wasmkernel_wasm.hostapi.grants import Grants, HttpGrant, KvGrant

__all__ = [
    "DEFAULT_EXPORTS",
    "LEVELS",
    "NAMESPACE",
    "NOT_FOUND",
    "PORTABLE_FILES",
    "STDERR_LIMIT",
    "STDOUT_LIMIT",
    "Client",
    "ExportNames",
    "Grants",
    "HostDenied",
    "HostFailure",
    "HttpGrant",
    "KvGrant",
    "Outcome",
    "abi",
    "call_export",
    "call_with_argv",
    "error_cause",
    "first_line",
    "handle_export",
    "initialize",
    "memory_outcome",
    "portable_files",
    "read_cached",
    "write_cached",
]

#: The portable modules, as file paths relative to the package.
PORTABLE_FILES = (
    "__init__.py",
    "errors.py",
    "artifacts.py",
    "calls.py",
    "portable.py",
    "hostapi/__init__.py",
    "hostapi/abi.py",
    "hostapi/client.py",
    "hostapi/grants.py",
)


def portable_files() -> dict[str, Path]:
    """Each portable module's path relative to an import root (``wasmkernel_wasm/calls.py``) → its file."""
    package = Path(__file__).resolve().parent
    return {f"{package.name}/{name}": package / name for name in PORTABLE_FILES}
