"""The kernel-free part of this package: what a worker process runs.

A loader's worker may run in a process that has neither the kernel nor trio,
on another interpreter: the Wasmer loader's workers run on Python 3.10
(wasmer 1.1 has wheels for no other Python) with only these modules of
WasmKernel copied beside them. So the modules listed here import only the
standard library, attrs and each other, and keep to Python 3.10 (ruff checks
them with a 3.10 target; a test imports them in a fresh Python 3.10 process
where nothing else of WasmKernel exists):

- the package's data types (`__init__`: `ArrayIn`, `ArrayOut`, `WasmRequest`,
  ...; `MODULE_LOADER`, a kernel key, is imported on first use) and its
  errors (`errors`: plain exceptions);
- `artifacts` (the compile cache's files), `calls` (one call inside a
  runtime: arguments in, `Outcome` out);
- the guest's side of the host API: `hostapi` (codes, exceptions), `abi`
  (the host functions), `client` (a worker's RPC client), `grants`.

Both loaders build on these; whatever a worker needs from this package
belongs in this list, and nothing here may import what is not in it.
"""

from __future__ import annotations

from pathlib import Path

#: The portable modules, as file paths relative to the package.
PORTABLE_FILES = (
    "__init__.py",
    "errors.py",
    "artifacts.py",
    "calls.py",
    "hostapi/__init__.py",
    "hostapi/abi.py",
    "hostapi/client.py",
    "hostapi/grants.py",
)


def portable_files() -> dict[str, Path]:
    """Each portable module's path relative to an import root (``wasmkernel_wasm/calls.py``) → its file."""
    package = Path(__file__).resolve().parent
    return {f"{package.name}/{name}": package / name for name in PORTABLE_FILES}
