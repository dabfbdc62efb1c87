"""The hooks the WebAssembly host adds to an application's plugin manager.

The host calls each once, at assembly, through ``app.hooks`` (in plugin
order, each result attributed to its plugin); pluggy's ``tryfirst``,
``trylast`` and wrappers do not apply across plugins. A plugin implementing
one of them marks it ``@hookimpl(optionalhook=True)``, so that it loads
where the wasm plugin is not enabled.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from wasmkernel import hookspec

if TYPE_CHECKING:
    from wasmkernel import Application
    from wasmkernel_wasm import ModuleLoader
    from wasmkernel_wasm.config import ModuleTable
    from wasmkernel_wasm.hostapi.capability import Capability
    from wasmkernel_wasm.hostapi.keyvalue import KvBackendType


@hookspec
def wasmkernel_module_loader(app: Application, table: ModuleTable) -> ModuleLoader | None:
    """Provide the WebAssembly module loader (wasmer, wasmtime, ...) running
    the host's module table `table` (``[plugins.wasm.config]``: modules
    and their grants); raise `wasmkernel.ConfigError` naming a key of that
    table the loader cannot run (e.g. ``modules[0].compiler``).

    Called by the host once, after every plugin is configured, on every
    plugin: not ``firstresult``, because two loaders enabled at once is a
    startup error naming both, never a silent choice. The host offers the
    loader as the `MODULE_LOADER` service, starts it before any plugin that
    uses the service and stops it after them.
    """


@hookspec
def wasmkernel_host_capabilities(app: Application) -> Iterable[Capability] | None:
    """Contribute host capabilities (`wasmkernel_wasm.hostapi.Capability`):
    the main process's side of the host API's functions, one unit per
    registry key of a module entry (``log``, ``vars``, ``kv``, ``http``).

    Called by the wasm plugin once, while it offers its services (every
    plugin is configured), on every plugin in plugin order; the wasm plugin
    contributes the four built-in ones. The result is the `HOST_CAPABILITIES`
    service, which every module host (the loaders, components) binds to its
    modules' grants at assembly. Two plugins contributing one key stop
    startup naming both; a module granted a key nobody contributes stops
    startup naming that registry key.
    """


@hookspec
def wasmkernel_kv_backends(app: Application) -> Iterable[KvBackendType] | None:
    """Contribute key-value store types (`wasmkernel_wasm.hostapi.KvBackendType`)
    a module's ``kv.backend`` may name.

    Called by the wasm plugin once, while it builds the key-value capability
    (inside `wasmkernel_host_capabilities`), on every plugin in plugin order;
    the wasm plugin contributes "memory" and "sqlite", ``wasm-kv-redis``
    "redis". Two of one name stop startup naming both plugins; a grant naming
    a backend nobody contributes stops startup naming its ``kv.backend`` key.
    A type's `opener` is called at assembly by each module host that uses
    it, so it asks for other plugins' services then (they start first).
    """
