"""WasmKernel's WASI 0.2 component host (plugin `components`).

Serves standard WebAssembly components on wasmtime's component model:
`wasi:http/incoming-handler` components (componentize-py, componentize-js,
Spin SDK 3 apps, anything targeting `wasi:http/proxy`) and `wasi:cli/run`
commands, with `wasi:http`, `wasi:io` and the rest of the WASI surface
implemented in Python (`wasmkernel_components.wasi`). Registry:
``[plugins.components.config]`` (see `config.ComponentsConfig`).

Public API: `ComponentsConfig`, `ComponentSpec`, `ComponentRoute`,
`is_component` (whether bytes are a component rather than a core module).
"""

from __future__ import annotations

from wasmkernel_components.config import ComponentRoute, ComponentsConfig, ComponentSpec
from wasmkernel_components.host import is_component

__all__ = ["ComponentRoute", "ComponentSpec", "ComponentsConfig", "is_component"]
