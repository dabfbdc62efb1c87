"""The engine API: the contract between the WebAssembly host and the plugins
that build on it (loaders, the components host, HTTP triggers, filters).

Another plugin imports from `wasmkernel_wasm` (the data types, errors,
`MODULE_LOADER`), from this module, and — in code that runs in a worker
process without the kernel — from `wasmkernel_wasm.portable` (re-exported
here too). Nothing else of this package is public; ``tests/test_public_api.py``
enforces it (the package lists these modules under ``[tool.wasmkernel]
public-modules`` in its pyproject).

**Writing a loader plugin.** Subclass `LoaderPlugin` (its section is an
`EngineConfig`: engine settings only; a module table there is an error naming
where it moved), set `compilers`, and implement `create`, returning a loader
built on `LoaderBase` for the `LoaderConfig` the host hands over (engine
settings plus the host's `ModuleTable`). A `LoaderBase` subclass sets
`runtime` and `jobs` and implements:

- `_compile(prepared, generation)`: compile a `PreparedModule` (read,
  pinned, memory-capped and import-checked by `_prepare`) or take it from the
  content-keyed cache (`cache_path`, `compile_cached`), returning a loaded
  module whose `info` is `module_info(...)`;
- `_run(module, function, job, *args, timeout=...)`: run one of `jobs`'
  functions (`call`, `handle`, `run_wasi`, built on the portable call code:
  `call_export`, `handle_export`, `call_with_argv` → `Outcome`) under the
  module's limits inside `_slot(module)`, mapping failures with
  `outcome_error` / `timeout_error` and forwarding guest logs with `emit_logs`;
- `start` / `stop` (hot reload with `watch_files`; background tasks under
  `supervisor`) and optionally `_refuse_unsupported` (`refuse_unsupported`
  for features the runtime lacks; imports are checked against `WASI` and the
  host API by `_prepare`).

`LoaderBase` then provides the `ModuleLoader` calls (compute with argument
checks, HTTP handlers, WASI commands WAGI-style with scratch files and exit
statuses, filters), the concurrency limits and queue, readiness, `CallMetrics`
and the host API (`HostAPI`; worker processes reach it through the RPC
`Server`).

**Serving modules.** Plugins that answer requests with modules (wasm-http,
wasm-filters) ask for the `MODULE_LOADER` and `MODULE_TABLE` services (the
``[plugins.wasm.config]`` table: `ModuleSpec`s by name; `module_services`
gets both once their own entries passed a check against the table), hide what a module
must not see with `header_policy` (every authenticator's credential headers
and `secret_headers`, minus the module's `grant_headers`), serve WASI
commands with `cgi_env` and turn what a module answered into a response with
`kernel_response`. The components plugin, a host of its own, uses
`credential_headers`, `cgi_env` and `parse_cgi_output` the same way.
"""

from __future__ import annotations

from wasmkernel_wasm.calls import emit_logs, outcome_error, timeout_error
from wasmkernel_wasm.cgi import cgi_env, parse_cgi_output
from wasmkernel_wasm.config import ARG_PARAM, DirSpec, EngineConfig, LoaderConfig, ModuleSpec, ModuleTable
from wasmkernel_wasm.hostapi.capabilities import HostAPI
from wasmkernel_wasm.hostapi.rpc import Server
from wasmkernel_wasm.imports import WASI, refuse_unsupported, wasmtime_verdict
from wasmkernel_wasm.loader import LoaderBase
from wasmkernel_wasm.loader_plugin import ConfiguredLoader, LoaderPlugin
from wasmkernel_wasm.metrics import CallMetrics
from wasmkernel_wasm.modules import COMPONENT_HEADER, PreparedModule, cache_path, compile_cached, module_info
from wasmkernel_wasm.portable import (
    DEFAULT_EXPORTS,
    NAMESPACE,
    NOT_FOUND,
    STDERR_LIMIT,
    STDOUT_LIMIT,
    Client,
    ExportNames,
    Grants,
    HostDenied,
    HostFailure,
    HttpGrant,
    KvGrant,
    Outcome,
    abi,
    call_export,
    call_with_argv,
    error_cause,
    first_line,
    handle_export,
    initialize,
    memory_outcome,
    portable_files,
    read_cached,
    write_cached,
)
from wasmkernel_wasm.requests import CREDENTIAL_HEADERS, credential_headers, header_policy, kernel_response
from wasmkernel_wasm.service import MODULE_TABLE, module_services
from wasmkernel_wasm.watch import watch_files
from wasmkernel_wasm.wire import Fields

__all__ = [
    "ARG_PARAM",
    "COMPONENT_HEADER",
    "CREDENTIAL_HEADERS",
    "DEFAULT_EXPORTS",
    "MODULE_TABLE",
    "NAMESPACE",
    "NOT_FOUND",
    "STDERR_LIMIT",
    "STDOUT_LIMIT",
    "WASI",
    "CallMetrics",
    "Client",
    "ConfiguredLoader",
    "DirSpec",
    "EngineConfig",
    "ExportNames",
    "Fields",
    "Grants",
    "HostAPI",
    "HostDenied",
    "HostFailure",
    "HttpGrant",
    "KvGrant",
    "LoaderBase",
    "LoaderConfig",
    "LoaderPlugin",
    "ModuleSpec",
    "ModuleTable",
    "Outcome",
    "PreparedModule",
    "Server",
    "abi",
    "cache_path",
    "call_export",
    "call_with_argv",
    "cgi_env",
    "compile_cached",
    "credential_headers",
    "emit_logs",
    "error_cause",
    "first_line",
    "handle_export",
    "header_policy",
    "initialize",
    "kernel_response",
    "memory_outcome",
    "module_info",
    "module_services",
    "outcome_error",
    "parse_cgi_output",
    "portable_files",
    "read_cached",
    "refuse_unsupported",
    "timeout_error",
    "wasmtime_verdict",
    "watch_files",
    "write_cached",
]
