"""The hooks the WebAssembly host adds to an application's plugin manager."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmkernel import hookspec

if TYPE_CHECKING:
    from wasmkernel import Application
    from wasmkernel_wasm import ModuleLoader
    from wasmkernel_wasm.config import ModuleTable


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
